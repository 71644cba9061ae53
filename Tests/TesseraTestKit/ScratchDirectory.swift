import Foundation

/// A fresh directory for one test, removed with everything in it afterwards.
public final class ScratchDirectory: @unchecked Sendable {
    public let path: String

    /// Where scratch directories go: `/tmp`, tmpfs (`/dev/shm`), or `/work`
    /// (the package's `.build`, ext4/overlay).
    public enum Place: String, CaseIterable, Sendable {
        case tmp, shm, work
        public var root: String {
            switch self {
            case .tmp: "/tmp"
            case .shm: "/dev/shm"
            case .work:
                URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build")
                    .standardized.path
            }
        }
    }

    public init(_ place: Place = .tmp) {
        path = "\(place.root)/tessera-scratch-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A path inside the directory.
    public func file(_ name: String = "lun.img") -> String { "\(path)/\(name)" }
}
