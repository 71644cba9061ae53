import AdminAPI

/// The human output of each command: a resource in, text out (pure).
enum Render {
    /// `tessera cluster status`.
    static func cluster(_ status: ClusterStatus) -> String {
        var text =
            "answered by node \(status.answeredBy) (tesserad \(status.version)); store leader: "
            + (status.storeLeader.map { "node \($0)" } ?? "none answered") + "\n\n"
        text += TextTable(
            headers: ["NODE", "ROLE", "STORE", "PEER", "PORTALS", "BEATS", "FENCED", "LIVENESS"],
            rows: status.members.map { m in
                [
                    "\(m.id)", m.role, m.storeAddress, m.peerAddress ?? "-",
                    m.iscsiPortals.isEmpty ? "-" : m.iscsiPortals.joined(separator: " "), "\(m.lease.beats)",
                    m.lease.fenced ? "yes" : "no", m.lease.liveness,
                ]
            }
        ).render()
        text += "\n"
        if status.portGroups.isEmpty {
            text += "port groups: not reported yet (node \(status.answeredBy) is still starting)\n"
        } else {
            text += TextTable(
                headers: ["PORT GROUP", "NODE", "ALUA STATE", "PREFERRED"],
                rows: status.portGroups.map { g in
                    ["\(g.id)", g.node.map { "\($0)" } ?? "-", g.state, g.preferred ? "yes" : "no"]
                }
            ).render()
        }
        return text
    }

    /// `tessera session list`.
    static func sessions(_ sessions: [SessionStatus], now: UInt64) -> String {
        if sessions.isEmpty { return "no sessions\n" }
        var text = TextTable(
            headers: ["NODE", "TSIH", "INITIATOR", "ISID", "TARGET", "PORTAL", "FROM", "FOR", "SOURCE"],
            rows: sessions.map { s in
                [
                    "\(s.node)", "\(s.tsih)", s.initiator, s.isid, s.target, "\(s.portal),\(s.portalGroup)",
                    s.initiatorAddress, duration(seconds: now >= s.loggedInAt ? now - s.loggedInAt : 0), s.source,
                ]
            }
        ).render()
        let down = Set(sessions.filter { $0.source == "node_down" }.map(\.node)).sorted()
        if !down.isEmpty {
            text +=
                "\nnode \(down.map(String.init).joined(separator: ", ")) is not renewing its lease: "
                + "its sessions are as it last published them, and are likely gone\n"
        }
        return text
    }

    /// `tessera session close`.
    static func sessionClose(_ close: SessionClose) -> String {
        let s = close.session
        let who = "session \(s.tsih) of \(s.initiatorPort) on node \(s.node)"
        return close.outcome == "closed"
            ? "closed \(who); the host sees its connection drop and may log in again\n"
            : "asked node \(s.node) to close \(who); it does within about a second "
                + "(tessera session list shows when it is gone)\n"
    }

    /// "45s", "12m", "3h05m", "2d04h".
    static func duration(seconds: UInt64) -> String {
        func two(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        switch seconds {
        case ..<60: return "\(seconds)s"
        case ..<3600: return "\(seconds / 60)m"
        case ..<86400: return "\(seconds / 3600)h" + two(seconds % 3600 / 60) + "m"
        default: return "\(seconds / 86400)d" + two(seconds % 86400 / 3600) + "h"
        }
    }

    /// Replicas of `lun` that are not in sync.
    static func notInSync(_ lun: LUNStatus) -> Int {
        lun.subUnits.reduce(0) { $0 + $1.replicas.filter { $0.state != "in_sync" }.count }
    }

    /// `tessera lun list`.
    static func lunList(_ luns: [LUNStatus]) -> String {
        if luns.isEmpty { return "no LUNs\n" }
        return TextTable(
            headers: ["TARGET", "LUN", "SIZE", "BLOCK", "SUB-UNIT", "SUB-UNITS", "REPLICAS", "NOT IN SYNC"],
            rows: luns.map { l in
                [
                    l.target, "\(l.lun)", formatBytes(l.sizeBytes), "\(l.blockSize)",
                    l.layout.map { formatBytes($0.subUnitBytes) } ?? "-", l.layout.map { "\($0.subUnitCount)" } ?? "-",
                    l.layout.map { "\($0.replicas)" } ?? "-", "\(notInSync(l))",
                ]
            }
        ).render()
    }

    /// One replica as `lun show` prints it: "2:stale", "3:resyncing 42.5%".
    static func replica(_ r: LUNStatus.Replica) -> String {
        "\(r.node):\(r.state)" + (r.resync.map { " \($0.percent)%" } ?? "")
    }

    /// `tessera lun show`.
    static func lun(_ l: LUNStatus) -> String {
        var text =
            "\(l.target) LUN \(l.lun): \(formatBytes(l.sizeBytes)) (\(l.sizeBytes) bytes), "
            + "\(l.blockSize)-byte blocks, serial \(l.serial)\n"
        guard let layout = l.layout else {
            return text + "not distributed: no sub-unit map\n"
        }
        text +=
            "\(layout.subUnitCount) sub-units of \(formatBytes(layout.subUnitBytes)), \(layout.replicas) "
            + "replica\(layout.replicas == 1 ? "" : "s") each; lun id \(layout.lunID)\n\n"
        text += TextTable(
            headers: ["SUB-UNIT", "EPOCH", "PRIMARY", "SECONDARIES", "REPLICAS"],
            rows: l.subUnits.map { s in
                [
                    "\(s.index)", "\(s.epoch)", "\(s.primary)",
                    s.secondaries.isEmpty ? "-" : s.secondaries.map { "\($0)" }.joined(separator: ","),
                    s.replicas.map(replica).joined(separator: " "),
                ]
            }
        ).render()
        return text
    }

    /// `tessera pr show`.
    static func reservations(_ r: ReservationStatus) -> String {
        var text = "\(r.target) LUN \(r.lun): PR generation \(r.generation), APTPL \(r.aptpl ? "yes" : "no")\n\n"
        if r.registrations.isEmpty {
            text += "registrations: none\n"
        } else {
            text += TextTable(
                headers: ["KEY", "INITIATOR PORT", "TARGET PORT", "APTPL"],
                rows: r.registrations.map {
                    [$0.key, $0.nexus.initiatorPort, $0.nexus.targetPort, $0.aptpl ? "yes" : "no"]
                }
            ).render()
        }
        text += "\n"
        if let reservation = r.reservation {
            text +=
                "reservation: \(reservation.type) (type \(reservation.typeCode)), key \(reservation.key), holder "
                + (reservation.holder.map { "\($0.initiatorPort) through \($0.targetPort)" } ?? "every registrant")
                + "\n"
        } else {
            text += "reservation: none\n"
        }
        text +=
            "SPC-2 reservation: "
            + (r.spc2Reservation.map { "\($0.initiatorPort) through \($0.targetPort)" } ?? "none") + "\n"
        return text
    }

    /// `tessera target list`.
    static func targets(_ targets: [TargetStatus]) -> String {
        if targets.isEmpty { return "no targets\n" }
        return TextTable(
            headers: ["TARGET", "ALIAS", "LUNS", "ACL", "CHAP", "MASKED LUNS"],
            rows: targets.map { t in
                [
                    t.name, t.alias ?? "-", t.luns.isEmpty ? "-" : t.luns.map { "\($0)" }.joined(separator: ","),
                    t.acl.isEmpty ? "any initiator" : t.acl.joined(separator: " "),
                    t.chap.map { "user \($0.user)" + ($0.mutual ? ", mutual" : "") } ?? "none",
                    (t.lunMasks ?? []).isEmpty
                        ? "none"
                        : (t.lunMasks ?? []).map { "\($0.lun) (\($0.initiators.count) initiators)" }.joined(separator: ", "),
                ]
            }
        ).render()
    }

    /// `tessera acl list|add|remove`, `tessera chap set|remove`: one row per
    /// target and allowed initiator, with the CHAP that initiator must prove.
    static func acl(_ targets: [TargetStatus]) -> String {
        if targets.isEmpty { return "no targets\n" }
        var rows: [[String]] = []
        for t in targets {
            let own = Dictionary(
                (t.initiatorChap ?? []).map { ($0.initiator.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
            func chap(_ initiator: String?) -> String {
                if let initiator, let c = own[initiator.lowercased()] {
                    return "user \(c.user)" + (c.mutual ? ", mutual" : "")
                }
                return t.chap.map { "user \($0.user)" + ($0.mutual ? ", mutual" : "") + " (target's)" } ?? "none"
            }
            if t.acl.isEmpty {
                rows.append([t.name, "any initiator", chap(nil)])
            }
            for initiator in t.acl { rows.append([t.name, initiator, chap(initiator)]) }
            // CHAP of initiators outside a non-empty ACL: set, but they cannot log in.
            for c in t.initiatorChap ?? [] where !t.acl.isEmpty && !t.acl.contains(where: { $0.lowercased() == c.initiator.lowercased() }) {
                rows.append([t.name, c.initiator + " (not in ACL)", chap(c.initiator)])
            }
        }
        return TextTable(headers: ["TARGET", "INITIATOR", "CHAP"], rows: rows).render()
    }

    /// `tessera resync status`: every replica that is not in sync, with its
    /// resync's progress as its primary published it; with `bar`, a bar too.
    static func resyncs(_ luns: [LUNStatus], answeredBy node: String, bar: Bool = false) -> String {
        var rows: [[String]] = []
        for l in luns {
            for s in l.subUnits {
                for r in s.replicas where r.state != "in_sync" {
                    let progress = r.resync.map {
                        (bar ? progressBar($0.percent, width: 20) + " " : "")
                            + "\($0.percent)% (\(formatBytes($0.bytesDone)) of \(formatBytes($0.bytesTotal)), "
                            + "\(formatBytes($0.bytesPerSecond))/s)"
                    }
                    rows.append([
                        l.target, "\(l.lun)", "\(s.index)", "\(s.primary)", "\(r.node)", r.state,
                        progress ?? (r.state == "resyncing" ? "run by node \(s.primary)" : "-"),
                    ])
                }
            }
        }
        if rows.isEmpty { return "every replica is in sync\n" }
        return TextTable(headers: ["TARGET", "LUN", "SUB-UNIT", "PRIMARY", "REPLICA", "STATE", "PROGRESS"], rows: rows)
            .render()
            + "(progress as each primary published it, a second or two old; this answer came from \(node))\n"
    }

    /// `tessera node list`.
    static func nodes(_ nodes: [NodeStatus]) -> String {
        guard !nodes.isEmpty else { return "no members registered\n" }
        return TextTable(
            headers: ["NODE", "STATE", "LIVENESS", "REPLICAS", "PRIMARIES", "NOT IN SYNC", "MOVES OFF", "MOVES ON", "PORTALS"],
            rows: nodes.map { n in
                [
                    "\(n.id)", n.state + (n.drain.map { n.state == "draining" ? " \($0.percent)%" : "" } ?? ""),
                    n.liveness + (n.fenced ? " (fenced)" : ""), "\(n.replicas)", "\(n.primaries)", "\(n.replicasNotInSync)",
                    "\(n.movesOff)", "\(n.movesOn)", n.iscsiPortals.isEmpty ? "-" : n.iscsiPortals.joined(separator: " "),
                ]
            }
        ).render()
    }

    /// What `tessera node add|drain|undrain|remove` did.
    static func nodeChange(_ outcome: NodeChangeOutcome) -> String {
        let planned = outcome.movesPlanned > 0 ? " (\(outcome.movesPlanned) replica moves planned)" : ""
        return "node \(outcome.node): \(outcome.action)\(planned)\n\(outcome.message)\n"
    }

    /// One progress line of a drain or fill; with `width` > 0 a bar of that many cells.
    static func progress(_ status: NodeStatus, percent: Double?, width: Int) -> String {
        func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
        var parts = [
            count(status.replicas, "replica") + " held"
                + (status.replicasNotInSync > 0 ? " (\(status.replicasNotInSync) being copied)" : "")
        ]
        if status.movesOff > 0 { parts.append("\(status.movesOff) moving off") }
        if status.movesOn > 0 { parts.append("\(status.movesOn) moving on") }
        return progressLine("node \(status.id) \(status.state): " + parts.joined(separator: ", "), percent: percent, width: width)
    }

    /// `text` led by `percent` (clamped to 0...100) and, with a `width`, a bar of that many cells.
    static func progressLine(_ text: String, percent: Double?, width: Int) -> String {
        guard let percent else { return text }
        let shown = min(100, max(0, percent))
        return (width > 0 ? progressBar(shown, width: width) + " " : "") + "\(shown)% " + text
    }

    /// How many live members serve a LUN at its size: `LUN 0 at 128 MiB: served by 2 of 3 nodes (3 not yet)`.
    static func servedProgress(_ l: LUNStatus) -> String {
        let served = l.served ?? []
        let behind = served.filter { $0.sizeBytes != l.sizeBytes }.map { "\($0.node)" }
        return "\(l.target) LUN \(l.lun) at \(formatBytes(l.sizeBytes)): served by \(served.count - behind.count) of "
            + "\(served.count) node\(served.count == 1 ? "" : "s")"
            + (behind.isEmpty ? "" : " (\(behind.joined(separator: ", ")) not yet)")
    }

    /// `[####......]`: `percent` of `width` cells filled.
    static func progressBar(_ percent: Double, width: Int) -> String {
        let filled = Int((min(100, max(0, percent)) / 100 * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}

