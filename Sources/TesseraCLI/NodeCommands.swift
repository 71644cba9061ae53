import AdminAPI
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `tessera node`.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List, add, drain or remove cluster members.",
        subcommands: [List.self, Add.self, Drain.self, Undrain.self, Remove.self])

    /// `tessera node list`.
    struct List: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every member: whether it takes replicas, its liveness, what it holds, and moves under way.")
        @OptionGroup var global: GlobalOptions

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (nodes, raw, _) = try await client.get("/v1/nodes", as: [NodeStatus].self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.nodes(nodes)
        }
    }

    /// `tessera node add ID [--wait]`.
    struct Add: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a node that joined the cluster its share of the replicas.",
            discussion: """
                Start tesserad on the new machine first, with its own cluster.node_id and cluster.join naming \
                a member; `tessera node list` shows it once it has joined. Then this plans moves of replicas \
                from the busiest members to it; each sub-unit's primary copies its replica over (throttled by \
                cluster.resync_rate) and drops the old one once the copy is in sync. A node being drained \
                takes replicas again.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id (cluster.node_id in its TOML).") var id: UInt64
        @OptionGroup var wait: WaitOptions

        func validate() throws { try validateNode(id) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            throw CLIFailure("this command needs its environment", status: 2)
        }

        func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
            let (outcome, raw, _) = try await client.send(
                "POST", "/v1/nodes", body: jsonObjectBody(["id": id]), requestID: newRequestID(), as: NodeChangeOutcome.self)
            if global.json && !wait.wait { return String(decoding: raw, as: UTF8.self) }
            environment.out(Render.nodeChange(outcome))
            guard wait.wait else { return "" }
            let planned = outcome.movesPlanned
            return try await wait.follow(id, client: client, environment: environment, json: global.json) { status in
                let done = planned == 0 ? 100 : (Double(max(0, planned - status.movesOn)) / Double(planned) * 1000).rounded() / 10
                return (status.movesOn == 0 && status.replicasNotInSync == 0, done)
            }
        }
    }

    /// `tessera node drain ID [--wait]`.
    struct Drain: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move every replica off a node, so it can be removed; it serves hosts meanwhile.",
            discussion: """
                Each replica is copied to the live member holding the fewest (a full copy, throttled by \
                cluster.resync_rate); once the copy is in sync the node's replica leaves the sub-unit, and where \
                the node was primary it hands the sub-unit to the new replica first, so no write is ever held by \
                fewer in-sync replicas. Refused when a sub-unit has a replica on every other live member.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id.") var id: UInt64
        @OptionGroup var wait: WaitOptions

        func validate() throws { try validateNode(id) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            throw CLIFailure("this command needs its environment", status: 2)
        }

        func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
            let (outcome, raw, _) = try await client.send(
                "POST", "/v1/nodes/\(id)/drain", body: [], requestID: newRequestID(), as: NodeChangeOutcome.self)
            if global.json && !wait.wait { return String(decoding: raw, as: UTF8.self) }
            environment.out(Render.nodeChange(outcome))
            guard wait.wait else { return "" }
            return try await wait.follow(id, client: client, environment: environment, json: global.json) { status in
                (status.state == "drained", status.drain?.percent)
            }
        }
    }

    /// `tessera node undrain ID`.
    struct Undrain: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a drain: the node takes replicas again; moves not begun are dropped, begun ones finish.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id.") var id: UInt64

        func validate() throws { try validateNode(id) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (outcome, raw, _) = try await client.send(
                "DELETE", "/v1/nodes/\(id)/drain", body: [], requestID: newRequestID(), as: NodeChangeOutcome.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.nodeChange(outcome)
        }
    }

    /// `tessera node remove ID --yes [--force]`.
    struct Remove: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a drained node out of the cluster for good; it stops serving.",
            discussion: """
                The node must hold no replica (tessera node drain ID --wait), and the command must go to another \
                node. Its id cannot join again: to bring the machine back, wipe its data_dir and give it a new \
                cluster.node_id. --force removes a node that is down for good and still holds replicas: they are \
                dropped and made again on the live members (refused while it is the only in-sync copy of a \
                sub-unit).
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id.") var id: UInt64
        @Flag(help: "Confirm: the node leaves the cluster for good.") var yes = false
        @Flag(help: "The node is down for good: drop its replicas and make them again elsewhere.") var force = false

        func validate() throws {
            try validateNode(id)
            guard yes else { throw ValidationError("node \(id) leaves the cluster for good; add --yes") }
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let path = "/v1/nodes/\(id)?confirm=yes" + (force ? "&force=yes" : "")
            let (outcome, raw, _) = try await client.send(
                "DELETE", path, body: [], requestID: newRequestID(), as: NodeChangeOutcome.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.nodeChange(outcome)
        }
    }
}

/// `--wait` and `--timeout` of the commands whose change takes a while to
/// be carried out everywhere (replica moves, a LUN created or resized).
struct WaitOptions: ParsableArguments {
    @Flag(help: "Wait until the change is carried out, showing the progress (a bar on a terminal).") var wait = false
    @Option(
        help: ArgumentHelp("Give up waiting after this many seconds (exit status 1; the change goes on).", valueName: "s"))
    var timeout: Int?

    func validate() throws {
        if let timeout, timeout <= 0 { throw ValidationError("--timeout is a number of seconds from 1") }
        if timeout != nil && !wait { throw ValidationError("--timeout needs --wait") }
    }

    /// Polls node `id` every second until `finished` says so, printing the
    /// progress. Returns the last status (JSON with `json`) or a summary.
    func follow(
        _ id: UInt64, client: AdminClient, environment: CLIEnvironment, json: Bool,
        finished: (NodeStatus) -> (done: Bool, percent: Double?)
    ) async throws(CLIFailure) -> String {
        try await poll(environment: environment) { () async throws(CLIFailure) -> Poll in
            let (status, raw, _) = try await client.get("/v1/nodes/\(id)", as: NodeStatus.self)
            let (done, percent) = finished(status)
            return Poll(
                line: Render.progress(status, percent: nil, width: 0), percent: percent, done: done,
                result: json ? String(decoding: raw, as: UTF8.self) : "node \(id): \(status.state), moves done\n",
                late: "node \(id): still \(status.state) after \(timeout ?? 0) s (the moves go on); "
                    + "tessera node list shows where they stand")
        }
    }

    /// One look at a change under way.
    struct Poll {
        /// The progress in words.
        var line: String
        /// How far it is, when that can be told.
        var percent: Double?
        var done: Bool
        /// What to print once done.
        var result: String
        /// The failure message once `--timeout` has passed.
        var late: String
    }

    /// Calls `look` every second until it is done, printing the progress: a
    /// bar redrawn in place on a terminal, else a line whenever it changes.
    func poll(environment: CLIEnvironment, _ look: () async throws(CLIFailure) -> Poll) async throws(CLIFailure)
        -> String
    {
        let terminal = isatty(STDOUT_FILENO) != 0 && environment.variables["TERM"] != "dumb"
        let started = ContinuousClock.now
        var last = ""
        while true {
            let now = try await look()
            let line = Render.progressLine(now.line, percent: now.percent, width: terminal ? 30 : 0)
            if line != last {
                environment.out(terminal ? "\r\u{1B}[K" + line : line + "\n")
                last = line
            }
            if now.done {
                if terminal { environment.out("\n") }
                return now.result
            }
            if let timeout, ContinuousClock.now - started >= .seconds(timeout) {
                if terminal { environment.out("\n") }
                throw CLIFailure(now.late)
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Node ids start at 1.
func validateNode(_ id: UInt64) throws {
    guard id > 0 else { throw ValidationError("node ids start at 1 (tessera node list lists them)") }
}
