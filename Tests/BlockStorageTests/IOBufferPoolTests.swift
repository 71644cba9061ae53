import BlockStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct IOBufferPoolTests {
    @Test func aReleasedBufferServesTheNextRequestOfItsClass() {
        let pool = IOBufferPool(retainedBytesLimit: 8 << 20)
        let first = pool.allocate(count: 1 << 20)
        pool.release(first)
        #expect(pool.retainedBytes == 1 << 20)
        // 768 KiB rounds up to the 1 MiB class.
        let second = pool.allocate(count: 768 << 10)
        #expect(second == first)
        #expect(pool.retainedBytes == 0)
        #expect(pool.counts == IOBufferPool.Counts(reused: 1, allocated: 1, dropped: 0))
        pool.release(second)
    }

    @Test func everyBufferIsAlignedAndWritableToTheEnd() {
        let pool = IOBufferPool(retainedBytesLimit: 64 << 20)
        for count in [1, 512, 4096, 65_535, 65_536, 65_537, 1 << 20, (1 << 20) + 4096, 16 << 20, (16 << 20) + 1] {
            let pointer = pool.allocate(count: count)
            #expect(Int(bitPattern: pointer) % IOBuffer.defaultAlignment == 0, "count \(count)")
            memset(pointer, 0xA5, count)
            #expect(pointer.load(fromByteOffset: count - 1, as: UInt8.self) == 0xA5)
            pool.release(pointer)
        }
        // Seven of the requests are in [4 KiB, 16 MiB], the pooled sizes; the
        // other three went to posix_memalign and do not count.
        let counts = pool.counts
        #expect(counts.allocated + counts.reused == 7)
    }

    @Test func aSmallerClassIsNotServedFromALargerClassesBuffer() {
        let pool = IOBufferPool(retainedBytesLimit: 8 << 20)
        let large = pool.allocate(count: 2 << 20)
        pool.release(large)
        let small = pool.allocate(count: 64 << 10)
        #expect(small != large)
        #expect(pool.counts.reused == 0)
        // And a larger request never gets a kept buffer too small for it.
        pool.release(small)
        let again = pool.allocate(count: 128 << 10)
        #expect(again != small)
        pool.release(again)
    }

    @Test func whatExceedsTheLimitIsFreedNotKept() {
        let pool = IOBufferPool(retainedBytesLimit: 2 << 20)
        let buffers = (0..<3).map { _ in pool.allocate(count: 1 << 20) }
        for buffer in buffers { pool.release(buffer) }
        #expect(pool.retainedBytes == 2 << 20)
        #expect(pool.counts.dropped == 1)
    }

    @Test func aTransferAboveTheLargestClassIsFreedNotCountedAsOne() {
        // 40 MiB would have been kept as a 16 MiB buffer: the limit would then
        // count 16 MiB for 40 MiB held.
        let pool = IOBufferPool(retainedBytesLimit: 64 << 20)
        pool.release(pool.allocate(count: 40 << 20))
        #expect(pool.retainedBytes == 0)
        pool.release(pool.allocate(count: 16 << 20))
        #expect(pool.retainedBytes == 16 << 20)
    }

    @Test func memoryFromElsewhereIsOnlyKeptWhenItIsAlignedAndLargeEnough() {
        let pool = IOBufferPool(retainedBytesLimit: 8 << 20)
        // malloc's 16-byte alignment: never handed out for O_DIRECT.
        let unaligned = malloc(256 << 10)!
        let misaligned = Int(bitPattern: unaligned) % IOBuffer.defaultAlignment != 0
        pool.release(unaligned)
        if misaligned { #expect(pool.retainedBytes == 0) }
        // Aligned, but below the smallest class: freed.
        var tiny: UnsafeMutableRawPointer?
        #expect(posix_memalign(&tiny, 4096, 2048) == 0)
        pool.release(tiny!)
        #expect(pool.retainedBytes == (misaligned ? 0 : 256 << 10))
        // Aligned and large enough: kept, and served to its class.
        var page: UnsafeMutableRawPointer?
        #expect(posix_memalign(&page, 4096, 8192) == 0)
        pool.release(page!)
        #expect(pool.allocate(count: 8192) == page)
    }

    @Test func ioBuffersGiveTheirMemoryBackToTheSharedPool() {
        let before = IOBufferPool.shared.counts
        for _ in 0..<4 { _ = IOBuffer(count: 512 << 10) }
        // Other tests use the shared pool at the same time, so only the growth
        // is certain: the second of these at least met a kept buffer.
        #expect(IOBufferPool.shared.counts.reused > before.reused)
    }
}
