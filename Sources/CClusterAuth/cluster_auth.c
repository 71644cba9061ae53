#include "CClusterAuth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int tessera_auth_proof(const uint8_t *secret, size_t secret_length, const uint8_t *purpose, uint8_t role,
		       const uint8_t *initiator_nonce, const uint8_t *responder_nonce, uint8_t *out)
{
	uint8_t message[TESSERA_AUTH_MAGIC_LENGTH + TESSERA_AUTH_PURPOSE_LENGTH + 1 + 2 * TESSERA_AUTH_NONCE_LENGTH];
	size_t at = 0;
	memcpy(message + at, TESSERA_AUTH_MAGIC, TESSERA_AUTH_MAGIC_LENGTH);
	at += TESSERA_AUTH_MAGIC_LENGTH;
	memcpy(message + at, purpose, TESSERA_AUTH_PURPOSE_LENGTH);
	at += TESSERA_AUTH_PURPOSE_LENGTH;
	message[at++] = role;
	memcpy(message + at, initiator_nonce, TESSERA_AUTH_NONCE_LENGTH);
	at += TESSERA_AUTH_NONCE_LENGTH;
	memcpy(message + at, responder_nonce, TESSERA_AUTH_NONCE_LENGTH);
	at += TESSERA_AUTH_NONCE_LENGTH;
	unsigned int length = 0;
	if (HMAC(EVP_sha256(), secret, (int)secret_length, message, at, out, &length) == NULL ||
	    length != TESSERA_AUTH_PROOF_LENGTH) {
		return -1;
	}
	return 0;
}

int tessera_auth_random(uint8_t *out, size_t length)
{
	return RAND_bytes(out, (int)length) == 1 ? 0 : -1;
}

int tessera_auth_proofs_equal(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, TESSERA_AUTH_PROOF_LENGTH) == 0;
}

void tessera_auth_wipe(void *bytes, size_t length)
{
	OPENSSL_cleanse(bytes, length);
}

static int set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
		return -1;
	}
	return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Sends (or receives) exactly `length` bytes; -1 on an error, a timeout or a close. */
static int transfer_all(int fd, uint8_t *bytes, size_t length, int sending)
{
	while (length > 0) {
		ssize_t n = sending ? send(fd, bytes, length, MSG_NOSIGNAL) : recv(fd, bytes, length, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		bytes += n;
		length -= (size_t)n;
	}
	return 0;
}

static int send_all(int fd, const uint8_t *bytes, size_t length)
{
	return transfer_all(fd, (uint8_t *)bytes, length, 1);
}

static int receive_all(int fd, uint8_t *bytes, size_t length)
{
	return transfer_all(fd, bytes, length, 0);
}

int tessera_auth_initiate(int fd, const uint8_t *secret, size_t secret_length, const char *purpose, int timeout_ms)
{
	uint8_t hello[TESSERA_AUTH_HELLO_LENGTH];
	uint8_t challenge[TESSERA_AUTH_CHALLENGE_LENGTH];
	uint8_t expected[TESSERA_AUTH_PROOF_LENGTH];
	uint8_t proof[TESSERA_AUTH_PROOF_LENGTH];
	uint8_t verdict = TESSERA_AUTH_VERDICT_REFUSED;
	const uint8_t *nonce = hello + TESSERA_AUTH_MAGIC_LENGTH + TESSERA_AUTH_PURPOSE_LENGTH;
	const uint8_t *responder_nonce = challenge + TESSERA_AUTH_MAGIC_LENGTH;
	const uint8_t *responder_proof = responder_nonce + TESSERA_AUTH_NONCE_LENGTH;

	if (set_timeouts(fd, timeout_ms) != 0) {
		return -1;
	}
	memcpy(hello, TESSERA_AUTH_MAGIC, TESSERA_AUTH_MAGIC_LENGTH);
	memcpy(hello + TESSERA_AUTH_MAGIC_LENGTH, purpose, TESSERA_AUTH_PURPOSE_LENGTH);
	if (tessera_auth_random(hello + TESSERA_AUTH_MAGIC_LENGTH + TESSERA_AUTH_PURPOSE_LENGTH, TESSERA_AUTH_NONCE_LENGTH) != 0) {
		return -1;
	}
	if (send_all(fd, hello, sizeof hello) != 0 || receive_all(fd, challenge, sizeof challenge) != 0) {
		return -1;
	}
	if (memcmp(challenge, TESSERA_AUTH_MAGIC, TESSERA_AUTH_MAGIC_LENGTH) != 0) {
		return -2;
	}
	if (tessera_auth_proof(secret, secret_length, (const uint8_t *)purpose, 'R', nonce, responder_nonce, expected) != 0) {
		return -1;
	}
	if (!tessera_auth_proofs_equal(expected, responder_proof)) {
		return -2;
	}
	if (tessera_auth_proof(secret, secret_length, (const uint8_t *)purpose, 'I', nonce, responder_nonce, proof) != 0) {
		return -1;
	}
	if (send_all(fd, proof, sizeof proof) != 0 || receive_all(fd, &verdict, 1) != 0) {
		return -1;
	}
	if (verdict != TESSERA_AUTH_VERDICT_ACCEPTED) {
		return -3;
	}
	return set_timeouts(fd, 0) == 0 ? 0 : -1;
}
