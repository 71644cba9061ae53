import Foundation

/// Where a logical unit's persistent reservation state is kept when an
/// initiator asks for it to survive a power loss (APTPL, SPC-4 §5.13.5).
///
/// ``LogicalUnit`` loads it once before the first command and saves the whole
/// state after every PERSISTENT RESERVE OUT that changes it while APTPL is (or
/// was) active; a saved state with `aptpl == false` means "nothing persists".
/// The single-node implementation is ``FileReservationStateStore``; the
/// replicated store implements the same two calls.
public protocol ReservationStateStore: Sendable {
    /// The saved state of `lun` (its serial number), nil when none was saved.
    func loadReservations(lun: String) async throws -> PersistentReservations?
    /// Replaces the saved state of `lun`; durable when the call returns.
    func saveReservations(_ state: PersistentReservations, lun: String) async throws
}

/// ``ReservationStateStore`` as one JSON file per logical unit in a
/// directory (the node's data dir): written to a temporary file, fsynced,
/// renamed over the old one and the directory fsynced, so a crash (kill -9,
/// power loss) leaves either the old or the new state, never a torn one.
public struct FileReservationStateStore: ReservationStateStore {
    /// The directory holding `pr-<lun>.json` files.
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    func path(_ lun: String) -> String {
        let safe = String(lun.unicodeScalars.map { c -> Character in
            CharacterSet.alphanumerics.contains(c) || c == "-" || c == "_" ? Character(c) : "_"
        })
        return directory + "/pr-" + safe + ".json"
    }

    public func loadReservations(lun: String) async throws -> PersistentReservations? {
        guard let data = FileManager.default.contents(atPath: path(lun)) else { return nil }
        return try JSONDecoder().decode(PersistentReservations.self, from: data)
    }

    public func saveReservations(_ state: PersistentReservations, lun: String) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = try JSONEncoder().encode(state)
        let final = path(lun)
        let temporary = final + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var ok = data.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            var done = 0
            while done < raw.count {
                let n = write(fd, base + done, raw.count - done)
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, final) == 0 else { throw POSIXError(.EIO) }
        let dir = open(directory, O_RDONLY)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
