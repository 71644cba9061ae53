/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/fuzz calls it): login and text negotiation from structured bytes,
/// so the fuzzer spends its time on keys and values rather than on BHS
/// fields. The input is a list of requests, each one flags byte, a 16-bit
/// little-endian text length and that much text (``LoginFuzzDriver/Request``):
/// Login Requests until the login ends, then Text Requests to the session's
/// TextNegotiator. Every text is also parsed and, when it parses, re-encoded
/// and parsed again, which must give the same pairs.
///
/// A request whose text has `CHAP_R=fuzz` gets the right CHAP response for
/// the CHAP target's secret put in its place, so mutual CHAP and the
/// operational stage behind it are reachable.
///
/// The oracle: every response decodes back to itself within the limits in
/// force, its text parses, a completed login is a success with parameters in
/// their RFC 7143 §13 ranges and a target the initiator may log in to.
/// Never traps on its own; returns false on an inconsistency.
public enum LoginFuzzing {
    public static func negotiate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var driver = LoginFuzzDriver()
        var input = bytes[...]
        while let request = LoginFuzzDriver.Request(taking: &input) {
            guard driver.receive(request) else { return false }
            if driver.closed { break }
        }
        return true
    }
}
