import ClusterModel
import AIOBlockStorage
import ISCSITargetServer
import Logging
import TOMLKit

extension NodeConfiguration {
    /// Parses and validates TOML text. `source` names the text in errors.
    ///
    /// Every problem is collected; the error lists all of them with key and
    /// line. Unknown keys are errors too (a misspelt `chap` must not silently
    /// leave a target open).
    public static func parse(_ text: String, source: String) throws(NodeConfigurationError) -> NodeConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw NodeConfigurationError(
                source: source,
                diagnostics: [
                    ConfigurationDiagnostic(key: "(syntax)", line: error.source.begin.line, message: error.description)
                ])
        } catch {
            throw NodeConfigurationError(
                source: source, diagnostics: [ConfigurationDiagnostic(key: "(syntax)", line: nil, message: "\(error)")])
        }
        var reader = ConfigurationReader(index: TOMLLineIndex(text))
        let configuration = reader.read(table)
        guard reader.errors.isEmpty else {
            throw NodeConfigurationError(
                source: source, diagnostics: reader.errors.sorted { ($0.line ?? .max) < ($1.line ?? .max) })
        }
        return configuration
    }
}

/// Reads TOMLKit tables into configuration values, collecting diagnostics.
struct ConfigurationReader {
    let index: TOMLLineIndex
    var errors: [ConfigurationDiagnostic] = []
    var warnings: [ConfigurationDiagnostic] = []
    /// `[iscsi] protected_network`: the operator says the iSCSI network is
    /// protected (IPsec, an isolated storage network), so a CHAP secret
    /// shorter than 96 bits is a warning there instead of an error.
    var protectedNetwork = false

    init(index: TOMLLineIndex) { self.index = index }

    mutating func error(_ key: String, _ message: String) {
        errors.append(ConfigurationDiagnostic(key: key, line: index.line(of: key), message: message))
    }

    mutating func warning(_ key: String, _ message: String) {
        warnings.append(ConfigurationDiagnostic(key: key, line: index.line(of: key), message: message))
    }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    // MARK: Typed accessors

    mutating func checkKeys(_ table: TOMLTable, _ path: String, allowed: Set<String>) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            error(Self.join(path, key), "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    mutating func string(_ table: TOMLTable, _ key: String, _ path: String) -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else {
            error(Self.join(path, key), "expected a string, found \(value.type)")
            return nil
        }
        return string
    }

    mutating func bool(_ table: TOMLTable, _ key: String, _ path: String) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let bool = value.bool else {
            error(Self.join(path, key), "expected true or false, found \(value.type)")
            return nil
        }
        return bool
    }

    mutating func integer(
        _ table: TOMLTable, _ key: String, _ path: String, in range: ClosedRange<Int>, citation: String = ""
    ) -> Int? {
        guard let value = table[key] else { return nil }
        guard let int = value.int else {
            error(Self.join(path, key), "expected an integer, found \(value.type)")
            return nil
        }
        guard range.contains(int) else {
            error(
                Self.join(path, key),
                "\(int) is outside \(range.lowerBound)...\(range.upperBound)\(citation.isEmpty ? "" : " (\(citation))")"
            )
            return nil
        }
        return int
    }

    mutating func tables(_ table: TOMLTable, _ key: String, _ path: String) -> [(TOMLTable, String)] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else {
            error(Self.join(path, key), "expected an array of tables ([[\(key)]])")
            return []
        }
        var result: [(TOMLTable, String)] = []
        for (offset, element) in array.enumerated() {
            let elementPath = "\(Self.join(path, key))[\(offset)]"
            guard let table = element.table else {
                error(elementPath, "expected a table")
                continue
            }
            result.append((table, elementPath))
        }
        return result
    }

    mutating func table(_ table: TOMLTable, _ key: String, _ path: String) -> TOMLTable? {
        guard let value = table[key] else { return nil }
        guard let sub = value.table else {
            error(Self.join(path, key), "expected a table")
            return nil
        }
        return sub
    }

    mutating func strings(_ table: TOMLTable, _ key: String, _ path: String) -> [String]? {
        guard let value = table[key] else { return nil }
        guard let array = value.array else {
            error(Self.join(path, key), "expected an array of strings")
            return nil
        }
        var result: [String] = []
        for (offset, element) in array.enumerated() {
            guard let string = element.string else {
                error("\(Self.join(path, key))[\(offset)]", "expected a string, found \(element.type)")
                continue
            }
            result.append(string)
        }
        return result
    }

    mutating func integers(_ table: TOMLTable, _ key: String, _ path: String) -> [Int]? {
        guard let value = table[key] else { return nil }
        guard let array = value.array else {
            error(Self.join(path, key), "expected an array of integers")
            return nil
        }
        var result: [Int] = []
        for (offset, element) in array.enumerated() {
            guard let int = element.int else {
                error("\(Self.join(path, key))[\(offset)]", "expected an integer, found \(element.type)")
                continue
            }
            result.append(int)
        }
        return result
    }

    // MARK: Sections

    mutating func read(_ root: TOMLTable) -> NodeConfiguration {
        checkKeys(
            root, "", allowed: ["node", "portal", "iscsi", "target", "discovery_chap", "cluster", "admin", "limits"])
        var configuration = NodeConfiguration(portals: [], targets: [])
        if let node = table(root, "node", "") { configuration.node = readNode(node) }
        configuration.portals = readPortals(root)
        if let iscsi = table(root, "iscsi", "") { configuration.iscsi = readISCSI(iscsi) }
        if let limits = table(root, "limits", "") { configuration.limits = readLimits(limits) }
        if let chap = table(root, "discovery_chap", "") {
            configuration.discoveryCHAP = readCHAP(chap, "discovery_chap")
        }
        configuration.targets = readTargets(root, portals: configuration.portals)
        let clusterTable = table(root, "cluster", "")
        if let clusterTable { configuration.cluster = readCluster(clusterTable) }
        if clusterTable?["peer"] == nil, let first = configuration.portals.first {
            configuration.cluster.peerPort = ClusterSettings.defaultPeerPort(portalPort: first.port)
        }
        if let admin = table(root, "admin", "") { configuration.admin = readAdmin(admin) }
        if let admin = configuration.admin {
            let peer = configuration.cluster.peerAddress
            let clashes = [peer] + configuration.portals.map(\.address)
            if clashes.contains(admin.address) { error("admin.listen", "\(admin.address) is already used by a portal or cluster.peer") }
        }
        if configuration.portals.contains(where: { $0.address == configuration.cluster.peerAddress }) {
            error("cluster.peer", "\(configuration.cluster.peerAddress) is already used by a [[portal]]")
        }
        if !configuration.cluster.join.isEmpty {
            // A node joining a cluster serves the targets the store holds.
            warnings.removeAll { $0.key == "target" }
        }
        configuration.warnings = warnings
        return configuration
    }

    mutating func readNode(_ table: TOMLTable) -> NodeSettings {
        checkKeys(table, "node", allowed: ["data_dir", "log_level"])
        var settings = NodeSettings()
        if let dir = string(table, "data_dir", "node") {
            if dir.isEmpty { error("node.data_dir", "must not be empty") } else { settings.dataDirectory = dir }
        }
        if let level = string(table, "log_level", "node") {
            if let parsed = Logger.Level(rawValue: level) {
                settings.logLevel = parsed
            } else {
                error(
                    "node.log_level", "\"\(level)\" is not one of trace, debug, info, notice, warning, error, critical")
            }
        }
        return settings
    }

    mutating func readPortals(_ root: TOMLTable) -> [PortalConfiguration] {
        let entries = tables(root, "portal", "")
        if root["portal"] == nil { return [PortalConfiguration()] }
        if entries.isEmpty { error("portal", "at least one [[portal]] is needed") }
        var portals: [PortalConfiguration] = []
        var seen: [String: String] = [:]
        for (table, path) in entries {
            checkKeys(table, path, allowed: ["listen", "group"])
            var portal = PortalConfiguration()
            if let listen = string(table, "listen", path) {
                switch ListenAddress.parse(listen) {
                case .success(let address):
                    portal.host = address.host
                    portal.port = address.port
                case .failure(let problem):
                    error("\(path).listen", problem.message)
                }
            }
            // RFC 7143 §13.9: TargetPortalGroupTag is a 16-bit binary value.
            if let group = integer(table, "group", path, in: 1...65535, citation: "RFC 7143 §13.9") {
                portal.groupTag = UInt16(group)
            }
            if let previous = seen[portal.address] {
                error("\(path).listen", "\(portal.address) is already used by \(previous)")
            }
            seen[portal.address] = path
            portals.append(portal)
        }
        return portals
    }

    mutating func readISCSI(_ table: TOMLTable) -> ISCSISettings {
        let path = "iscsi"
        checkKeys(
            table, path,
            allowed: [
                "queue_depth", "max_recv_data_segment_length", "max_burst_length", "first_burst_length",
                "immediate_data", "initial_r2t", "nop_in_interval", "nop_in_timeout", "protected_network",
                "idle_poll",
            ])
        protectedNetwork = bool(table, "protected_network", path) ?? false
        var settings = ISCSISettings()
        if let value = integer(table, "queue_depth", path, in: 1...65536) { settings.queueDepth = value }
        // RFC 7143 §13.12, §13.13, §13.14: 512 to 2^24 - 1.
        let lengths = 512...16_777_215
        if let value = integer(table, "max_recv_data_segment_length", path, in: lengths, citation: "RFC 7143 §13.12") {
            settings.maxRecvDataSegmentLength = value
        }
        if let value = integer(table, "max_burst_length", path, in: lengths, citation: "RFC 7143 §13.13") {
            settings.maxBurstLength = value
        }
        if let value = integer(table, "first_burst_length", path, in: lengths, citation: "RFC 7143 §13.14") {
            settings.firstBurstLength = value
        }
        // RFC 7143 §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
        if settings.firstBurstLength > settings.maxBurstLength {
            error(
                "\(path).first_burst_length",
                "\(settings.firstBurstLength) exceeds max_burst_length \(settings.maxBurstLength) (RFC 7143 §13.14)")
        }
        if let value = bool(table, "immediate_data", path) { settings.immediateData = value }
        if let value = bool(table, "initial_r2t", path) { settings.initialR2T = value }
        if let value = integer(table, "nop_in_interval", path, in: 0...3600) {
            settings.nopInInterval = .seconds(value)
        }
        if let value = integer(table, "nop_in_timeout", path, in: 1...3600) { settings.nopInTimeout = .seconds(value) }
        if let value = integer(table, "idle_poll", path, in: 0...1000) { settings.idlePoll = .microseconds(value) }
        return settings
    }

    mutating func readCHAP(_ table: TOMLTable, _ path: String) -> CHAPConfiguration? {
        checkKeys(table, path, allowed: ["user", "secret", "mutual_user", "mutual_secret"])
        let user = string(table, "user", path)
        let secret = string(table, "secret", path)
        let mutualUser = string(table, "mutual_user", path)
        let mutualSecret = string(table, "mutual_secret", path)
        var valid = true
        for (key, value) in [("user", user), ("secret", secret)] {
            if value == nil || value?.isEmpty == true {
                error("\(path).\(key)", "required and must not be empty")
                valid = false
            }
        }
        // RFC 7143 §12.1.3: CHAP_N and the secret are what both sides hold.
        if (mutualUser == nil) != (mutualSecret == nil) || mutualUser?.isEmpty == true || mutualSecret?.isEmpty == true
        {
            error(
                "\(path).\(mutualUser == nil ? "mutual_user" : "mutual_secret")",
                "mutual CHAP needs both mutual_user and mutual_secret, neither empty")
            valid = false
        }
        // RFC 7143 §9.2.1: a CHAP secret used for initiator authentication
        // MUST NOT be configured for authentication of any target.
        if let secret, let mutualSecret, secret == mutualSecret {
            error("\(path).mutual_secret", "must differ from secret (RFC 7143 §9.2.1)")
            valid = false
        }
        // RFC 7143 §9.2.1: CHAP secrets shorter than 96 bits are open to
        // off-line dictionary attacks without IPsec: refused unless the
        // operator says the network is protected.
        for (key, value) in [("secret", secret), ("mutual_secret", mutualSecret)] {
            if let value, !value.isEmpty, value.utf8.count < 12 {
                if protectedNetwork {
                    warning("\(path).\(key)", "shorter than 12 bytes; RFC 7143 §9.2.1 recommends at least 96 bits")
                } else {
                    error(
                        "\(path).\(key)",
                        "shorter than 12 bytes: RFC 7143 §9.2.1 asks for at least 96 bits without IPsec (e.g. openssl rand -base64 12); "
                            + "set [iscsi] protected_network = true if the iSCSI network is protected")
                    valid = false
                }
            }
        }
        guard valid, let user, let secret else { return nil }
        return CHAPConfiguration(user: user, secret: secret, mutualUser: mutualUser, mutualSecret: mutualSecret)
    }

    mutating func readTargets(_ root: TOMLTable, portals: [PortalConfiguration]) -> [TargetConfiguration] {
        var targets: [TargetConfiguration] = []
        var names: [String: String] = [:]
        var filePaths: [String: String] = [:]
        let groups = Set(portals.map(\.groupTag))
        let entries = tables(root, "target", "")
        if entries.isEmpty { warning("target", "no [[target]]: the node exports nothing") }
        for (table, path) in entries {
            checkKeys(table, path, allowed: ["name", "alias", "portal_groups", "acl", "chap", "lun"])
            var target = TargetConfiguration(name: "", portalGroups: groups.sorted())
            if let name = string(table, "name", path) {
                if let problem = ISCSIName.problem(with: name) {
                    error("\(path).name", problem)
                } else if let previous = names[name.lowercased()] {
                    error("\(path).name", "\(name) is already used by \(previous)")
                } else {
                    target.name = name
                    names[name.lowercased()] = path
                }
            } else {
                error("\(path).name", "required")
            }
            if let alias = string(table, "alias", path) {
                // RFC 7143 §13.6: TargetAlias is a human-readable UTF-8 text; keep it one line.
                if alias.isEmpty || alias.utf8.count > 255 || alias.contains(where: { $0.isNewline }) {
                    error("\(path).alias", "must be 1 to 255 bytes on one line")
                } else {
                    target.alias = alias
                }
            }
            if let list = integers(table, "portal_groups", path) {
                var chosen: [UInt16] = []
                for (offset, tag) in list.enumerated() {
                    if let tag16 = UInt16(exactly: tag), groups.contains(tag16) {
                        if !chosen.contains(tag16) { chosen.append(tag16) }
                    } else {
                        error(
                            "\(path).portal_groups[\(offset)]",
                            "no [[portal]] has group \(tag) (groups: \(groups.sorted().map(String.init).joined(separator: ", ")))"
                        )
                    }
                }
                if list.isEmpty { error("\(path).portal_groups", "must name at least one portal group") }
                target.portalGroups = chosen
            }
            if let acl = strings(table, "acl", path) {
                for (offset, initiator) in acl.enumerated() {
                    if let problem = ISCSIName.problem(with: initiator) {
                        error("\(path).acl[\(offset)]", problem)
                    } else if !target.allowedInitiators.contains(initiator) {
                        target.allowedInitiators.append(initiator)
                    }
                }
            }
            if let chap = self.table(table, "chap", path) { target.chap = readCHAP(chap, "\(path).chap") }
            let lunEntries = tables(table, "lun", path)
            if lunEntries.isEmpty { warning(path, "target has no [[target.lun]]") }
            var ids: [UInt16: String] = [:]
            for (lunTable, lunPath) in lunEntries {
                guard let lun = readLUN(lunTable, lunPath) else { continue }
                if let previous = ids[lun.id] {
                    error("\(lunPath).id", "LUN \(lun.id) is already defined at \(previous)")
                    continue
                }
                ids[lun.id] = lunPath
                if case .file(let file) = lun.backing {
                    if let previous = filePaths[file] {
                        error("\(lunPath).path", "\(file) is already the backing file of \(previous)")
                        continue
                    }
                    filePaths[file] = lunPath
                }
                target.luns.append(lun)
            }
            targets.append(target)
        }
        return targets
    }

    mutating func readLUN(_ table: TOMLTable, _ path: String) -> LUNConfiguration? {
        checkKeys(
            table, path,
            allowed: [
                "id", "size", "block_size", "physical_block_size", "backing", "path", "vendor", "product",
                "revision", "serial", "direct_io", "read_only", "thin", "replicas", "sub_unit_size",
            ])
        let errorCount = errors.count
        // SAM-5 §4.7.7: flat space addressing carries LUNs 0...16383.
        let id = integer(table, "id", path, in: 0...16383, citation: "SAM-5 flat space addressing")
        if table["id"] == nil { error("\(path).id", "required") }
        let blockSize = integer(table, "block_size", path, in: 512...4096) ?? 512
        if blockSize != 512 && blockSize != 4096 { error("\(path).block_size", "must be 512 or 4096") }
        // SBC-3 §5.16.2: LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT, so a power-of-two multiple.
        let physicalBlockSize = integer(table, "physical_block_size", path, in: 512...4096)
        if let physical = physicalBlockSize,
            physical < blockSize || physical % blockSize != 0 || (physical / blockSize).nonzeroBitCount != 1
        {
            error("\(path).physical_block_size", "must be block_size times a power of two, at most 4096")
        }
        var size: UInt64?
        if let value = table["size"] {
            if let bytes = value.int {
                size = bytes > 0 ? UInt64(bytes) : nil
                if size == nil { error("\(path).size", "must be positive") }
            } else if let text = value.string {
                switch ByteSize.parse(text) {
                case .success(let bytes): size = bytes
                case .failure(let problem): error("\(path).size", problem.message)
                }
            } else {
                error("\(path).size", "expected bytes (integer) or a string such as \"1GiB\"")
            }
        } else {
            error("\(path).size", "required")
        }
        if let size, size % UInt64(blockSize) != 0 {
            error("\(path).size", "\(size) bytes is not a multiple of block_size \(blockSize)")
        }
        var backing: LUNConfiguration.Backing?
        let filePath = string(table, "path", path)
        switch string(table, "backing", path) ?? "file" {
        case "file":
            if let filePath, !filePath.isEmpty {
                backing = .file(path: filePath)
            } else {
                error("\(path).path", "a file LUN needs a path (relative to node.data_dir or absolute)")
            }
        case "memory":
            if filePath != nil { error("\(path).path", "a memory LUN has no path") }
            backing = .memory
        case let other:
            error("\(path).backing", "\"\(other)\" is not \"file\" or \"memory\"")
        }
        var lun = LUNConfiguration(id: 0, size: 0, backing: .memory)
        // SPC-4 §6.6.2 (standard INQUIRY data): fixed-width ASCII fields.
        for (key, limit) in [("vendor", 8), ("product", 16), ("revision", 4), ("serial", 64)] {
            guard let value = string(table, key, path) else { continue }
            // SPC-4 §4.4.1: ASCII data fields hold only codes 20h through 7Eh.
            if value.isEmpty || value.utf8.count > limit || !value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) {
                error("\(path).\(key)", "must be 1 to \(limit) printable ASCII characters")
                continue
            }
            switch key {
            case "vendor": lun.vendor = value
            case "product": lun.product = value
            case "revision": lun.revision = value
            default: lun.serial = value
            }
        }
        if let value = table["direct_io"] {
            if let flag = value.bool {
                lun.directIO = flag ? .on : .off
            } else if value.string == "auto" {
                lun.directIO = .auto
            } else {
                error("\(path).direct_io", "expected \"auto\", true or false")
            }
        }
        if let value = bool(table, "read_only", path) { lun.readOnly = value }
        if let value = bool(table, "thin", path) { lun.thin = value }
        // ARCHITECTURE.md "Words": one primary and one or two secondaries per sub-unit.
        if let replicas = integer(table, "replicas", path, in: 1...3) { lun.replicas = replicas }
        if let value = table["sub_unit_size"] {
            var bytes: UInt64?
            if let number = value.int, number > 0 {
                bytes = UInt64(number)
            } else if let text = value.string {
                switch ByteSize.parse(text) {
                case .success(let parsed): bytes = parsed
                case .failure(let problem): error("\(path).sub_unit_size", problem.message)
                }
            } else {
                error("\(path).sub_unit_size", "expected bytes (integer) or a string such as \"1GiB\"")
            }
            if let bytes {
                // SBC-3 §6.5.3 MAXIMUM COMPARE AND WRITE LENGTH is one block: a sub-unit of whole
                // blocks keeps every atomic command inside one sub-unit.
                if let problem = SubUnitLayout.problem(subUnitBytes: bytes, blockSize: UInt32(blockSize), atomicBlocks: 1) {
                    error("\(path).sub_unit_size", problem)
                } else {
                    lun.subUnitSize = bytes
                }
            }
        }
        if backing == .memory && table["direct_io"] != nil {
            warning("\(path).direct_io", "ignored for a memory LUN")
        }
        guard errors.count == errorCount, let id, let size, let backing else { return nil }
        lun.id = UInt16(id)
        lun.size = size
        lun.blockSize = UInt32(blockSize)
        lun.physicalBlockSize = physicalBlockSize.map { UInt32($0) }
        lun.backing = backing
        return lun
    }

    // MARK: [limits]

    /// `[limits]`: what a host can make the portal hold (ISCSIServerLimits).
    mutating func readLimits(_ table: TOMLTable) -> ISCSIServerLimits {
        let path = "limits"
        checkKeys(
            table, path,
            allowed: [
                "login_timeout", "max_connections", "max_connections_per_initiator_address", "max_immediate_commands",
                "write_buffer_high_water_mark", "write_buffer_low_water_mark", "max_read_bytes_in_flight",
                "max_write_bytes_in_flight",
            ])
        var limits = ISCSIServerLimits()
        if let value = integer(table, "login_timeout", path, in: 1...3600) { limits.loginTimeout = .seconds(value) }
        if let value = integer(table, "max_connections", path, in: 1...1_048_576) { limits.maxConnections = value }
        if let value = integer(table, "max_connections_per_initiator_address", path, in: 1...1_048_576) {
            limits.maxConnectionsPerInitiatorAddress = value
        }
        if let value = integer(table, "max_immediate_commands", path, in: 1...65536) {
            limits.maxImmediateCommands = value
        }
        // Bytes queued for one socket: 4 KiB to 1 GiB.
        let marks = 4096...(1 << 30)
        if let value = integer(table, "write_buffer_high_water_mark", path, in: marks) {
            limits.writeBufferHighWaterMark = value
        }
        if let value = integer(table, "write_buffer_low_water_mark", path, in: marks) {
            limits.writeBufferLowWaterMark = value
        }
        // Bytes of Data-In one connection's commands produce at once: 64 KiB to 1 GiB.
        if let value = integer(table, "max_read_bytes_in_flight", path, in: 65536...(1 << 30)) {
            limits.maxReadBytesInFlight = value
        }
        // Write data one session solicits at once: 64 KiB to 1 GiB.
        if let value = integer(table, "max_write_bytes_in_flight", path, in: 65536...(1 << 30)) {
            limits.maxWriteBytesInFlight = value
        }
        if limits.writeBufferLowWaterMark > limits.writeBufferHighWaterMark {
            error(
                "\(path).write_buffer_low_water_mark",
                "\(limits.writeBufferLowWaterMark) exceeds write_buffer_high_water_mark "
                    + "\(limits.writeBufferHighWaterMark)")
        }
        return limits
    }
}
