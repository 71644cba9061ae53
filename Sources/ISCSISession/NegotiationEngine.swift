/// Answers operational keys offered by the initiator, one at a time, using the
/// key table (`NegotiationKeys`) and the target's offers (`LoginConfiguration`).
/// Pure: no I/O, no clock.
struct NegotiationEngine: Sendable {
    /// What to do with one offered key.
    enum Answer: Sendable, Equatable {
        /// Answer `key=value`.
        case answer(String)
        /// Declarative: accept, answer nothing.
        case noAnswer
        /// Fail the login with this status.
        case fail(LoginStatus, String)
    }

    let configuration: LoginConfiguration
    /// Negotiated (or declared) values by key.
    private(set) var results: [String: String] = [:]
    /// Keys already offered in this login (RFC 7143 §6.2: at most once).
    private(set) var offered: Set<String> = []

    init(configuration: LoginConfiguration) {
        self.configuration = configuration
    }

    /// The target's own value for a negotiable key.
    func ownValue(_ key: String) -> String? {
        let c = configuration
        func yesNo(_ b: Bool) -> String { b ? "Yes" : "No" }
        switch key {
        case "HeaderDigest", "DataDigest": return c.allowDigests ? "CRC32C,None" : "None"
        case "MaxConnections": return String(c.maxConnections)
        case "InitialR2T": return yesNo(c.initialR2T)
        case "ImmediateData": return yesNo(c.immediateData)
        case "MaxBurstLength": return String(c.maxBurstLength)
        case "FirstBurstLength": return String(min(c.firstBurstLength, c.maxBurstLength))
        case "DefaultTime2Wait": return String(c.defaultTime2Wait)
        case "DefaultTime2Retain": return String(c.defaultTime2Retain)
        case "MaxOutstandingR2T": return String(c.maxOutstandingR2T)
        case "DataPDUInOrder", "DataSequenceInOrder": return "Yes"
        case "ErrorRecoveryLevel": return "0"
        case "TaskReporting": return "RFC3720"
        case "iSCSIProtocolLevel": return "1"
        case "IFMarker", "OFMarker": return "No"
        default: return nil
        }
    }

    /// Answers one offered operational key.
    ///
    /// - Parameters:
    ///   - discovery: the session is a discovery session.
    ///   - leading: this is the leading connection (TSIH 0 in the login request).
    mutating func negotiate(key: String, value: String, discovery: Bool, leading: Bool) -> Answer {
        // RFC 7143 §6.2: unknown keys, X- and X# extension keys included, get NotUnderstood.
        guard let entry = NegotiationKeys.byName[key] else { return .answer("NotUnderstood") }
        // RFC 7143 §6.2: a key is negotiated at most once per login.
        guard offered.insert(key).inserted else {
            return .fail(.initiatorError, "key \(key) offered twice")
        }
        if entry.name == "IFMarkInt" || entry.name == "OFMarkInt" {
            // RFC 3720 §12.19: irrelevant while markers are off (always, here).
            return .answer("Irrelevant")
        }
        guard entry.sender != .target else { return .answer("Reject") }
        switch entry.phase {
        case .fullFeatureOnly, .securityOnly: return .answer("Reject")
        case .leadingOnly where !leading:
            // RFC 7143 §13: LO keys are only sent on the leading connection.
            return .fail(.initiatorError, "leading-only key \(key) on a non-leading connection")
        default: break
        }
        // RFC 7143 §13: "Irrelevant when: SessionType=Discovery".
        if discovery && entry.irrelevantInDiscovery { return .answer("Irrelevant") }

        switch entry.type {
        case .boolean:
            guard value == "Yes" || value == "No", let own = ownValue(key) else { return .answer("Reject") }
            let offeredYes = value == "Yes"
            let ownYes = own == "Yes"
            let result = entry.merge == .and ? (offeredYes && ownYes) : (offeredYes || ownYes)
            let text = result ? "Yes" : "No"
            results[key] = text
            return .answer(text)

        case .numeric(let range):
            guard let number = NumericValue.parse(value), range.contains(number) else {
                // RFC 7143 §6.2: an out-of-range or malformed value is answered Reject.
                return .answer("Reject")
            }
            if entry.merge == .declare {
                results[key] = String(number)
                return .noAnswer
            }
            guard let ownText = ownValue(key), let own = UInt64(ownText) else { return .answer("Reject") }
            var result = entry.merge == .maximum ? max(number, own) : min(number, own)
            if key == "FirstBurstLength" {
                // RFC 7143 §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
                result = min(result, UInt64(effectiveMaxBurstLength))
            }
            results[key] = String(result)
            return .answer(String(result))

        case .list:
            guard let own = ownValue(key) else { return .answer("Reject") }
            let supported = own.split(separator: ",").map(String.init)
            let proposals = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            // RFC 7143 §6.2.1: the responder picks the first value of the originator's
            // list that it supports; none supported → Reject.
            guard !proposals.contains(where: \.isEmpty),
                let chosen = proposals.first(where: { supported.contains($0) })
            else {
                return .answer("Reject")
            }
            results[key] = chosen
            return .answer(chosen)

        case .declarative:
            results[key] = value
            return .noAnswer
        }
    }

    /// MaxBurstLength as it stands (negotiated, else the RFC default).
    var effectiveMaxBurstLength: UInt32 {
        results["MaxBurstLength"].flatMap { UInt32($0) } ?? 262_144
    }

    /// The parameters in force: negotiated values, else RFC defaults.
    func parameters() -> NegotiatedParameters {
        var p = NegotiatedParameters()
        func number(_ key: String) -> UInt32? { results[key].flatMap { UInt32($0) } }
        func flag(_ key: String) -> Bool? { results[key].map { $0 == "Yes" } }
        p.headerDigest = results["HeaderDigest"] == "CRC32C"
        p.dataDigest = results["DataDigest"] == "CRC32C"
        p.maxConnections = number("MaxConnections") ?? p.maxConnections
        p.initialR2T = flag("InitialR2T") ?? p.initialR2T
        p.immediateData = flag("ImmediateData") ?? p.immediateData
        p.initiatorMaxRecvDataSegmentLength = number("MaxRecvDataSegmentLength") ?? 8192
        p.targetMaxRecvDataSegmentLength = configuration.maxRecvDataSegmentLength
        p.maxBurstLength = number("MaxBurstLength") ?? p.maxBurstLength
        p.firstBurstLength = min(number("FirstBurstLength") ?? p.firstBurstLength, p.maxBurstLength)
        p.defaultTime2Wait = number("DefaultTime2Wait") ?? p.defaultTime2Wait
        p.defaultTime2Retain = number("DefaultTime2Retain") ?? p.defaultTime2Retain
        p.maxOutstandingR2T = number("MaxOutstandingR2T") ?? p.maxOutstandingR2T
        p.dataPDUInOrder = flag("DataPDUInOrder") ?? p.dataPDUInOrder
        p.dataSequenceInOrder = flag("DataSequenceInOrder") ?? p.dataSequenceInOrder
        p.errorRecoveryLevel = 0
        return p
    }
}
