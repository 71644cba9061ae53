import FuzzSupport
import ClusterWire

/// libFuzzer's entry for the peer-protocol decoder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzzInput(data, size, PeerWireFuzzing.decodeAndReencode) }

runLibFuzzer(fuzz)
