/// The mode pages this target implements (SPC-4 §7.5, SBC-3 §6.4), their
/// defaults and which bits MODE SELECT may change.
public enum ModePageCode: UInt8, CaseIterable, Sendable {
    /// Caching mode page (SBC-3 §6.4.5).
    case caching = 0x08
    /// Control mode page (SPC-4 §7.5.8).
    case control = 0x0A
    /// Informational exceptions control mode page (SPC-4 §7.5.14).
    case informationalExceptions = 0x1C

    /// Default page bytes, including the 2-byte page header.
    public var defaultPage: [UInt8] {
        switch self {
        case .caching:
            var p = [UInt8](repeating: 0, count: 20)
            p[0] = 0x08; p[1] = 0x12
            p[2] = 0x04  // WCE = 1, RCD = 0
            return p
        case .control:
            var p = [UInt8](repeating: 0, count: 12)
            p[0] = 0x0A; p[1] = 0x0A
            p[2] = 0x00  // TST 000b, D_SENSE 0 (fixed format sense until MODE SELECT sets it)
            p[3] = 0x10  // QUEUE ALGORITHM MODIFIER 1h (unrestricted), QERR 00b
            p[5] = 0x00  // TAS = 0: aborted tasks get no response
            p[8] = 0xFF; p[9] = 0xFF  // BUSY TIMEOUT PERIOD: unlimited
            return p
        case .informationalExceptions:
            var p = [UInt8](repeating: 0, count: 12)
            p[0] = 0x1C; p[1] = 0x0A
            p[2] = 0x08  // DEXCPT = 1: no informational exception reporting
            return p
        }
    }

    /// Changeable-values mask, including the header bytes (zero).
    public var changeableMask: [UInt8] {
        var m = [UInt8](repeating: 0, count: defaultPage.count)
        if self == .caching { m[2] = 0x04 }  // WCE
        if self == .control {
            m[2] = 0x04  // D_SENSE: descriptor format sense data (SPC-4 §7.5.8)
            m[4] = 0x08  // SWP: software write protect
        }
        return m
    }
}

/// Current values of every mode page, as a logical unit's context stores them.
public struct ModePageValues: Hashable, Sendable, Codable {
    /// Page bytes by page code, each including the page header.
    public var pages: [UInt8: [UInt8]]

    public init(pages: [UInt8: [UInt8]]) { self.pages = pages }

    /// Every page at its default.
    public static let defaults = ModePageValues(
        pages: Dictionary(uniqueKeysWithValues: ModePageCode.allCases.map { ($0.rawValue, $0.defaultPage) }))

    /// Descriptor format sense data (control page D_SENSE).
    public var descriptorSense: Bool { (pages[ModePageCode.control.rawValue]?[2] ?? 0) & 0x04 != 0 }

    /// Software write protect (control page SWP): writes fail with DATA PROTECT.
    public var softwareWriteProtect: Bool { (pages[ModePageCode.control.rawValue]?[4] ?? 0) & 0x08 != 0 }

    /// Write cache enabled (caching page WCE).
    public var writeCacheEnabled: Bool { (pages[ModePageCode.caching.rawValue]?[2] ?? 0) & 0x04 != 0 }
}

/// MODE SENSE parameter data and MODE SELECT parameter list handling.
public enum ModeParameters {
    /// Builds MODE SENSE (6)/(10) data for `request`, or the sense to return
    /// (unknown page, saved values, bad subpage).
    public static func sense(
        _ request: ModeSense, current: ModePageValues, blockCount: UInt64, blockSize: UInt32, writeProtected: Bool
    ) throws(SenseData) -> [UInt8] {
        // SPC-4 §6.13: PC = 11b (saved) without saved pages → SAVING PARAMETERS NOT SUPPORTED.
        if request.pageControl == 3 {
            throw SenseData(.savingParametersNotSupported, fieldPointer: FieldPointer(byte: 2, bit: 7))
        }
        // Subpages: only 00h, or FFh with page 3Fh (all pages and subpages).
        if request.subpageCode != 0 && !(request.subpageCode == 0xFF) {
            throw SenseData.invalidField(byte: 3)
        }
        let codes: [ModePageCode]
        if request.pageCode == 0x3F {
            codes = ModePageCode.allCases
        } else if let c = ModePageCode(rawValue: request.pageCode) {
            codes = [c]
        } else {
            throw SenseData.invalidField(byte: 2, bit: 5)
        }
        var pages: [UInt8] = []
        for c in codes {
            switch request.pageControl {
            case 0: pages += current.pages[c.rawValue] ?? c.defaultPage
            case 1:
                var m = c.changeableMask
                m[0] = c.rawValue; m[1] = UInt8(m.count - 2)
                pages += m
            default: pages += c.defaultPage
            }
        }
        // Block descriptor (SPC-4 §7.5.5): short (8 bytes) or long LBA (16 bytes).
        var descriptor: [UInt8] = []
        if !request.dbd {
            if request.ten && request.llbaa {
                descriptor = [UInt8](repeating: 0, count: 16)
                descriptor.put64(blockCount, at: 0)
                descriptor.put32(blockSize, at: 12)
            } else {
                descriptor = [UInt8](repeating: 0, count: 8)
                descriptor.put32(blockCount > 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(blockCount), at: 0)
                descriptor[5] = UInt8(truncatingIfNeeded: blockSize >> 16)
                descriptor[6] = UInt8(truncatingIfNeeded: blockSize >> 8)
                descriptor[7] = UInt8(truncatingIfNeeded: blockSize)
            }
        }
        // DEVICE-SPECIFIC PARAMETER (SBC-3 §6.4.1): WP, DPOFUA.
        let deviceSpecific: UInt8 = (writeProtected ? 0x80 : 0) | 0x10
        if request.ten {
            var h = [UInt8](repeating: 0, count: 8)
            h.put16(UInt16(truncatingIfNeeded: 6 + descriptor.count + pages.count), at: 0)
            h[3] = deviceSpecific
            h[4] = (request.llbaa && descriptor.count == 16) ? 1 : 0  // LONGLBA
            h.put16(UInt16(descriptor.count), at: 6)
            return h + descriptor + pages
        } else {
            var h = [UInt8](repeating: 0, count: 4)
            h[0] = UInt8(truncatingIfNeeded: min(255, 3 + descriptor.count + pages.count))
            h[2] = deviceSpecific
            h[3] = UInt8(descriptor.count)
            return h + descriptor + pages
        }
    }

    /// Applies a MODE SELECT parameter list to `current` (SPC-4 §6.11, §5.?):
    /// header, optional block descriptor, pages. A change to a bit that is
    /// not changeable → INVALID FIELD IN PARAMETER LIST.
    public static func select(
        _ request: ModeSelect, parameters: [UInt8], current: ModePageValues, blockSize: UInt32
    ) throws(SenseData) -> ModePageValues {
        // SPC-4 §6.11: SP = 1 without savable pages → INVALID FIELD IN CDB.
        if request.sp { throw SenseData.invalidField(byte: 1, bit: 0) }
        let headerLength = request.ten ? 8 : 4
        if parameters.isEmpty { return current }
        guard parameters.count >= headerLength else { throw SenseData(.parameterListLengthError) }
        let descriptorLength = request.ten ? Int(parameters.be16(6)) : Int(parameters[3])
        let longLBA = request.ten && parameters[4] & 1 != 0
        var offset = headerLength
        guard parameters.count >= offset + descriptorLength else { throw SenseData(.parameterListLengthError) }
        if descriptorLength > 0 {
            let each = longLBA ? 16 : 8
            guard descriptorLength % each == 0 else { throw SenseData.invalidParameter(byte: request.ten ? 6 : 3) }
            let length = longLBA ? parameters.be32(offset + 12) : parameters.be24(offset + 5)
            // Changing the block length is not supported.
            if length != blockSize { throw SenseData.invalidParameter(byte: offset + (longLBA ? 12 : 5)) }
        }
        offset += descriptorLength
        var result = current
        while offset < parameters.count {
            guard parameters.count >= offset + 2 else { throw SenseData(.parameterListLengthError) }
            let codeByte = parameters[offset]
            if codeByte & 0x40 != 0 { throw SenseData.invalidParameter(byte: offset, bit: 6) }  // SPF: no subpages
            guard let code = ModePageCode(rawValue: codeByte & 0x3F) else {
                throw SenseData.invalidParameter(byte: offset, bit: 5)
            }
            let length = Int(parameters[offset + 1])
            let mask = code.changeableMask
            guard length + 2 == mask.count else { throw SenseData.invalidParameter(byte: offset + 1) }
            guard parameters.count >= offset + 2 + length else { throw SenseData(.parameterListLengthError) }
            var page = result.pages[code.rawValue] ?? code.defaultPage
            for i in 2..<mask.count {
                let given = parameters[offset + i]
                if (given ^ page[i]) & ~mask[i] != 0 {
                    let diff = (given ^ page[i]) & ~mask[i]
                    throw SenseData.invalidParameter(byte: offset + i, bit: UInt8(7 - diff.leadingZeroBitCount))
                }
                page[i] = (page[i] & ~mask[i]) | (given & mask[i])
            }
            result.pages[code.rawValue] = page
            offset += 2 + length
        }
        return result
    }
}
