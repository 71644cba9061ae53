import AdminAPI
import Synchronization
import Testing

@testable import TesseraCLI

/// `tessera node list|add|drain|undrain|remove`: parsing, the table, the progress, and `--wait`.
@Suite struct NodeCommandTests {
    static func status(_ id: UInt64, _ state: String, replicas: Int, movesOff: Int = 0, planned: Int? = nil) -> NodeStatus {
        NodeStatus(
            id: id, state: state, liveness: "alive", fenced: false, iscsiPortals: ["127.0.0.1:326\(id),\(id)"],
            replicas: replicas, primaries: 1, replicasNotInSync: 0, movesOff: movesOff, movesOn: 0,
            drain: planned.map { .init(requestedAt: 1, planned: $0, remaining: replicas) })
    }

    @Test func theTableShowsStateProgressAndHoldings() {
        let text = Render.nodes([Self.status(1, "active", replicas: 6), Self.status(3, "draining", replicas: 1, movesOff: 1, planned: 4)])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("NODE") && lines[0].contains("MOVES OFF"))
        #expect(lines[2].contains("draining 75.0%") && lines[2].contains("127.0.0.1:3263,3"), "\(lines[2])")
    }

    @Test func aBarOnATerminalAPercentOtherwise() {
        let s = Self.status(3, "draining", replicas: 2, movesOff: 2, planned: 4)
        #expect(Render.progress(s, percent: 50, width: 10) == "[#####.....] 50.0% node 3 draining: 2 replicas held, 2 moving off")
        #expect(Render.progress(s, percent: 50, width: 0) == "50.0% node 3 draining: 2 replicas held, 2 moving off")
        var filling = Self.status(4, "active", replicas: 1)
        filling.movesOn = 3
        filling.replicasNotInSync = 1
        #expect(Render.progress(filling, percent: nil, width: 0) == "node 4 active: 1 replica held (1 being copied), 3 moving on")
        #expect(Render.progress(s, percent: 250, width: 4).hasPrefix("[####] 100.0%"))
    }

    @Test func drainWaitPollsUntilDrained() async throws {
        let polls = PollCounter()
        let transport = ChangeTransport([
            "127.0.0.1:8081": { method, path in
                if method == "POST" {
                    return json(
                        NodeChangeOutcome(
                            node: 3, action: "drain", movesPlanned: 2, status: nil, message: "2 replicas are moving off node 3"),
                        status: 202)
                }
                let n = polls.next()
                return json(
                    n < 2
                        ? Self.status(3, "draining", replicas: 2 - n, movesOff: 2 - n, planned: 2)
                        : Self.status(3, "drained", replicas: 0, planned: 2))
            }
        ])
        let (status, out, err) = try await AccessCommandTests.run(["node", "drain", "3", "--wait"], transport: transport)
        #expect(status == 0, "\(err)")
        #expect(out.contains("node 3: drain (2 replica moves planned)"))
        #expect(
            out.contains("0.0% node 3 draining") && out.contains("50.0% node 3 draining")
                && out.contains("100.0% node 3 drained"), "\(out)")
        #expect(out.hasSuffix("node 3: drained, moves done\n"), "\(out)")
        let sent = transport.sent.withLock { $0.map { "\($0.method) \($0.path)" } }
        #expect(sent.first == "POST /v1/nodes/3/drain" && sent.dropFirst().allSatisfy { $0 == "GET /v1/nodes/3" }, "\(sent)")
    }

    @Test func resizeWaitPollsUntilEveryLiveNodeServesTheNewSize() async throws {
        let polls = PollCounter()
        let target = "iqn.2026-12.t:a"
        @Sendable func lun(_ sizes: [UInt64?]) -> LUNStatus {
            LUNStatus(
                target: target, lun: 0, sizeBytes: 128 << 20, blockSize: 512, serial: "TSR1", layout: nil, subUnits: [],
                served: sizes.enumerated().map { LUNStatus.Served(node: UInt64($0.offset + 1), sizeBytes: $0.element) })
        }
        let transport = ChangeTransport([
            "127.0.0.1:8081": { method, _ in
                if method == "PATCH" { return json(lun([])) }
                switch polls.next() {
                case 0: return json(lun([128 << 20, 64 << 20, 64 << 20]))
                case 1: return json(lun([128 << 20, 128 << 20, 64 << 20]))
                default: return json(lun([128 << 20, 128 << 20, 128 << 20]))
                }
            }
        ])
        let (status, out, err) = try await AccessCommandTests.run(["lun", "resize", "0", "128M", "--wait"], transport: transport)
        #expect(status == 0, "\(err)")
        #expect(out.contains("33.3% \(target) LUN 0 at 128 MiB: served by 1 of 3 nodes (2, 3 not yet)"), "\(out)")
        #expect(out.contains("66.7% \(target) LUN 0 at 128 MiB: served by 2 of 3 nodes (3 not yet)"), "\(out)")
        #expect(out.contains("100.0% \(target) LUN 0 at 128 MiB: served by 3 of 3 nodes\n"), "\(out)")
        let sent = transport.sent.withLock { $0.map { "\($0.method) \($0.path)" } }
        #expect(sent.first == "PATCH /v1/luns/0" && sent.count == 4 && sent.dropFirst().allSatisfy { $0 == "GET /v1/luns/0" }, "\(sent)")
    }

    @Test func resizeWaitGivesUpAfterItsTimeoutWithWhatIsBehind() async throws {
        let transport = ChangeTransport([
            "127.0.0.1:8081": { _, _ in
                json(
                    LUNStatus(
                        target: "iqn.2026-12.t:a", lun: 0, sizeBytes: 128 << 20, blockSize: 512, serial: "TSR1",
                        layout: nil, subUnits: [],
                        served: [.init(node: 1, sizeBytes: 128 << 20), .init(node: 2, sizeBytes: nil)]))
            }
        ])
        let (status, _, err) = try await AccessCommandTests.run(
            ["lun", "resize", "0", "128M", "--wait", "--timeout", "1"], transport: transport)
        #expect(status == 1)
        #expect(err.contains("served by 1 of 2 nodes (2 not yet) after 1 s"), "\(err)")
    }

    @Test func aRefusedRemovalExits1WithTheReason() async throws {
        let failure = AdminFailure(status: 409, error: "node 3 still holds 2 replicas", hint: "drain it first")
        let transport = ChangeTransport([
            "127.0.0.1:8081": { _, _ in HTTPAnswer(status: 409, body: Array(failure.response.body.utf8)) }
        ])
        let (status, _, err) = try await AccessCommandTests.run(["node", "remove", "3", "--yes"], transport: transport)
        #expect(status == 1)
        #expect(err.contains("node 3 still holds 2 replicas") && err.contains("drain it first"), "\(err)")
        #expect(transport.sent.withLock { $0.map { "\($0.method) \($0.path)" } } == ["DELETE /v1/nodes/3?confirm=yes"])
    }
}

/// Counts the status polls of a fake node.
final class PollCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int {
        count.withLock { count in
            defer { count += 1 }
            return count
        }
    }
}
