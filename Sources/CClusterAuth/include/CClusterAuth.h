#ifndef TESSERA_CCLUSTERAUTH_H
#define TESSERA_CCLUSTERAUTH_H

#include <stddef.h>
#include <stdint.h>

/// The cluster handshake: before a node's store or peer port carries
/// anything, both ends prove they hold the cluster secret (an HMAC-SHA256
/// challenge-response over fresh nonces from both sides, so neither a
/// recorded exchange nor a reflected one is accepted).
///
///   initiator -> responder  hello:     magic(4) purpose(4) initiator nonce(32)
///   responder -> initiator  challenge: magic(4) responder nonce(32) responder proof(32)
///   initiator -> responder  proof:     initiator proof(32)
///   responder -> initiator  verdict:   1 byte, 1 accepted, 0 refused (then close)
///
/// proof = HMAC-SHA256(secret, magic | purpose | role | initiator nonce | responder nonce),
/// role 'R' for the responder's proof and 'I' for the initiator's. The
/// responder proves first, so a node never sends its proof to an impostor.
/// The Swift side (module ClusterAuth) and libdqlite's connect function
/// (CDqliteShim) both build their messages from these definitions.

#define TESSERA_AUTH_MAGIC "TSA1"
#define TESSERA_AUTH_MAGIC_LENGTH 4
#define TESSERA_AUTH_PURPOSE_LENGTH 4
#define TESSERA_AUTH_NONCE_LENGTH 32
#define TESSERA_AUTH_PROOF_LENGTH 32
#define TESSERA_AUTH_HELLO_LENGTH (TESSERA_AUTH_MAGIC_LENGTH + TESSERA_AUTH_PURPOSE_LENGTH + TESSERA_AUTH_NONCE_LENGTH)
#define TESSERA_AUTH_CHALLENGE_LENGTH (TESSERA_AUTH_MAGIC_LENGTH + TESSERA_AUTH_NONCE_LENGTH + TESSERA_AUTH_PROOF_LENGTH)
#define TESSERA_AUTH_VERDICT_ACCEPTED 1
#define TESSERA_AUTH_VERDICT_REFUSED 0

/// The store port's purpose tag; the peer (wire) port uses "PEER".
#define TESSERA_AUTH_PURPOSE_STORE "STOR"
#define TESSERA_AUTH_PURPOSE_PEER "PEER"

/// Writes the proof of `role` ('I' or 'R') into `out` (32 bytes). Returns 0,
/// or -1 when the HMAC could not be computed.
int tessera_auth_proof(const uint8_t *secret, size_t secret_length, const uint8_t *purpose, uint8_t role,
		       const uint8_t *initiator_nonce, const uint8_t *responder_nonce, uint8_t *out);

/// Fills `out` with `length` bytes from the system's cryptographic random
/// source. Returns 0, or -1 when none was available.
int tessera_auth_random(uint8_t *out, size_t length);

/// Compares two 32-byte proofs in constant time: 1 when equal.
int tessera_auth_proofs_equal(const uint8_t *a, const uint8_t *b);

/// Overwrites `length` bytes at `bytes` in a way the compiler keeps (for secrets).
void tessera_auth_wipe(void *bytes, size_t length);

/// Runs the initiator's side on a connected blocking socket, each read and
/// write bounded by `timeout_ms`. Returns 0 when the responder accepted;
/// -1 on a network failure or timeout; -2 when the responder's proof is
/// wrong (it does not hold the secret); -3 when the responder refused ours.
/// The socket's timeouts are cleared again on success.
int tessera_auth_initiate(int fd, const uint8_t *secret, size_t secret_length, const char *purpose, int timeout_ms);

#endif
