/// What every fuzz target's `LLVMFuzzerTestOneInput` does: hands libFuzzer's
/// input to its entry points and traps when one reports an inconsistency,
/// so libFuzzer records the input as a crash. Returns libFuzzer's "keep going".
public func fuzzInput(
    _ data: UnsafePointer<UInt8>?, _ size: Int, _ entries: (UnsafeRawBufferPointer) -> Bool...
) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    for (index, entry) in entries.enumerated() where !entry(bytes) {
        fatalError("fuzz entry \(index) found an inconsistency")
    }
    return 0
}
