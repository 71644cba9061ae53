import FuzzSupport
import SCSITarget

/// libFuzzer's entry for CDB parsing and execution on memory-backed logical units.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzzInput(data, size, SCSITargetFuzzing.executeCommands) }

runLibFuzzer(fuzz)
