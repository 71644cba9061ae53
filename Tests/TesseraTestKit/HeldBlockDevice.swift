import BlockStorage
import Synchronization

/// A device over another that runs every operation at once, except the
/// next write to a range the test armed with ``holdNextWrite(overlapping:)``:
/// that one parks until ``release()``. Unlike ``ControlledBlockDevice`` the
/// rest of the traffic (a resync's reads, flushes) goes on by itself, so a
/// test can hold one write in its primary's ordering while everything
/// around it runs.
public final class HeldBlockDevice: BlockDevice {
    public let backing: any BlockDevice
    public var geometry: BlockGeometry { backing.geometry }
    public var supportsUnmap: Bool { backing.supportsUnmap }
    private let state = Mutex<(armed: Range<UInt64>?, parked: [CheckedContinuation<Void, Never>])>((nil, []))

    public init(_ backing: any BlockDevice) { self.backing = backing }

    /// The next write that overlaps `blocks` parks until ``release()``.
    public func holdNextWrite(overlapping blocks: Range<UInt64>) { state.withLock { $0.armed = blocks } }

    /// Writes parked now.
    public var held: Int { state.withLock { $0.parked.count } }

    /// Lets every parked write go on.
    public func release() {
        let parked = state.withLock { s in
            defer { s.parked = [] }
            return s.parked
        }
        for continuation in parked { continuation.resume() }
    }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError)
    {
        try await backing.read(lba: lba, blockCount: blockCount, into: buffer, offset: offset)
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        let blocks = lba..<lba + UInt64(blockCount)
        let hold = state.withLock { s in
            guard let armed = s.armed, armed.overlaps(blocks) else { return false }
            s.armed = nil
            return true
        }
        if hold {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                state.withLock { $0.parked.append(continuation) }
            }
        }
        try await backing.write(lba: lba, blockCount: blockCount, from: buffer, offset: offset, fua: fua)
    }

    public func flush() async throws(BlockDeviceError) { try await backing.flush() }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        try await backing.unmap(lba: lba, blockCount: blockCount)
    }

    public func close() async {
        release()
        await backing.close()
    }
}
