import ClusterAuth
import ClusterModel
import Foundation
import MetadataStore

/// Seeds from --seeds "127.0.0.1:1,127.0.0.1:2".
func seeds() -> [NodeAddress] {
    (string("--seeds") ?? "").split(separator: ",").compactMap { NodeAddress(parsing: String($0)) }
}

/// --secret-file FILE: the cluster secret, for a store whose port asks for it (tesserad's).
func secret() -> ClusterSecret? {
    guard let path = string("--secret-file") else { return nil }
    do {
        return try ClusterSecret.load(path: path)
    } catch {
        print("\(error)")
        exit(2)
    }
}

func storeClient(deadline: Duration = .seconds(30)) -> MetadataStoreClient {
    MetadataStoreClient(.init(seeds: seeds(), requestTimeout: .seconds(1), retryDeadline: deadline, secret: secret()))
}

/// node --id N --address H:P --data DIR [--join H:P]: one dqlite node in this
/// process until killed. Joins through --join (idempotently) when given.
func runNode() async throws {
    guard let address = string("--address").flatMap(NodeAddress.init(parsing:)), let data = string("--data") else {
        print("node needs --id --address --data")
        exit(2)
    }
    let id = NodeID(UInt64(argument("--id", default: 1)))
    let node = try DqliteNode(DqliteNodeConfiguration(id: id, address: address, dataDirectory: data))
    try node.start()
    if let join = string("--join").flatMap(NodeAddress.init(parsing:)) {
        let client = MetadataStoreClient(.init(seeds: [join, address], retryDeadline: .seconds(60)))
        let role = try await client.join(id: id, address: address)
        say("node \(id) joined as \(role)")
        await client.close()
    }
    say("node \(id) ready on \(address)")
    while true { try await Task.sleep(for: .seconds(3600)) }
}

/// leader --seeds …: prints the leader's node id.
func printLeader() async throws {
    let client = storeClient(deadline: .seconds(10))
    print(try await client.leader().id.rawValue)
    await client.close()
}

/// writer --seeds … --log FILE [--prefix P]: idempotent single-row writes as
/// fast as possible; appends each acknowledged request id to FILE.
func runWriter() async throws {
    guard let path = string("--log") else { exit(2) }
    let prefix = string("--prefix") ?? "w"
    let client = storeClient(deadline: .seconds(60))
    try await Migrator.migrate(client)
    try await client.exec("CREATE TABLE IF NOT EXISTS kill9 (rid TEXT NOT NULL)")
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    guard let log = FileHandle(forWritingAtPath: path) else { exit(2) }
    var i = 0
    while true {
        let rid = "\(prefix)\(i)"
        _ = try await client.mutate(requestID: RequestID(rid)) { tx in
            try await tx.exec("INSERT INTO kill9 (rid) VALUES (?)", [.text(rid)])
        }
        log.write(Data((rid + "\n").utf8))
        i += 1
    }
}

/// verify --seeds … --log FILE: every acknowledged id present, none twice.
func verify() async throws {
    guard let path = string("--log"), let text = try? String(contentsOfFile: path, encoding: .utf8) else { exit(2) }
    let acknowledged = text.split(separator: "\n").map(String.init)
    let client = storeClient()
    let rows = try await client.query("SELECT rid, count(*) AS n FROM kill9 GROUP BY rid")
    var counts: [String: Int64] = [:]
    for row in rows { counts[try row.string("rid")] = try row.int64("n") }
    let missing = acknowledged.filter { counts[$0] == nil }
    let duplicated = counts.filter { $0.value > 1 }.map(\.key)
    print("acknowledged \(acknowledged.count), rows \(counts.values.reduce(0, +)), missing \(missing.count), duplicated \(duplicated.count)")
    await client.close()
    exit(missing.isEmpty && duplicated.isEmpty && !acknowledged.isEmpty ? 0 : 1)
}

/// write-once --seeds … [--deadline-ms N]: one idempotent write; exit 0 if it
/// committed within the deadline, 1 if the store refused (no quorum).
func writeOnce() async throws {
    let client = storeClient(deadline: .milliseconds(argument("--deadline-ms", default: 3000)))
    let start = ContinuousClock.now
    do {
        try await client.exec("CREATE TABLE IF NOT EXISTS probe (at INTEGER)")
        _ = try await client.mutate(requestID: .random()) { tx in
            try await tx.exec("INSERT INTO probe (at) VALUES (strftime('%s','now'))")
        }
        print("committed after \(ms(ContinuousClock.now - start))")
        exit(0)
    } catch {
        print("refused after \(ms(ContinuousClock.now - start)): \(error)")
        exit(1)
    }
}

/// Unbuffered line to stdout (the node mode never exits normally).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
