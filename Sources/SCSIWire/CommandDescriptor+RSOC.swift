/// REPORT SUPPORTED OPERATION CODES parameter data (SPC-4 §6.35), built
/// from ``CommandDescriptor/all`` so it cannot drift from dispatch.
extension CommandDescriptor {
    /// Command timeouts descriptor (SPC-4 §6.35.4), 12 bytes.
    func timeoutsDescriptor() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12)
        b.put16(0x000A, at: 0)
        b.put32(timeouts.nominal, at: 4)
        b.put32(timeouts.recommended, at: 8)
        return b
    }

    /// The all-commands format (REPORTING OPTIONS 000b).
    public static func reportAll(rctd: Bool, table: [CommandDescriptor] = all) -> [UInt8] {
        var list: [UInt8] = []
        for d in table {
            var e = [UInt8](repeating: 0, count: 8)
            e[0] = d.opcode
            e.put16(d.serviceAction ?? 0, at: 2)
            e[5] = (rctd ? 0x02 : 0) | (d.serviceAction != nil ? 0x01 : 0)  // CTDP, SERVACTV
            e.put16(UInt16(d.cdbLength), at: 6)
            list += e
            if rctd { list += d.timeoutsDescriptor() }
        }
        var h = [UInt8](repeating: 0, count: 4)
        h.put32(UInt32(list.count), at: 0)
        return h + list
    }

    /// The one-command format (REPORTING OPTIONS 001b-011b), or the sense
    /// for a malformed request (SPC-4 §6.35.1).
    public static func reportOne(_ r: ReportSupportedOperationCodes, table: [CommandDescriptor] = all) throws(SenseData) -> [UInt8] {
        let sameOpcode = table.filter { $0.opcode == r.requestedOperationCode }
        let hasServiceActions = sameOpcode.first?.serviceAction != nil
        var match: CommandDescriptor?
        switch r.reportingOptions {
        case 1:
            // An opcode that has service actions cannot be named without one.
            if hasServiceActions { throw SenseData.invalidField(byte: 3) }
            match = sameOpcode.first
        case 2:
            if !sameOpcode.isEmpty && !hasServiceActions { throw SenseData.invalidField(byte: 4) }
            match = sameOpcode.first { $0.serviceAction == r.requestedServiceAction }
        default:
            match = hasServiceActions
                ? sameOpcode.first { $0.serviceAction == r.requestedServiceAction }
                : sameOpcode.first
        }
        guard let d = match else {
            // SUPPORT 001b: not supported; CDB SIZE 0.
            return [0, 0x01, 0, 0]
        }
        var b: [UInt8] = [0, (r.rctd ? 0x80 : 0) | 0x03, 0, 0]  // CTDP, SUPPORT 011b
        b.put16(UInt16(d.cdbLength), at: 2)
        b += d.usageData
        if r.rctd { b += d.timeoutsDescriptor() }
        return b
    }
}
