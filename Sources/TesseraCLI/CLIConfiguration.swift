import Foundation
import TOMLKit

/// `tessera`'s own settings file, for an administrator who always talks to
/// the same cluster:
///
///     nodes = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"]   # tried in order
///     token_file = "/etc/tessera/admin.token"
///
/// Read from `--config PATH`, else `TESSERA_CONFIG`, else
/// `$HOME/.config/tessera/cli.toml` when that exists. `--node`,
/// `TESSERA_NODE`, `--token-file` and `TESSERA_TOKEN` come before it.
struct CLIConfiguration: Hashable, Sendable {
    var nodes: [String] = []
    var tokenFile: String?
    /// Where it was read from (for messages).
    var path: String?

    static let keys: Set<String> = ["nodes", "token_file"]

    /// Parses the file's text; a wrong key or type is a usage error that names it.
    static func parse(_ text: String, path: String) throws(CLIFailure) -> CLIConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch {
            throw CLIFailure("\(path) is not TOML: \(error)", status: 2)
        }
        if let unknown = table.keys.sorted().first(where: { !keys.contains($0) }) {
            throw CLIFailure("\(path): unknown key \(unknown) (it takes nodes and token_file)", status: 2)
        }
        var configuration = CLIConfiguration(path: path)
        if let value = table["nodes"] {
            guard let array = value.array, let nodes = Optional(array.compactMap(\.string)), nodes.count == array.count else {
                throw CLIFailure("\(path): nodes is a list of \"HOST:PORT\" strings", status: 2)
            }
            for node in nodes where NodeEndpoint(parsing: node) == nil {
                throw CLIFailure("\(path): nodes: \(node) is not HOST:PORT (e.g. 127.0.0.1:8081)", status: 2)
            }
            configuration.nodes = nodes
        }
        if let value = table["token_file"] {
            guard let file = value.string, !file.isEmpty else {
                throw CLIFailure("\(path): token_file is a path string", status: 2)
            }
            configuration.tokenFile = file
        }
        return configuration
    }

    /// The file `explicit` (`--config`) or TESSERA_CONFIG names, read and
    /// parsed (one that cannot be read is an error), else the default file
    /// when it can be read, else nothing.
    static func load(
        explicit: String?, variables: [String: String], readFile: (String) throws -> String
    ) throws(CLIFailure) -> CLIConfiguration {
        if let named = explicit ?? variables["TESSERA_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let text: String
            do {
                text = try readFile(named)
            } catch {
                throw CLIFailure("cannot read the configuration \(named): \((error as NSError).localizedDescription)")
            }
            return try parse(text, path: named)
        }
        guard let home = variables["HOME"], !home.isEmpty else { return CLIConfiguration() }
        let path = home + "/.config/tessera/cli.toml"
        guard let text = try? readFile(path) else { return CLIConfiguration() }
        return try parse(text, path: path)
    }
}
