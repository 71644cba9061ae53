import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The options every command that talks to a node takes.
public struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A node's admin API, HOST:PORT; repeat it to name fallbacks, tried in order (default: TESSERA_NODE, "
                + "comma-separated, else \(GlobalOptions.defaultNode)).", valueName: "host:port"))
    public var node: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("File holding the admin token (default: TESSERA_TOKEN).", valueName: "path"))
    public var tokenFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "tessera's settings file: nodes = [...] and token_file (default: TESSERA_CONFIG, else "
                + "~/.config/tessera/cli.toml when it exists).", valueName: "path"))
    public var config: String?

    @Flag(name: .long, help: "Print the API's JSON as it came.")
    public var json = false

    @Flag(name: .long, help: "Say which node answered, and why the ones before it did not.")
    public var verbose = false

    public init() {}

    /// Where `tessera` looks when neither `--node` nor TESSERA_NODE names a node.
    public static let defaultNode = "127.0.0.1:8080"

    public func validate() throws {
        for text in node where NodeEndpoint(parsing: text) == nil {
            throw ValidationError("--node \(text) is not HOST:PORT (e.g. 127.0.0.1:8081, [::1]:8081)")
        }
    }

    /// The nodes to try: `--node`s, else TESSERA_NODE, else the settings file's, else the default.
    func endpoints(environment: [String: String], configuration: CLIConfiguration = CLIConfiguration()) throws(CLIFailure)
        -> [NodeEndpoint]
    {
        var texts = node
        if texts.isEmpty, let variable = environment["TESSERA_NODE"] {
            texts = variable.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
        }
        if texts.isEmpty { texts = configuration.nodes }
        if texts.isEmpty { texts = [Self.defaultNode] }
        var endpoints: [NodeEndpoint] = []
        for text in texts {
            guard let endpoint = NodeEndpoint(parsing: text) else {
                throw CLIFailure("TESSERA_NODE: \(text) is not HOST:PORT (e.g. 127.0.0.1:8081)", status: 2)
            }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// The token: `--token-file`'s content, else TESSERA_TOKEN, else the
    /// settings file's `token_file`, else none.
    func token(
        environment: [String: String], readFile: (String) throws -> String,
        configuration: CLIConfiguration = CLIConfiguration()
    ) throws(CLIFailure) -> String? {
        if let tokenFile {
            let text: String
            do {
                text = try readFile(tokenFile)
            } catch {
                throw CLIFailure("cannot read --token-file \(tokenFile): \(error)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else {
                throw CLIFailure("--token-file \(tokenFile) is empty: write the token into it")
            }
            return token
        }
        let variable = environment["TESSERA_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines)
        if variable?.isEmpty == false { return variable }
        guard let file = configuration.tokenFile else { return nil }
        let text: String
        do {
            text = try readFile(file)
        } catch {
            throw CLIFailure("cannot read token_file \(file) (from \(configuration.path ?? "the settings file")): \(error)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw CLIFailure("token_file \(file) is empty: write the token into it") }
        return token
    }
}

/// What a command needs from the world, so tests can give it a fake one.
public struct CLIEnvironment: Sendable {
    /// Environment variables.
    public var variables: [String: String]
    /// How requests reach the nodes.
    public var transport: any AdminTransport
    /// Reads a file's text (`--token-file`).
    public var readFile: @Sendable (String) throws -> String
    /// Writes to stdout.
    public var out: @Sendable (String) -> Void
    /// Writes to stderr.
    public var err: @Sendable (String) -> Void
    /// Reads all of stdin (`--secret-stdin`); nil when it cannot be read.
    public var readStdin: @Sendable () -> String?

    public init(
        variables: [String: String], transport: any AdminTransport,
        readFile: @escaping @Sendable (String) throws -> String, out: @escaping @Sendable (String) -> Void,
        err: @escaping @Sendable (String) -> Void, readStdin: @escaping @Sendable () -> String? = { nil }
    ) {
        self.variables = variables
        self.transport = transport
        self.readFile = readFile
        self.out = out
        self.err = err
        self.readStdin = readStdin
    }

    /// The process's environment, NIO, the file system, stdout and stderr.
    public static var live: CLIEnvironment {
        CLIEnvironment(
            variables: ProcessInfo.processInfo.environment, transport: NIOAdminTransport(),
            readFile: { path in try String(contentsOfFile: path, encoding: .utf8) },
            out: { text in
                FileHandle.standardOutput.write(Data(text.utf8))
            },
            err: { text in FileHandle.standardError.write(Data(text.utf8)) },
            readStdin: {
                // At most 64 KiB: two secrets of 255 bytes fit many times.
                let data = FileHandle.standardInput.readData(ofLength: 64 << 10)
                return String(data: data, encoding: .utf8)
            })
    }
}

/// A command that reads one or more resources and prints them.
protocol ReadingCommand: AsyncParsableCommand {
    /// The global options.
    var global: GlobalOptions { get }
    /// Reads through `client` and returns what to print.
    func output(_ client: AdminClient) async throws(CLIFailure) -> String
    /// The same with the environment at hand (files, stdin); by default ``output(_:)``.
    func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String
}

extension ReadingCommand {
    func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
        try await output(client)
    }

    /// Runs the command against `environment`; returns the exit status (0, 1 or 2).
    func execute(in environment: CLIEnvironment) async -> Int32 {
        do throws(CLIFailure) {
            let configuration = try CLIConfiguration.load(
                explicit: global.config, variables: environment.variables, readFile: environment.readFile)
            let nodes = try global.endpoints(environment: environment.variables, configuration: configuration)
            let token = try global.token(
                environment: environment.variables, readFile: environment.readFile, configuration: configuration)
            let verbose = global.verbose
            let err = environment.err
            let client = AdminClient(
                nodes: nodes, token: token, transport: environment.transport,
                note: { text in if verbose { err("tessera: \(text)\n") } })
            environment.out(try await output(client, environment: environment))
            return 0
        } catch {
            environment.err("tessera: \(error.message)\n")
            return error.status
        }
    }

    func run() async throws {
        let status = await execute(in: .live)
        if status != 0 { throw ExitCode(status) }
    }
}
