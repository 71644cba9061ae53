import BlockStorage
import SCSITarget

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
}

extension SCSITargetDevice: SCSITaskExecutor {}
