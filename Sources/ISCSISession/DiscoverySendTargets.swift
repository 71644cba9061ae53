/// Builds SendTargets answers (RFC 7143 §13.3, Appendix C).
enum DiscoverySendTargets {
    /// The pairs answering `SendTargets=<value>`: `TargetName=` / `TargetAddress=`
    /// records (zero or more), or `SendTargets=Reject`.
    ///
    /// RFC 7143 Appendix C: the value is `All`, an iSCSI target name or nothing.
    /// - `All`: in a discovery session, every target the initiator's ACL lets it see.
    ///   In a normal session Appendix C says `All` "MUST NOT be supported": it is
    ///   answered as the empty value (the session's own target), never with other
    ///   targets, so an initiator's rediscovery in full-feature phase still works.
    /// - A target name: that target only, if the ACL lets the initiator see it;
    ///   zero records otherwise.
    /// - Nothing: in a normal session the session's own target; in a discovery
    ///   session no target is logged in, so zero records.
    /// - Anything else (`Alle`, `A`, `all`) is not a value the key can take. The
    ///   request itself is well formed, so the answer is the value `Reject` in the
    ///   Text Response (RFC 7143 §6.2: an offered value the responder does not
    ///   accept is answered `key=Reject`); a Reject PDU is kept for requests that
    ///   break the text or PDU rules (RFC 7143 §6.1 syntax, §6.2 duplicate keys, §11.10.2 flags).
    static func answer(
        value: String, configuration: LoginConfiguration, sessionType: LoginSessionType,
        initiatorName: String, sessionTargetName: String?
    ) -> TextParameters {
        var text = TextParameters()
        let visible = configuration.targets.filter { $0.allows(initiator: initiatorName) }
        // RFC 7143 §4.2.7.1: iSCSI names compare case-insensitively.
        func named(_ name: String?) -> [TargetDescription] {
            guard let name else { return [] }
            return visible.filter { $0.name.lowercased() == name.lowercased() }
        }
        let selected: [TargetDescription]
        switch (value, sessionType) {
        case ("All", .discovery):
            selected = visible
        case ("All", .normal), ("", .normal):
            selected = named(sessionTargetName)
        case ("", .discovery):
            selected = []
        case (let name, _) where ISCSIName.isWellFormed(name):
            selected = named(name)
        default:
            text.append("SendTargets", "Reject")
            return text
        }
        for target in selected {
            text.append("TargetName", target.name)
            for address in target.targetAddresses {
                text.append("TargetAddress", address)
            }
        }
        return text
    }
}
