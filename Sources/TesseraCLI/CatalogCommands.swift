import AdminAPI
import ArgumentParser
import Foundation

/// A byte count as an administrator writes it: `1073741824`, `64M`, `64MiB`,
/// `1G`, `2T` (binary multiples: K, M, G, T, P, with or without `iB`/`B`).
func parseByteCount(_ text: String) -> UInt64? {
    var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
    for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
        digits.removeLast(suffix.count)
        break
    }
    let shifts: [Character: UInt64] = ["K": 10, "M": 20, "G": 30, "T": 40, "P": 50]
    var shift: UInt64 = 0
    if let last = digits.last, let found = shifts[last] {
        shift = found
        digits.removeLast()
    }
    guard let value = UInt64(digits), value > 0 else { return nil }
    let (result, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
    return overflow ? nil : result
}

/// A JSON object body from already-typed fields.
func jsonObjectBody(_ fields: [String: Any]) -> [UInt8] {
    (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])).map(Array.init) ?? []
}

extension TargetCommand {
    /// `tessera target create NAME`.
    struct Create: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a target; every node serves it within about a second.",
            discussion: "It has no LUNs and no ACL (every initiator may log in) until you add them.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The target's iSCSI name, e.g. iqn.2026-12.com.example:disks.") var name: String
        @Option(help: "TargetAlias, shown by initiators.") var alias: String?
        @Option(help: ArgumentHelp("Portal group tag it is exported on (default 1).", valueName: "tag"))
        var portalGroupTag: UInt16?

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            var fields: [String: Any] = ["name": name]
            if let alias { fields["alias"] = alias }
            if let portalGroupTag { fields["portal_group_tag"] = Int(portalGroupTag) }
            let (target, raw, _) = try await client.send(
                "POST", "/v1/targets", body: jsonObjectBody(fields), requestID: newRequestID(), as: TargetStatus.self)
            return global.json
                ? String(decoding: raw, as: UTF8.self)
                : "created target \(target.name)\nnext: tessera lun create \(target.name) SIZE\n"
        }
    }

    /// `tessera target delete NAME --yes`.
    struct Delete: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a target that has no LUNs; its sessions are closed on every node.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The target's iSCSI name.") var name: String
        @Flag(help: "Confirm: hosts logged in to it lose it.") var yes = false

        func validate() throws {
            guard yes else {
                throw ValidationError("deleting \(name) logs every host out of it; add --yes")
            }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (deleted, raw, _) = try await client.send(
                "DELETE", targetPath(name), body: [], requestID: newRequestID(), as: Deleted.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : "deleted target \(deleted.target)\n"
        }
    }
}

extension LUNCommand {
    /// `tessera lun create TARGET SIZE`.
    struct Create: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a distributed LUN over the live members; every node serves it within about a second.",
            discussion: """
                Its blocks are cut into sub-units placed over the live members, each with --replicas copies \
                on different nodes. The file-backed kind is a sparse file in each node's data_dir.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The target it belongs to.") var target: String
        @Argument(help: "Capacity: bytes or 64M, 10G, 1T (binary).") var size: String
        @Option(help: "LUN number (default: the lowest free one).") var lun: UInt64?
        @Option(help: "512 or 4096.") var blockSize: UInt32 = 512
        @Option(help: "Copies of every sub-unit (1...3; default 2 when several members are live).") var replicas: Int?
        @Option(help: "Sub-unit size (default 1G).") var subUnitSize: String?
        @Option(help: "file or memory.") var backing = "file"
        @Flag(help: "Write-protected.") var readOnly = false
        @Flag(help: "Allocate every block up front (no UNMAP).") var thick = false

        func validate() throws {
            guard parseByteCount(size) != nil else { throw ValidationError("\(size) is not a size (e.g. 64M, 10G)") }
            if let subUnitSize, parseByteCount(subUnitSize) == nil {
                throw ValidationError("\(subUnitSize) is not a size (e.g. 8M, 1G)")
            }
            if let lun { try validateLUN(lun) }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            var fields: [String: Any] = [
                "target": target, "size_bytes": parseByteCount(size) ?? 0, "block_size": Int(blockSize),
                "backing": backing, "read_only": readOnly, "thin": !thick,
            ]
            if let lun { fields["lun"] = lun }
            if let replicas { fields["replicas"] = replicas }
            if let subUnitSize { fields["sub_unit_bytes"] = parseByteCount(subUnitSize) ?? 0 }
            let (made, raw, _) = try await client.send(
                "POST", "/v1/luns", body: jsonObjectBody(fields), requestID: newRequestID(), as: LUNStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(made)
        }
    }

    /// `tessera lun resize ID SIZE`.
    struct Resize: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grow a LUN online; every host is told (CAPACITY DATA HAS CHANGED) through every node.",
            discussion: "Shrinking is refused. On Linux, `echo 1 > /sys/block/sdX/device/rescan` picks the size up.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var id: UInt64
        @Argument(help: "The new capacity: bytes or 64M, 10G (binary).") var size: String
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?

        func validate() throws {
            try validateLUN(id)
            guard parseByteCount(size) != nil else { throw ValidationError("\(size) is not a size (e.g. 128M, 20G)") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (grown, raw, _) = try await client.send(
                "PATCH", lunPath(id, target: target), body: jsonObjectBody(["size_bytes": parseByteCount(size) ?? 0]),
                requestID: newRequestID(), as: LUNStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(grown)
        }
    }

    /// `tessera lun delete ID --yes`.
    struct Delete: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a LUN and its data on every node.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var id: UInt64
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?
        @Flag(help: "Confirm: the data is gone for good.") var yes = false

        func validate() throws {
            try validateLUN(id)
            guard yes else {
                throw ValidationError("deleting LUN \(id) destroys its data on every node; add --yes")
            }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let path = lunPath(id, target: target)
            let (deleted, raw, _) = try await client.send(
                "DELETE", path + (path.contains("?") ? "&" : "?") + "confirm=yes", body: [],
                requestID: newRequestID(), as: Deleted.self)
            return global.json
                ? String(decoding: raw, as: UTF8.self) : "deleted LUN \(deleted.lun ?? id) of \(deleted.target)\n"
        }
    }
}
