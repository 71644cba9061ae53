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

    /// `tessera target set-alias NAME ALIAS`.
    struct SetAlias: ReadingCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-alias",
            abstract: "Change a target's TargetAlias; every node's new logins show it within about a second.",
            discussion: "An empty ALIAS (\"\") removes it. Sessions logged in keep the alias they were given.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The target's iSCSI name.") var name: String
        @Argument(help: "The new alias (at most 255 bytes, one line); \"\" removes it.") var alias: String

        func validate() throws {
            guard alias.utf8.count <= 255, !alias.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else { throw ValidationError("an alias is at most 255 bytes on one line, without control characters") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (target, raw, _) = try await client.send(
                "PATCH", targetPath(name), body: jsonObjectBody(["alias": alias.isEmpty ? NSNull() : alias]),
                requestID: newRequestID(), as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.targets([target])
        }
    }

    /// `tessera target set-portal-group NAME TAG`.
    struct SetPortalGroup: ReadingCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-portal-group",
            abstract: "Change the portal group tag a target is exported on; every node follows within about a second.",
            discussion: """
                A node with portals of that tag exports the target on those; a node without, on all of its \
                portals. A node whose TOML names the target keeps the portal groups of its TOML.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The target's iSCSI name.") var name: String
        @Argument(help: "The portal group tag, 1...65535.") var tag: UInt16

        func validate() throws {
            guard tag > 0 else { throw ValidationError("a portal group tag is 1...65535") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (target, raw, _) = try await client.send(
                "PATCH", targetPath(name), body: jsonObjectBody(["portal_group_tag": Int(tag)]),
                requestID: newRequestID(), as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.targets([target])
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
        @OptionGroup var wait: WaitOptions

        func validate() throws {
            guard parseByteCount(size) != nil else { throw ValidationError("\(size) is not a size (e.g. 64M, 10G)") }
            if let subUnitSize, parseByteCount(subUnitSize) == nil {
                throw ValidationError("\(subUnitSize) is not a size (e.g. 8M, 1G)")
            }
            if let lun { try validateLUN(lun) }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (made, raw) = try await create(client)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(made)
        }

        func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
            let (made, raw) = try await create(client)
            let answer = global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(made)
            guard wait.wait else { return answer }
            environment.out(answer)
            return try await wait.servedEverywhere(
                made.lun, target: made.target, client: client, environment: environment, json: global.json)
        }

        private func create(_ client: AdminClient) async throws(CLIFailure) -> (LUNStatus, [UInt8]) {
            var fields: [String: Any] = [
                "target": target, "size_bytes": parseByteCount(size) ?? 0, "block_size": Int(blockSize),
                "backing": backing, "read_only": readOnly, "thin": !thick,
            ]
            if let lun { fields["lun"] = lun }
            if let replicas { fields["replicas"] = replicas }
            if let subUnitSize { fields["sub_unit_bytes"] = parseByteCount(subUnitSize) ?? 0 }
            let (made, raw, _) = try await client.send(
                "POST", "/v1/luns", body: jsonObjectBody(fields), requestID: newRequestID(), as: LUNStatus.self)
            return (made, raw)
        }
    }

    /// `tessera lun resize ID SIZE [--force --yes]`.
    struct Resize: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resize a LUN online; every host is told (CAPACITY DATA HAS CHANGED) through every node.",
            discussion: """
                Growing needs nothing more. Shrinking needs --force --yes: the blocks past the new end are dropped \
                on every node, for good; shrink the host's file system or partition first. On Linux, \
                `echo 1 > /sys/block/sdX/device/rescan` picks the size up.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var id: UInt64
        @Argument(help: "The new capacity: bytes or 64M, 10G (binary).") var size: String
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?
        @Flag(help: "Allow a shrink: the blocks past the new end are dropped on every node.") var force = false
        @Flag(help: "Confirm --force: hosts lose the data past the new end.") var yes = false
        @OptionGroup var wait: WaitOptions

        func validate() throws {
            try validateLUN(id)
            guard parseByteCount(size) != nil else { throw ValidationError("\(size) is not a size (e.g. 128M, 20G)") }
            if force && !yes {
                throw ValidationError(
                    "--force lets a shrink drop the data past \(size) on every node; add --yes once no host uses those blocks")
            }
            if yes && !force { throw ValidationError("--yes confirms --force; a grow needs neither") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            var fields: [String: Any] = ["size_bytes": parseByteCount(size) ?? 0]
            if force { fields["force"] = true }
            let (resized, raw, _) = try await client.send(
                "PATCH", lunPath(id, target: target), body: jsonObjectBody(fields), requestID: newRequestID(),
                as: LUNStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(resized)
        }

        func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
            let resized = try await output(client)
            guard wait.wait else { return resized }
            environment.out(resized)
            return try await wait.servedEverywhere(id, target: target, client: client, environment: environment, json: global.json)
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

extension WaitOptions {
    /// Polls LUN `number` until every live member serves it at its size
    /// (each node acts on a change within about a second of its commit).
    func servedEverywhere(
        _ number: UInt64, target: String?, client: AdminClient, environment: CLIEnvironment, json: Bool
    ) async throws(CLIFailure) -> String {
        try await poll(environment: environment) { () async throws(CLIFailure) -> Poll in
            let (status, raw, _) = try await client.get(lunPath(number, target: target), as: LUNStatus.self)
            let (serving, members) = status.servedAtSize ?? (0, 0)
            return Poll(
                line: Render.servedProgress(status),
                percent: members == 0 ? nil : (Double(serving) / Double(members) * 1000).rounded() / 10,
                done: members > 0 && serving == members,
                result: json ? String(decoding: raw, as: UTF8.self) : "",
                late: "\(Render.servedProgress(status)) after \(timeout ?? 0) s; the nodes not listed as serving it "
                    + "log why (\"catalog:\" lines), and tessera cluster status shows whether they are alive")
        }
    }
}
