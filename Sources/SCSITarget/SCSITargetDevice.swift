import BlockStorage

/// PLACEHOLDER (the SCSI helper replaces this file): one SCSI target device
/// holding logical units, executing commands and task management.
public final class SCSITargetDevice: Sendable {
    public init() {}

    /// Runs one command to completion (never throws: failures become sense data).
    public func execute(_ command: SCSICommand) async -> SCSIResponse {
        SCSIResponse(status: .checkCondition, sense: [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0])
    }

    /// Runs a task management function; returns once every affected task has ended.
    public func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: ITNexus) async -> TaskManagementResult {
        .functionNotSupported
    }

    /// A new I_T nexus logged in.
    public func nexusEstablished(_ nexus: ITNexus) async {}

    /// An I_T nexus went away (session closed or reinstated).
    public func nexusLost(_ nexus: ITNexus) async {}
}
