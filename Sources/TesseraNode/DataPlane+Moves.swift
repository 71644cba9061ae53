import ClusterModel
import DistributedLUN
import Logging
import MetadataStore
import Synchronization

/// The node drains and adds planned in the store, as this node last read them.
struct NodeChanges: Sendable {
    /// Every planned replica move.
    var moves: [StoreRepository.StoredMove] = []
    /// The members being drained: no new replica goes to them.
    var draining: Set<NodeID> = []
}

extension DataPlane {
    /// Reads the planned moves and the drains; keeps the last reading when the store cannot answer.
    func readNodeChanges(_ client: MetadataStoreClient) async -> NodeChanges {
        let repository = StoreRepository(client)
        guard let moves = try? await repository.replicaMoves(), let drains = try? await repository.drains() else {
            return nodeChanges.withLock { $0 }
        }
        let changes = NodeChanges(moves: moves, draining: Set(drains.keys))
        nodeChanges.withLock { $0 = changes }
        return changes
    }

    /// Whether a planned move of a sub-unit this node is primary of has a
    /// step to take now (a move waiting on a copy or on an away node does
    /// not keep the rounds running: the copy has its own trigger).
    func leadsPlannedMove(isLive: (NodeID) -> Bool) -> Bool {
        let moves = nodeChanges.withLock { $0.moves }
        guard !moves.isEmpty else { return false }
        let maps = Dictionary(maps.map { ($0.lun, $0) }, uniquingKeysWith: { first, _ in first })
        return moves.contains { stored in
            guard let lun = lunID(stored.key), let map = maps[lun], Int(stored.move.index) < map.subUnits.count else {
                return false
            }
            let set = map.subUnits[Int(stored.move.index)]
            return set.primary == replicaNode.id && MovePlan.step(stored.move, in: set, isLive: isLive) != .wait
        }
    }

    /// Carries out the next step of every planned move of the sub-units this
    /// node leads (``ReplicaNode/carryOut(_:of:isLive:)``), logs each step
    /// and forgets the moves that are over. A move of a LUN no node serves
    /// any more is forgotten too.
    func carryOutMoves(
        _ changes: NodeChanges, client: MetadataStoreClient, isLive: @escaping @Sendable (NodeID) -> Bool, logger: Logger
    ) async {
        guard !changes.moves.isEmpty else { return }
        let repository = StoreRepository(client)
        let servedKeys = Set(units.map { LUNKey(targetIQN: $0.targetName, lun: UInt64($0.lun.id)) })
        var finished: [StoreRepository.StoredMove] = []
        for (key, stored) in Dictionary(grouping: changes.moves, by: \.key) {
            guard let lun = lunID(key) else {
                if !servedKeys.contains(key), (try? await repository.lun(key)) == .some(nil) { finished += stored }
                continue
            }
            let outcomes = await replicaNode.carryOut(stored.map(\.move), of: lun, isLive: isLive)
            for entry in stored {
                guard let outcome = outcomes[entry.move] else { continue }
                let fields: Logger.Metadata = [
                    "lun": "\(key)", "sub-unit": "\(entry.move.index)", "from": "\(entry.move.from)", "to": "\(entry.move.to)",
                ]
                switch outcome {
                case .done: finished.append(entry)
                case .waiting: break
                case .added: logger.notice("replica move: new replica added; a full copy follows", metadata: fields)
                case .handedOver: logger.notice("replica move: the new replica is primary now", metadata: fields)
                case .dropped: logger.notice("replica move: the old replica left the sub-unit", metadata: fields)
                }
            }
        }
        for entry in finished { try? await repository.finishMove(entry) }
    }
}
