import AdminAPI
import ArgumentParser
import Foundation

/// `/v1/targets/{iqn}/...` with each name percent-encoded as a path segment.
func targetPath(_ target: String, _ rest: String...) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove(charactersIn: "/?#%")
    let segments = [target] + rest
    return "/v1/targets/"
        + segments.map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0 }
        .joined(separator: "/")
}

/// Checks an initiator name before anything is sent (usage error, exit 2).
func validateInitiator(_ name: String) throws {
    if case .failure(let failure) = AccessValidation.initiator(name) {
        throw ValidationError("\(failure.error): \(failure.hint)")
    }
}

/// A fresh request id: the `Idempotency-Key` of one command, the same on every node it tries.
func newRequestID() -> String { UUID().uuidString.lowercased() }

/// The body of a JSON object of strings (keys sorted).
func jsonBody(_ fields: [String: String]) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return (try? encoder.encode(fields)).map(Array.init) ?? []
}

// MARK: acl

/// `tessera acl`.
struct ACLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "List, add and remove the initiators allowed to log in to a target.",
        discussion: """
            A target with an empty ACL admits every initiator; adding the first initiator restricts it to that \
            one. Changes take effect on every node within about a second, for new logins; sessions already \
            logged in stay. A node restarted with a TOML that names the target sets its ACL back to the TOML's.
            """,
        subcommands: [List.self, Add.self, Remove.self])

    /// `tessera acl list [TARGET]`.
    struct List: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "List each target's allowed initiators and the CHAP each must prove (never a secret).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("Only this target.", valueName: "target")) var target: String?

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (targets, _, _) = try await client.get("/v1/targets", as: [TargetStatus].self)
            let shown = targets.filter { t in target.map { t.name.lowercased() == $0.lowercased() } ?? true }
            if let target, shown.isEmpty {
                throw CLIFailure("no target \(target); tessera target list lists the targets")
            }
            return global.json ? AdminJSON.encode(shown) : Render.acl(shown)
        }
    }

    /// `tessera acl add TARGET INITIATOR`.
    struct Add: ReadingCommand {
        static let configuration = CommandConfiguration(abstract: "Allow an initiator to log in to a target.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The target's iSCSI name.", valueName: "target")) var target: String
        @Argument(help: ArgumentHelp("The initiator's iSCSI name (iqn., eui. or naa.).", valueName: "initiator"))
        var initiator: String

        func validate() throws { try validateInitiator(initiator) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.send(
                "POST", targetPath(target, "acls"), body: jsonBody(["initiator": initiator]),
                requestID: newRequestID(), as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.acl([status])
        }
    }

    /// `tessera acl remove TARGET INITIATOR`.
    struct Remove: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop an initiator from logging in to a target (its open sessions stay).",
            discussion: "The last initiator of an ACL cannot be removed: an empty ACL would admit every initiator.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The target's iSCSI name.", valueName: "target")) var target: String
        @Argument(help: ArgumentHelp("The initiator's iSCSI name.", valueName: "initiator")) var initiator: String

        func validate() throws { try validateInitiator(initiator) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.send(
                "DELETE", targetPath(target, "acls", initiator), body: [], requestID: newRequestID(),
                as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.acl([status])
        }
    }
}

// MARK: chap

/// `tessera chap`.
struct CHAPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chap",
        abstract: "Set or remove one initiator's CHAP credentials on a target.",
        discussion: """
            An initiator's own credentials take the place of the target's ([targets.chap] in the TOML) for \
            that initiator. Secrets are write-only: no command or API answer shows them.
            """,
        subcommands: [SetCredentials.self, Remove.self])

    /// `tessera chap set TARGET INITIATOR --user U --secret-file F`.
    struct SetCredentials: ReadingCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Require CHAP (optionally mutual) from one initiator.",
            discussion: """
                The secret is read from a file (--secret-file) or from stdin (--secret-stdin), never from an \
                argument: arguments are visible to every user of the machine in ps and /proc/PID/cmdline. One \
                final newline is stripped. A secret is 12...255 bytes: RFC 7143 §12.1.3 asks for at least 96 \
                bits, and open-iscsi and LIO take at most 255. With --secret-stdin and \
                --mutual-secret-stdin, stdin holds the secret on its first line and the mutual secret on the \
                second. The mutual secret must differ from the secret.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The target's iSCSI name.", valueName: "target")) var target: String
        @Argument(help: ArgumentHelp("The initiator's iSCSI name.", valueName: "initiator")) var initiator: String
        @Option(help: ArgumentHelp("CHAP_N the initiator sends (node.session.auth.username).", valueName: "name"))
        var user: String
        @Option(help: ArgumentHelp("A file holding the secret.", valueName: "path")) var secretFile: String?
        @Flag(help: "Read the secret from stdin.") var secretStdin = false
        @Option(help: ArgumentHelp("CHAP_N the target answers with (mutual CHAP).", valueName: "name"))
        var mutualUser: String?
        @Option(help: ArgumentHelp("A file holding the mutual secret.", valueName: "path"))
        var mutualSecretFile: String?
        @Flag(help: "Read the mutual secret from stdin (the second line with --secret-stdin).")
        var mutualSecretStdin = false

        func validate() throws {
            try validateInitiator(initiator)
            guard (secretFile != nil) != secretStdin else {
                throw ValidationError("give the secret with exactly one of --secret-file PATH or --secret-stdin")
            }
            let mutualSecret = mutualSecretFile != nil || mutualSecretStdin
            guard !(mutualSecretFile != nil && mutualSecretStdin) else {
                throw ValidationError("give --mutual-secret-file or --mutual-secret-stdin, not both")
            }
            guard (mutualUser != nil) == mutualSecret else {
                throw ValidationError(
                    "--mutual-user needs --mutual-secret-file PATH or --mutual-secret-stdin, and they need it")
            }
        }

        /// The secret and mutual secret from their files or stdin, one final newline stripped.
        func secrets(_ environment: CLIEnvironment) throws(CLIFailure) -> (secret: String, mutual: String?) {
            var stdinLines: [String] = []
            if secretStdin || mutualSecretStdin {
                guard let text = environment.readStdin() else { throw CLIFailure("cannot read stdin", status: 2) }
                // "\r\n" is one Character, and a newline.
                stdinLines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
            }
            func file(_ path: String, _ option: String) throws(CLIFailure) -> String {
                do {
                    return Self.strippingNewline(try environment.readFile(path))
                } catch {
                    throw CLIFailure("cannot read \(option) \(path): \(error)")
                }
            }
            func line(_ index: Int, _ what: String) throws(CLIFailure) -> String {
                guard index < stdinLines.count, !stdinLines[index].isEmpty else {
                    throw CLIFailure("stdin has no \(what) on line \(index + 1)", status: 2)
                }
                return stdinLines[index]
            }
            let secret: String
            if let path = secretFile {
                secret = try file(path, "--secret-file")
            } else {
                secret = try line(0, "secret")
            }
            var mutual: String?
            if let path = mutualSecretFile {
                mutual = try file(path, "--mutual-secret-file")
            } else if mutualSecretStdin {
                mutual = try line(secretStdin ? 1 : 0, "mutual secret")
            }
            return (secret, mutual)
        }

        static func strippingNewline(_ text: String) -> String {
            if text.hasSuffix("\r\n") { return String(text.dropLast(2)) }
            if text.hasSuffix("\n") { return String(text.dropLast()) }
            return text
        }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            throw CLIFailure("chap set needs its environment", status: 2)
        }

        func output(_ client: AdminClient, environment: CLIEnvironment) async throws(CLIFailure) -> String {
            let (secret, mutualSecret) = try secrets(environment)
            var fields = ["user": user, "secret": secret]
            if let mutualUser, let mutualSecret {
                fields["mutual_user"] = mutualUser
                fields["mutual_secret"] = mutualSecret
            }
            let (status, raw, _) = try await client.send(
                "PUT", targetPath(target, "chap", initiator), body: jsonBody(fields), requestID: newRequestID(),
                as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.acl([status])
        }
    }

    /// `tessera chap remove TARGET INITIATOR`.
    struct Remove: ReadingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove one initiator's own CHAP credentials (the target's, if any, apply again).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The target's iSCSI name.", valueName: "target")) var target: String
        @Argument(help: ArgumentHelp("The initiator's iSCSI name.", valueName: "initiator")) var initiator: String

        func validate() throws { try validateInitiator(initiator) }

        func output(_ client: AdminClient) async throws(CLIFailure) -> String {
            let (status, raw, _) = try await client.send(
                "DELETE", targetPath(target, "chap", initiator), body: [], requestID: newRequestID(),
                as: TargetStatus.self)
            return global.json ? String(decoding: raw, as: UTF8.self) : Render.acl([status])
        }
    }
}
