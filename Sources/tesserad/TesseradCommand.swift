import ArgumentParser
import Logging
import TesseraNode

#if canImport(Glibc)
    import Glibc
#endif

/// `tesserad`: the Tessera node daemon.
struct TesseradCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tesserad",
        abstract: "Tessera node daemon: a clustered iSCSI target.",
        discussion: """
            Without --config, runs the built-in default: portal 127.0.0.1:3260, target \
            iqn.2026-11.dev.tessera:default, LUN 0 of 1 GiB on ./tessera-data/lun0.img, no authentication.
            Exit status: 0 after a clean shutdown, 78 for an invalid configuration, 1 when the node cannot start.
            """,
        version: TesseraNode.version)

    @Option(name: .long, help: ArgumentHelp("TOML configuration file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "Overrides node.log_level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Flag(name: .long, help: "Validate the configuration, print a summary and exit.")
    var checkConfig = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write a new random cluster secret to this file (mode 600, never over an existing file) and exit. "
                + "Every node of a cluster needs a copy (cluster.secret_file).", valueName: "file"))
    var newClusterSecret: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        if let newClusterSecret {
            do {
                print(try ClusterSecretFile.makeNew(at: newClusterSecret))
                return
            } catch {
                Self.printError("\(error)")
                throw ExitCode.failure
            }
        }
        let source = config ?? "built-in default"
        let configuration: NodeConfiguration
        do {
            let text = try config.map(Self.readFile) ?? NodeConfiguration.defaultTOML
            configuration = try NodeConfiguration.parse(text, source: source)
        } catch let error as NodeConfigurationError {
            Self.printError(error.description)
            throw ExitCode(78)  // EX_CONFIG
        } catch {
            Self.printError("cannot read configuration \(source): \(error)")
            throw ExitCode(78)
        }
        if checkConfig {
            print(configuration.summary(source: source))
            return
        }
        let level = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? configuration.node.logLevel
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level) }
        let logger = Logger(label: "tesserad")
        logger.info("configuration loaded", metadata: ["source": "\(source)"])
        do {
            try await TesseraNode.run(configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode.failure
        }
    }

    /// A configuration file's text.
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "r") else {
            throw ReadError(description: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count {
                if ferror(file) != 0 { throw ReadError(description: "read error") }
                break
            }
            if bytes.count > 16 << 20 { throw ReadError(description: "larger than 16 MiB") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func printError(_ text: String) {
        var line = Array("tesserad: \(text)\n".utf8)
        _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

extension TesseradCommand {
    /// Entry point for `main.swift` (top-level code would pick the synchronous `main()` overload).
    static func launch() async {
        let main: () async -> Void = Self.main
        await main()
    }
}
