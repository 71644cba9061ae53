/// A table for the terminal: a header row and rows of cells, each column as
/// wide as its widest cell, columns two spaces apart, no trailing spaces.
/// Cells that look like numbers are aligned right.
public struct TextTable: Hashable, Sendable {
    /// Column titles.
    public var headers: [String]
    /// Rows; a short row is padded with empty cells, a long one cut to the headers.
    public var rows: [[String]]

    public init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    /// The rendered lines, newline-terminated.
    public func render() -> String {
        let columns = headers.count
        let body = rows.map { row in (0..<columns).map { $0 < row.count ? Self.clean(row[$0]) : "" } }
        let all = [headers] + body
        let widths = (0..<columns).map { column in all.map { $0[column].count }.max() ?? 0 }
        let numeric = (0..<columns).map { column in !body.isEmpty && body.allSatisfy { Self.isNumber($0[column]) } }
        var out = ""
        for row in all {
            var cells: [String] = []
            for column in 0..<columns {
                let cell = row[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                // The header of a right-aligned column is aligned right too.
                cells.append(numeric[column] ? pad + cell : cell + pad)
            }
            var line = cells.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// A cell on one line: line ends and tabs become spaces.
    static func clean(_ cell: String) -> String {
        String(cell.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }

    static func isNumber(_ cell: String) -> Bool {
        !cell.isEmpty && cell.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// Byte counts as people read them: "64 MiB", "1.5 GiB", "512 B".
public func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(rounded) \(units[unit])"
}
