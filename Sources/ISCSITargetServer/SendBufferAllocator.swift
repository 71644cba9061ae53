import BlockStorage
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Read buffers that are the connection's send buffers: each ``IOBuffer`` lives
/// inside a `ByteBuffer`'s storage, aligned for O_DIRECT, so the bytes the device
/// reads into it become the Data-In payload as they are (no copy between the
/// device and the socket).
struct SendBufferAllocator: IOBufferAllocator {
    /// Whether lent device memory (``MappedFileWindow``) may be sent as it
    /// is: only the kernel reads it then (no data digest over it).
    var sendsLentMemory: Bool

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
        if let window = buffer.owner as? MappedFileWindow,
            let slice = LentWindowView.slice(of: window, at: buffer.baseAddress - window.baseAddress, length: length)
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

/// `ByteBuffer`s over parts of a ``MappedFileWindow``, so lent pages become
/// a Data-In payload as a slice of one (one reference count, no copy). A
/// `ByteBuffer` slice must begin in the first 16 MiB of its storage (NIO
/// copies one that begins later), so view `k` spans 32 MiB from `k × 16 MiB`:
/// a lent range (at most the 8 MiB transfer limit) starting in its first
/// half lies within it. A view's storage keeps the window (and so its
/// mapping) alive in ``windows`` until NIO frees it, after the last slice
/// has been written; the window hands out views only until it is retired.
final class LentWindowView: Sendable {
    let buffer: ByteBuffer
    private init(_ buffer: ByteBuffer) { self.buffer = buffer }

    /// Where views start, and how far a slice may begin into one.
    static let stride = 16 << 20
    static let span = 2 * stride

    /// `length` bytes at `offset` in `window` as a slice of its view; nil once
    /// the window is retired or for a range no view holds (the caller copies).
    static func slice(of window: MappedFileWindow, at offset: Int, length: Int) -> ByteBuffer? {
        let key = offset / stride
        let start = key * stride
        let count = min(span, window.count - start)
        guard offset >= 0, offset + length <= start + count else { return nil }
        let view = window.transportView(key) {
            let base = window.baseAddress + start
            windows.withLock { $0[UInt(bitPattern: base)] = window }
            return LentWindowView(
                ByteBuffer(
                    takingOwnershipOf: UnsafeMutableRawBufferPointer(start: base, count: count),
                    allocator: allocator, readerIndex: 0, writerIndex: count))
        }
        return (view as? LentWindowView)?.buffer.getSlice(at: offset - start, length: length)
    }

    /// The window of every view alive, by the view's base address.
    static let windows = Mutex<[UInt: MappedFileWindow]>([:])

    /// `deallocate` ends a view: it lets its window go. The other hooks serve a
    /// copy-on-write, which nothing here causes (nothing writes to a view); a
    /// copy is ordinary heap memory.
    static let allocator = ByteBufferAllocator(
        allocate: { malloc($0) },
        reallocate: { realloc($0, $2) },
        deallocate: { pointer in
            let window = LentWindowView.windows.withLock { $0.removeValue(forKey: UInt(bitPattern: pointer)) }
            if window == nil { free(pointer) }
        },
        copy: { $0.copyMemory(from: $1, byteCount: Int($2)) })
}
