import Synchronization

/// LUN masking: which initiators see which logical units of a target, as
/// LIO's mapped LUNs and ONTAP's igroups do. A LUN with no entry is seen by
/// every initiator the target admits; a LUN with entries only by the
/// initiators named (iSCSI names, compared in lower case: RFC 7143 §4.2.7.1).
/// For an initiator that does not see it, a LUN does not exist: REPORT LUNS
/// leaves it out, INQUIRY answers peripheral qualifier 011b and every other
/// command LOGICAL UNIT NOT SUPPORTED (SPC-4 §6.6.2, SAM-5 §5.9).
public final class LUNMasks: Sendable {
    /// By target name (lower case), by LUN: the initiators that see it.
    public typealias Table = [String: [UInt16: Set<String>]]

    private let table: Mutex<Table>

    public init(_ table: Table = [:]) { self.table = Mutex(Self.lowered(table)) }

    /// Whether `initiator` sees LUN `lun` of `target`.
    public func sees(_ initiator: String, target: String, lun: UInt16) -> Bool {
        sees(initiator, loweredTarget: target.lowercased(), lun: lun)
    }

    /// The same for a target name already in lower case: what a command's
    /// path asks, so an unmasked LUN costs a lookup and no string copy.
    func sees(_ initiator: String, loweredTarget: String, lun: UInt16) -> Bool {
        guard let allowed = table.withLock({ $0[loweredTarget]?[lun] }) else { return true }
        return allowed.contains(initiator.lowercased())
    }

    /// Replaces the table; returns the (target, LUN) pairs whose entries changed.
    @discardableResult
    public func replace(with new: Table) -> [(target: String, lun: UInt16)] {
        let lowered = Self.lowered(new)
        return table.withLock { current in
            defer { current = lowered }
            return Self.changes(from: current, to: lowered)
        }
    }

    /// The (target, LUN) pairs whose entries differ between two tables. Pure.
    static func changes(from old: Table, to new: Table) -> [(target: String, lun: UInt16)] {
        var changed: [(String, UInt16)] = []
        for target in Set(old.keys).union(new.keys).sorted() {
            let before = old[target] ?? [:]
            let after = new[target] ?? [:]
            for lun in Set(before.keys).union(after.keys).sorted() where before[lun] != after[lun] {
                changed.append((target, lun))
            }
        }
        return changed
    }

    private static func lowered(_ table: Table) -> Table {
        var result: Table = [:]
        for (target, luns) in table {
            for (lun, initiators) in luns where !initiators.isEmpty {
                result[target.lowercased(), default: [:]][lun, default: []].formUnion(initiators.map { $0.lowercased() })
            }
        }
        return result
    }
}
