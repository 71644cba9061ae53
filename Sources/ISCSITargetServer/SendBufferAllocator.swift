import BlockStorage
@_spi(CustomByteBufferAllocator) import NIOCore

/// Read buffers that are the connection's send buffers: each ``IOBuffer`` lives
/// inside a `ByteBuffer`'s storage, aligned for O_DIRECT, so the bytes the device
/// reads into it become the Data-In payload as they are (no copy between the
/// device and the socket).
struct SendBufferAllocator: IOBufferAllocator {
    /// Memory from ``IOBufferPool``, aligned already, which the `ByteBuffer`
    /// gives back to the pool when the last reference to it goes (after the
    /// socket has written it).
    func buffer(count: Int) -> IOBuffer {
        let base = IOBufferPool.shared.allocate(count: count)
        let storage = ByteBuffer(
            takingOwnershipOf: UnsafeMutableRawBufferPointer(start: base, count: count),
            allocator: Self.pooledAllocator, readerIndex: 0, writerIndex: count)
        return IOBuffer(adopting: base, count: count, owner: SendBufferStorage(storage))
    }

    /// NIO's hooks onto ``IOBufferPool``. Only `deallocate` runs for the buffers
    /// above; the others serve a copy-on-write, which nothing here causes.
    static let pooledAllocator = ByteBufferAllocator(
        allocate: { IOBufferPool.shared.allocate(count: Int($0)) },
        reallocate: { pointer, oldSize, newSize in
            let moved = IOBufferPool.shared.allocate(count: Int(newSize))
            if let pointer {
                moved.copyMemory(from: pointer, byteCount: Int(min(oldSize, newSize)))
                IOBufferPool.shared.release(pointer)
            }
            return moved
        },
        deallocate: { IOBufferPool.shared.release($0) },
        copy: { $0.copyMemory(from: $1, byteCount: Int($2)) })

    /// The bytes `[0, length)` of `buffer` as a `ByteBuffer`: its own storage when
    /// one of these allocators made it, otherwise a copy.
    static func payload(_ buffer: IOBuffer, length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let owner = buffer.owner as? SendBufferStorage,
            let slice = owner.buffer.getSlice(at: owner.buffer.readerIndex, length: length)
        {
            return slice
        }
        var bytes = allocator.buffer(capacity: length)
        bytes.writeBytes(UnsafeRawBufferPointer(start: buffer.baseAddress, count: length))
        return bytes
    }
}

/// Keeps a send buffer's storage alive (and its address fixed: nothing writes
/// through this `ByteBuffer`, so it is never copied or grown) while an
/// ``IOBuffer`` points into it.
final class SendBufferStorage: Sendable {
    let buffer: ByteBuffer
    init(_ buffer: ByteBuffer) { self.buffer = buffer }
}
