import NIOCore

/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/fuzz calls it): the bytes after the first are what an initiator sends
/// on one connection. They are cut into PDUs by the frame decoder and fed to
/// the login machine, then (once a login completes) to the session machine,
/// with the SCSI layer's completions, task management answers and timer ticks
/// played by ``SessionFuzzDriver``. Every PDU the target sends must decode
/// back to itself within the initiator's limits, the CmdSN window must never
/// shrink below empty or move back, commands must reach the SCSI layer with
/// their write data whole, Data-In must stay within the command's expected
/// length, and nothing may follow a close.
///
/// The first byte picks how the connection starts (``SessionFuzzDriver/Mode``):
/// through login, or straight in full feature phase with chosen parameters, so
/// the session machine gets deep without a login in every input.
///
/// Never traps on its own; returns false on an inconsistency.
public enum SessionFuzzing {
    public static func loginAndFullFeature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first else { return true }
        var stream = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        var driver = SessionFuzzDriver(mode: SessionFuzzDriver.Mode(rawValue: first))
        return driver.run(&stream)
    }
}
