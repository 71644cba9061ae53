/// One problem found in a configuration file, naming the key and, when it
/// can be found, the line.
public struct ConfigurationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Dotted key path with array indices, e.g. `target[0].lun[1].size`.
    public var key: String
    /// 1-based line in the source, when known.
    public var line: Int?
    /// What is wrong and, where useful, what would be right.
    public var message: String

    public init(key: String, line: Int?, message: String) {
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { "line \(line): \(key): \(message)" } else { "\(key): \(message)" }
    }
}

/// A configuration that cannot be used: a TOML syntax error or one or more
/// invalid values (all of them are reported, not only the first).
public struct NodeConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where the text came from (a path, or "built-in default").
    public var source: String
    /// The problems, in file order.
    public var diagnostics: [ConfigurationDiagnostic]

    public init(source: String, diagnostics: [ConfigurationDiagnostic]) {
        self.source = source
        self.diagnostics = diagnostics
    }

    public var description: String {
        "invalid configuration \(source):\n" + diagnostics.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Finds the line of a key path in TOML text. TOMLKit keeps no positions for
/// values, so this scans table headers (`[a]`, `[[a.b]]`) and `key =` lines,
/// numbering arrays of tables the way the parser does. Inline tables and
/// multi-line values are not followed: their keys resolve to the enclosing
/// table's header line.
struct TOMLLineIndex {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var arrayCounts: [String: Int] = [:]
        var currentTable = ""
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            let trimmed = rawLine.trimmingPrefix(while: \.isWhitespace)
            if trimmed.hasPrefix("[") {
                let isArray = trimmed.hasPrefix("[[")
                let body = trimmed.dropFirst(isArray ? 2 : 1).prefix { $0 != "]" }
                let parts = Self.keyParts(body)
                guard !parts.isEmpty else { continue }
                var resolved = ""
                for (index, part) in parts.enumerated() {
                    let path = resolved.isEmpty ? part : "\(resolved).\(part)"
                    if index == parts.count - 1 && isArray {
                        let count = arrayCounts[path, default: 0]
                        arrayCounts[path] = count + 1
                        resolved = "\(path)[\(count)]"
                    } else if let count = arrayCounts[path] {
                        resolved = "\(path)[\(count - 1)]"
                    } else {
                        resolved = path
                    }
                }
                currentTable = resolved
                if lines[resolved] == nil { lines[resolved] = line }
            } else if let equals = trimmed.firstIndex(of: "="), !trimmed.hasPrefix("#") {
                let parts = Self.keyParts(trimmed[..<equals])
                guard !parts.isEmpty else { continue }
                let key = parts.joined(separator: ".")
                let path = currentTable.isEmpty ? key : "\(currentTable).\(key)"
                if lines[path] == nil { lines[path] = line }
            }
        }
    }

    /// Splits a dotted key into its parts, dropping quotes and spaces.
    private static func keyParts(_ text: Substring) -> [String] {
        text.split(separator: ".").map { part in
            var p = part.trimmingPrefix(while: \.isWhitespace)
            while let last = p.last, last.isWhitespace { p = p.dropLast() }
            if p.count >= 2, let first = p.first, first == "\"" || first == "'", p.last == first {
                p = p.dropFirst().dropLast()
            }
            return String(p)
        }.filter { !$0.isEmpty }
    }

    /// The line of `path`, or of its nearest enclosing table.
    func line(of path: String) -> Int? {
        var candidate = Substring(path)
        while true {
            if let line = lines[String(candidate)] { return line }
            if candidate.hasSuffix("]"), let open = candidate.lastIndex(of: "[") {
                // `acl[2]` (an element of an inline array): the line of `acl`.
                candidate = candidate[..<open]
                continue
            }
            guard let dot = candidate.lastIndex(of: ".") else { break }
            candidate = candidate[..<dot]
        }
        return nil
    }
}
