import NIOCore
import NIOEmbedded
import Testing
@testable import MetadataStore

/// Pure codec and policy tables.
@Suite("dqlite codec")
struct CodecTests {
    static let requests: [DqliteRequest] = [
        .leader, .client(id: 7), .open(name: "tessera", flags: 0, vfs: "volatile"),
        .execSQL(dbID: 0, sql: "", parameters: []),
        .execSQL(dbID: 3, sql: "INSERT INTO x VALUES (?,?,?,?,?,?,?,?,?)", parameters: [
            .integer(.min), .integer(.max), .text(""), .text("1234567"), .blob([]), .blob(Array(0..<8)),
            .boolean(true), .unixTime(1_700_000_000), .iso8601("2026-11-22T00:00:00Z"),
        ]),
        .querySQL(dbID: 1, sql: "SELECT 1", parameters: [.null]),
        .interrupt(dbID: 2), .add(id: 9, address: "127.0.0.1:9001"), .assign(id: 9, role: 1),
        .remove(id: 9), .cluster(format: 1), .transfer(id: 0), .describe(format: 0),
    ]

    @Test(arguments: requests)
    func requestRoundTrip(_ request: DqliteRequest) throws {
        var out = ByteBuffer()
        try request.encode(into: &out)
        #expect(out.readableBytes % 8 == 0)
        let frame = try #require(try DqliteFrame.decode(from: &out))
        #expect(try DqliteRequest(frame: frame) == request)
    }

    static let responses: [DqliteResponse] = [
        .failure(code: 10250, message: "not leader"), .server(id: 0, address: ""), .welcome(heartbeatTimeout: 1),
        .servers([]), .servers([.init(id: 1, address: "a:1", role: 0), .init(id: 2, address: "b:2", role: 1)]),
        .db(id: 5), .result(lastInsertID: 1, rowsAffected: 2),
        .rows(.init(columns: ["a"], rows: [], hasMore: false)),
        .rows(.init(columns: Array(repeating: "c", count: 17), rows: [Array(repeating: .integer(1), count: 17)], hasMore: true)),
        .rows(.init(columns: ["x", "y", "z"], rows: [[.null, .boolean(false), .float(-0.5)], [.text("t"), .blob([9]), .iso8601("d")]], hasMore: false)),
        .empty, .metadata(failureDomain: 3, weight: 4),
    ]

    @Test(arguments: responses)
    func responseRoundTrip(_ response: DqliteResponse) throws {
        var out = ByteBuffer()
        response.frame().encode(into: &out)
        let frame = try #require(try DqliteFrame.decode(from: &out))
        #expect(try DqliteResponse(frame: frame) == response)
    }

    /// Hostile frames become typed errors, never crashes.
    @Test(arguments: [
        (#line, "0000000063000000", DqliteWireError.Code.unknownMessageType(0x63)),
        (#line, "01000000000000000100000000000000", .unterminatedText),
        (#line, "0100000001000000ffffffffffffffff", .unterminatedText),
        (#line, "020000000000000001000000000000006162636465666768", .unterminatedText),
        (#line, "0400000007000000010000000000000061000000000000000f00000000000000ffffffffffffffff", .unknownValueType(0x0f)),
        (#line, "02000000030000000000000100000000ffffffffffffffff", .truncated),
        (#line, "ffffffff07000000", .frameTooLarge(words: 0xffff_ffff)),
    ])
    func hostileResponses(_ line: Int, _ hex: String, _ expected: DqliteWireError.Code) {
        var buffer = ByteBuffer(bytes: bytes(hex))
        do {
            guard let frame = try DqliteFrame.decode(from: &buffer) else {
                Issue.record("line \(line): incomplete frame")
                return
            }
            _ = try DqliteResponse(frame: frame)
            Issue.record("line \(line): decoded")
        } catch {
            #expect(error.code == expected, "line \(line)")
        }
    }

    /// The handler merges ROWS batches into one answer and fails what is
    /// pending when the connection closes.
    @Test func handlerMergesMultiPartRows() async throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DqliteFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(DqliteClientHandler())
        try await channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).get()
        var version = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(version.readInteger(endianness: .little, as: UInt64.self) == 1)

        let promise = channel.eventLoop.makePromise(of: DqliteResponse.self)
        var request = ByteBuffer()
        try DqliteRequest.querySQL(dbID: 0, sql: "SELECT", parameters: []).encode(into: &request)
        try channel.writeOutbound(DqlitePendingRequest(bytes: request, expectsRows: true, promise: promise))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == request)

        for (values, more) in [([1, 2], true), ([3], true), ([4], false)] {
            var wire = ByteBuffer()
            DqliteResponse.rows(.init(columns: ["v"], rows: values.map { [.integer(Int64($0))] }, hasMore: more))
                .frame().encode(into: &wire)
            // Drip-feed each batch.
            for byte in wire.readableBytesView { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        }
        let merged = try await promise.futureResult.get()
        #expect(merged == .rows(.init(columns: ["v"], rows: [[1], [2], [3], [4]], hasMore: false)))

        let orphan = channel.eventLoop.makePromise(of: DqliteResponse.self)
        try channel.writeOutbound(DqlitePendingRequest(bytes: request, expectsRows: true, promise: orphan))
        try await channel.close().get()
        await #expect(throws: DqliteConnectionError.closed) { try await orphan.futureResult.get() }
    }

    @Test(arguments: [
        (#line, UInt64(10250), "not leader", RetryDecision.reconnectAndRetry),
        (#line, 10506, "leadership lost", .reconnectAndRetry),
        (#line, 1, "server is not the leader", .reconnectAndRetry),
        (#line, 5, "database is locked", .retry),
        (#line, 517, "busy snapshot", .retry),
        (#line, 1, "a configuration change is already in progress", .retry),
        (#line, 19, "UNIQUE constraint failed", .fail),
        (#line, 1, "near \"SELEC\": syntax error", .fail),
        (#line, 2067, "UNIQUE constraint failed: t.id", .fail),
    ])
    func retryTable(_ line: Int, _ code: UInt64, _ message: String, _ expected: RetryDecision) {
        #expect(DqliteFailureCode.decision(code: code, message: message) == expected, "line \(line)")
    }

    @Test func transportErrorsReconnect() {
        #expect(DqliteFailureCode.decision(for: DqliteConnectionError.closed) == .reconnectAndRetry)
        #expect(DqliteFailureCode.decision(for: DqliteConnectionError.timedOut) == .reconnectAndRetry)
        #expect(DqliteFailureCode.decision(for: DqliteWireError(.truncated)) == .reconnectAndRetry)
        #expect(DqliteFailureCode.decision(for: IOError(errnoCode: 104, reason: "read")) == .reconnectAndRetry)
        #expect(DqliteFailureCode.decision(for: ChannelError.ioOnClosedChannel) == .reconnectAndRetry)
        #expect(DqliteFailureCode.decision(for: MetadataStoreError(.decoding("x"))) == .fail)
    }

    @Test func backoffDoublesUpToTheCap() {
        var backoff = Backoff(initial: .milliseconds(5), maximum: .milliseconds(40))
        let delays = (0..<6).map { _ in backoff.next(unit: 1) }
        #expect(delays == [.milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(40), .milliseconds(40)])
    }
}
