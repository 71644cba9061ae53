import AdminAPI
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `tessera`: the Tessera management CLI. It reads the cluster through any
/// node's admin API (`/v1/...`), trying the `--node`s in order. Exit status:
/// 0 success, 1 failure (the message says what to do next), 2 usage or a
/// command that is not built yet.
public struct TesseraCommand: AsyncParsableCommand {
    /// The version `tessera --version` prints (kept equal to `tesserad`'s).
    public static let version = "0.1.0-dev"

    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera management CLI.",
        discussion: """
            Reads the cluster, changes ACLs and CHAP, clears reservations and lists or closes sessions, \
            through any node's admin API \
            ([admin] listen in the node's TOML). Exit status: 0 success, 1 failure, 2 usage error.
            """,
        version: version,
        subcommands: [
            ClusterCommand.self, LUNCommand.self, PRCommand.self, TargetCommand.self, ResyncCommand.self,
            ACLCommand.self, CHAPCommand.self, NodeCommand.self, SessionCommand.self,
        ])

    public init() {}

    /// The exit status for an error the parser or a command threw: 2 for a
    /// usage error (the parser's own is 64), else the parser's status.
    public static func status(for error: any Error) -> Int32 {
        let code = exitCode(for: error)
        return code == .validationFailure ? 2 : code.rawValue
    }
}

/// Status for usage errors.
let usageExitCode = ExitCode(2)

// MARK: cluster

/// `tessera cluster`.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show the cluster.", subcommands: [Status.self])

    /// `tessera cluster status`: members, leases, store leader, port groups.
    struct Status: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Members, their leases and liveness, the store leader and the ALUA port groups.")
        @OptionGroup var global: GlobalOptions

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.get("/v1/cluster", as: ClusterStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.cluster(status)
        }
    }
}

// MARK: lun

/// `tessera lun`.
struct LUNCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lun",
        abstract: "Create, show, resize and delete logical units, and map them to initiators.",
        subcommands: [List.self, Show.self, Map.self, Unmap.self, Create.self, Resize.self, Delete.self])

    /// `tessera lun list`.
    struct List: ReadingCommand {
        static let configuration = CommandConfiguration(abstract: "List the logical units.")
        @OptionGroup var global: GlobalOptions

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (luns, raw, _) = try await client.get("/v1/luns", as: [LUNStatus].self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lunList(luns)
        }
    }

    /// `tessera lun show ID`.
    struct Show: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a logical unit's layout and sub-unit map (replicas, states, resync progress).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number (tessera lun list shows them).") var id: UInt64
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?

        func validate() throws { try validateLUN(id) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (lun, raw, _) = try await client.get(lunPath(id, target: target), as: LUNStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.lun(lun)
        }
    }

}

/// LUN numbers are 14 bits (SAM-5 flat space addressing).
func validateLUN(_ id: UInt64) throws {
    guard id <= 16383 else { throw ValidationError("a LUN number is 0...16383, not \(id)") }
}

/// `/v1/luns/ID[/suffix][?target=IQN]`.
func lunPath(_ id: UInt64, target: String?, suffix: String = "") -> String {
    var path = "/v1/luns/\(id)\(suffix)"
    if let target {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&+=#")
        path += "?target=" + (target.addingPercentEncoding(withAllowedCharacters: allowed) ?? target)
    }
    return path
}

// MARK: pr

/// `tessera pr`.
struct PRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pr", abstract: "Show or clear persistent reservations.",
        subcommands: [Show.self, Clear.self])

    /// `tessera pr show LUN`.
    struct Show: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a LUN's PR generation, registered keys, reservation and SPC-2 reservation.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var lun: UInt64
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?

        func validate() throws { try validateLUN(lun) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.get(
                lunPath(lun, target: target, suffix: "/reservations"), as: ReservationStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.reservations(status)
        }
    }

    /// `tessera pr clear LUN --yes`.
    struct Clear: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clear a LUN's persistent reservations as an administrator.",
            discussion: """
                Removes every registration and the reservation, as PERSISTENT RESERVE OUT CLEAR does, \
                for example when the host that held them is gone for good. Every registered host is told \
                (RESERVATIONS PREEMPTED) through whichever node it uses. An SPC-2 reservation is not touched: \
                a LU reset from a host releases it. Needs --yes.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The LUN number.") var lun: UInt64
        @Option(help: ArgumentHelp("The target, when several have this LUN number.", valueName: "iqn"))
        var target: String?
        @Flag(help: "Confirm: the hosts lose their reservations at once.") var yes = false

        func validate() throws {
            try validateLUN(lun)
            guard yes else {
                throw ValidationError(
                    "clearing takes every host's reservations on LUN \(lun) away at once; run `tessera pr show \(lun)` "
                        + "to see them, then add --yes")
            }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.send(
                "DELETE", lunPath(lun, target: target, suffix: "/reservations"), body: [], requestID: newRequestID(),
                as: ReservationStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.reservations(status)
        }
    }
}

// MARK: target

/// `tessera target`.
struct TargetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target", abstract: "List, create, change and delete targets.",
        subcommands: [List.self, Create.self, SetAlias.self, SetPortalGroup.self, Delete.self])

    /// `tessera target list`.
    struct List: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the targets with their LUNs, ACLs and CHAP user (never a secret).")
        @OptionGroup var global: GlobalOptions

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (targets, raw, _) = try await client.get("/v1/targets", as: [TargetStatus].self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.targets(targets)
        }
    }

}

// MARK: resync

/// `tessera resync`.
struct ResyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resync", abstract: "Show resyncs.", subcommands: [Status.self])

    /// `tessera resync status [--watch]`.
    struct Status: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every replica that is not in sync, with its resync's progress (a bar with --watch on a terminal).")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print the status again every --interval seconds until interrupted.") var watch = false
        @Option(help: "Seconds between two prints with --watch (1...3600).") var interval = 2

        func validate() throws {
            guard (1...3600).contains(interval) else { throw ValidationError("--interval is 1...3600 seconds") }
            if !watch && interval != 2 { throw ValidationError("--interval needs --watch") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (luns, raw, node) = try await client.get("/v1/luns", as: [LUNStatus].self)
            if global.json { return String(decoding: raw, as: UTF8.self) }
            return Render.resyncs(luns, answeredBy: "\(node)", bar: watch && isatty(STDOUT_FILENO) != 0)
        }

        func run() async throws {
            let environment = CLIEnvironment.live
            repeat {
                if watch { environment.out("\(Date.now.formatted(.iso8601))\n") }
                let status = await execute(in: environment)
                if status != 0 { throw ExitCode(status) }
                if watch {
                    try await Task.sleep(for: .seconds(interval))
                    environment.out("\n")
                }
            } while watch
        }
    }
}

// MARK: not built yet

/// `tessera session`.
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "List or close iSCSI sessions on every node.",
        subcommands: [List.self, Close.self])

    /// `tessera session list`.
    struct List: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every node's iSCSI sessions: initiator, ISID, target, portal, how long, and how current.",
            discussion: """
                The node asked lists its own sessions as they are now and the other nodes' as they last \
                published them (within about a second of a change). A node that is down shows its last list, \
                marked node_down.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("node-id"), help: ArgumentHelp("Only the sessions on this node.", valueName: "id"))
        var nodeID: UInt64?
        @Option(help: ArgumentHelp("Only the sessions of this initiator name.", valueName: "iqn"))
        var initiator: String?

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (all, _, _) = try await client.get("/v1/sessions", as: [SessionStatus].self)
            let picked = all.filter { s in
                (nodeID == nil || s.node == nodeID) && (initiator.map { s.initiator == $0.lowercased() } ?? true)
            }
            if global.json { return AdminJSON.encode(picked) }
            return Render.sessions(picked, now: UInt64(max(0, Date().timeIntervalSince1970)))
        }
    }

    /// `tessera session close NODE TSIH --yes`.
    struct Close: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close one session (its connection) on whichever node holds it.",
            discussion: """
                The host sees its connection drop; open-iscsi logs in again after its replacement timeout \
                unless the session is logged out on the host (iscsiadm -m node -u). Through the node that \
                holds it, the session is closed at once; through another node, that node is asked through \
                the store and closes it within about a second. Needs --yes.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node holding the session (tessera session list).") var node: UInt64
        @Argument(help: "The session's TSIH (tessera session list).") var tsih: UInt16
        @Flag(help: "Confirm: the host loses this path until it logs in again.") var yes = false

        func validate() throws {
            guard node > 0 else { throw ValidationError("node ids start at 1 (tessera cluster status lists them)") }
            guard tsih > 0 else { throw ValidationError("TSIH 0 names no session (tessera session list lists them)") }
            guard yes else {
                throw ValidationError(
                    "closing drops the host's connection on node \(node); run `tessera session list` to see who it is, "
                        + "then add --yes")
            }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (closed, raw, _) = try await client.send(
                "DELETE", "/v1/sessions/\(node)/\(tsih)", body: [], requestID: newRequestID(), as: SessionClose.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.sessionClose(closed)
        }
    }
}

extension TesseraCommand {
    /// The global options (``GlobalOptions``) written before the subcommand
    /// (`tessera --node A --node B lun show 0`) moved after it, where the
    /// parser reads them; everything else stays in its order.
    public static func hoistingGlobalOptions(_ arguments: [String]) -> [String] {
        var hoisted: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if ["--node", "--token-file", "--config"].contains(argument), index + 1 < arguments.endIndex {
                hoisted += arguments[index...index + 1]
                index += 2
            } else if argument.hasPrefix("--node=") || argument.hasPrefix("--token-file=") || argument.hasPrefix("--config=")
                || argument == "--json"
                || argument == "--verbose"
            {
                hoisted.append(argument)
                index += 1
            } else {
                break
            }
        }
        return Array(arguments[index...]) + hoisted
    }

    /// Entry point for `main.swift`: parses, runs, and exits 2 on a usage
    /// error (ArgumentParser's own status for one is 64).
    public static func launch() async {
        do {
            var command = try parseAsRoot(hoistingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            let status = Self.status(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                let stream = status == 0 ? FileHandle.standardOutput : FileHandle.standardError
                stream.write(Data((message + "\n").utf8))
            }
            Glibc.exit(status)
        }
    }
}
