/// Checks iSCSI names (target names and initiator names in ACLs).
enum ISCSIName {
    /// RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes.
    static let maximumLength = 223

    /// Why `name` is not a valid iSCSI name, or nil when it is.
    static func problem(with name: String) -> String? {
        guard !name.isEmpty else { return "an iSCSI name must not be empty" }
        guard name.utf8.count <= maximumLength else {
            return "\(name.utf8.count) bytes; iSCSI names are at most \(maximumLength) (RFC 7143 §4.2.7.1)"
        }
        let bytes = Array(name.utf8)
        func isHex(_ b: UInt8) -> Bool {
            (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b)
        }
        if name.hasPrefix("eui.") {
            // RFC 3720 §3.2.6.3.2: "eui." followed by an EUI-64 in 16 hex digits.
            let digits = bytes.dropFirst(4)
            return digits.count == 16 && digits.allSatisfy(isHex)
                ? nil : "an eui. name needs exactly 16 hex digits (RFC 3720 §3.2.6.3.2)"
        }
        if name.hasPrefix("naa.") {
            // RFC 3980 §2: "naa." followed by a 64- or 128-bit NAA identifier in hex.
            let digits = bytes.dropFirst(4)
            return (digits.count == 16 || digits.count == 32) && digits.allSatisfy(isHex)
                ? nil : "a naa. name needs 16 or 32 hex digits (RFC 3980)"
        }
        guard name.hasPrefix("iqn.") else {
            return "an iSCSI name starts with iqn., eui. or naa. (RFC 3720 §3.2.6.3)"
        }
        // RFC 3722 §6 (stringprep profile): names are case-folded; we accept
        // the ASCII subset: a-z, 0-9, '-', '.', ':'.
        let allowed = bytes.allSatisfy { b in
            (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2D || b == 0x2E || b == 0x3A
        }
        guard allowed else {
            return "an iqn. name may hold only lower-case letters, digits, '-', '.' and ':' (RFC 3722)"
        }
        // RFC 3720 §3.2.6.3.1: iqn.yyyy-mm.reversed.domain[:unique]
        let body = name.dropFirst(4)
        let naming = body.prefix { $0 != ":" }
        let parts = naming.split(separator: ".", omittingEmptySubsequences: false)
        guard let date = parts.first, date.count == 7, date.utf8.dropFirst(4).first == 0x2D,
            let year = Int(date.prefix(4)), let month = Int(date.suffix(2)), year >= 1970, (1...12).contains(month)
        else {
            return "an iqn. name continues with the date yyyy-mm (RFC 3720 §3.2.6.3.1)"
        }
        let domain = parts.dropFirst()
        guard !domain.isEmpty,
            domain.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") && !$0.contains(":") })
        else {
            return
                "an iqn. name needs a reversed domain name after the date, e.g. iqn.2026-11.com.example (RFC 3720 §3.2.6.3.1)"
        }
        if naming.count < body.count && body.count == naming.count + 1 {
            return "nothing after ':' (drop the ':' or add an identifier)"
        }
        return nil
    }
}

/// A portal's `listen` value: `host:port`, `[ipv6]:port`, or a bare host (port 3260).
struct ListenAddress: Equatable {
    var host: String
    var port: UInt16

    struct Problem: Error { var message: String }

    static func parse(_ text: String) -> Result<ListenAddress, Problem> {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(Problem(message: "missing ']' after the IPv6 address"))
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return .failure(Problem(message: "expected ':port' after ']'")) }
                portText = rest.dropFirst()
            }
        } else if text.filter({ $0 == ":" }).count > 1 {
            return .failure(Problem(message: "write an IPv6 address in brackets: [::1]:3260"))
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = Substring(text)
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace }) else {
            return .failure(Problem(message: "\"\(text)\" has no host (use 0.0.0.0 for every address)"))
        }
        var port: UInt16 = 3260
        if let portText {
            guard let value = UInt16(portText), value > 0 else {
                return .failure(Problem(message: "port \"\(portText)\" is not in 1...65535"))
            }
            port = value
        }
        return .success(ListenAddress(host: String(host), port: port))
    }
}

/// Byte sizes with binary units: `1073741824`, `"512MiB"`, `"1 GiB"`, `"4KiB"`.
enum ByteSize {
    struct Problem: Error { var message: String }

    static let units: [(suffix: String, shift: UInt64)] = [
        ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10), ("T", 40), ("G", 30), ("M", 20), ("K", 10), ("B", 0),
    ]

    static func parse(_ text: String) -> Result<UInt64, Problem> {
        let trimmed = text.filter { !$0.isWhitespace && $0 != "_" }
        var number = Substring(trimmed)
        var shift: UInt64 = 0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            shift = unit.shift
            break
        }
        guard let value = UInt64(number), value > 0 else {
            return .failure(
                Problem(message: "\"\(text)\" is not a size; write bytes or a number with KiB, MiB, GiB or TiB"))
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow, bytes <= UInt64(Int64.max) else {
            return .failure(Problem(message: "\"\(text)\" is too large"))
        }
        return .success(bytes)
    }
}
