import AIOBlockStorage
import BlockStorage
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What a LUN will be opened on, with paths resolved against `data_dir`.
public struct LogicalUnitPlan: Sendable, Hashable {
    /// How the device is made.
    public enum Device: Sendable, Hashable {
        /// An ``AIOFileBlockDevice`` with these options.
        case file(AIOFileBlockDevice.Options)
        /// A ``MemoryBlockDevice`` of this geometry.
        case memory(BlockGeometry)
    }

    /// The target the LUN belongs to.
    public var targetName: String
    /// The LUN as configured.
    public var lun: LUNConfiguration
    /// The device to open.
    public var device: Device
}

/// A LUN with its opened block device, ready to be put behind a SCSI target.
public struct OpenedLogicalUnit: Sendable {
    /// The target the LUN belongs to.
    public var targetName: String
    /// The LUN as configured (id, identity strings, read-only...).
    public var lun: LUNConfiguration
    /// The opened device; close it at shutdown.
    public var device: any BlockDevice
}

/// The node could not start: names the target and LUN and says why.
public struct NodeStartupError: Error, Sendable, CustomStringConvertible {
    /// The target concerned, if any.
    public var targetName: String?
    /// The LUN concerned, if any.
    public var lunID: UInt16?
    /// The reason, for the operator.
    public var message: String

    public init(targetName: String? = nil, lunID: UInt16? = nil, message: String) {
        self.targetName = targetName
        self.lunID = lunID
        self.message = message
    }

    public var description: String {
        var prefix = ""
        if let targetName { prefix += "target \(targetName) " }
        if let lunID { prefix += "LUN \(lunID) " }
        return prefix.isEmpty ? message : "\(prefix.dropLast()): \(message)"
    }
}

extension NodeConfiguration {
    /// The device plan of every LUN, in configuration order.
    public func logicalUnitPlans(queueDepth: Int? = nil) -> [LogicalUnitPlan] {
        targets.flatMap { target in
            target.luns.map { lun in
                let geometry = BlockGeometry(blockSize: lun.blockSize, blockCount: lun.blockCount)
                let device: LogicalUnitPlan.Device
                switch lun.backing {
                case .memory:
                    device = .memory(geometry)
                case .file(let path):
                    device = .file(
                        AIOFileBlockDevice.Options(
                            path: resolve(path), geometry: geometry, directIO: lun.directIO, readOnly: lun.readOnly,
                            thin: lun.thin, queueDepth: queueDepth ?? max(iscsi.queueDepth, 32)))
                }
                return LogicalUnitPlan(targetName: target.name, lun: lun, device: device)
            }
        }
    }

    /// A LUN path made absolute or relative to `data_dir`.
    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let base = node.dataDirectory.hasSuffix("/") ? String(node.dataDirectory.dropLast()) : node.dataDirectory
        return "\(base)/\(path)"
    }
}

extension TesseraNode {
    /// Opens the block device of every LUN (creating `data_dir` when a file
    /// LUN lives under it). On failure, devices already opened are closed and
    /// the error names the LUN.
    public static func openLogicalUnitDevices(
        configuration: NodeConfiguration, logger: Logger
    ) async throws(NodeStartupError) -> [OpenedLogicalUnit] {
        let plans = configuration.logicalUnitPlans()
        let needsDataDirectory = plans.contains { plan in
            if case .file(let options) = plan.device { return options.path.hasPrefix(configuration.node.dataDirectory) }
            return false
        }
        if needsDataDirectory {
            if let problem = makeDirectories(configuration.node.dataDirectory) {
                throw NodeStartupError(
                    message: "cannot create data_dir \(configuration.node.dataDirectory): \(problem)")
            }
        }
        var opened: [OpenedLogicalUnit] = []
        for plan in plans {
            var deviceLogger = logger
            deviceLogger[metadataKey: "target"] = "\(plan.targetName)"
            deviceLogger[metadataKey: "lun"] = "\(plan.lun.id)"
            switch plan.device {
            case .memory(let geometry):
                opened.append(
                    OpenedLogicalUnit(
                        targetName: plan.targetName, lun: plan.lun, device: MemoryBlockDevice(geometry: geometry)))
                deviceLogger.info("opened memory LUN", metadata: ["bytes": "\(geometry.byteCount)"])
            case .file(let options):
                do {
                    let device = try AIOFileBlockDevice(options: options, logger: deviceLogger)
                    opened.append(OpenedLogicalUnit(targetName: plan.targetName, lun: plan.lun, device: device))
                } catch {
                    for unit in opened { await unit.device.close() }
                    throw NodeStartupError(targetName: plan.targetName, lunID: plan.lun.id, message: error.description)
                }
            }
        }
        return opened
    }

    /// `mkdir -p`; returns a reason on failure.
    static func makeDirectories(_ path: String) -> String? {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                return String(cString: strerror(errno))
            }
            var info = stat()
            if stat(prefix, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
                return "\(prefix) is not a directory"
            }
            prefix += "/"
        }
        return nil
    }
}
