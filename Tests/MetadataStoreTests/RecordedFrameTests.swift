import NIOCore
import Testing
@testable import MetadataStore

/// Frames recorded from a real libdqlite 1.11.1 node (request sent, response
/// received, hex), decoded into typed values and re-encoded byte for byte.
@Suite("Recorded dqlite frames")
struct RecordedFrameTests {
    struct Exchange: Sendable, CustomTestStringConvertible {
        var line: Int
        var requestHex: String
        var request: DqliteRequest
        var responseHex: String
        var response: DqliteResponse
        var testDescription: String { "line \(line)" }
    }

    static let exchanges: [Exchange] = [
        Exchange(
            line: #line, requestHex: "01000000000000000000000000000000", request: .leader,
            responseHex: "030000000100000001000000000000003132372e302e302e313a323938373100",
            response: .server(id: 1, address: "127.0.0.1:29871")),
        Exchange(
            line: #line, requestHex: "01000000010000002a00000000000000", request: .client(id: 42),
            responseHex: "0100000002000000983a000000000000", response: .welcome(heartbeatTimeout: 15000)),
        Exchange(
            line: #line,
            requestHex: "040000000300000072656300000000000000000000000000766f6c6174696c650000000000000000",
            request: .open(name: "rec", flags: 0, vfs: "volatile"),
            responseHex: "01000000040000000000000000000000", response: .db(id: 0)),
        Exchange(
            line: #line,
            requestHex: "08000000080000000000000000000000435245415445205441424c45207420286920494e54454745522c207320544558542c206220424c4f422c2066205245414c2c206e29000000",
            request: .execSQL(dbID: 0, sql: "CREATE TABLE t (i INTEGER, s TEXT, b BLOB, f REAL, n)", parameters: []),
            responseHex: "020000000600000000000000000000000000000000000000",
            response: .result(lastInsertID: 0, rowsAffected: 0)),
        Exchange(
            line: #line,
            requestHex: "0d000000080000000000000000000000494e5345525420494e544f20742056414c55455320283f2c203f2c203f2c203f2c203f29000000000501030402050000f9ffffffffffffff68690000000000000300000000000000010203000000000000000000000004400000000000000000",
            request: .execSQL(
                dbID: 0, sql: "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                parameters: [.integer(-7), .text("hi"), .blob([1, 2, 3]), .float(2.5), .null]),
            responseHex: "020000000600000001000000000000000100000000000000",
            response: .result(lastInsertID: 1, rowsAffected: 1)),
        Exchange(
            line: #line,
            requestHex: "0500000009000000000000000000000053454c45435420692c20732c20622c20662c206e2046524f4d20740000000000",
            request: .querySQL(dbID: 0, sql: "SELECT i, s, b, f, n FROM t", parameters: []),
            responseHex: "0e00000007000000050000000000000069000000000000007300000000000000620000000000000066000000000000006e000000000000003124050000000000f9ffffffffffffff68690000000000000300000000000000010203000000000000000000000004400000000000000000ffffffffffffffff",
            response: .rows(
                DqliteRowsPart(
                    columns: ["i", "s", "b", "f", "n"],
                    rows: [[.integer(-7), .text("hi"), .blob([1, 2, 3]), .float(2.5), .null]], hasMore: false))),
        Exchange(
            line: #line, requestHex: "01000000100000000100000000000000", request: .cluster(format: 1),
            responseHex: "0500000003000000010000000000000001000000000000003132372e302e302e313a3239383731000000000000000000",
            response: .servers([DqliteNodeInfo(id: 1, address: "127.0.0.1:29871", role: 0)])),
        Exchange(
            line: #line, requestHex: "01000000120000000000000000000000", request: .describe(format: 0),
            responseHex: "020000000a00000000000000000000000000000000000000",
            response: .metadata(failureDomain: 0, weight: 0)),
        Exchange(
            line: #line, requestHex: "0300000008000000000000000000000053454c4543206e6f6e73656e73650000",
            request: .execSQL(dbID: 0, sql: "SELEC nonsense", parameters: []),
            responseHex: "050000000000000001000000000000006e656172202253454c4543223a2073796e746178206572726f72000000000000",
            response: .failure(code: 1, message: "near \"SELEC\": syntax error")),
        Exchange(
            line: #line, requestHex: "030000000c00000001000000000000003132372e302e302e313a323938373200",
            request: .add(id: 1, address: "127.0.0.1:29872"),
            responseHex: "0500000000000000010000000000000073657276657220494420616c726561647920696e207573650000000000000000",
            response: .failure(code: 1, message: "server ID already in use")),
    ]

    @Test(arguments: exchanges)
    func requestEncodesToRecordedBytes(_ exchange: Exchange) throws {
        var out = ByteBuffer()
        try exchange.request.encode(into: &out)
        #expect(Array(out.readableBytesView) == bytes(exchange.requestHex))
        var input = ByteBuffer(bytes: bytes(exchange.requestHex))
        let frame = try #require(try DqliteFrame.decode(from: &input))
        #expect(try DqliteRequest(frame: frame) == exchange.request)
        #expect(input.readableBytes == 0)
    }

    @Test(arguments: exchanges)
    func responseDecodesFromRecordedBytes(_ exchange: Exchange) throws {
        var input = ByteBuffer(bytes: bytes(exchange.responseHex))
        let frame = try #require(try DqliteFrame.decode(from: &input))
        #expect(try DqliteResponse(frame: frame) == exchange.response)
        var out = ByteBuffer()
        exchange.response.frame().encode(into: &out)
        #expect(Array(out.readableBytesView) == bytes(exchange.responseHex))
    }

    /// Drip-feed: one byte at a time, the decoder yields nothing until the
    /// frame is whole and leaves the reader index alone meanwhile.
    @Test(arguments: exchanges)
    func dripFedResponseDecodes(_ exchange: Exchange) throws {
        let all = bytes(exchange.responseHex)
        var buffer = ByteBuffer()
        for (i, byte) in all.enumerated() {
            buffer.writeInteger(byte)
            let before = buffer.readerIndex
            let frame = try DqliteFrame.decode(from: &buffer)
            if i < all.count - 1 {
                #expect(frame == nil)
                #expect(buffer.readerIndex == before)
            } else {
                let frame = try #require(frame)
                #expect(try DqliteResponse(frame: frame) == exchange.response)
            }
        }
    }
}

func bytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16) ?? 0)
        index = next
    }
    return out
}
