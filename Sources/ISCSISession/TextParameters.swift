/// An ordered list of iSCSI text `key=value` pairs, as carried in the data
/// segment of Login and Text PDUs.
///
/// RFC 7143 §6.1: every pair is `key=value` followed by one null byte; keys
/// are at most 63 bytes from a restricted alphabet; values are UTF-8 and, unless
/// a key says otherwise, at most 255 bytes. CHAP_C and CHAP_R carry binary
/// values (`0x` hex or `0b` base64) bounded here by `maxBinaryValueBytes`.
public struct TextParameters: Sendable, Equatable {
    /// One `key=value` pair.
    public struct Pair: Sendable, Equatable {
        /// The key name.
        public var key: String
        /// The value, still in its textual form.
        public var value: String

        /// Creates a pair.
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The pairs in the order they were received or added.
    public var pairs: [Pair]

    /// RFC 7143 §6.1: "key-name ... MUST NOT exceed 63 bytes".
    public static let maxKeyLength = 63
    /// RFC 7143 §6.1: a simple value is at most 255 bytes unless the key says otherwise.
    public static let maxValueLength = 255
    /// Bound on a decoded binary value (CHAP_C, CHAP_R). RFC 7143 §12.1.3 leaves
    /// the challenge length open; 1024 bytes is far above any real digest or challenge.
    public static let maxBinaryValueBytes = 1024
    /// Bound on the whole text of one login or text negotiation (after C-bit reassembly).
    public static let defaultMaxTotalLength = 65536

    /// Keys whose values are binary (`0x`/`0b` encoded) and may exceed 255 bytes.
    static let binaryKeys: Set<String> = ["CHAP_C", "CHAP_R"]

    /// Creates a list from pairs.
    public init(_ pairs: [Pair] = []) {
        self.pairs = pairs
    }

    /// The value of the first pair with `key`, if any.
    public subscript(key: String) -> String? {
        pairs.first(where: { $0.key == key })?.value
    }

    /// Appends a pair.
    public mutating func append(_ key: String, _ value: String) {
        pairs.append(Pair(key, value))
    }

    /// Whether the list holds no pair.
    public var isEmpty: Bool { pairs.isEmpty }

    /// The wire form: each pair followed by one null byte.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pairs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 })
        for pair in pairs {
            bytes.append(contentsOf: pair.key.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: pair.value.utf8)
            bytes.append(0)
        }
        return bytes
    }

    /// Parses a complete (reassembled) text data segment.
    ///
    /// Empty strings between nulls (padding some initiators leave) are skipped;
    /// a last pair without its terminating null is accepted. Duplicate keys,
    /// over-long keys or values, malformed pairs and texts above `maxTotalLength`
    /// throw; nothing here traps on peer input.
    public static func parse(
        _ bytes: [UInt8],
        maxTotalLength: Int = defaultMaxTotalLength
    ) throws(TextParameterError) -> TextParameters {
        guard bytes.count <= maxTotalLength else { throw .textTooLong(bytes.count) }
        var result: [Pair] = []
        var seen: Set<String> = []
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 0) ?? bytes.count
            let item = bytes[start..<end]
            start = end + 1
            if item.isEmpty { continue }
            let pair = try parsePair(item)
            // RFC 7143 §6.2: a key is not offered twice in one negotiation.
            guard seen.insert(pair.key).inserted else { throw .duplicateKey(pair.key) }
            result.append(pair)
        }
        return TextParameters(result)
    }

    private static func parsePair(_ item: ArraySlice<UInt8>) throws(TextParameterError) -> Pair {
        guard let equals = item.firstIndex(of: UInt8(ascii: "=")) else {
            throw .missingEquals(String(decoding: item.prefix(maxKeyLength), as: UTF8.self))
        }
        let keyBytes = item[item.startIndex..<equals]
        let valueBytes = item[(equals + 1)...]
        guard !keyBytes.isEmpty else { throw .emptyKey }
        // RFC 7143 §6.1: key names are at most 63 bytes.
        guard keyBytes.count <= maxKeyLength else { throw .keyTooLong(keyBytes.count) }
        guard keyBytes.allSatisfy(isKeyCharacter) else {
            throw .invalidKeyCharacter(String(decoding: keyBytes, as: UTF8.self))
        }
        let key = String(decoding: keyBytes, as: UTF8.self)
        let limit = binaryKeys.contains(key) ? 2 + (maxBinaryValueBytes * 2) : maxValueLength
        guard valueBytes.count <= limit else { throw .valueTooLong(key: key, length: valueBytes.count) }
        guard let value = String(validating: valueBytes, as: UTF8.self) else { throw .invalidUTF8(key: key) }
        return Pair(key, value)
    }

    /// RFC 7143 §6.1: key names use letters, digits, `.`, `-`, `+`, `@`, `_`.
    static func isKeyCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"),
            UInt8(ascii: "+"), UInt8(ascii: "@"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}

/// Why a text data segment was refused. Each case is a peer's protocol error:
/// login answers it with an initiator-error status, never a crash.
public enum TextParameterError: Error, Sendable, Equatable {
    /// The whole text exceeds the bound.
    case textTooLong(Int)
    /// A pair has no `=`.
    case missingEquals(String)
    /// A pair starts with `=`.
    case emptyKey
    /// A key name above 63 bytes.
    case keyTooLong(Int)
    /// A key name outside the RFC 7143 §6.1 alphabet.
    case invalidKeyCharacter(String)
    /// A value above its bound.
    case valueTooLong(key: String, length: Int)
    /// A value that is not UTF-8.
    case invalidUTF8(key: String)
    /// The same key twice in one negotiation.
    case duplicateKey(String)
}

/// Binary value encodings of RFC 7143 §6.1 (`0x` hex, `0b` base64).
enum BinaryValue {
    /// Decodes `0x...` hex or `0b...` base64; nil when malformed or above `maxBytes`.
    static func decode(_ value: String, maxBytes: Int = TextParameters.maxBinaryValueBytes) -> [UInt8]? {
        let utf8 = Array(value.utf8)
        guard utf8.count > 2, utf8[0] == UInt8(ascii: "0") else { return nil }
        let body = utf8[2...]
        switch utf8[1] {
        case UInt8(ascii: "x"), UInt8(ascii: "X"):
            return decodeHex(body, maxBytes: maxBytes)
        case UInt8(ascii: "b"), UInt8(ascii: "B"):
            return decodeBase64(body, maxBytes: maxBytes)
        default:
            return nil
        }
    }

    /// Encodes as `0x` followed by lowercase hex.
    static func encodeHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexNibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func decodeHex(_ body: ArraySlice<UInt8>, maxBytes: Int) -> [UInt8]? {
        // RFC 7143 §6.1: a hex constant may have an odd number of digits (leading nibble).
        let count = (body.count + 1) / 2
        guard count <= maxBytes else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var index = body.startIndex
        if body.count % 2 == 1 {
            guard let low = hexNibble(body[index]) else { return nil }
            out.append(low)
            index += 1
        }
        while index < body.endIndex {
            guard let high = hexNibble(body[index]), let low = hexNibble(body[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func base64Value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    private static func decodeBase64(_ body: ArraySlice<UInt8>, maxBytes: Int) -> [UInt8]? {
        var symbols = body[...]
        while symbols.last == UInt8(ascii: "=") { symbols = symbols.dropLast() }
        guard body.count - symbols.count <= 2, symbols.count % 4 != 1 else { return nil }
        guard symbols.count * 3 / 4 <= maxBytes else { return nil }
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for c in symbols {
            guard let v = base64Value(c) else { return nil }
            accumulator = ((accumulator << 6) | UInt32(v)) & 0xffffff
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }
}
