import NIOCore

/// dqlite's primitive field encodings: little-endian words, texts and blobs
/// padded to 8 bytes (dqlite doc/protocol.md "Data types").
extension ByteBuffer {
    static func dqlitePadding(_ length: Int) -> Int { (8 - length % 8) % 8 }

    mutating func writeDqliteUInt64(_ value: UInt64) {
        writeInteger(value, endianness: .little)
    }

    mutating func writeDqliteInt64(_ value: Int64) {
        writeInteger(value, endianness: .little)
    }

    /// UTF-8, a terminating zero, zeros up to the next word boundary.
    mutating func writeDqliteText(_ text: String) {
        let written = writeString(text) + writeInteger(UInt8(0))
        writeRepeatingByte(0, count: Self.dqlitePadding(written))
    }

    mutating func writeDqliteBlob(_ bytes: [UInt8]) {
        writeDqliteUInt64(UInt64(bytes.count))
        writeBytes(bytes)
        writeRepeatingByte(0, count: Self.dqlitePadding(bytes.count))
    }

    mutating func readDqliteUInt64() throws(DqliteWireError) -> UInt64 {
        guard let v = readInteger(endianness: .little, as: UInt64.self) else { throw DqliteWireError(.truncated) }
        return v
    }

    mutating func readDqliteInt64() throws(DqliteWireError) -> Int64 {
        guard let v = readInteger(endianness: .little, as: Int64.self) else { throw DqliteWireError(.truncated) }
        return v
    }

    mutating func readDqliteUInt32() throws(DqliteWireError) -> UInt32 {
        guard let v = readInteger(endianness: .little, as: UInt32.self) else { throw DqliteWireError(.truncated) }
        return v
    }

    mutating func readDqliteText() throws(DqliteWireError) -> String {
        guard let zero = readableBytesView.firstIndex(of: 0) else { throw DqliteWireError(.unterminatedText) }
        let length = zero - readableBytesView.startIndex
        let total = length + 1 + Self.dqlitePadding(length + 1)
        guard readableBytes >= total else { throw DqliteWireError(.truncated) }
        guard let bytes = readBytes(length: length) else { throw DqliteWireError(.truncated) }
        moveReaderIndex(forwardBy: total - length)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw DqliteWireError(.invalidUTF8) }
        return text
    }

    mutating func readDqliteBlob() throws(DqliteWireError) -> [UInt8] {
        let length = try readDqliteUInt64()
        guard length <= UInt64(readableBytes) else { throw DqliteWireError(.truncated) }
        let count = Int(length)
        guard let bytes = readBytes(length: count), readableBytes >= Self.dqlitePadding(count) else {
            throw DqliteWireError(.truncated)
        }
        moveReaderIndex(forwardBy: Self.dqlitePadding(count))
        return bytes
    }

    /// One value of a tuple, given its type code.
    mutating func readDqliteValue(type: UInt8) throws(DqliteWireError) -> DqliteValue {
        switch type {
        case 1: return .integer(try readDqliteInt64())
        case 2: return .float(Double(bitPattern: try readDqliteUInt64()))
        case 3: return .text(try readDqliteText())
        case 4: return .blob(try readDqliteBlob())
        case 5:
            _ = try readDqliteUInt64()
            return .null
        case 9: return .unixTime(try readDqliteInt64())
        case 10: return .iso8601(try readDqliteText())
        case 11: return .boolean(try readDqliteUInt64() != 0)
        default: throw DqliteWireError(.unknownValueType(type))
        }
    }

    mutating func writeDqliteValue(_ value: DqliteValue) {
        switch value {
        case .integer(let v), .unixTime(let v): writeDqliteInt64(v)
        case .float(let d): writeDqliteUInt64(d.bitPattern)
        case .text(let s), .iso8601(let s): writeDqliteText(s)
        case .blob(let b): writeDqliteBlob(b)
        case .null: writeDqliteUInt64(0)
        case .boolean(let b): writeDqliteUInt64(b ? 1 : 0)
        }
    }

    /// A parameter tuple (format TUPLE__PARAMS): count byte, one type byte per
    /// value, zeros to the word boundary, then the values.
    mutating func writeDqliteParameters(_ values: [DqliteValue]) throws(DqliteWireError) {
        // dqlite tuple.h: the short parameter format holds the count in 8 bits.
        guard values.count <= Int(UInt8.max) else { throw DqliteWireError(.valueOutOfRange("\(values.count) parameters")) }
        writeInteger(UInt8(values.count))
        for value in values { writeInteger(value.typeCode) }
        writeRepeatingByte(0, count: Self.dqlitePadding(values.count + 1))
        for value in values { writeDqliteValue(value) }
    }

    mutating func readDqliteParameters() throws(DqliteWireError) -> [DqliteValue] {
        guard let count = readInteger(as: UInt8.self) else { throw DqliteWireError(.truncated) }
        let headerRest = Int(count) + Self.dqlitePadding(Int(count) + 1)
        guard let header = readBytes(length: headerRest) else { throw DqliteWireError(.truncated) }
        var values: [DqliteValue] = []
        for i in 0..<Int(count) { values.append(try readDqliteValue(type: header[i])) }
        return values
    }

    /// A row tuple (format TUPLE__ROW): 4-bit type codes, first column in the
    /// low nibble, padded to a word, then the values.
    mutating func writeDqliteRow(_ values: [DqliteValue]) {
        let headerBytes = (values.count + 1) / 2
        var header = [UInt8](repeating: 0, count: headerBytes + Self.dqlitePadding(headerBytes))
        for (i, value) in values.enumerated() {
            header[i / 2] |= i % 2 == 0 ? value.typeCode : value.typeCode << 4
        }
        writeBytes(header)
        for value in values { writeDqliteValue(value) }
    }

    mutating func readDqliteRow(columns: Int) throws(DqliteWireError) -> [DqliteValue] {
        let headerBytes = (columns + 1) / 2
        guard let header = readBytes(length: headerBytes + Self.dqlitePadding(headerBytes)) else { throw DqliteWireError(.truncated) }
        var values: [DqliteValue] = []
        values.reserveCapacity(columns)
        for i in 0..<columns {
            let type = i % 2 == 0 ? header[i / 2] & 0x0f : header[i / 2] >> 4
            values.append(try readDqliteValue(type: type))
        }
        return values
    }
}
