import ClusterModel
import Logging
import MetadataStore

/// Forming the cluster before serving: a new LUN is placed over the members
/// once every member the configuration names has registered, so its
/// sub-units spread over all of them instead of landing on whichever node
/// started first.
extension ClusterNode {
    /// How long a node waits for the members named in `join` to register
    /// before it places new LUNs over the members it has (degraded).
    static let formationDeadline: Duration = .seconds(90)

    /// Waits until `expected` members have registered in the store (each
    /// registers in the same transaction as its seed, so every seed has
    /// landed), or until ``formationDeadline``. Returns the members.
    func awaitFormation(expected: Int) async throws -> [MemberRecord] {
        let clock = ContinuousClock()
        let deadline = clock.now + Self.formationDeadline
        var logged = false
        while true {
            let members = try await duringStartup("members") { try await StoreRepository(client).members() }
            if members.count >= expected { return members }
            if clock.now >= deadline {
                logger.warning(
                    "cluster formation: only \(members.count) of \(expected) members registered after \(Self.formationDeadline); new LUNs are placed over these and stay degraded",
                    metadata: ["members": "\(members.map { "\($0.nodeID.rawValue)" }.joined(separator: ","))"])
                return members
            }
            if !logged {
                logger.notice(
                    "cluster formation: waiting for the members named in cluster.join to register",
                    metadata: ["registered": "\(members.count)", "expected": "\(expected)"])
                logged = true
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Places every LUN that has no sub-unit map yet over `members`, each in
    /// its own transaction that checks again first (several nodes may try at
    /// once; one wins, the others find its map). Returns every LUN's map.
    func ensureSubUnitMaps(_ luns: [LUNRecord], members: [MemberRecord]) async throws -> [LUNKey: SubUnitMap] {
        let candidates = members.map { Placement.Candidate(node: $0.nodeID) }
        var maps: [LUNKey: SubUnitMap] = [:]
        for lun in luns {
            guard let options = StoredLUNOptions.decode(lun.backing), lun.blockSize > 0 else { continue }
            let subUnitBytes = options.subUnitBytes ?? LUNConfiguration.defaultSubUnitSize
            let replicas = options.replicas ?? 1
            let layout = SubUnitLayout(
                blockSize: lun.blockSize, blockCount: lun.sizeBytes / UInt64(lun.blockSize),
                subUnitBlocks: subUnitBytes / UInt64(lun.blockSize))
            let id = Self.lunID(lun)
            let key = lun.key
            let (map, created) = try await duringStartup("place \(key)") {
                try await client.transaction { tx in
                    let repository = StoreRepository(tx)
                    if let existing = try await repository.subUnitMap(key) { return (existing, false) }
                    let map = Placement.place(lun: id, layout: layout, replicationFactor: replicas, over: candidates)
                    try await repository.createSubUnitMap(key, map, subUnitBytes: subUnitBytes)
                    return (map, true)
                }
            }
            if created {
                let primaries = Dictionary(grouping: map.subUnits, by: \.primary).mapValues(\.count)
                logger.notice(
                    "LUN placed",
                    metadata: [
                        "lun": "\(key)", "sub-units": "\(map.subUnits.count)", "replicas": "\(replicas)",
                        "primaries": "\(primaries.sorted { $0.key < $1.key }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ","))",
                    ])
            }
            if map.isDegraded {
                logger.warning(
                    "LUN is DEGRADED: \(map.degradedSubUnits.count) of \(map.subUnits.count) sub-units have fewer than \(map.replicationFactor) replicas (too few members when it was placed)",
                    metadata: ["lun": "\(key)"])
            }
            maps[key] = map
        }
        return maps
    }

    /// The LUN's cluster-wide id: its NAA identifier's 64 bits.
    static func lunID(_ lun: LUNRecord) -> LUNID {
        LUNID(lun.naaID.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}
