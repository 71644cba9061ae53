extension NodeConfiguration {
    /// A human-readable summary (`tesserad --check-config`); never shows secrets.
    public func summary(source: String) -> String {
        var lines: [String] = ["configuration \(source): OK"]
        lines.append("node: data_dir \(node.dataDirectory), log_level \(node.logLevel)")
        for portal in portals {
            lines.append("portal \(portal.address) group \(portal.groupTag)")
        }
        lines.append(
            "iscsi: queue_depth \(iscsi.queueDepth), MaxRecvDataSegmentLength \(iscsi.maxRecvDataSegmentLength), "
                + "MaxBurstLength \(iscsi.maxBurstLength), FirstBurstLength \(iscsi.firstBurstLength), "
                + "ImmediateData \(iscsi.immediateData ? "Yes" : "No"), InitialR2T \(iscsi.initialR2T ? "Yes" : "No"), "
                + "NOP-In every \(iscsi.nopInInterval.components.seconds) s (timeout \(iscsi.nopInTimeout.components.seconds) s), "
                + "idle poll \(iscsi.idlePoll.components.attoseconds / 1_000_000_000_000) us"
        )
        lines.append(
            "cluster: node_id \(cluster.nodeID), peer \(cluster.peerAddress), "
                + (cluster.join.isEmpty ? "no join seeds (bootstraps a one-member cluster)" : "join \(cluster.join.joined(separator: ", "))")
                + ", lease \(cluster.lease), store \(cluster.storeDirectory ?? resolve("store"))")
        if let admin {
            let auth = admin.tokenFile.map { "token from \($0)" } ?? (admin.token != nil ? "inline token" : "no token")
            lines.append("admin: http://\(admin.address)/health, /metrics, /v1/... (\(auth))")
        }
        if let discoveryCHAP {
            lines.append("discovery: \(Self.describe(discoveryCHAP))")
        }
        for target in targets {
            var line = "target \(target.name)"
            if let alias = target.alias { line += " (\(alias))" }
            line +=
                " on group\(target.portalGroups.count == 1 ? "" : "s") \(target.portalGroups.map(String.init).joined(separator: ", "))"
            line +=
                ", acl: \(target.allowedInitiators.isEmpty ? "any initiator" : target.allowedInitiators.joined(separator: ", "))"
            line += ", auth: \(target.chap.map(Self.describe) ?? "none")"
            lines.append(line)
            for lun in target.luns {
                var text =
                    "  LUN \(lun.id): \(Self.describe(bytes: lun.size)) (\(lun.blockCount) × \(lun.blockSize)-byte blocks), "
                switch lun.backing {
                case .memory: text += "memory"
                case .file(let path):
                    text += "file \(resolve(path)), \(lun.thin ? "thin" : "thick"), direct_io \(lun.directIO.rawValue)"
                }
                if lun.readOnly { text += ", read-only" }
                text += ", \"\(lun.vendor)\" \"\(lun.product)\" \(lun.revision)"
                if let serial = lun.serial { text += ", serial \(serial)" }
                lines.append(text)
            }
        }
        for warning in warnings { lines.append("warning: \(warning)") }
        return lines.joined(separator: "\n")
    }

    private static func describe(_ chap: CHAPConfiguration) -> String {
        chap.isMutual ? "mutual CHAP (user \(chap.user), target \(chap.mutualUser ?? ""))" : "CHAP (user \(chap.user))"
    }

    /// `1 GiB`, `512 MiB`, or bytes when not a whole binary unit.
    static func describe(bytes: UInt64) -> String {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] as [(String, UInt64)] {
            let size: UInt64 = 1 << shift
            if bytes >= size && bytes % size == 0 { return "\(bytes / size) \(unit)" }
        }
        return "\(bytes) bytes"
    }
}
