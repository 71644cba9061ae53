import Foundation
import SCSIWire

/// Where a logical unit's shared SCSI context is kept: persistent
/// reservations, the SPC-2 reservation holder and mode page values.
///
/// A single node's ``InMemoryContextStore`` loads it once before the first
/// command and saves every change here before the change counts; a save that
/// throws fails the command with NOT READY, LOGICAL UNIT NOT ACCESSIBLE,
/// ASYMMETRIC ACCESS STATE TRANSITION (retryable) and leaves memory unchanged.
/// (A cluster keeps the context in the replicated store instead, through a
/// ``SharedContextStore``.)
///
/// Every persistent reservation change is saved, not only those made with
/// APTPL: in a cluster a node restart is not a power loss of the logical
/// unit (the LU stays up on the other nodes), so its context must survive the
/// node (``restoresAcrossNodeRestart``). A single-node store whose restart IS
/// the LU's power loss restores PR state only when APTPL was set (SPC-4
/// §5.13.5) and nothing else.
///
/// The implementation is ``FileReservationStateStore``.
public protocol ReservationStateStore: Sendable {
    /// Whether a node restart keeps the logical unit's context (a cluster: the
    /// LU lives on), so all saved state is restored; false restores only APTPL
    /// persistent reservations (the restart is the LU's power loss).
    var restoresAcrossNodeRestart: Bool { get }
    /// The saved state of `lun` (its serial number), nil when none was saved.
    func loadReservations(lun: String) async throws -> PersistentReservations?
    /// Replaces the saved state of `lun`; durable when the call returns.
    func saveReservations(_ state: PersistentReservations, lun: String) async throws
    /// Replaces the SPC-2 RESERVE holder of `lun` (nil: released); durable when the call returns.
    func saveSPC2Reservation(_ holder: NexusName?, lun: String) async throws
    /// Replaces the mode page values of `lun` (MODE SELECT); durable when the call returns.
    func saveModePages(_ values: ModePageValues, lun: String) async throws
    /// The saved mode page values of `lun`, nil when none were saved.
    func loadModePages(lun: String) async throws -> ModePageValues?
}

/// The logical unit context store under its general name.
public typealias LogicalUnitStateStore = ReservationStateStore

extension ReservationStateStore {
    /// Default: the node's restart is the logical unit's power loss.
    public var restoresAcrossNodeRestart: Bool { false }
    /// Default: SPC-2 reservations are not kept (a restart loses every nexus
    /// through this node, which releases them, SPC-2 §5.5.1).
    public func saveSPC2Reservation(_ holder: NexusName?, lun: String) async throws {}
    /// Default: mode page values are not kept.
    public func saveModePages(_ values: ModePageValues, lun: String) async throws {}
    /// Default: nothing saved.
    public func loadModePages(lun: String) async throws -> ModePageValues? { nil }
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
