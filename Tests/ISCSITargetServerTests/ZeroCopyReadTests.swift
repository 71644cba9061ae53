import AIOBlockStorage
import BlockStorage
import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import NIOEmbedded
import SCSITarget
import TesseraTestKit
import Testing

@testable import ISCSITargetServer

/// A READ's Data-In is the memory the device filled: the bytes a host reads
/// are exactly the bytes the device returned, split at every
/// MaxRecvDataSegmentLength the other tests negotiate, with lengths that are
/// and are not a multiple of the segment, for a memory, a page-cache file and
/// a distributed LUN. The Data-In segments (and the encoder's frames) must
/// point into the device's buffer, which must stay aligned for O_DIRECT, or,
/// for the file's reads over 64 KiB, into the page cache the device lent.
@Suite("Zero-copy READ Data-In", .timeLimit(.minutes(1)))
struct ZeroCopyReadTests {
    static let target = "iqn.2026-01.test:zerocopy"
    /// Every MaxRecvDataSegmentLength the session, negotiation and login tests use.
    static let segmentLengths = [512, 1024, 3000, 8192, 16384, 65536, 131072, 262144]

    /// One READ(10): `blocks` from `lba`, with ExpectedDataTransferLength `blocks * 512 + edtlDelta`.
    struct Read: CustomTestStringConvertible {
        var line: Int
        var lba: UInt32
        var blocks: UInt16
        var edtlDelta: Int = 0
        var testDescription: String {
            "line \(line): \(blocks) blocks at \(lba), EDTL \(edtlDelta >= 0 ? "+" : "")\(edtlDelta)"
        }
    }

    static let reads: [Read] = [
        Read(line: #line, lba: 0, blocks: 1),
        Read(line: #line, lba: 3, blocks: 7),
        Read(line: #line, lba: 8, blocks: 8),
        Read(line: #line, lba: 60, blocks: 13),  // crosses a sub-unit boundary on the distributed LUN
        Read(line: #line, lba: 1, blocks: 129),
        Read(line: #line, lba: 0, blocks: 384),  // every sub-unit: more than one Data-In below 262144
        Read(line: #line, lba: 5, blocks: 9, edtlDelta: -700),  // residual overflow: the data is cut at EDTL
        Read(line: #line, lba: 5, blocks: 9, edtlDelta: 1000),  // residual underflow
    ]

    enum Backing: CaseIterable { case local, file, distributed }

    @Test(arguments: Backing.allCases, segmentLengths)
    func dataInIsTheDevicesBuffer(backing: Backing, segmentLength: Int) async throws {
        let (device, keepAlive) = try await Self.device(backing)
        let unit = LogicalUnit(
            configuration: LogicalUnitConfiguration(serial: "ZC0001", identifier: 0x2C), device: device)
        let channel = try await Self.channel(SCSITargetDevice(logicalUnits: [0: unit]))
        var cmdSN = try await Self.login(channel, maxRecvDataSegmentLength: segmentLength)
        cmdSN = try await Self.clearUnitAttention(channel, cmdSN: cmdSN)
        try await Self.readAll(channel, device: device, keepAlive: keepAlive, segmentLength: segmentLength, cmdSN: cmdSN) {
            #expect($0.address % UInt(IOBuffer.defaultAlignment) == 0 || $0.lent, "\($1.testDescription)")
            // The file lends exactly the reads it cannot copy on the loop.
            #expect($0.lent == (backing == .file && $1.blocks > 128), "\($1.testDescription)")
        }
        try await channel.close()
        _ = keepAlive
    }

    /// With a data digest the transport reads the Data-In itself (CRC32C), so
    /// a file's pages are not lent: the device fills the connection's buffer.
    @Test func aDataDigestConnectionIsNotLentFilePages() async throws {
        let (device, keepAlive) = try await Self.device(.file)
        let unit = LogicalUnit(
            configuration: LogicalUnitConfiguration(serial: "ZC0002", identifier: 0x2D), device: device)
        let channel = try await Self.channel(SCSITargetDevice(logicalUnits: [0: unit]))
        var cmdSN = try await Self.login(channel, maxRecvDataSegmentLength: 65536, dataDigest: true)
        cmdSN = try await Self.clearUnitAttention(channel, cmdSN: cmdSN)
        try await Self.readAll(channel, device: device, keepAlive: keepAlive, segmentLength: 65536, cmdSN: cmdSN) {
            #expect(!$0.lent, "\($1.testDescription)")
            #expect($0.address % UInt(IOBuffer.defaultAlignment) == 0, "\($1.testDescription)")
        }
        try await channel.close()
        _ = keepAlive
    }

    /// Runs every READ of ``reads``, checks its Data-In against the device's
    /// read and the medium, then hands the device's read to `check`.
    static func readAll(
        _ channel: NIOAsyncTestingChannel, device: RecordingBlockDevice, keepAlive: Backed, segmentLength: Int,
        cmdSN start: UInt32, check: (RecordingBlockDevice.FilledRead, Read) -> Void
    ) async throws {
        var cmdSN = start
        let encoder = ISCSIFrameEncoder()
        for (index, read) in Self.reads.enumerated() {
            let length = Int(read.blocks) * 512
            let edtl = length + read.edtlDelta
            let itt = UInt32(index + 1)
            try await channel.writeInbound(Self.read10(read, itt: itt, cmdSN: cmdSN, edtl: UInt32(edtl)))
            cmdSN &+= 1

            var received: [UInt8] = []
            var segments: [(offset: Int, address: UInt)] = []
            while true {
                guard case .dataIn(let pdu) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
                    throw TestFailure("\(read.testDescription): expected Data-In")
                }
                #expect(pdu.initiatorTaskTag == itt)
                #expect(Int(pdu.bufferOffset) == received.count, "\(read.testDescription)")
                #expect(pdu.dataSegment.readableBytes <= segmentLength, "\(read.testDescription)")
                #expect(pdu.dataSegment.readableBytes > 0, "\(read.testDescription)")
                let address = pdu.dataSegment.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
                segments.append((Int(pdu.bufferOffset), address))
                // The wire encoder sends the segment itself, not a copy of it.
                let frame = encoder.encodeFrame(.dataIn(pdu), allocator: ByteBufferAllocator())
                let framed = frame.data?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(framed == address, "\(read.testDescription)")
                received += pdu.dataSegment.readableBytesView
                if pdu.statusPresent {
                    #expect(pdu.status == 0)
                    #expect(pdu.residualOverflow == (edtl < length))
                    #expect(pdu.residualUnderflow == (edtl > length))
                    #expect(Int(pdu.residualCount) == abs(read.edtlDelta))
                    break
                }
            }

            let filled = try #require(device.reads.last, "\(read.testDescription): the device served no read")
            #expect(filled.lba == UInt64(read.lba) && filled.blockCount == UInt32(read.blocks))
            // O_DIRECT needs a filled buffer aligned; the transport's buffer must keep that.
            check(filled, read)
            // Exactly the device's bytes, cut at EDTL.
            #expect(received == Array(filled.bytes.prefix(edtl)), "\(read.testDescription)")
            #expect(received == Array(keepAlive.medium[Int(read.lba) * 512..<Int(read.lba) * 512 + min(edtl, length)]))
            // Every segment is the device's memory at its offset: no copy between device and wire.
            for segment in segments {
                #expect(
                    segment.address == filled.address + UInt(segment.offset),
                    "\(read.testDescription) at \(segment.offset)")
            }
        }
    }

    // MARK: - Fixture

    /// What the LUN holds and what must live as long as the test.
    struct Backed {
        var medium: [UInt8]
        var owner: AnyObject?
    }

    /// A 384-block LUN (six 64-block sub-units on the distributed one, two
    /// replicas over three nodes, read through node 1) holding seeded bytes.
    static func device(_ backing: Backing) async throws -> (RecordingBlockDevice, Backed) {
        var rng = SplitMix64(state: 0x2E60_C0B7)
        let medium = (0..<384 * 512).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let base: any BlockDevice
        var owner: AnyObject?
        switch backing {
        case .local:
            base = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 384))
        case .file:
            let directory = ScratchDirectory()
            base = try AIOFileBlockDevice(
                options: AIOFileBlockDevice.Options(
                    path: directory.file(), geometry: BlockGeometry(blockSize: 512, blockCount: 384),
                    directIO: .off),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            owner = directory
        case .distributed:
            let cluster = InProcessCluster(nodeCount: 3, subUnitBlocks: 64, subUnitCount: 6, replicas: 2)
            base = cluster.device(1)
            owner = cluster
        }
        try await base.write(lba: 0, blockCount: 384, from: IOBuffer(bytes: medium), offset: 0, fua: false)
        return (RecordingBlockDevice(base), Backed(medium: medium, owner: owner))
    }

    static func channel(_ executor: any SCSITaskExecutor) async throws -> NIOAsyncTestingChannel {
        let login = LoginConfiguration(targets: [TargetDescription(name: target)])
        let name = target.lowercased()
        let environment = ConnectionEnvironment(
            login: { login }, target: { $0 == name ? executor : nil }, portalGroupTag: 1, queueDepth: 32,
            nopInInterval: nil, nopInTimeout: .seconds(30), registry: SessionRegistry(), logger: Logger(label: "test"),
            limits: ISCSIServerLimits())
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            let handler = ISCSIConnectionHandler(environment: environment, frameHandler: ISCSIFrameHandler())
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260))
        return channel
    }

    /// Logs in with the initiator's MaxRecvDataSegmentLength; returns the next CmdSN.
    static func login(_ channel: NIOAsyncTestingChannel, maxRecvDataSegmentLength: Int, dataDigest: Bool = false)
        async throws -> UInt32
    {
        let keys = TinyInitiator.text([
            ("InitiatorName", "iqn.2026-01.test:host"), ("SessionType", "Normal"), ("TargetName", target),
            ("HeaderDigest", "None"), ("DataDigest", dataDigest ? "CRC32C" : "None"),
            ("MaxRecvDataSegmentLength", String(maxRecvDataSegmentLength)),
        ])
        let request = LoginRequestPDU(
            transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase,
            isid: 0x23D0_0000_0001, tsih: 0, initiatorTaskTag: 0, cid: 0, cmdSN: 1, expStatSN: 0, dataSegment: keys)
        try await channel.writeInbound(ISCSIInbound.pdu(.loginRequest(request)))
        guard case .loginResponse(let response) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self),
            response.statusClass == 0
        else { throw TestFailure("login failed") }
        return response.expCmdSN
    }

    /// TEST UNIT READY until GOOD: the first command after login reports the
    /// power-on UNIT ATTENTION (SAM-5 §5.14). Returns the next CmdSN.
    static func clearUnitAttention(_ channel: NIOAsyncTestingChannel, cmdSN: UInt32) async throws -> UInt32 {
        var cmdSN = cmdSN
        for attempt in 0..<3 {
            try await channel.writeInbound(
                ISCSIInbound.pdu(
                    .scsiCommand(
                        SCSICommandPDU(
                            immediate: false, final: true, read: false, write: false, attribute: 1, lun: 0,
                            initiatorTaskTag: 0x1000 + UInt32(attempt), expectedDataTransferLength: 0, cmdSN: cmdSN,
                            expStatSN: 1, cdb: [UInt8](repeating: 0, count: 16),
                            bidirectionalReadExpectedDataTransferLength: nil, dataSegment: ByteBuffer()))))
            cmdSN &+= 1
            guard case .scsiResponse(let response) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
                throw TestFailure("expected a SCSI Response to TEST UNIT READY")
            }
            if response.status == 0 { return cmdSN }
        }
        throw TestFailure("TEST UNIT READY never returned GOOD")
    }

    static func read10(_ read: Read, itt: UInt32, cmdSN: UInt32, edtl: UInt32) -> ISCSIInbound {
        var cdb = [UInt8](repeating: 0, count: 16)
        cdb[0] = 0x28
        for i in 0..<4 { cdb[2 + i] = UInt8(truncatingIfNeeded: read.lba >> (24 - 8 * i)) }
        cdb[7] = UInt8(read.blocks >> 8)
        cdb[8] = UInt8(truncatingIfNeeded: read.blocks)
        return .pdu(
            .scsiCommand(
                SCSICommandPDU(
                    immediate: false, final: true, read: true, write: false, attribute: 1, lun: 0,
                    initiatorTaskTag: itt,
                    expectedDataTransferLength: edtl, cmdSN: cmdSN, expStatSN: 1, cdb: cdb,
                    bidirectionalReadExpectedDataTransferLength: nil, dataSegment: ByteBuffer())))
    }
}
