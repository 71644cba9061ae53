import ISCSIWire
import NIOCore

/// What the connection handler must do after the session machine took an input.
/// Actions come in order; carry them out in that order.
public enum SessionAction: Sendable {
    /// Send this PDU to the initiator.
    case send(ISCSIPDU)
    /// Hand this command to the SCSI layer; report its end with
    /// ``SessionStateMachine/commandCompleted(taskID:initiatorTaskTag:_:now:into:)``.
    case execute(SessionCommand)
    /// A command arrived whose Data-Out is still to come: the task exists from
    /// now on (SAM-5 §5.1), so the SCSI layer can abort it before it runs. Its
    /// ``execute(_:)`` follows once the data is in (or never, if the session drops it).
    case taskArrived(initiatorTaskTag: UInt32, lun: UInt64)
    /// Run a task management function in the SCSI layer; report its end with
    /// ``SessionStateMachine/taskManagementCompleted(initiatorTaskTag:response:into:)``.
    case taskManagement(SessionTaskManagementRequest)
    /// Answer a Text Request in full feature phase (the login part's
    /// TextNegotiator); pass the answer to ``SessionStateMachine/textResponse(_:into:)``.
    case text(TextRequestPDU)
    /// Close the connection once everything sent before this action is written.
    case close(SessionCloseReason)
}

/// Why the session machine closes the connection.
public enum SessionCloseReason: Sendable, Equatable {
    /// The initiator logged out (RFC 7143 §11.14).
    case logout
    /// The initiator broke the protocol; at ErrorRecoveryLevel 0 the connection ends (RFC 7143 §7.1.4).
    case protocolError(String)
    /// A NOP-In ping went unanswered for the configured timeout.
    case nopTimeout
    /// TARGET COLD RESET: the connection closes after the response (RFC 7143 §11.5.1).
    case targetColdReset
}

/// A piece of write data received for a task, at its byte offset.
public struct DataOutSegment: Sendable, Equatable {
    /// Offset of `bytes` in the task's data buffer.
    public var offset: Int
    /// The received bytes (a slice of the receive buffer, not copied).
    public var bytes: ByteBuffer

    public init(offset: Int, bytes: ByteBuffer) {
        self.offset = offset
        self.bytes = bytes
    }
}

/// A SCSI command ready for the SCSI layer: in CmdSN order (or immediate) and
/// with all its write data.
public struct SessionCommand: Sendable, Equatable {
    /// Identifies this execution; pass it back with the completion.
    public var taskID: UInt64
    /// The initiator's task tag (RFC 7143 §11.3.4).
    public var initiatorTaskTag: UInt32
    /// The 8-byte LUN field as sent.
    public var lun: UInt64
    /// The CDB, opaque to iSCSI.
    public var cdb: [UInt8]
    /// ATTR field (RFC 7143 §11.3.1): 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA.
    public var attribute: UInt8
    /// ExpectedDataTransferLength (RFC 7143 §11.3.5).
    public var expectedDataTransferLength: UInt32
    /// R bit.
    public var read: Bool
    /// W bit.
    public var write: Bool
    /// Write data pieces; together they cover `0..<dataOutLength` without overlap.
    public var dataOut: [DataOutSegment]
    /// Total write bytes received.
    public var dataOutLength: Int
}

/// The end of a SCSI command, as the SCSI layer reports it.
public struct SessionCommandResult: Sendable {
    /// SCSI status byte (SAM-5 §5.3).
    public var status: UInt8
    /// Sense data when the status is CHECK CONDITION.
    public var sense: [UInt8]
    /// Data for the initiator; its readable bytes are the data the command produced.
    public var dataIn: ByteBuffer?
    /// Bytes the command wanted to move in its write direction, when known
    /// (for write residuals, RFC 7143 §11.4.5.2); nil: no residual is reported.
    public var writeTransferLength: Int?
    /// The SCSI layer aborted the task: no response is sent.
    public var aborted: Bool

    public init(status: UInt8, sense: [UInt8] = [], dataIn: ByteBuffer? = nil, writeTransferLength: Int? = nil, aborted: Bool = false) {
        self.status = status
        self.sense = sense
        self.dataIn = dataIn
        self.writeTransferLength = writeTransferLength
        self.aborted = aborted
    }
}

/// Task management function codes (RFC 7143 §11.5.1).
public enum TaskManagementFunctionCode: UInt8, Sendable {
    /// ABORT TASK.
    case abortTask = 1
    /// ABORT TASK SET.
    case abortTaskSet = 2
    /// CLEAR ACA.
    case clearACA = 3
    /// CLEAR TASK SET.
    case clearTaskSet = 4
    /// LOGICAL UNIT RESET.
    case logicalUnitReset = 5
    /// TARGET WARM RESET.
    case targetWarmReset = 6
    /// TARGET COLD RESET.
    case targetColdReset = 7
    /// TASK REASSIGN (ERL 2 only).
    case taskReassign = 8
}

/// Task management response codes (RFC 7143 §11.6.1).
public enum TaskManagementResponseCode: UInt8, Sendable {
    /// Function complete.
    case functionComplete = 0
    /// Task does not exist.
    case taskDoesNotExist = 1
    /// LUN does not exist.
    case lunDoesNotExist = 2
    /// Task still allegiant.
    case taskStillAllegiant = 3
    /// Task allegiance reassignment not supported.
    case taskAllegianceReassignmentNotSupported = 4
    /// Task management function not supported.
    case functionNotSupported = 5
    /// Function authorization failed.
    case functionAuthorizationFailed = 6
    /// Function rejected.
    case functionRejected = 255
}

/// A task management function for the SCSI layer to run.
public struct SessionTaskManagementRequest: Sendable, Equatable {
    /// Tag of the TMF request; the response carries it.
    public var initiatorTaskTag: UInt32
    /// Which function.
    public var function: TaskManagementFunctionCode
    /// The LUN field of the request.
    public var lun: UInt64
    /// For ABORT TASK: the task to abort.
    public var referencedTaskTag: UInt32
}
