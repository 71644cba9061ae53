import BlockStorage
import SCSITarget
import SCSIWire

/// What the iSCSI server needs from the SCSI layer. ``SCSITargetDevice``
/// conforms; tests inject a fake that completes when they say so.
public protocol SCSITaskExecutor: AnyObject, Sendable {
    /// Runs one command to completion; failures come back as sense data.
    func execute(_ command: SCSICommand) async -> SCSIResponse
    /// Runs a task management function; returns once every affected task has ended.
    func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: ITNexus) async -> TaskManagementResult
    /// A new I_T nexus logged in.
    func nexusEstablished(_ nexus: ITNexus) async
    /// An I_T nexus went away (session closed or reinstated).
    func nexusLost(_ nexus: ITNexus) async
    /// Bytes the command's CDB asks the initiator to send (SAM-5 SPDTL of a
    /// data-out command), for write residuals (RFC 7143 §11.4.5.2); nil when unknown.
    func expectedWriteLength(for command: SCSICommand) -> Int?
    /// The most write data one command to `lun` can use (SBC-3 §6.6.4 MAXIMUM
    /// TRANSFER LENGTH, in bytes): a command asking for more fails whatever its
    /// data, so none is solicited; nil when unbounded or unknown.
    func maximumWriteLength(lun: UInt64) -> Int?
    /// A command arrived and waits for its Data-Out; ``execute(_:)`` follows
    /// when the data is in. Task management may abort it meanwhile.
    func taskArrived(nexus: ITNexus, taskTag: UInt32, lun: UInt64)
}

extension SCSITaskExecutor {
    /// Unknown by default: no write residual is reported.
    public func expectedWriteLength(for command: SCSICommand) -> Int? { nil }
    /// Unknown by default: the CDB's length is solicited.
    public func maximumWriteLength(lun: UInt64) -> Int? { nil }
    /// Nothing to record by default.
    public func taskArrived(nexus: ITNexus, taskTag: UInt32, lun: UInt64) {}
}

extension SCSITargetDevice: SCSITaskExecutor {
    public func taskArrived(nexus: ITNexus, taskTag: UInt32, lun: UInt64) {
        arrived(nexus: nexus, taskTag: taskTag, lun: lun)
    }

    public func maximumWriteLength(lun: UInt64) -> Int? {
        guard let number = LUNAddress.decode(lun), let unit = logicalUnit(number) else { return nil }
        return Int(unit.configuration.maximumTransferBytes)
    }

    public func expectedWriteLength(for command: SCSICommand) -> Int? {
        guard let transfer = expectedDataTransfer(for: command) else { return nil }
        switch transfer {
        case .dataOut(let length): return Int(clamping: length)
        case .none: return 0
        case .dataIn: return nil
        }
    }
}
