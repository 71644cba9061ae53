import FuzzSupport
import ISCSISession
import ISCSIWire

/// libFuzzer's entry for the PDU decoder (decode and re-encode) and for the
/// login and session machines fed the same bytes as a PDU stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size, ISCSIWireFuzzing.decodeAndReencode, SessionFuzzing.loginAndFullFeature)
}

runLibFuzzer(fuzz)
