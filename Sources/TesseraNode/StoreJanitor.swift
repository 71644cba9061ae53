import Logging
import MetadataStore

/// Keeps the store's bookkeeping from growing without end: once an hour
/// (the first time a minute after start) it forgets the request ids of
/// changes applied more than a day ago. A request id exists so that a
/// client's retry of a change whose answer was lost changes nothing; such a
/// retry comes within seconds (tessera retries at once, on the next node),
/// not a day later. Every node runs it; the statement is the same and
/// harmless twice.
enum StoreJanitor {
    /// How long an applied request id is remembered.
    static let requestRetention: UInt64 = 86_400
    static let firstRun: Duration = .seconds(60)
    static let interval: Duration = .seconds(3600)

    static func run(client: MetadataStoreClient, logger: Logger) async {
        try? await Task.sleep(for: firstRun)
        while !Task.isCancelled {
            do {
                let pruned = try await StoreRepository(client).pruneAppliedRequests(olderThan: requestRetention)
                if pruned > 0 {
                    logger.info("store: forgot old request ids", metadata: ["count": "\(pruned)", "older-than": "1 day"])
                }
            } catch {
                logger.debug("store: pruning request ids failed; tried again in an hour", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
