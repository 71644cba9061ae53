import BlockStorage
import NIOCore

/// Read buffers that are the connection's send buffers: each ``IOBuffer`` lives
/// inside a `ByteBuffer`'s storage, aligned for O_DIRECT, so the bytes the device
/// reads into it become the Data-In payload as they are (no copy between the
/// device and the socket).
struct SendBufferAllocator: IOBufferAllocator {
    let allocator: ByteBufferAllocator

    func buffer(count: Int) -> IOBuffer {
        let alignment = IOBuffer.defaultAlignment
        // malloc gives no page alignment: take room for the pad in front.
        var storage = allocator.buffer(capacity: count + alignment - 1)
        let base = storage.withUnsafeMutableWritableBytes { $0.baseAddress! }
        let pad = (alignment - Int(bitPattern: base) % alignment) % alignment
        storage.moveWriterIndex(forwardBy: pad + count)
        storage.moveReaderIndex(forwardBy: pad)
        let owner = SendBufferStorage(storage)
        return IOBuffer(adopting: base + pad, count: count, owner: owner)
    }

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
