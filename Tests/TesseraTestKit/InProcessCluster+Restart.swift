import BlockStorage
import ClusterModel
import DistributedLUN

extension InProcessCluster {
    /// Node `id` after a crash and a restart: a new ``ReplicaNode`` over the
    /// same extents, the same activity log record and the same way to the
    /// store, attached with the map the store holds now and receiving the
    /// node's peer requests from now on. Everything the old node kept in
    /// memory is gone; whatever it was running must be stopped by the test
    /// (it still sends as `id`). `wrap` puts a device of the test's around
    /// each extent (the bytes stay in ``extents``). Returns the node and its device.
    public func restart(
        _ id: UInt64, resyncRate: UInt64? = nil, sleep: @escaping @Sendable (Duration) async -> Void = { _ in },
        wrap: (MemoryBlockDevice) -> any BlockDevice = { $0 }
    ) async -> (node: ReplicaNode, device: DistributedBlockDevice) {
        let node = NodeID(id)
        let restarted = ReplicaNode(
            id: node, transport: network.transport(from: node), mapSource: views[node]!, resyncRate: resyncRate,
            resyncRetryPause: .zero, sleep: sleep)
        let map = await store.loadMap(initialMap.lun)!
        let mine = (extents[node] ?? [:]).mapValues { wrap($0) }
        let device = restarted.attach(map: map, extents: mine, activityLog: activityStores[node])
        network.register(node, restarted)
        return (restarted, device)
    }
}
