import Foundation
import ISCSISession

/// CHAP credentials as a request sets them: the login's own type, whose
/// descriptions never show a secret.
public typealias CHAPSetting = CHAPCredentials

/// One change to a target's access rules, as a request asks for it (validated).
public enum AccessChange: Hashable, Sendable, CustomStringConvertible {
    /// `POST /v1/targets/{iqn}/acls`: the initiator may log in.
    case allow(target: String, initiator: String)
    /// `DELETE /v1/targets/{iqn}/acls/{initiator}`: it may not any more.
    case revoke(target: String, initiator: String)
    /// `PUT /v1/targets/{iqn}/chap/{initiator}`: the initiator must prove these credentials.
    case setCHAP(target: String, initiator: String, CHAPSetting)
    /// `DELETE /v1/targets/{iqn}/chap/{initiator}`: its own credentials are gone.
    case removeCHAP(target: String, initiator: String)
    /// `PUT /v1/targets/{iqn}/luns/{n}/initiators/{initiator}`: the initiator
    /// sees the LUN; a LUN with a mask is hidden from every initiator not in it.
    case mask(target: String, lun: UInt16, initiator: String)
    /// `DELETE /v1/targets/{iqn}/luns/{n}/initiators/{initiator}`: it does not any more.
    case unmask(target: String, lun: UInt16, initiator: String)
    /// `DELETE /v1/targets/{iqn}/luns/{n}/initiators`: no mask; every initiator sees the LUN.
    case clearMask(target: String, lun: UInt16)

    /// The target the change applies to.
    public var target: String {
        switch self {
        case .allow(let target, _), .revoke(let target, _), .setCHAP(let target, _, _), .removeCHAP(let target, _),
            .mask(let target, _, _), .unmask(let target, _, _), .clearMask(let target, _):
            target
        }
    }

    /// The initiator the change applies to.
    public var initiator: String {
        switch self {
        case .allow(_, let initiator), .revoke(_, let initiator), .setCHAP(_, let initiator, _),
            .removeCHAP(_, let initiator), .mask(_, _, let initiator), .unmask(_, _, let initiator):
            initiator
        case .clearMask: ""
        }
    }

    public var description: String {
        switch self {
        case .allow: "allow \(initiator) on \(target)"
        case .revoke: "revoke \(initiator) on \(target)"
        case .setCHAP(_, _, let chap): "set \(chap) for \(initiator) on \(target)"
        case .removeCHAP: "remove CHAP of \(initiator) on \(target)"
        case .mask(_, let lun, _): "show LUN \(lun) of \(target) to \(initiator)"
        case .unmask(_, let lun, _): "hide LUN \(lun) of \(target) from \(initiator)"
        case .clearMask(_, let lun): "show LUN \(lun) of \(target) to every initiator"
        }
    }
}

/// The checks a change's request passes before it reaches the store. Pure.
public enum AccessValidation {
    /// RFC 7143 §12.1.3 (as RFC 3720 §8.2.1): a CHAP secret is at least 96
    /// bits, 12 bytes, unless IPsec protects the link (Tessera does not
    /// know that, so it always asks for 12).
    public static let minimumSecretBytes = 12
    /// The longest secret open-iscsi (`AUTH_STR_MAX_LEN` 256 with its NUL)
    /// and LIO (`MAX_CHAP_SECRET_LEN`) accept: a longer one could never be
    /// configured on a Linux initiator.
    public static let maximumSecretBytes = 255
    /// The longest CHAP_N, as open-iscsi and LIO bound it.
    public static let maximumUserBytes = 255
    /// The longest request id kept in the store.
    public static let maximumRequestIDBytes = 128

    /// An initiator name from a request: normalized to lower case (RFC 7143
    /// §4.2.7.2), or the failure saying how a name looks.
    public static func initiator(_ raw: String) -> Result<String, AdminFailure> {
        guard ISCSIName.isWellFormed(raw) else {
            return .failure(
                AdminFailure(
                    status: 400, error: "\(AdminRouter.printable(raw)) is not an iSCSI initiator name",
                    hint: "give an iqn., eui. or naa. name (RFC 7143 §4.2.7), e.g. iqn.2004-10.com.example:host1, "
                        + "at most \(ISCSIName.maxLength) bytes; open-iscsi's is in /etc/iscsi/initiatorname.iscsi"))
        }
        return .success(raw.lowercased())
    }

    /// `user` is a CHAP name: 1...255 bytes, no control characters.
    static func user(_ user: String, field: String) -> AdminFailure? {
        let bytes = user.utf8.count
        guard bytes >= 1, bytes <= maximumUserBytes, !user.unicodeScalars.contains(where: isControl) else {
            return AdminFailure(
                status: 400, error: "\(field) must be 1...\(maximumUserBytes) bytes without control characters",
                hint: "it is the CHAP name (CHAP_N) the initiator is configured with, e.g. node.session.auth.username")
        }
        return nil
    }

    /// `secret` is a CHAP secret: 12...255 bytes, no control characters.
    /// The message never quotes the secret.
    static func secret(_ secret: String, field: String) -> AdminFailure? {
        let bytes = secret.utf8.count
        guard bytes >= minimumSecretBytes, bytes <= maximumSecretBytes else {
            return AdminFailure(
                status: 400,
                error:
                    "\(field) is \(bytes) bytes; a CHAP secret is \(minimumSecretBytes)...\(maximumSecretBytes) bytes",
                hint: "RFC 7143 §12.1.3 asks for at least 96 bits (12 bytes); open-iscsi and LIO take at most "
                    + "\(maximumSecretBytes); e.g. openssl rand -base64 12")
        }
        guard !secret.unicodeScalars.contains(where: isControl) else {
            return AdminFailure(
                status: 400, error: "\(field) holds a control character (a newline?)",
                hint: "write the secret without line breaks or tabs; tessera strips one final newline from a file")
        }
        return nil
    }

    /// The credentials a `PUT .../chap/{initiator}` body sets, checked:
    /// strings only, known fields only, mutual user and secret together,
    /// the mutual secret different from the one-way secret (RFC 7143 §12.1.3:
    /// a secret authenticates one direction only).
    public static func chap(_ object: [String: Any]) -> Result<CHAPSetting, AdminFailure> {
        let known: Set = ["user", "secret", "mutual_user", "mutual_secret", "request_id"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(
                AdminFailure(
                    status: 400, error: "unknown field \(AdminRouter.printable(unknown))",
                    hint: "the body takes user, secret, and optionally mutual_user and mutual_secret"))
        }
        var strings: [String: String] = [:]
        for (key, value) in object {
            guard let text = value as? String else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "\(key) must be a JSON string", hint: "e.g. {\"user\": \"host1\", …}"))
            }
            strings[key] = text
        }
        guard let user = strings["user"], let secret = strings["secret"] else {
            return .failure(
                AdminFailure(
                    status: 400, error: "user and secret are required",
                    hint: "send {\"user\": \"...\", \"secret\": \"...\"} (12...255 bytes), "
                        + "optionally with mutual_user and mutual_secret"))
        }
        if let failure = self.user(user, field: "user") ?? self.secret(secret, field: "secret") {
            return .failure(failure)
        }
        switch (strings["mutual_user"], strings["mutual_secret"]) {
        case (nil, nil):
            return .success(CHAPSetting(user: user, secret: secret))
        case (let mutualUser?, let mutualSecret?):
            if let failure = self.user(mutualUser, field: "mutual_user")
                ?? self.secret(mutualSecret, field: "mutual_secret")
            {
                return .failure(failure)
            }
            guard mutualSecret != secret else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "mutual_secret is the same as secret",
                        hint: "RFC 7143 §12.1.3: a secret that authenticates the initiator must not authenticate "
                            + "the target; choose another mutual secret"))
            }
            return .success(CHAPSetting(user: user, secret: secret, mutualUser: mutualUser, mutualSecret: mutualSecret))
        default:
            return .failure(
                AdminFailure(
                    status: 400, error: "mutual_user and mutual_secret go together",
                    hint: "give both for mutual CHAP, or neither for one-way CHAP"))
        }
    }

    /// A request id from the `Idempotency-Key` header or the `request_id`
    /// field (the header wins when both are given and agree; they must agree).
    public static func requestID(header: String?, field: Any?) -> Result<String?, AdminFailure> {
        var fieldText: String?
        if let field {
            guard let text = field as? String else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "request_id must be a JSON string",
                        hint: "e.g. \"request_id\": \"7d0c…\", any unique text of 1...\(maximumRequestIDBytes) bytes"))
            }
            fieldText = text
        }
        if let header, let fieldText, header != fieldText {
            return .failure(
                AdminFailure(
                    status: 400, error: "the Idempotency-Key header and request_id differ",
                    hint: "send the request id once, in either"))
        }
        guard let id = header ?? fieldText else { return .success(nil) }
        guard (1...maximumRequestIDBytes).contains(id.utf8.count),
            id.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            return .failure(
                AdminFailure(
                    status: 400, error: "a request id is 1...\(maximumRequestIDBytes) printable ASCII characters",
                    hint: "use a UUID: tessera sends one with every change"))
        }
        return .success(id)
    }

    /// The body as a JSON object (an empty body is an empty object).
    /// A change request's JSON object and its request id (header or `request_id` field).
    static func body(_ request: AdminRequest) -> Result<(object: [String: Any], requestID: String?), AdminFailure> {
        object(request.body).flatMap { object in
            requestID(header: request.idempotencyKey, field: object["request_id"]).map { (object, $0) }
        }
    }

    static func object(_ body: [UInt8]) -> Result<[String: Any], AdminFailure> {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success([:]) }
        guard let value = try? JSONSerialization.jsonObject(with: Data(body)), let object = value as? [String: Any]
        else {
            return .failure(
                AdminFailure(
                    status: 400, error: "the body is not a JSON object",
                    hint: "send Content-Type: application/json with a body such as {\"initiator\": \"iqn....\"}"))
        }
        return .success(object)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7F }
}
