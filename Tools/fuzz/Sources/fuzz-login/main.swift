import FuzzSupport
import ISCSISession

/// libFuzzer's entry for login and text negotiation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzzInput(data, size, LoginFuzzing.negotiate) }

runLibFuzzer(fuzz)
