import FuzzSupport
import MetadataStore

/// libFuzzer's entry for the dqlite wire decoder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzzInput(data, size, DqliteWireFuzzing.decodeFrames) }

runLibFuzzer(fuzz)
