import Foundation

/// A fresh directory under the system's temporary directory, removed with
/// everything in it when the object goes.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "tessera-test") throws {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
