/// What INQUIRY and the VPD pages say about a logical unit and the port it is
/// reached through.
public struct InquiryIdentity: Hashable, Sendable {
    /// T10 vendor identification (8 ASCII characters, space padded).
    public var vendor: String
    /// Product identification (16 ASCII characters).
    public var product: String
    /// Product revision level (4 ASCII characters).
    public var revision: String
    /// Unit serial number (VPD 0x80).
    public var serial: String
    /// 16-byte NAA-6 designator (VPD 0x83, logical unit association).
    public var naaIdentifier: [UInt8]
    /// Whether the unit reports TPGS (implicit ALUA) in standard data.
    public var tpgs: UInt8

    public init(
        vendor: String, product: String, revision: String, serial: String, naaIdentifier: [UInt8], tpgs: UInt8 = 0
    ) {
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.serial = serial
        self.naaIdentifier = naaIdentifier
        self.tpgs = tpgs
    }

    /// Builds an NAA IEEE Registered Extended identifier (SPC-4 §7.8.6.6.3,
    /// NAA = 6h): 24-bit OUI, 36-bit vendor specific identifier, 64-bit extension.
    public static func naa6(oui: UInt32, vendorSpecific: UInt64, extension ext: UInt64) -> [UInt8] {
        let oui = UInt64(oui & 0xFF_FFFF)
        let vsi = vendorSpecific & 0xF_FFFF_FFFF
        let high = (UInt64(6) << 60) | (oui << 36) | vsi
        var b = [UInt8](repeating: 0, count: 16)
        b.put64(high, at: 0)
        b.put64(ext, at: 8)
        return b
    }
}

/// The target port a command came through (VPD 0x83 port designators).
public struct PortIdentity: Hashable, Sendable {
    /// SCSI name string of the target port (`iqn…,t,0x0001`).
    public var targetPortName: String
    /// Target device name (the iSCSI target name).
    public var targetName: String
    public var relativeTargetPortIdentifier: UInt16
    public var targetPortGroup: UInt16

    public init(
        targetPortName: String, targetName: String, relativeTargetPortIdentifier: UInt16, targetPortGroup: UInt16
    ) {
        self.targetPortName = targetPortName
        self.targetName = targetName
        self.relativeTargetPortIdentifier = relativeTargetPortIdentifier
        self.targetPortGroup = targetPortGroup
    }
}

/// Block limits, characteristics and provisioning reported in VPD B0/B1/B2.
public struct BlockLimits: Hashable, Sendable {
    /// MAXIMUM TRANSFER LENGTH in blocks.
    public var maximumTransferLength: UInt32
    /// OPTIMAL TRANSFER LENGTH in blocks.
    public var optimalTransferLength: UInt32
    /// MAXIMUM UNMAP LBA COUNT (0 when UNMAP is unsupported).
    public var maximumUnmapLBACount: UInt32
    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
    public var maximumUnmapBlockDescriptorCount: UInt32
    /// MAXIMUM WRITE SAME LENGTH in blocks.
    public var maximumWriteSameLength: UInt64
    /// Thin provisioned (VPD B2 LBPU/LBPWS, READ CAPACITY(16) LBPME).
    public var thin: Bool
    /// MAXIMUM COMPARE AND WRITE LENGTH in blocks.
    public var maximumCompareAndWriteLength: UInt8 = 1
    /// MAXIMUM ATOMIC TRANSFER LENGTH in blocks (WRITE ATOMIC(16), SBC-4 §6.6.4).
    public var maximumAtomicTransferLength: UInt32 = 0
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ CAPACITY(16), SBC-3 §5.16.2):
    /// a 512-byte LUN configured with 4096-byte physical blocks reports 3. UNMAP
    /// works best in whole physical blocks, so it is also the OPTIMAL UNMAP GRANULARITY.
    public var logicalBlocksPerPhysicalBlockExponent: UInt8 = 0

    /// log2(physical / logical), 0 when the physical block is not larger.
    public static func physicalBlockExponent(logicalBlockSize: UInt32, physicalBlockSize: UInt32) -> UInt8 {
        var exponent: UInt8 = 0
        var size = max(logicalBlockSize, 1)
        while size < physicalBlockSize && exponent < 15 {
            size <<= 1
            exponent += 1
        }
        return exponent
    }

    public init(
        maximumTransferLength: UInt32, optimalTransferLength: UInt32, maximumUnmapLBACount: UInt32,
        maximumUnmapBlockDescriptorCount: UInt32, maximumWriteSameLength: UInt64, thin: Bool
    ) {
        self.maximumTransferLength = maximumTransferLength
        self.optimalTransferLength = optimalTransferLength
        self.maximumUnmapLBACount = maximumUnmapLBACount
        self.maximumUnmapBlockDescriptorCount = maximumUnmapBlockDescriptorCount
        self.maximumWriteSameLength = maximumWriteSameLength
        self.thin = thin
    }
}

/// INQUIRY parameter data builders (SPC-4 §6.6, §7.8). Every builder returns
/// the full page; the executor cuts it to the allocation length.
public enum InquiryData {
    /// VPD pages this target returns, in ascending order (VPD 0x00 lists them).
    public static let supportedVPDPages: [UInt8] = [0x00, 0x80, 0x83, 0x8F, 0xB0, 0xB1, 0xB2]

    /// Standard INQUIRY data, 96 bytes (SPC-4 §6.6.2).
    public static func standard(_ id: InquiryIdentity) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 96)
        b[0] = 0x00  // PERIPHERAL QUALIFIER 000b, DEVICE TYPE 00h (direct access block)
        b[1] = 0x00  // RMB = 0
        b[2] = 0x06  // VERSION: SPC-4
        b[3] = 0x12  // HISUP = 1, RESPONSE DATA FORMAT = 2
        b[4] = UInt8(b.count - 5)  // ADDITIONAL LENGTH
        b[5] = (id.tpgs & 0x03) << 4 | 0x08  // TPGS, 3PC (EXTENDED COPY)
        b[6] = 0x00
        b[7] = 0x02  // CMDQUE
        b.putASCII(id.vendor, at: 8, width: 8)
        b.putASCII(id.product, at: 16, width: 16)
        b.putASCII(id.revision, at: 32, width: 4)
        // VERSION DESCRIPTORS (SPC-4 table 146): SAM-5, iSCSI, SPC-4, SBC-3.
        let versions: [UInt16] = [0x00A0, 0x0960, 0x0460, 0x04C0]
        for (i, v) in versions.enumerated() { b.put16(v, at: 58 + 2 * i) }
        return b
    }

    /// Standard data for a LUN that does not exist: PERIPHERAL QUALIFIER 011b,
    /// DEVICE TYPE 1Fh (SPC-4 §6.6.2, SAM-5 §5.9).
    public static func notConnected() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 36)
        b[0] = 0x7F
        b[2] = 0x06
        b[3] = 0x12
        b[4] = UInt8(b.count - 5)
        return b
    }

    /// VPD page header + body.
    static func page(_ code: UInt8, _ body: [UInt8]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4)
        b[1] = code
        b.put16(UInt16(body.count), at: 2)
        return b + body
    }

    /// VPD 0x00, supported VPD pages (SPC-4 §7.8.16).
    public static func supportedPages() -> [UInt8] { page(0x00, supportedVPDPages) }

    /// VPD 0x80, unit serial number (SPC-4 §7.8.17).
    public static func unitSerialNumber(_ id: InquiryIdentity) -> [UInt8] {
        var s = [UInt8](repeating: 0x20, count: max(id.serial.utf8.count, 1))
        s.putASCII(id.serial, at: 0, width: s.count)
        return page(0x80, s)
    }

    /// VPD 0x83, device identification (SPC-4 §7.8.6): NAA-6 LU designator,
    /// target port name, relative target port, target port group, target device name.
    public static func deviceIdentification(_ id: InquiryIdentity, port: PortIdentity) -> [UInt8] {
        var body: [UInt8] = []
        func designator(codeSet: UInt8, piv: Bool, association: UInt8, type: UInt8, _ value: [UInt8]) {
            // PROTOCOL IDENTIFIER 5h (iSCSI) is meaningful only with PIV = 1.
            body.append((piv ? 0x50 : 0x00) | codeSet)
            body.append((piv ? 0x80 : 0x00) | (association << 4) | type)
            body.append(0)
            body.append(UInt8(value.count))
            body.append(contentsOf: value)
        }
        func nameString(_ s: String) -> [UInt8] {
            // SPC-4 §7.8.6.11: null terminated, padded to a multiple of four, at most 256 bytes.
            var v = Array(s.utf8.prefix(251))
            v.append(0)
            while v.count % 4 != 0 { v.append(0) }
            return v
        }
        designator(codeSet: 1, piv: false, association: 0, type: 3, id.naaIdentifier)
        designator(codeSet: 3, piv: true, association: 1, type: 8, nameString(port.targetPortName))
        var rel = [UInt8](repeating: 0, count: 4)
        rel.put16(port.relativeTargetPortIdentifier, at: 2)
        designator(codeSet: 1, piv: true, association: 1, type: 4, rel)
        var tpg = [UInt8](repeating: 0, count: 4)
        tpg.put16(port.targetPortGroup, at: 2)
        designator(codeSet: 1, piv: true, association: 1, type: 5, tpg)
        designator(codeSet: 3, piv: true, association: 2, type: 8, nameString(port.targetName))
        return page(0x83, body)
    }

    /// VPD 0xB0, block limits (SBC-3 §6.5.3).
    public static func blockLimits(_ l: BlockLimits) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x3C)
        // Offsets are page offset - 4. WSNZ (byte 4) = 0.
        b[1] = l.maximumCompareAndWriteLength
        b.put16(1, at: 2)  // OPTIMAL TRANSFER LENGTH GRANULARITY
        b.put32(l.maximumTransferLength, at: 4)
        b.put32(l.optimalTransferLength, at: 8)
        b.put32(l.maximumTransferLength, at: 12)  // MAXIMUM PREFETCH LENGTH
        b.put32(l.maximumUnmapLBACount, at: 16)
        b.put32(l.maximumUnmapBlockDescriptorCount, at: 20)
        // OPTIMAL UNMAP GRANULARITY: one physical block.
        b.put32(l.maximumUnmapLBACount == 0 ? 0 : 1 << l.logicalBlocksPerPhysicalBlockExponent, at: 24)
        b.put32(0, at: 28)  // UGAVALID = 0
        b.put64(l.maximumWriteSameLength, at: 32)
        // SBC-4 §6.6.4: atomic limits (alignment and granularity 1 block, no boundaries).
        b.put32(l.maximumAtomicTransferLength, at: 40)
        b.put32(l.maximumAtomicTransferLength == 0 ? 0 : 1, at: 44)  // ATOMIC ALIGNMENT
        b.put32(l.maximumAtomicTransferLength == 0 ? 0 : 1, at: 48)  // ATOMIC TRANSFER LENGTH GRANULARITY
        return page(0xB0, b)
    }

    /// VPD 0xB1, block device characteristics (SBC-3 §6.5.2): non-rotating medium.
    /// `blockErase`: SANITIZE BLOCK ERASE is offered, so WABEREQ says what a
    /// read after it returns (01b: GOOD with the unmapped data, zeros).
    public static func blockDeviceCharacteristics(blockErase: Bool = false) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x3C)
        b.put16(0x0001, at: 0)  // MEDIUM ROTATION RATE: non-rotating
        if blockErase { b[3] = 0x40 }  // WABEREQ 01b
        return page(0xB1, b)
    }

    /// VPD 0x8F, third-party copy (SPC-4 §7.8.17): a Supported Commands
    /// descriptor listing EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.
    public static func thirdPartyCopy() -> [UInt8] {
        var list: [UInt8] = [0x83, 1, 0x00, 0x84, 4, 0x00, 0x01, 0x03, 0x04]
        var descriptor: [UInt8] = [0x00, 0x01, 0, 0, UInt8(list.count)]
        descriptor += list
        while descriptor.count % 4 != 0 { descriptor.append(0) }
        descriptor.put16(UInt16(descriptor.count - 4), at: 2)
        list = descriptor
        return page(0x8F, list)
    }

    /// VPD 0xB2, logical block provisioning (SBC-3 §6.5.4).
    public static func logicalBlockProvisioning(_ l: BlockLimits) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4)
        b[0] = 0  // THRESHOLD EXPONENT
        if l.thin {
            // LBPU, LBPWS, LBPWS10, LBPRZ (unmapped blocks read as zeros).
            b[1] = 0x80 | 0x40 | 0x20 | 0x04
            b[2] = 0x02  // PROVISIONING TYPE: thin
        }
        return page(0xB2, b)
    }
}

/// READ CAPACITY parameter data (SBC-3 §5.15.2, §5.16.2).
public enum ReadCapacityData {
    /// 8 bytes: RETURNED LOGICAL BLOCK ADDRESS (FFFFFFFFh when it does not fit) and block length.
    public static func ten(blockCount: UInt64, blockSize: UInt32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        let last = blockCount == 0 ? 0 : blockCount - 1
        b.put32(last > 0xFFFF_FFFE ? 0xFFFF_FFFF : UInt32(last), at: 0)
        b.put32(blockSize, at: 4)
        return b
    }

    /// 32 bytes with LBPME/LBPRZ for thin units.
    public static func sixteen(
        blockCount: UInt64, blockSize: UInt32, thin: Bool, logicalBlocksPerPhysicalBlockExponent: UInt8 = 0
    ) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 32)
        b.put64(blockCount == 0 ? 0 : blockCount - 1, at: 0)
        b.put32(blockSize, at: 8)
        b[13] = logicalBlocksPerPhysicalBlockExponent & 0x0F  // SBC-3 §5.16.2
        if thin { b[14] = 0x80 | 0x40 }  // LBPME, LBPRZ
        return b
    }
}

/// LUN field encoding (SAM-5 §4.7): peripheral device addressing for LUNs
/// below 256, flat space addressing up to 16383.
public enum LUNAddress {
    /// Decodes the 8-byte LUN field; nil when it is not a single-level
    /// peripheral or flat address (the target then reports LOGICAL UNIT NOT SUPPORTED).
    public static func decode(_ field: UInt64) -> UInt16? {
        let b0 = UInt8(truncatingIfNeeded: field >> 56)
        let b1 = UInt8(truncatingIfNeeded: field >> 48)
        guard field & 0x0000_FFFF_FFFF_FFFF == 0 else { return nil }
        switch b0 >> 6 {
        case 0b00:  // peripheral device addressing, BUS IDENTIFIER must be 0
            return b0 == 0 ? UInt16(b1) : nil
        case 0b01:  // flat space addressing
            return UInt16(b0 & 0x3F) << 8 | UInt16(b1)
        default:
            return nil
        }
    }

    /// Encodes `lun` as REPORT LUNS lists it.
    public static func encode(_ lun: UInt16) -> UInt64 {
        lun < 256 ? UInt64(lun) << 48 : (UInt64(0x4000 | (lun & 0x3FFF)) << 48)
    }
}
