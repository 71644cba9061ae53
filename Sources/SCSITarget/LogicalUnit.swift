import BlockStorage
import SCSIWire
import Synchronization

/// How a logical unit presents itself (INQUIRY, VPD pages, READ CAPACITY).
public struct LogicalUnitConfiguration: Sendable, Hashable {
    /// T10 vendor identification, 8 ASCII characters.
    public var vendor: String
    /// Product identification, 16 ASCII characters.
    public var product: String
    /// Product revision level, 4 ASCII characters.
    public var revision: String
    /// Unit serial number (VPD 0x80); identical on every node.
    public var serial: String
    /// The configured identifier the NAA-6 designator is derived from (its
    /// 64-bit VENDOR SPECIFIC IDENTIFIER EXTENSION).
    public var identifier: UInt64
    /// IEEE OUI of the NAA-6 designator.
    public var oui: UInt32
    /// 36-bit VENDOR SPECIFIC IDENTIFIER of the NAA-6 designator (e.g. a cluster id).
    public var vendorSpecificIdentifier: UInt64
    /// Writes fail with DATA PROTECT / WRITE PROTECTED.
    public var writeProtected: Bool
    /// Thin provisioned: UNMAP and WRITE SAME with UNMAP are offered (needs a device that supports unmap).
    public var thin: Bool
    /// MAXIMUM TRANSFER LENGTH in bytes (VPD B0); larger READ/WRITE → INVALID FIELD IN CDB.
    public var maximumTransferBytes: UInt32
    /// Physical block size reported by READ CAPACITY(16) (SBC-3 §5.16.2); nil = one logical block.
    public var physicalBlockSize: UInt32? = nil

    public init(
        vendor: String = "TESSERA", product: String = "Tessera LUN", revision: String = "0001", serial: String,
        identifier: UInt64, oui: UInt32 = 0x001405, vendorSpecificIdentifier: UInt64 = 0,
        writeProtected: Bool = false, thin: Bool = true, maximumTransferBytes: UInt32 = 8 << 20
    ) {
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.serial = serial
        self.identifier = identifier
        self.oui = oui
        self.vendorSpecificIdentifier = vendorSpecificIdentifier
        self.writeProtected = writeProtected
        self.thin = thin
        self.maximumTransferBytes = maximumTransferBytes
    }

    /// The 16-byte NAA IEEE Registered Extended designator (SPC-4 §7.8.6.6.3).
    public var naaIdentifier: [UInt8] {
        InquiryIdentity.naa6(oui: oui, vendorSpecific: vendorSpecificIdentifier, extension: identifier)
    }
}

/// One SCSI logical unit: a block device, how it presents itself, and its
/// shared context. Commands reach it through ``SCSITargetDevice``.
public final class LogicalUnit: Sendable {
    public let configuration: LogicalUnitConfiguration
    public let device: any BlockDevice
    /// The device when it can lend cached blocks instead of copying them (decided once, not per READ).
    let lender: (any MappedReadableBlockDevice)?
    public let context: any LogicalUnitContext
    let identity: InquiryIdentity
    let limits: BlockLimits
    /// The device's geometry now: a LUN grown online reports its new
    /// capacity from the next command on (SBC-3 §5.16 READ CAPACITY).
    var geometry: BlockGeometry { device.geometry }
    /// Thin provisioning as offered: configured and supported by the device.
    let thin: Bool
    /// Maximum blocks in one READ/WRITE/VERIFY.
    let maximumTransferBlocks: UInt32
    /// Shared by ordinary medium commands, exclusive for the atomic ones.
    let mediumLock = AsyncSharedLock()
    /// SANITIZE runs in the background: while it does, medium commands get NOT READY,
    /// SANITIZE IN PROGRESS (SBC-3 §4.11.2); a failure leaves the unit in failure mode.
    let sanitizeState = Mutex<(running: Bool, failed: Bool)>((false, false))
    /// SANITIZE OVERWRITE rate (bytes per second): a background sanitize must not
    /// starve the disk the other logical units share.
    public static let sanitizeBytesPerSecond = 32 << 20
    /// Whether a SANITIZE is running.
    public var sanitizeInProgress: Bool { sanitizeState.withLock { $0.running } }
    /// The commands this unit offers (REPORT SUPPORTED OPERATION CODES agrees
    /// with dispatch): the thin-provisioning ones only on a thin unit. Fixed at init.
    let offeredCommands: [CommandDescriptor]
    /// Commands, bytes and latency of this unit since it was opened (the `/metrics` figures).
    public let statistics = LUNStatistics()

    public init(
        configuration: LogicalUnitConfiguration, device: any BlockDevice,
        context: (any LogicalUnitContext)? = nil, reservationStore: (any ReservationStateStore)? = nil
    ) {
        self.configuration = configuration
        self.device = device
        self.lender = device as? any MappedReadableBlockDevice
        // Without a given context: this node's own, saving persistent reservations in `reservationStore`.
        self.context =
            context ?? SharedLogicalUnitContext(reservationStore: reservationStore, key: configuration.serial)
        self.thin = configuration.thin && device.supportsUnmap
        self.offeredCommands =
            thin
            ? CommandDescriptor.all
            : CommandDescriptor.all.filter { d in
                !(d.opcode == 0x42 || (d.opcode == 0x9E && d.serviceAction == 0x12)
                    || (d.opcode == 0x48 && d.serviceAction == UInt16(SanitizeAction.blockErase.rawValue)))
            }
        self.identity = InquiryIdentity(
            vendor: configuration.vendor, product: configuration.product, revision: configuration.revision,
            serial: configuration.serial, naaIdentifier: configuration.naaIdentifier,
            // SPC-4 §6.6.2, §5.16.2.7: TPGS 01b, implicit asymmetric access only (no SET TARGET PORT GROUPS).
            tpgs: 0b01)
        let blockSize = max(device.geometry.blockSize, 1)
        self.maximumTransferBlocks = max(1, configuration.maximumTransferBytes / blockSize)
        var limits = BlockLimits(
            maximumTransferLength: maximumTransferBlocks,
            optimalTransferLength: min(maximumTransferBlocks, (1 << 20) / blockSize),
            maximumUnmapLBACount: thin ? 0xFFFF_FFFF : 0,
            maximumUnmapBlockDescriptorCount: thin ? LogicalUnit.maximumUnmapDescriptors : 0,
            // MAXIMUM WRITE SAME LENGTH below 65536: initiators (libiscsi WriteSame16.Unmap) size
            // their own WRITEs by it, and those are bounded by MAXIMUM TRANSFER LENGTH.
            maximumWriteSameLength: min(UInt64(maximumTransferBlocks) * 64, 0xFFFF), thin: thin)
        limits.maximumAtomicTransferLength = min(maximumTransferBlocks, 1024)
        limits.logicalBlocksPerPhysicalBlockExponent = BlockLimits.physicalBlockExponent(
            logicalBlockSize: blockSize, physicalBlockSize: configuration.physicalBlockSize ?? blockSize)
        self.limits = limits
    }

    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (VPD B0).
    static let maximumUnmapDescriptors: UInt32 = 256
}
