import BlockStorage
import Synchronization

/// The mappings a buffered device lends large cached reads from: fixed
/// windows of ``AIOFileBlockDevice/mappedWindowSize`` bytes at multiples of
/// that size, each mapped on first use and kept until the device closes. A
/// window may reach past the file's end (the file can grow into it); pages
/// past the end are never resident, so they are never lent.
struct MappedWindows {
    var windows: [Int: MappedFileWindow] = [:]
    /// Set when the kernel refused a mapping or the device closed: no more are tried.
    var disabled = false
}

extension AIOFileBlockDevice: MappedReadableBlockDevice {
    /// One mapping's span. A read that crosses a window's end is read, not lent.
    static let mappedWindowSize = 1 << 30

    /// A cached read larger than ``maximumCachedRead`` lent as the page cache
    /// itself. Smaller reads are copied on the caller's thread anyway
    /// (`preadv2(RWF_NOWAIT)` costs what `mincore` does), and larger ones
    /// would otherwise go to the pool and be copied there: lending saves that
    /// copy and two thread hops. Nil (read instead) on an O_DIRECT device
    /// (its data is not in the page cache), a closed one, a range not all in
    /// memory now, or one that crosses a window.
    ///
    /// The pages are checked resident just before they are lent; one the
    /// kernel reclaims before the transport has sent it is read back from the
    /// disk by that send (a page fault on the sending thread, no wrong data).
    /// A file cut shorter underneath (a forced shrink, whose caller keeps
    /// commands off the blocks it cuts, or someone else's `truncate`) makes
    /// the send of pages past the new end fail rather than send stale data.
    public func mappedRead(lba: UInt64, blockCount: UInt32) -> IOBuffer? {
        guard ioPath == .buffered, IOTuning.mappedReads else { return nil }
        guard let (start, length) = try? byteRange(lba, UInt64(blockCount)), length > LentReads.lendsReadsAbove else {
            return nil
        }
        let index = start / Self.mappedWindowSize
        guard (start + length - 1) / Self.mappedWindowSize == index, let window = mappedWindow(index) else { return nil }
        let offset = start - window.fileOffset
        guard window.isResident(offset: offset, length: length) else { return nil }
        Routes.count(routes.lent)
        return IOBuffer(adopting: window.baseAddress + offset, count: length, owner: window)
    }

    /// Window `index`, mapped now if it is not yet; nil once mapping failed or the device closed.
    private func mappedWindow(_ index: Int) -> MappedFileWindow? {
        let fd = self.fd
        let (window, failed): (MappedFileWindow?, Bool) = mappedWindows.withLock { state in
            if let window = state.windows[index] { return (window, false) }
            guard !state.disabled else { return (nil, false) }
            guard let made = MappedFileWindow(fd: fd, fileOffset: index * Self.mappedWindowSize, count: Self.mappedWindowSize)
            else {
                state.disabled = true
                return (nil, true)
            }
            state.windows[index] = made
            return (made, false)
        }
        if failed {
            logger.warning("cannot map the backing file: large cached reads are copied instead")
        }
        return window
    }

    /// Stops lending (the device is closing): each window's mapping ends with
    /// the last lent buffer still in flight.
    func retireMappedWindows() {
        let windows = mappedWindows.withLock { state in
            state.disabled = true
            defer { state.windows = [:] }
            return Array(state.windows.values)
        }
        for window in windows { window.retire() }
    }
}
