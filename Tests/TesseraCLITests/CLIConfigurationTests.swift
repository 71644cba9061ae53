import Testing

@testable import TesseraCLI

/// `tessera`'s settings file: what it holds, what it is refused for, and where it stands among the other sources.
@Suite struct CLIConfigurationTests {
    @Test func nodesAndTokenFileAreRead() throws {
        let parsed = try CLIConfiguration.parse(
            #"nodes = ["10.0.0.1:8080", "[::1]:8081"]"# + "\n" + #"token_file = "/etc/tessera/admin.token""#, path: "c.toml")
        #expect(parsed.nodes == ["10.0.0.1:8080", "[::1]:8081"])
        #expect(parsed.tokenFile == "/etc/tessera/admin.token")
    }

    @Test(arguments: [
        (#"nodes = "10.0.0.1:8080""#, "list"), (#"nodes = ["nohost"]"#, "not HOST:PORT"), (#"node = ["a:1"]"#, "unknown key node"),
        (#"token_file = 5"#, "path string"), ("nodes = [", "not TOML"),
    ])
    func mistakesAreUsageErrorsThatSayWhat(text: String, says: String) {
        do {
            _ = try CLIConfiguration.parse(text, path: "c.toml")
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.status == 2 && error.message.contains(says) && error.message.hasPrefix("c.toml"), "\(error.message)")
        }
    }

    @Test func flagsAndVariablesComeFirstAndTheDefaultFileIsOptional() async throws {
        let files = [
            "/home/a/.config/tessera/cli.toml": #"nodes = ["127.0.0.1:8083", "127.0.0.1:8082"]"# + "\n" + #"token_file = "/t""#,
            "/t": "file-token\n", "/other.toml": #"nodes = ["127.0.0.1:8082"]"#,
        ]
        let read: (String) throws -> String = { path in
            guard let text = files[path] else { throw CLIFailure("no such file") }
            return text
        }
        let home = ["HOME": "/home/a"]
        let fromFile = try CLIConfiguration.load(explicit: nil, variables: home, readFile: read)
        let options = try GlobalOptions.parse([])
        #expect(try options.endpoints(environment: home, configuration: fromFile).map { "\($0)" } == ["127.0.0.1:8083", "127.0.0.1:8082"])
        #expect(try options.token(environment: home, readFile: read, configuration: fromFile) == "file-token")
        var variables = home
        variables["TESSERA_NODE"] = "127.0.0.1:9999"
        variables["TESSERA_TOKEN"] = "env-token"
        #expect(try options.endpoints(environment: variables, configuration: fromFile).map { "\($0)" } == ["127.0.0.1:9999"])
        #expect(try options.token(environment: variables, readFile: read, configuration: fromFile) == "env-token")
        let named = try CLIConfiguration.load(explicit: nil, variables: ["TESSERA_CONFIG": "/other.toml"], readFile: read)
        #expect(named.nodes == ["127.0.0.1:8082"])
        #expect(try CLIConfiguration.load(explicit: nil, variables: ["HOME": "/nobody"], readFile: read) == CLIConfiguration())
        #expect(throws: CLIFailure.self) { try CLIConfiguration.load(explicit: "/missing.toml", variables: home, readFile: read) }
    }
}
