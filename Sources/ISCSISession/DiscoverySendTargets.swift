/// Builds SendTargets answers (RFC 7143 §13.3, Appendix C).
enum DiscoverySendTargets {
    /// The `TargetName=` / `TargetAddress=` pairs answering `SendTargets=<value>`.
    ///
    /// - Discovery session: `All` lists every target the initiator's ACL lets it see;
    ///   a target name lists that target if visible; an empty value lists nothing.
    /// - Normal session: `All`, empty, or the session's own name list only the session's target.
    static func answer(
        value: String, configuration: LoginConfiguration, sessionType: LoginSessionType,
        initiatorName: String, sessionTargetName: String?
    ) -> TextParameters {
        let visible = configuration.targets.filter { $0.allows(initiator: initiatorName) }
        let selected: [TargetDescription]
        switch sessionType {
        case .discovery:
            if value == "All" {
                selected = visible
            } else if value.isEmpty {
                selected = []
            } else {
                selected = visible.filter { $0.name.lowercased() == value.lowercased() }
            }
        case .normal:
            let own = visible.filter { $0.name.lowercased() == sessionTargetName?.lowercased() }
            if value == "All" || value.isEmpty || value.lowercased() == sessionTargetName?.lowercased() {
                selected = own
            } else {
                selected = []
            }
        }
        var text = TextParameters()
        for target in selected {
            text.append("TargetName", target.name)
            for address in target.targetAddresses {
                text.append("TargetAddress", address)
            }
        }
        return text
    }
}
