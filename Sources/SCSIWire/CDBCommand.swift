/// A parsed CDB: what the initiator asked for, with every field range-free
/// checks done (reserved bits, unsupported options). Range checks against the
/// logical unit's capacity happen in the executor.
public enum CDBCommand: Hashable, Sendable {
    /// TEST UNIT READY (SPC-4 §6.47).
    case testUnitReady
    /// INQUIRY (SPC-4 §6.6).
    case inquiry(Inquiry)
    /// REPORT LUNS (SPC-4 §6.33).
    case reportLUNs(selectReport: UInt8, allocationLength: UInt32)
    /// REQUEST SENSE (SPC-4 §6.39).
    case requestSense(descriptorFormat: Bool, allocationLength: UInt8)
    /// READ CAPACITY (10) (SBC-3 §5.15).
    case readCapacity10
    /// READ CAPACITY (16) (SBC-3 §5.16).
    case readCapacity16(allocationLength: UInt32)
    /// READ (6/10/12/16) (SBC-3 §5.8-5.11).
    case read(BlockTransfer)
    /// WRITE (6/10/12/16) (SBC-3 §5.32-5.35).
    case write(BlockTransfer)
    /// VERIFY (10/12/16) (SBC-3 §5.29-5.31).
    case verify(Verify)
    /// WRITE AND VERIFY (10/12/16) (SBC-3 §5.37-5.39).
    case writeAndVerify(Verify)
    /// SYNCHRONIZE CACHE (10/16) (SBC-3 §5.22-5.23).
    case synchronizeCache(BlockRange, immediate: Bool)
    /// PRE-FETCH (10/16) (SBC-3 §5.6-5.7).
    case prefetch(BlockRange, immediate: Bool)
    /// MODE SENSE (6/10) (SPC-4 §6.13-6.14).
    case modeSense(ModeSense)
    /// MODE SELECT (6/10) (SPC-4 §6.11-6.12).
    case modeSelect(ModeSelect)
    /// START STOP UNIT (SBC-3 §5.25).
    case startStopUnit(immediate: Bool, powerCondition: UInt8, loadEject: Bool, start: Bool)
    /// PREVENT ALLOW MEDIUM REMOVAL (SBC-3 §5.5).
    case preventAllowMediumRemoval(prevent: UInt8)
    /// REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35).
    case reportSupportedOperationCodes(ReportSupportedOperationCodes)
    /// WRITE SAME (10/16) (SBC-3 §5.41-5.42).
    case writeSame(WriteSame)
    /// UNMAP (SBC-3 §5.28).
    case unmap(parameterListLength: UInt16)
    /// RESERVE(6)/(10) (SPC-2 §7.21-7.22), logical unit scope.
    case reserve
    /// RELEASE(6)/(10) (SPC-2 §7.16-7.17).
    case release
    /// COMPARE AND WRITE (SBC-3 §5.2); `transferLength` is NUMBER OF LOGICAL BLOCKS.
    case compareAndWrite(BlockTransfer)
    /// PERSISTENT RESERVE IN (SPC-4 §6.15).
    case persistentReserveIn(PersistentReserveInAction, allocationLength: UInt16)
    /// PERSISTENT RESERVE OUT (SPC-4 §6.16).
    case persistentReserveOut(PersistentReserveOut)
    /// ORWRITE (16) (SBC-3 §5.4): OR the Data-Out into the medium.
    case orWrite(BlockTransfer)
    /// WRITE ATOMIC (16) (SBC-4 §5.48).
    case writeAtomic(BlockTransfer)
    /// READ DEFECT DATA (10)/(12) (SBC-3 §5.12-5.13).
    case readDefectData(ReadDefectData)
    /// SANITIZE (SBC-3 §5.21).
    case sanitize(Sanitize)
    /// GET LBA STATUS (SBC-3 §5.5).
    case getLBAStatus(lba: UInt64, allocationLength: UInt32)
    /// EXTENDED COPY (LID1) (SPC-4 §6.3).
    case extendedCopy(parameterListLength: UInt32)
    /// RECEIVE COPY RESULTS (LID1) (SPC-4 §6.18).
    case receiveCopyResults(ReceiveCopyResultsAction, listIdentifier: UInt8, allocationLength: UInt32)
    /// REPORT TARGET PORT GROUPS (SPC-4 §6.37).
    case reportTargetPortGroups(ReportTargetPortGroups)

    /// Byte counts the command moves, given the logical block length. Used by
    /// transports to compute residuals (SAM-5 §5.4.3, SPDTL).
    public func dataTransfer(blockSize: UInt32) -> DataTransfer {
        let bs = UInt64(blockSize)
        switch self {
        case .testUnitReady, .readCapacity10, .synchronizeCache, .prefetch, .startStopUnit, .preventAllowMediumRemoval,
            .reserve, .release:
            return readCapacityOrNone(self)
        case .inquiry(let c): return .dataIn(UInt64(c.allocationLength))
        case .reportLUNs(_, let n): return .dataIn(UInt64(n))
        case .requestSense(_, let n): return .dataIn(UInt64(n))
        case .readCapacity16(let n): return .dataIn(UInt64(n))
        case .read(let t): return .dataIn(UInt64(t.transferLength) * bs)
        case .write(let t): return .dataOut(UInt64(t.transferLength) * bs)
        case .verify(let v):
            switch v.byteCheck {
            case 0: return .none
            case 3: return .dataOut(v.verificationLength == 0 ? 0 : bs)
            default: return .dataOut(UInt64(v.verificationLength) * bs)
            }
        case .writeAndVerify(let v): return .dataOut(UInt64(v.verificationLength) * bs)
        case .modeSense(let m): return .dataIn(UInt64(m.allocationLength))
        case .modeSelect(let m): return .dataOut(UInt64(m.parameterListLength))
        case .reportSupportedOperationCodes(let r): return .dataIn(UInt64(r.allocationLength))
        case .writeSame(let w): return .dataOut(w.noDataOut ? 0 : bs)
        case .unmap(let n): return .dataOut(UInt64(n))
        case .compareAndWrite(let t): return .dataOut(2 * UInt64(t.transferLength) * bs)
        case .persistentReserveIn(_, let n): return .dataIn(UInt64(n))
        case .persistentReserveOut(let p): return .dataOut(UInt64(p.parameterListLength))
        case .orWrite(let t), .writeAtomic(let t): return .dataOut(UInt64(t.transferLength) * bs)
        case .readDefectData(let r): return .dataIn(UInt64(r.allocationLength))
        case .sanitize(let s): return .dataOut(UInt64(s.parameterListLength))
        case .getLBAStatus(_, let n): return .dataIn(UInt64(n))
        case .extendedCopy(let n): return .dataOut(UInt64(n))
        case .receiveCopyResults(_, _, let n): return .dataIn(UInt64(n))
        case .reportTargetPortGroups(let r): return .dataIn(UInt64(r.allocationLength))
        }
    }

    /// Whether the command reads or writes the medium (a failed SANITIZE blocks these).
    public var accessesMedium: Bool {
        switch self {
        case .read, .write, .verify, .writeAndVerify, .writeSame, .unmap, .compareAndWrite, .orWrite, .writeAtomic,
            .prefetch, .getLBAStatus, .extendedCopy:
            return true
        default:
            return false
        }
    }

    private func readCapacityOrNone(_ c: CDBCommand) -> DataTransfer {
        if case .readCapacity10 = c { return .dataIn(8) }
        return .none
    }
}

/// Direction and size of a command's data transfer.
public enum DataTransfer: Hashable, Sendable {
    /// No data phase.
    case none
    /// Target to initiator, at most this many bytes.
    case dataIn(UInt64)
    /// Initiator to target, exactly this many bytes.
    case dataOut(UInt64)
}

/// INQUIRY CDB fields.
public struct Inquiry: Hashable, Sendable {
    /// EVPD: return the vital product data page `pageCode`.
    public var evpd: Bool
    public var pageCode: UInt8
    public var allocationLength: UInt16
}

/// A range of logical blocks as a CDB names it.
public struct BlockRange: Hashable, Sendable {
    public var lba: UInt64
    /// Number of logical blocks; 0 means "none" (or "to the end" for SYNCHRONIZE CACHE / PRE-FETCH).
    public var blockCount: UInt32
}

/// READ/WRITE CDB fields.
public struct BlockTransfer: Hashable, Sendable {
    public var lba: UInt64
    /// Number of logical blocks (READ(6)/WRITE(6) 0 already turned into 256: SBC-3 §5.8).
    public var transferLength: UInt32
    /// Disable page out.
    public var dpo: Bool
    /// Force unit access.
    public var fua: Bool
}

/// VERIFY / WRITE AND VERIFY CDB fields.
public struct Verify: Hashable, Sendable {
    public var lba: UInt64
    public var verificationLength: UInt32
    /// BYTCHK (SBC-3 §5.29): 0 medium check, 1 compare, 3 compare one block against each.
    public var byteCheck: UInt8
    public var dpo: Bool
}

/// MODE SENSE (6/10) CDB fields.
public struct ModeSense: Hashable, Sendable {
    /// MODE SENSE(10) (longer header) vs (6).
    public var ten: Bool
    /// Disable block descriptors.
    public var dbd: Bool
    /// Long LBA block descriptor accepted (MODE SENSE(10) only).
    public var llbaa: Bool
    /// Page control: 0 current, 1 changeable, 2 default, 3 saved.
    public var pageControl: UInt8
    public var pageCode: UInt8
    public var subpageCode: UInt8
    public var allocationLength: UInt16
}

/// MODE SELECT (6/10) CDB fields.
public struct ModeSelect: Hashable, Sendable {
    public var ten: Bool
    /// Page format.
    public var pf: Bool
    /// Save pages.
    public var sp: Bool
    public var parameterListLength: UInt16
}

/// REPORT SUPPORTED OPERATION CODES CDB fields.
public struct ReportSupportedOperationCodes: Hashable, Sendable {
    /// Return command timeouts descriptors.
    public var rctd: Bool
    /// REPORTING OPTIONS: 0 all, 1 opcode, 2 opcode+SA, 3 opcode with or without SA.
    public var reportingOptions: UInt8
    public var requestedOperationCode: UInt8
    public var requestedServiceAction: UInt16
    public var allocationLength: UInt32
}

/// WRITE SAME CDB fields.
public struct WriteSame: Hashable, Sendable {
    public var lba: UInt64
    /// Blocks to write; 0 means "to the end of the medium" (SBC-3 §5.42) when allowed.
    public var blockCount: UInt32
    /// Deallocate the range (UNMAP bit).
    public var unmap: Bool
    /// ANCHOR bit.
    public var anchor: Bool
    /// NDOB (WRITE SAME(16) only): no Data-Out buffer, write zeros.
    public var noDataOut: Bool
}

/// READ DEFECT DATA CDB fields.
public struct ReadDefectData: Hashable, Sendable {
    /// READ DEFECT DATA (12) (32-bit allocation length) vs (10).
    public var twelve: Bool
    /// REQ_PLIST: the primary defect list is requested.
    public var requestPrimary: Bool
    /// REQ_GLIST: the grown defect list is requested.
    public var requestGrown: Bool
    /// DEFECT LIST FORMAT.
    public var format: UInt8
    public var allocationLength: UInt32
}

/// SANITIZE service actions (SBC-3 §5.21.1, table 88). CRYPTOGRAPHIC ERASE
/// (03h) is not offered: the medium is not encrypted.
public enum SanitizeAction: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case overwrite = 0x01
    case blockErase = 0x02
    case exitFailureMode = 0x1F

    public var description: String {
        switch self {
        case .overwrite: "OVERWRITE"
        case .blockErase: "BLOCK ERASE"
        case .exitFailureMode: "EXIT FAILURE MODE"
        }
    }
}

/// SANITIZE CDB fields.
public struct Sanitize: Hashable, Sendable {
    public var serviceAction: SanitizeAction
    /// IMMED: return status before the sanitize completes.
    public var immediate: Bool
    /// AUSE: allow EXIT FAILURE MODE after a failure.
    public var allowUnrestrictedExit: Bool
    public var parameterListLength: UInt16
}

/// RECEIVE COPY RESULTS service actions, LID1 (SPC-4 §6.18.1, table 215).
public enum ReceiveCopyResultsAction: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case copyStatus = 0x00
    case receiveData = 0x01
    case operatingParameters = 0x03
    case failedSegmentDetails = 0x04

    public var description: String {
        switch self {
        case .copyStatus: "COPY STATUS"
        case .receiveData: "RECEIVE DATA"
        case .operatingParameters: "OPERATING PARAMETERS"
        case .failedSegmentDetails: "FAILED SEGMENT DETAILS"
        }
    }
}
