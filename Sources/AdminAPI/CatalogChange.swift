import Foundation
import ISCSISession

/// One change to what the cluster serves, as a request asks for it
/// (validated by ``CatalogValidation``): targets created, changed and
/// deleted, LUNs created, resized and deleted. Every node serves the result within about a second.
public enum CatalogChange: Hashable, Sendable, CustomStringConvertible {
    /// `POST /v1/targets`.
    case createTarget(TargetSpec)
    /// `PATCH /v1/targets/{iqn}`: a new alias or portal group tag.
    case updateTarget(TargetUpdate)
    /// `DELETE /v1/targets/{iqn}`: only a target without LUNs.
    case deleteTarget(name: String)
    /// `POST /v1/luns`.
    case createLUN(LUNSpec)
    /// `PATCH /v1/luns/{n}` with a new `size_bytes`: online resize. A
    /// smaller size needs `force` (`?force=yes` or `"force": true`): the
    /// blocks past the new end are dropped on every node.
    case resizeLUN(LUNSelector, sizeBytes: UInt64, force: Bool = false)
    /// `DELETE /v1/luns/{n}?confirm=yes`.
    case deleteLUN(LUNSelector)

    /// A new target.
    public struct TargetSpec: Hashable, Sendable {
        /// The iSCSI name, lower case (RFC 7143 §4.2.7.2).
        public var name: String
        /// TargetAlias (RFC 7143 §13.6).
        public var alias: String?
        /// The portal group tag it is exported on where a node has one of that tag.
        public var portalGroupTag: UInt16

        public init(name: String, alias: String? = nil, portalGroupTag: UInt16 = 1) {
            self.name = name
            self.alias = alias
            self.portalGroupTag = portalGroupTag
        }
    }

    /// What a `PATCH` of a target changes; nil fields stay as they are.
    public struct TargetUpdate: Hashable, Sendable {
        /// The target's iSCSI name as the path gave it.
        public var name: String
        /// The new TargetAlias; `.some(nil)` removes it.
        public var alias: String??
        /// The new portal group tag.
        public var portalGroupTag: UInt16?

        public init(name: String, alias: String?? = nil, portalGroupTag: UInt16? = nil) {
            self.name = name
            self.alias = alias
            self.portalGroupTag = portalGroupTag
        }
    }

    /// A new LUN.
    public struct LUNSpec: Hashable, Sendable {
        /// The target it belongs to.
        public var target: String
        /// Its number; nil takes the lowest free one.
        public var lun: UInt16?
        /// Capacity in bytes, a multiple of the block size.
        public var sizeBytes: UInt64
        /// 512 or 4096.
        public var blockSize: UInt32
        /// Copies of every sub-unit on different nodes (1...3); nil: 2 when
        /// the cluster has several live members, else 1.
        public var replicas: Int?
        /// Bytes per sub-unit.
        public var subUnitBytes: UInt64
        /// "file" (a sparse file in each node's data_dir) or "memory".
        public var backing: String
        /// Write-protected.
        public var readOnly: Bool
        /// Thin provisioning (UNMAP).
        public var thin: Bool

        public init(
            target: String, lun: UInt16? = nil, sizeBytes: UInt64, blockSize: UInt32 = 512, replicas: Int? = nil,
            subUnitBytes: UInt64 = CatalogValidation.defaultSubUnitBytes, backing: String = "file",
            readOnly: Bool = false, thin: Bool = true
        ) {
            self.target = target
            self.lun = lun
            self.sizeBytes = sizeBytes
            self.blockSize = blockSize
            self.replicas = replicas
            self.subUnitBytes = subUnitBytes
            self.backing = backing
            self.readOnly = readOnly
            self.thin = thin
        }
    }

    public var description: String {
        switch self {
        case .createTarget(let spec): "create target \(spec.name)"
        case .updateTarget(let update):
            "change target \(update.name):"
                + (update.alias.map { $0.map { " alias \"\($0)\"" } ?? " no alias" } ?? "")
                + (update.portalGroupTag.map { " portal group tag \($0)" } ?? "")
        case .deleteTarget(let name): "delete target \(name)"
        case .createLUN(let spec):
            "create LUN \(spec.lun.map { "\($0)" } ?? "(next free)") of \(spec.target), \(spec.sizeBytes) bytes"
        case .resizeLUN(let selector, let size, let force):
            "resize LUN \(selector.lun)" + (selector.target.map { " of \($0)" } ?? "") + " to \(size) bytes"
                + (force ? " (forced: a shrink drops the blocks past the end)" : "")
        case .deleteLUN(let selector): "delete LUN \(selector.lun)" + (selector.target.map { " of \($0)" } ?? "")
        }
    }
}

/// What a catalog change answers with.
public enum CatalogOutcome: Hashable, Sendable {
    /// The target as it is afterwards.
    case target(TargetStatus)
    /// The LUN as it is afterwards.
    case lun(LUNStatus)
    /// What was deleted.
    case deleted(Deleted)
}

/// `DELETE` of a target or a LUN: what is gone.
public struct Deleted: Codable, Hashable, Sendable {
    /// "target" or "lun".
    public var deleted: String
    /// The target.
    public var target: String
    /// The LUN number, for a LUN.
    public var lun: UInt64?

    public init(deleted: String, target: String, lun: UInt64? = nil) {
        self.deleted = deleted
        self.target = target
        self.lun = lun
    }
}

/// The checks a catalog request passes before it reaches the store. Pure.
public enum CatalogValidation {
    /// The default sub-unit size: 1 GiB (as a TOML's LUN).
    public static let defaultSubUnitBytes: UInt64 = 1 << 30
    /// The smallest LUN: one 4 KiB page at least (qemu and the kernel read the first blocks).
    public static let minimumLUNBytes: UInt64 = 1 << 20
    /// Sub-unit sizes allowed (as the TOML's `sub_unit_size`).
    public static let subUnitBytesRange: ClosedRange<UInt64> = (1 << 20)...(1 << 40)
    /// The largest LUN: 2^64 blocks would do for SCSI, a file on ext4 is 16 TiB at most; 1 PiB bounds mistakes.
    public static let maximumLUNBytes: UInt64 = 1 << 50

    /// `POST /v1/targets`: `{"name": "iqn....", "alias": "...", "portal_group_tag": 1}`.
    public static func target(_ object: [String: Any]) -> Result<CatalogChange, AdminFailure> {
        if let failure = unknownField(object, known: ["name", "alias", "portal_group_tag", "request_id"],
            hint: "the body is {\"name\": \"iqn....\", \"alias\": \"...\", \"portal_group_tag\": 1}")
        {
            return .failure(failure)
        }
        guard let name = object["name"] as? String else {
            return .failure(
                AdminFailure(
                    status: 400, error: "name is required (a JSON string)",
                    hint: "send {\"name\": \"iqn.2026-12.com.example:disk1\"}"))
        }
        guard ISCSIName.isWellFormed(name) else {
            return .failure(
                AdminFailure(
                    status: 400, error: "\(AdminRouter.printable(name)) is not an iSCSI target name",
                    hint: "give an iqn., eui. or naa. name (RFC 7143 §4.2.7), e.g. iqn.2026-12.com.example:disk1"))
        }
        var spec = CatalogChange.TargetSpec(name: name.lowercased())
        if let value = object["alias"] {
            switch alias(value, allowNull: false) {
            case .success(let alias): spec.alias = alias
            case .failure(let failure): return .failure(failure)
            }
        }
        if let value = object["portal_group_tag"] {
            switch portalGroupTag(value) {
            case .success(let tag): spec.portalGroupTag = tag
            case .failure(let failure): return .failure(failure)
            }
        }
        return .success(.createTarget(spec))
    }

    /// `PATCH /v1/targets/{iqn}`: `{"alias": "..."}` (null or "" removes
    /// it) and/or `{"portal_group_tag": T}`.
    public static func updateTarget(_ object: [String: Any], name: String) -> Result<CatalogChange, AdminFailure> {
        let hint = "the body is {\"alias\": \"...\"} (null removes it) and/or {\"portal_group_tag\": 1}"
        if let failure = unknownField(object, known: ["alias", "portal_group_tag", "request_id"], hint: hint) {
            return .failure(failure)
        }
        var update = CatalogChange.TargetUpdate(name: name)
        if let value = object["alias"] {
            switch alias(value, allowNull: true) {
            case .success(let alias): update.alias = .some(alias)
            case .failure(let failure): return .failure(failure)
            }
        }
        if let value = object["portal_group_tag"] {
            switch portalGroupTag(value) {
            case .success(let tag): update.portalGroupTag = tag
            case .failure(let failure): return .failure(failure)
            }
        }
        guard update.alias != nil || update.portalGroupTag != nil else {
            return .failure(AdminFailure(status: 400, error: "nothing to change", hint: hint))
        }
        return .success(.updateTarget(update))
    }

    /// A TargetAlias (RFC 7143 §13.6: human-readable text): a string of at
    /// most 255 bytes on one line; "" (or null, where allowed) is no alias.
    static func alias(_ value: Any, allowNull: Bool) -> Result<String?, AdminFailure> {
        if allowNull, value is NSNull { return .success(nil) }
        guard let text = value as? String, text.utf8.count <= 255, !text.unicodeScalars.contains(where: isControl) else {
            return .failure(
                AdminFailure(
                    status: 400, error: "alias must be a JSON string of at most 255 bytes without control characters",
                    hint: "e.g. \"alias\": \"database disks\""))
        }
        return .success(text.isEmpty ? nil : text)
    }

    /// A portal group tag, 1...65535.
    static func portalGroupTag(_ value: Any) -> Result<UInt16, AdminFailure> {
        guard let number = integer(value), let tag = UInt16(exactly: number), tag > 0 else {
            return .failure(
                AdminFailure(
                    status: 400, error: "portal_group_tag must be an integer 1...65535",
                    hint: "the tag of the portals it is exported on (a node without one exports it on all)"))
        }
        return .success(tag)
    }

    /// `POST /v1/luns`: `{"target": "iqn....", "size_bytes": N, …}`.
    public static func lun(_ object: [String: Any]) -> Result<CatalogChange, AdminFailure> {
        let known: Set = [
            "target", "lun", "size_bytes", "block_size", "replicas", "sub_unit_bytes", "backing", "read_only", "thin",
            "request_id",
        ]
        if let failure = unknownField(object, known: known,
            hint: "the body takes target, size_bytes and optionally lun, block_size, replicas, sub_unit_bytes, "
                + "backing, read_only, thin")
        {
            return .failure(failure)
        }
        guard let target = object["target"] as? String, !target.isEmpty else {
            return .failure(
                AdminFailure(
                    status: 400, error: "target is required (a JSON string)",
                    hint: "name the target the LUN belongs to; tessera target list lists them"))
        }
        guard let sizeValue = object["size_bytes"], let size = integer(sizeValue).flatMap({ UInt64(exactly: $0) }) else {
            return .failure(
                AdminFailure(
                    status: 400, error: "size_bytes is required (a positive integer)",
                    hint: "e.g. \"size_bytes\": 1073741824 for 1 GiB (tessera lun create takes 1G)"))
        }
        var spec = CatalogChange.LUNSpec(target: target.lowercased(), sizeBytes: size)
        if let value = object["lun"] {
            guard let number = integer(value), let lun = UInt16(exactly: number), UInt64(lun) <= AdminRouter.maximumLUN
            else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "lun must be an integer 0...\(AdminRouter.maximumLUN)",
                        hint: "or leave it out to take the lowest free number"))
            }
            spec.lun = lun
        }
        if let value = object["block_size"] {
            guard let number = integer(value), number == 512 || number == 4096 else {
                return .failure(AdminFailure(status: 400, error: "block_size must be 512 or 4096", hint: "512 is the default"))
            }
            spec.blockSize = UInt32(number)
        }
        if let value = object["replicas"] {
            guard let number = integer(value), (1...3).contains(number) else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "replicas must be 1, 2 or 3",
                        hint: "copies of every sub-unit on different nodes; 2 survives one node's death"))
            }
            spec.replicas = number
        }
        if let value = object["sub_unit_bytes"] {
            guard let number = integer(value).flatMap({ UInt64(exactly: $0) }), subUnitBytesRange.contains(number) else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "sub_unit_bytes must be 1 MiB...1 TiB",
                        hint: "the size of the pieces the LUN is cut into; 1 GiB is the default"))
            }
            spec.subUnitBytes = number
        }
        if let value = object["backing"] {
            guard let text = value as? String, text == "file" || text == "memory" else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "backing must be \"file\" or \"memory\"",
                        hint: "file: a sparse file in every node's data_dir; memory: lost when a node stops"))
            }
            spec.backing = text
        }
        for field in ["read_only", "thin"] {
            guard let value = object[field] else { continue }
            guard let flag = value as? Bool else {
                return .failure(AdminFailure(status: 400, error: "\(field) must be true or false", hint: "a JSON boolean"))
            }
            if field == "thin" { spec.thin = flag } else { spec.readOnly = flag }
        }
        if let failure = geometry(size: size, blockSize: spec.blockSize) { return .failure(failure) }
        guard spec.subUnitBytes % UInt64(spec.blockSize) == 0 else {
            return .failure(
                AdminFailure(
                    status: 400, error: "sub_unit_bytes \(spec.subUnitBytes) is not a multiple of block_size \(spec.blockSize)",
                    hint: "use a power of two such as 1073741824"))
        }
        return .success(.createLUN(spec))
    }

    /// `PATCH /v1/luns/{n}`: `{"size_bytes": N}`, optionally `"force": true`
    /// (or `forceQuery`, from `?force=yes`) to allow a shrink.
    public static func resize(_ object: [String: Any], selector: LUNSelector, forceQuery: String? = nil)
        -> Result<CatalogChange, AdminFailure>
    {
        if let failure = unknownField(object, known: ["size_bytes", "force", "request_id"],
            hint: "the body is {\"size_bytes\": N}, with \"force\": true to shrink")
        {
            return .failure(failure)
        }
        guard let value = object["size_bytes"], let size = integer(value).flatMap({ UInt64(exactly: $0) }) else {
            return .failure(
                AdminFailure(
                    status: 400, error: "size_bytes is required (a positive integer)",
                    hint: "the new capacity in bytes (tessera lun resize 0 2G)"))
        }
        var force = false
        if let value = object["force"] {
            guard let flag = value as? Bool else {
                return .failure(AdminFailure(status: 400, error: "force must be true or false", hint: "a JSON boolean"))
            }
            force = flag
        }
        if let forceQuery {
            switch forceQuery.lowercased() {
            case "yes", "true", "1": force = true
            case "no", "false", "0": break
            default:
                return .failure(
                    AdminFailure(
                        status: 400, error: "force=\(AdminRouter.printable(forceQuery)) is not yes or no",
                        hint: "?force=yes allows a shrink"))
            }
        }
        if let failure = geometry(size: size, blockSize: nil) { return .failure(failure) }
        return .success(.resizeLUN(selector, sizeBytes: size, force: force))
    }

    /// A capacity within bounds (and a multiple of `blockSize` when known).
    static func geometry(size: UInt64, blockSize: UInt32?) -> AdminFailure? {
        guard size >= minimumLUNBytes, size <= maximumLUNBytes else {
            return AdminFailure(
                status: 400, error: "size_bytes \(size) is out of range",
                hint: "a LUN is 1 MiB...1 PiB")
        }
        if let blockSize, size % UInt64(blockSize) != 0 {
            return AdminFailure(
                status: 400, error: "size_bytes \(size) is not a multiple of block_size \(blockSize)",
                hint: "round it to a whole number of blocks, e.g. \(size / UInt64(blockSize) * UInt64(blockSize))")
        }
        return nil
    }

    /// A JSON number that is a whole number (JSONSerialization gives NSNumber).
    static func integer(_ value: Any) -> Int? {
        if let int = value as? Int { return int }
        if let double = value as? Double, double.rounded() == double, abs(double) < 9e15 { return Int(double) }
        return nil
    }

    static func unknownField(_ object: [String: Any], known: Set<String>, hint: String) -> AdminFailure? {
        guard let unknown = object.keys.sorted().first(where: { !known.contains($0) }) else { return nil }
        return AdminFailure(status: 400, error: "unknown field \(AdminRouter.printable(unknown))", hint: hint)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7F }
}
