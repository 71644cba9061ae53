import AdminAPI
import Foundation
import Logging
import MetadataStore

/// One running resync as a node publishes it: which replica of which
/// sub-unit ("<sub-unit>@<node>"), and how far it is.
struct PublishedResync: Codable, Hashable, Sendable {
    var replica: String
    var progress: LUNStatus.ResyncProgress
}

/// Publishes this node's running resyncs in the store about once a second
/// while any runs (and once more when the last ends), so every node's admin
/// API shows every resync's progress, not only its own.
enum ResyncPublisher {
    static func follow(state: NodeAdminState, cluster: ClusterNode, logger: Logger) async {
        let repository = StoreRepository(cluster.client)
        var published: [PublishedResync]?
        while !Task.isCancelled {
            let current = state.localResyncs()
            if current != published, !(current.isEmpty && published == nil) {
                do {
                    try await repository.publishResyncs(cluster.id, json: AdminJSON.encode(current))
                    published = current
                } catch {
                    logger.debug("publishing the resyncs failed; tried again", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

extension NodeAdminState {
    /// The resyncs this node runs now, as it publishes them.
    func localResyncs() -> [PublishedResync] {
        let running = runtimeData?.resyncStatus.running.values.map { $0 } ?? []
        let now = ContinuousClock.now
        return running.map { p in
            PublishedResync(
                replica: "\(p.subUnit)@\(p.node.rawValue)",
                progress: LUNStatus.ResyncProgress(
                    percent: p.percent, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal,
                    bytesPerSecond: UInt64(max(0, p.rate(at: now)))))
        }.sorted { $0.replica < $1.replica }
    }

    /// Every resync's progress by replica: the other live nodes' as they
    /// published them (within the last 30 s), this node's as it is now.
    func resyncProgress(_ repository: StoreRepository) async -> [String: LUNStatus.ResyncProgress] {
        var progress: [String: LUNStatus.ResyncProgress] = [:]
        let now = UInt64(Date().timeIntervalSince1970)
        for entry in (try? await repository.publishedResyncs()) ?? [] where entry.node != cluster.id {
            guard now <= entry.publishedAt + 30, memberVerdict(entry.node) == "alive",
                let listed = try? AdminJSON.decoder.decode([PublishedResync].self, from: Data(entry.json.utf8))
            else { continue }
            for resync in listed { progress[resync.replica] = resync.progress }
        }
        for resync in localResyncs() { progress[resync.replica] = resync.progress }
        return progress
    }
}
