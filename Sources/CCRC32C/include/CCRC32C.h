// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for iSCSI header and
// data digests (RFC 7143 §13.1, RFC 3720 Appendix B.4).
#ifndef TESSERA_CCRC32C_H
#define TESSERA_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CRC32C of `len` bytes at `data`, continuing from `crc`.
///
/// Convention (like zlib's crc32): `crc` is a previous *final* value, 0 to
/// start; the initial value 0xFFFFFFFF and the final XOR 0xFFFFFFFF of
/// RFC 3720 B.4 are applied inside. So the digest of a buffer is
/// `tessera_crc32c(0, p, n)` and `tessera_crc32c(tessera_crc32c(0, a, n), b, m)`
/// is the digest of a||b. The iSCSI digest goes on the wire least significant
/// byte first (32 zero bytes give 0x8A9136AA, sent as aa 36 91 8a).
/// Uses the SSE4.2 `crc32` instruction when the CPU has it.
uint32_t tessera_crc32c(uint32_t crc, const void *data, size_t len);

/// The portable slicing-by-8 implementation (same convention), for tests.
uint32_t tessera_crc32c_portable(uint32_t crc, const void *data, size_t len);

/// The SSE4.2 implementation (same convention); falls back to the portable
/// one when the CPU lacks SSE4.2. For tests.
uint32_t tessera_crc32c_hardware(uint32_t crc, const void *data, size_t len);

/// 1 when `tessera_crc32c` uses the SSE4.2 instruction, else 0.
int tessera_crc32c_hardware_available(void);

#ifdef __cplusplus
}
#endif

#endif
