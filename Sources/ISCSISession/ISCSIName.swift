/// The shape of an iSCSI name (RFC 7143 §4.2.7), for telling a target name
/// apart from a value that cannot be one (SendTargets=Alle).
public enum ISCSIName {
    /// RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes.
    public static let maxLength = 223

    /// Whether `name` has the form of an `iqn.`, `eui.` or `naa.` name.
    /// Compared after lower-casing, as names are normalized (RFC 7143 §4.2.7.2).
    public static func isWellFormed(_ name: String) -> Bool {
        let bytes = Array(name.lowercased().utf8)
        guard bytes.count <= maxLength, bytes.count > 4 else { return false }
        // RFC 7143 §4.2.7.2: after normalization only dash, dot, colon, lower-case
        // letters, digits and non-ASCII characters remain.
        guard bytes.allSatisfy(isNameByte) else { return false }
        let body = bytes[4...]
        switch String(decoding: bytes[..<4], as: UTF8.self) {
        case "iqn.":
            // RFC 7143 §4.2.7.4: "iqn." yyyy-mm, then optionally "." naming authority.
            let date = Array(body.prefix(7))
            guard date.count == 7, date[4] == UInt8(ascii: "-"),
                date[0..<4].allSatisfy(isDigit), date[5..<7].allSatisfy(isDigit)
            else { return false }
            return body.count == 7 || body[body.startIndex + 7] == UInt8(ascii: ".")
        case "eui.":
            // RFC 7143 §4.2.7.5: "eui." and 16 hexadecimal digits.
            return body.count == 16 && body.allSatisfy(isHexDigit)
        case "naa.":
            // RFC 7143 §4.2.7.6: "naa." and 16 or 32 hexadecimal digits.
            return (body.count == 16 || body.count == 32) && body.allSatisfy(isHexDigit)
        default:
            return false
        }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        byte >= 0x80 || isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
