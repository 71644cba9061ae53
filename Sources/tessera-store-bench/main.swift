// tessera-store-bench: commit latency and failover time of the metadata store
// on a local 3-node dqlite cluster (all nodes in this process, 127.0.0.1).
// Usage: tessera-store-bench [--writes N] [--kills K] [--nodes 3]
// Multi-process modes used by Tools/bench/store-kill9.sh (see Modes.swift):
//   node | leader | writer | verify | write-once
import ClusterModel
import Foundation
import Logging
import MetadataStore

func argument(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return value }
    return v
}

func percentile(_ sorted: [Duration], _ p: Double) -> Duration {
    guard !sorted.isEmpty else { return .zero }
    let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
    return sorted[index]
}

func ms(_ d: Duration) -> String {
    let (s, atto) = d.components
    return String(format: "%.3f ms", Double(s) * 1000 + Double(atto) / 1e15)
}

func string(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}

let mode = CommandLine.arguments.count > 1 && !CommandLine.arguments[1].hasPrefix("--") ? CommandLine.arguments[1] : "bench"
switch mode {
case "node": try await runNode()
case "leader": try await printLeader()
case "writer": try await runWriter()
case "verify": try await verify()
case "write-once": try await writeOnce()
default: try await runBench()
}

func runBench() async throws {
    let writes = argument("--writes", default: 2000)
    let kills = argument("--kills", default: 10)
    let nodeCount = argument("--nodes", default: 3)
    let basePort = argument("--base-port", default: 29500 + Int(getpid() % 200) * 5)


    let root = NSTemporaryDirectory() + "tessera-store-bench-\(getpid())"
    let configurations: [DqliteNodeConfiguration] = (1...nodeCount).map { i in
        DqliteNodeConfiguration(
            id: NodeID(UInt64(i)), address: NodeAddress(host: "127.0.0.1", port: basePort + i), dataDirectory: "\(root)/node\(i)")
    }
    var nodes: [NodeID: DqliteNode] = [:]
    for configuration in configurations {
        let node = try DqliteNode(configuration)
        try node.start()
        nodes[configuration.id] = node
    }
    let client = MetadataStoreClient(.init(seeds: configurations.map(\.address), retryDeadline: .seconds(30)))
    for configuration in configurations.dropFirst() {
        try await client.join(id: configuration.id, address: configuration.address)
    }
    try await Migrator.migrate(client)
    try await client.exec("CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    print("cluster: \(try await client.members().map { "\($0.id)=\($0.role)" }.joined(separator: " "))")

    let clock = ContinuousClock()
    var plain: [Duration] = []
    var idempotent: [Duration] = []
    let payload = String(repeating: "p", count: 64)
    for i in 0..<writes {
        let start = clock.now
        try await client.exec("INSERT INTO bench (id, payload) VALUES (?, ?)", [.integer(Int64(i)), .text(payload)])
        plain.append(clock.now - start)
    }
    for i in 0..<writes {
        let start = clock.now
        _ = try await client.mutate(requestID: RequestID("bench-\(i)")) { tx in
            try await tx.exec("INSERT INTO bench (id, payload) VALUES (?, ?)", [.integer(Int64(writes + i)), .text(payload)])
        }
        idempotent.append(clock.now - start)
    }
    plain.sort()
    idempotent.sort()
    print("commit latency, single-row INSERT (\(writes) writes): p50 \(ms(percentile(plain, 0.5))) p99 \(ms(percentile(plain, 0.99))) max \(ms(plain.last ?? .zero))")
    print("commit latency, idempotent mutate BEGIN/check/INSERT/record/COMMIT (\(writes) writes): p50 \(ms(percentile(idempotent, 0.5))) p99 \(ms(percentile(idempotent, 0.99))) max \(ms(idempotent.last ?? .zero))")

    // Failover: stop the leader, time until a write commits on a new leader, restart it.
    var failovers: [Duration] = []
    var acknowledged = 2 * writes
    for k in 0..<kills {
        let leader = try await client.leader().id
        let stoppedAt = clock.now
        await nodes[leader]?.stop()
        nodes[leader] = nil
        let rowID = Int64(acknowledged)
        _ = try await client.mutate(requestID: RequestID("failover-\(k)")) { tx in
            try await tx.exec("INSERT INTO bench (id, payload) VALUES (?, ?)", [.integer(rowID), .text(payload)])
        }
        acknowledged += 1
        let took = clock.now - stoppedAt
        failovers.append(took)
        let newLeader = try await client.leader().id
        print("kill \(k + 1): leader \(leader) stopped, new leader \(newLeader), first commit after \(ms(took))")
        if let configuration = configurations.first(where: { $0.id == leader }) {
            let node = try DqliteNode(configuration)
            try node.start()
            nodes[leader] = node
        }
        try await Task.sleep(for: .milliseconds(500))
    }
    let count = try await client.query("SELECT count(*) AS c FROM bench")[0].int64("c")
    failovers.sort()
    if !failovers.isEmpty {
        print("failover (\(failovers.count) leader stops): p50 \(ms(percentile(failovers, 0.5))) max \(ms(failovers.last ?? .zero))")
    }
    print("rows acknowledged \(acknowledged), rows present \(count): \(count == Int64(acknowledged) ? "OK" : "MISMATCH")")
    await client.close()
    for node in nodes.values { await node.stop() }
    try? FileManager.default.removeItem(atPath: root)
}
