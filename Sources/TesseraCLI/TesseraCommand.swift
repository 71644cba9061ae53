import ArgumentParser

/// `tessera`: the Tessera management CLI. It talks to a node's admin API
/// (not written yet: the `lun` commands say so and exit with status 2).
public struct TesseraCommand: AsyncParsableCommand {
    /// The version `tessera --version` prints (kept equal to `tesserad`'s).
    public static let version = "0.1.0-dev"

    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera management CLI.",
        version: version,
        subcommands: [LUNCommand.self])

    public init() {}
}

/// Status for commands that exist in the interface but not yet in the code.
let notImplementedExitCode = ExitCode(2)

/// `tessera lun`: manage the cluster's logical units (admin API, later issue).
public struct LUNCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lun",
        abstract: "Manage logical units (not implemented yet).",
        subcommands: [List.self, Create.self, Delete.self])

    public init() {}

    /// The admin API options every `lun` subcommand will need.
    struct Connection: ParsableArguments {
        @Option(name: .long, help: "Admin API address of any node.")
        var node = "127.0.0.1:8080"
    }

    /// `tessera lun list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List logical units.")
        @OptionGroup var connection: Connection
        func run() async throws { try notImplemented("lun list") }
    }

    /// `tessera lun create`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a logical unit.")
        @OptionGroup var connection: Connection
        @Option(help: "Size, e.g. 10GiB.") var size: String?
        func run() async throws { try notImplemented("lun create") }
    }

    /// `tessera lun delete`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a logical unit.")
        @OptionGroup var connection: Connection
        @Argument(help: "LUN id.") var id: String?
        func run() async throws { try notImplemented("lun delete") }
    }

    public func run() async throws { try notImplemented("lun") }
}

func notImplemented(_ command: String) throws -> Never {
    print("tessera \(command): not implemented yet")
    throw notImplementedExitCode
}

extension TesseraCommand {
    /// Entry point for `main.swift` (top-level code would pick the synchronous `main()` overload).
    public static func launch() async {
        let main: () async -> Void = Self.main
        await main()
    }
}
