import AdminAPI
import TOMLKit

extension ConfigurationReader {
    /// `[cluster]`: node_id, peer, wire, join, lease, resync_rate, replace_after, failback, store_dir, secret_file.
    mutating func readCluster(_ table: TOMLTable) -> ClusterSettings {
        let path = "cluster"
        checkKeys(table, path, allowed: [
                "node_id", "peer", "wire", "join", "lease", "resync_rate", "replace_after", "failback", "store_dir",
                "secret_file",
            ])
        var settings = ClusterSettings()
        // dqlite node ids are non-zero 64-bit integers; TOML integers are signed 64-bit.
        if let id = integer(table, "node_id", path, in: 1...Int.max) { settings.nodeID = UInt64(id) }
        if let peer = string(table, "peer", path) {
            switch ListenAddress.parse(peer) {
            case .success(let address) where Self.hasExplicitPort(peer):
                settings.peerHost = address.host
                settings.peerPort = address.port
            case .success:
                error("\(path).peer", "needs an explicit port: host:port")
            case .failure(let problem):
                error("\(path).peer", problem.message)
            }
        }
        if let wire = string(table, "wire", path) {
            switch ListenAddress.parse(wire) {
            case .success(let address) where Self.hasExplicitPort(wire):
                settings.wireHost = address.host
                settings.wirePort = address.port
            case .success:
                error("\(path).wire", "needs an explicit port: host:port")
            case .failure(let problem):
                error("\(path).wire", problem.message)
            }
        }
        if let seeds = strings(table, "join", path) {
            for (offset, seed) in seeds.enumerated() {
                switch ListenAddress.parse(seed) {
                case .success(let address) where Self.hasExplicitPort(seed):
                    let text = address.host.contains(":") ? "[\(address.host)]:\(address.port)" : "\(address.host):\(address.port)"
                    if !settings.join.contains(text) { settings.join.append(text) }
                case .success:
                    error("\(path).join[\(offset)]", "needs an explicit port: host:port")
                case .failure(let problem):
                    error("\(path).join[\(offset)]", problem.message)
                }
            }
        }
        if let value = table["lease"] {
            if let seconds = value.int {
                if (1...86_400).contains(seconds) { settings.lease = .seconds(seconds) } else {
                    error("\(path).lease", "\(seconds) is outside 1...86400 seconds")
                }
            } else if let text = value.string {
                switch DurationValue.parse(text) {
                case .success(let duration) where duration >= .milliseconds(100): settings.lease = duration
                case .success: error("\(path).lease", "must be at least 100ms")
                case .failure(let problem): error("\(path).lease", problem.message)
                }
            } else {
                error("\(path).lease", "expected a duration such as \"2s\"")
            }
        }
        if let value = table["resync_rate"] {
            if let bytes = value.int {
                if bytes > 0 { settings.resyncRate = UInt64(bytes) } else { error("\(path).resync_rate", "must be positive") }
            } else if let text = value.string {
                switch ByteSize.parse(text) {
                case .success(let bytes): settings.resyncRate = bytes
                case .failure(let problem): error("\(path).resync_rate", problem.message + " (bytes per second)")
                }
            } else {
                error("\(path).resync_rate", "expected bytes per second (integer) or a string such as \"128MiB\"")
            }
        }
        if let value = table["replace_after"] {
            if value.string == "off" {
                settings.replaceAfter = nil
            } else if let text = value.string, case .success(let duration) = DurationValue.parse(text) {
                if duration >= .seconds(1) { settings.replaceAfter = duration } else {
                    error("\(path).replace_after", "must be at least 1s, or \"off\"")
                }
            } else {
                error("\(path).replace_after", "expected a duration such as \"10m\", or \"off\"")
            }
        }
        if let failback = bool(table, "failback", path) { settings.failback = failback }
        if let dir = string(table, "store_dir", path) {
            if dir.isEmpty { error("\(path).store_dir", "must not be empty") } else { settings.storeDirectory = dir }
        }
        if let file = string(table, "secret_file", path) {
            if file.isEmpty { error("\(path).secret_file", "must not be empty") } else { settings.secretFile = file }
        }
        // Only the bootstrap node (id 1) may start a cluster on its own; any
        // other node with an empty store would wait forever for a member.
        if settings.nodeID != 1 && settings.join.isEmpty {
            error("\(path).join", "required when node_id is not 1 (a store address of any member)")
        }
        return settings
    }

    /// `[admin]`: listen, token, token_file. A `listen` off loopback needs a
    /// token (ARCHITECTURE.md "Trust boundaries"); the file itself is read,
    /// and its mode checked, when the node starts (``AdminTokenFile``).
    mutating func readAdmin(_ table: TOMLTable) -> AdminSettings? {
        checkKeys(table, "admin", allowed: ["listen", "token", "token_file"])
        let token = string(table, "token", "admin")
        let tokenFile = string(table, "token_file", "admin")
        if let token, AdminToken(token) == nil { error("admin.token", "must not be empty") }
        if let tokenFile, tokenFile.isEmpty { error("admin.token_file", "must not be empty") }
        if token != nil, tokenFile != nil { error("admin.token", "set token or token_file, not both") }
        guard let listen = string(table, "listen", "admin") else {
            error("admin.listen", "required")
            return nil
        }
        switch ListenAddress.parse(listen) {
        case .success(let address) where Self.hasExplicitPort(listen):
            let settings = AdminSettings(host: address.host, port: address.port, token: token, tokenFile: tokenFile)
            if !settings.isLoopback && !settings.hasToken {
                error(
                    "admin.listen",
                    "\(settings.address) is not a loopback address and no token is configured: anyone who reaches it "
                        + "could read the cluster; set admin.token_file (a file only its owner can read, chmod 600) "
                        + "or listen on 127.0.0.1")
            }
            return settings
        case .success:
            error("admin.listen", "needs an explicit port: host:port")
        case .failure(let problem):
            error("admin.listen", problem.message)
        }
        return nil
    }

    /// Store and admin addresses have no default port: `host:port` or `[v6]:port`.
    static func hasExplicitPort(_ text: String) -> Bool {
        text.hasPrefix("[") ? text.contains("]:") : text.contains(":")
    }
}
