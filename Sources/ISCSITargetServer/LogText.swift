/// Text from the network made safe for a log line: every byte outside
/// printable ASCII, and the backslash, becomes `\xNN`, so a peer can neither
/// end the line, forge another, nor send terminal escapes; and the text is cut
/// at `limit` bytes, so a peer cannot fill the log.
enum LogText {
    /// Bound on the bytes of peer text in one log value.
    static let defaultLimit = 256

    /// `text`, escaped and at most `limit` of its bytes (a note says how many more there were).
    static func escaped(_ text: some StringProtocol, limit: Int = defaultLimit) -> String {
        let bytes = text.utf8
        var out: [UInt8] = []
        out.reserveCapacity(min(bytes.count, limit) + 16)
        let digits = Array("0123456789abcdef".utf8)
        for byte in bytes.prefix(limit) {
            if (0x20...0x7E).contains(byte), byte != UInt8(ascii: "\\") {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "\\"), UInt8(ascii: "x"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        var result = String(decoding: out, as: UTF8.self)
        if bytes.count > limit { result += "...(+\(bytes.count - limit) bytes)" }
        return result
    }
}
