#ifndef TESSERA_CAIO_SHIM_H
#define TESSERA_CAIO_SHIM_H

// libaio plus the few Linux calls Swift's Glibc module does not expose
// (glibc hides them behind _GNU_SOURCE, and defining it here would make this
// module's view of glibc's types differ from SwiftGlibc's): O_DIRECT,
// RWF_DSYNC, fallocate, eventfd, statx go through syscall(2) and UAPI
// constants instead.
#include <libaio.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include <linux/stat.h>

#if defined(__x86_64__) || defined(__i386__)
#define TESSERA_O_DIRECT 040000
#elif defined(__aarch64__) || defined(__arm__)
#define TESSERA_O_DIRECT 0200000
#else
#error "O_DIRECT value unknown for this architecture"
#endif
#define TESSERA_RWF_DSYNC 0x00000002   /* linux/fs.h */
#define TESSERA_AT_EMPTY_PATH 0x1000   /* linux/fcntl.h */
#define TESSERA_RWF_NOWAIT 0x00000008  /* linux/fs.h, Linux 4.14+ (buffered reads) */

/// O_DIRECT for open(2).
static inline int tessera_o_direct(void) { return TESSERA_O_DIRECT; }

/// Opens `path` with `flags` and mode 0644; returns the fd or -errno.
static inline int tessera_open(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

/// Prepares a read iocb (libaio's io_prep_pread) and tags it with `data`;
/// the engine that submits it sets its eventfd (tessera_set_eventfd).
static inline void tessera_prep_pread(struct iocb *cb, int fd, void *buf, size_t count, long long offset, void *data) {
    io_prep_pread(cb, fd, buf, count, offset);
    cb->data = data;
}

/// Prepares a write iocb; `dsync` makes it a FUA write (RWF_DSYNC, Linux 4.13+).
static inline void tessera_prep_pwrite(struct iocb *cb, int fd, void *buf, size_t count, long long offset, int dsync, void *data) {
    io_prep_pwrite(cb, fd, buf, count, offset);
    if (dsync) cb->aio_rw_flags = TESSERA_RWF_DSYNC;
    cb->data = data;
}

/// Prepares an fdatasync iocb (IOCB_CMD_FDSYNC, Linux 4.18+ for regular files).
static inline void tessera_prep_fdsync(struct iocb *cb, int fd, void *data) {
    io_prep_fdsync(cb, fd);
    cb->data = data;
}

/// A blocking eventfd the completion thread sleeps on; returns fd or -errno.
static inline int tessera_eventfd(void) {
    int fd = (int)syscall(SYS_eventfd2, 0, O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/// Makes a prepared iocb signal `eventfd` when it completes (the engine
/// that submits it decides which eventfd: its thread's or an event loop's).
static inline void tessera_set_eventfd(struct iocb *cb, int eventfd) {
    io_set_eventfd(cb, eventfd);
}

/// Reaps up to `max` completions without waiting; returns the count or -errno.
static inline int tessera_reap(io_context_t context, struct io_event *events, long max) {
    struct timespec zero = { 0, 0 };
    return io_getevents(context, 0, max, events, &zero);
}

/// preadv2(fd, [buf, count], offset, RWF_NOWAIT) (Linux 4.14+): reads only
/// what the page cache holds, never waiting for the disk. Returns the bytes
/// read (fewer than asked when part of the range is not cached), or -errno:
/// -EAGAIN when nothing could be read without waiting, -EOPNOTSUPP (or
/// -EINVAL, -ENOSYS on old kernels) when the file or kernel does not offer it.
static inline long tessera_pread_nowait(int fd, void *buf, size_t count, long long offset) {
    struct iovec vector = { buf, count };
    long rc = syscall(SYS_preadv2, fd, &vector, 1, (long)offset, (long)((unsigned long long)offset >> 32 >> 32), TESSERA_RWF_NOWAIT);
    return rc < 0 ? -errno : rc;
}

/// fallocate(PUNCH_HOLE | KEEP_SIZE); returns 0 or -errno.
static inline int tessera_punch_hole(int fd, long long offset, long long length) {
    return syscall(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : -errno;
}

/// fallocate(mode 0): allocates blocks for a thick LUN; returns 0 or -errno.
static inline int tessera_allocate(int fd, long long offset, long long length) {
    return syscall(SYS_fallocate, fd, 0, offset, length) == 0 ? 0 : -errno;
}

/// O_DIRECT alignment of an open file (statx STATX_DIOALIGN, Linux 6.1+);
/// returns 0, or -1 when the kernel or file system does not report it.
static inline int tessera_dio_alignment(int fd, unsigned *memory, unsigned *offset) {
    struct statx st;
    if (syscall(SYS_statx, fd, "", TESSERA_AT_EMPTY_PATH, STATX_DIOALIGN, &st) != 0) return -1;
    if (!(st.stx_mask & STATX_DIOALIGN) || st.stx_dio_offset_align == 0) return -1;
    *memory = st.stx_dio_mem_align;
    *offset = st.stx_dio_offset_align;
    return 0;
}

/// Names the calling thread (shows in top -H and gdb).
static inline void tessera_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

#endif
