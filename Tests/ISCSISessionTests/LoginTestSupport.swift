import ISCSIWire
import NIOCore

@testable import ISCSISession

/// Builders shared by the login and text transcripts.
enum LoginTestSupport {
    static let initiator = "iqn.2026-01.test:initiator"
    static let targetName = "iqn.2026-01.tessera:lun0"
    static let otherTarget = "iqn.2026-01.tessera:private"

    static func buffer(_ pairs: [(String, String)]) -> ByteBuffer {
        var text = TextParameters()
        for (key, value) in pairs { text.append(key, value) }
        return buffer(text.encoded())
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return buffer
    }

    static func request(
        _ csg: LoginStage, _ nsg: LoginStage, transit: Bool, continue more: Bool = false,
        tsih: UInt16 = 0, versionMin: UInt8 = 0, _ pairs: [(String, String)] = []
    ) -> LoginRequestPDU {
        LoginRequestPDU(
            transit: transit, continue: more, currentStage: csg, nextStage: nsg, versionMax: 0,
            versionMin: versionMin, isid: 0x8000_0000_1234, tsih: tsih, initiatorTaskTag: 0x77, cid: 1,
            cmdSN: 100, expStatSN: 5, dataSegment: buffer(pairs))
    }

    static func configuration(
        chap: CHAPCredentials? = nil, discoveryCHAP: CHAPCredentials? = nil, acl: [String] = []
    ) -> LoginConfiguration {
        var configuration = LoginConfiguration(
            targets: [
                TargetDescription(
                    name: targetName, alias: "lun0", portalGroupTag: 1,
                    sendTargetsAddresses: ["127.0.0.1:3260,1", "127.0.0.2:3260,2"], allowedInitiators: acl,
                    chap: chap),
                TargetDescription(
                    name: otherTarget, portalGroupTag: 1, sendTargetsAddresses: ["127.0.0.1:3260"],
                    allowedInitiators: ["iqn.2026-01.test:someone-else"]),
            ],
            discoveryCHAP: discoveryCHAP, portalGroupTag: 1)
        configuration.maxLoginPDUs = 16
        return configuration
    }

    static func text(_ buffer: ByteBuffer) -> TextParameters {
        (try? TextParameters.parse(Array(buffer.readableBytesView))) ?? TextParameters([.init("PARSE", "FAILED")])
    }

    static func status(_ pdu: LoginResponsePDU) -> LoginStatus {
        LoginStatus(statusClass: pdu.statusClass, statusDetail: pdu.statusDetail)
    }

    static func hex(_ text: String) -> [UInt8] {
        BinaryValue.decode("0x" + text) ?? []
    }
}

extension LoginAction {
    /// The response whatever the action.
    var response: LoginResponsePDU {
        switch self {
        case .send(let pdu), .sendAndClose(let pdu), .complete(let pdu, _): pdu
        }
    }

    var outcome: LoginOutcome? {
        if case .complete(_, let outcome) = self { return outcome }
        return nil
    }

    var closes: Bool {
        if case .sendAndClose = self { return true }
        return false
    }
}
