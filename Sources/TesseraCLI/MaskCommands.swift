import AdminAPI
import ArgumentParser
import Foundation

/// The target of LUN `lun`: `target` when given, else the only target with
/// that LUN number (from `GET /v1/luns`, chosen as the API's own routes choose).
func targetOf(lun: UInt64, target: String?, client: AdminClient) async throws(CLIFailure) -> String {
    if let target { return target }
    let (luns, _, _) = try await client.get("/v1/luns", as: [LUNStatus].self)
    switch AdminRouter.pick(LUNSelector(lun: lun), from: luns) {
    case .success(let found): return found.target
    case .failure(let failure): throw CLIFailure("\(failure.error); \(failure.hint)")
    }
}

extension LUNCommand {
    /// `tessera lun map LUN INITIATOR`.
    struct Map: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a LUN to one more initiator (LUN masking).",
            discussion: """
                A LUN without a mask is seen by every initiator the target's ACL admits. The first `map` \
                hides it from everyone else: only the initiators mapped see it in REPORT LUNS, and any other \
                gets LOGICAL UNIT NOT SUPPORTED. Every nexus of the target is told REPORTED LUNS DATA HAS \
                CHANGED (06/3F/0E) on every node within about a second.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var lun: UInt64
        @Argument(help: ArgumentHelp("The initiator's iSCSI name.", valueName: "initiator")) var initiator: String
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?

        func validate() throws {
            try validateLUN(lun)
            try validateInitiator(initiator)
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let owner = try await targetOf(lun: lun, target: target, client: client)
            let (status, raw, _) = try await client.send(
                "PUT", targetPath(owner, "luns", "\(lun)", "initiators", initiator), body: [],
                requestID: newRequestID(), as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.masks([status])
        }
    }

    /// `tessera lun unmap LUN INITIATOR | --all`.
    struct Unmap: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hide a LUN from one initiator again, or drop its mask (--all: every initiator sees it).",
            discussion: """
                The last initiator of a mask cannot be removed alone, since a LUN without a mask is seen by \
                every initiator: map the one that should keep it first, or use --all.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var lun: UInt64
        @Argument(help: ArgumentHelp("The initiator's iSCSI name.", valueName: "initiator")) var initiator: String?
        @Flag(help: "Drop the whole mask: every initiator the ACL admits sees the LUN.") var all = false
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?

        func validate() throws {
            try validateLUN(lun)
            switch (initiator, all) {
            case (let name?, false): try validateInitiator(name)
            case (nil, true): break
            default: throw ValidationError("give an initiator name or --all, not both and not neither")
            }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let owner = try await targetOf(lun: lun, target: target, client: client)
            let path =
                initiator.map { targetPath(owner, "luns", "\(lun)", "initiators", $0) }
                ?? targetPath(owner, "luns", "\(lun)", "initiators")
            let (status, raw, _) = try await client.send(
                "DELETE", path, body: [], requestID: newRequestID(), as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.masks([status])
        }
    }
}

extension Render {
    /// `tessera lun map|unmap`: each LUN of the targets and who sees it.
    static func masks(_ targets: [TargetStatus]) -> String {
        var rows: [[String]] = []
        for t in targets {
            let masks = Dictionary((t.lunMasks ?? []).map { ($0.lun, $0.initiators) }, uniquingKeysWith: { a, _ in a })
            for lun in t.luns {
                let seen = masks[lun].map { $0.joined(separator: " ") } ?? "every initiator the ACL admits"
                rows.append([t.name, "\(lun)", seen])
            }
        }
        if rows.isEmpty { return "no LUNs\n" }
        return TextTable(headers: ["TARGET", "LUN", "SEEN BY"], rows: rows).render()
    }
}
