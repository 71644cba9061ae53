#include "CDqliteShim.h"

#include <CClusterAuth.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/un.h>

#include <dqlite.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connects to "host:port" over TCP with TCP_NODELAY. */
static int connect_tcp(const char *address, int *fd)
{
	char host[256];
	const char *port;
	const char *colon = strrchr(address, ':');
	if (colon == NULL || colon == address) {
		return DQLITE_ERROR;
	}
	size_t hostLength = (size_t)(colon - address);
	const char *hostStart = address;
	/* "[::1]:9000" form */
	if (hostStart[0] == '[' && hostLength >= 2 && colon[-1] == ']') {
		hostStart += 1;
		hostLength -= 2;
	}
	if (hostLength >= sizeof host) {
		return DQLITE_ERROR;
	}
	memcpy(host, hostStart, hostLength);
	host[hostLength] = '\0';
	port = colon + 1;

	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	struct addrinfo *result = NULL;
	if (getaddrinfo(host, port, &hints, &result) != 0 || result == NULL) {
		return DQLITE_ERROR;
	}
	int rv = DQLITE_ERROR;
	for (struct addrinfo *ai = result; ai != NULL; ai = ai->ai_next) {
		int sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (sock < 0) {
			continue;
		}
		if (connect(sock, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(sock);
			continue;
		}
		int one = 1;
		(void)setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		*fd = sock;
		rv = 0;
		break;
	}
	freeaddrinfo(result);
	return rv;
}

int tessera_dqlite_connect_nodelay(void *arg, const char *address, int *fd)
{
	(void)arg;
	return connect_tcp(address, fd);
}

int tessera_dqlite_install_nodelay_connect(struct dqlite_node *node)
{
	return dqlite_node_set_connect_func(node, tessera_dqlite_connect_nodelay, NULL);
}

struct tessera_dqlite_secret {
	size_t length;
	uint8_t bytes[];
};

/* The handshake's bound: Raft connects from libuv's thread pool, and a
 * member that accepts TCP but never answers (SIGSTOP) must not hold a worker
 * for long. */
#define AUTHENTICATED_CONNECT_TIMEOUT_MS 2000

int tessera_dqlite_connect_authenticated(void *arg, const char *address, int *fd)
{
	const struct tessera_dqlite_secret *secret = arg;
	int sock = -1;
	if (connect_tcp(address, &sock) != 0) {
		return DQLITE_ERROR;
	}
	if (tessera_auth_initiate(sock, secret->bytes, secret->length, TESSERA_AUTH_PURPOSE_STORE,
				  AUTHENTICATED_CONNECT_TIMEOUT_MS) != 0) {
		close(sock);
		return DQLITE_ERROR;
	}
	*fd = sock;
	return 0;
}

void *tessera_dqlite_install_authenticated_connect(struct dqlite_node *node, const unsigned char *secret, unsigned long length,
						   int *rc)
{
	struct tessera_dqlite_secret *copy = malloc(sizeof *copy + length);
	if (copy == NULL) {
		*rc = DQLITE_NOMEM;
		return NULL;
	}
	copy->length = length;
	memcpy(copy->bytes, secret, length);
	*rc = dqlite_node_set_connect_func(node, tessera_dqlite_connect_authenticated, copy);
	if (*rc != 0) {
		free(copy);
		return NULL;
	}
	return copy;
}

void tessera_dqlite_free_connect_secret(void *secret)
{
	struct tessera_dqlite_secret *copy = secret;
	if (copy != NULL) {
		tessera_auth_wipe(copy->bytes, copy->length);
		free(copy);
	}
}

int tessera_connect_abstract(const char *name)
{
	struct sockaddr_un address;
	size_t length = strlen(name);
	if (length + 1 > sizeof address.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&address, 0, sizeof address);
	address.sun_family = AF_UNIX;
	/* Abstract namespace: sun_path starts with a NUL byte. */
	memcpy(address.sun_path + 1, name, length);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		return -1;
	}
	socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
	if (connect(sock, (struct sockaddr *)&address, size) != 0) {
		int saved = errno;
		close(sock);
		errno = saved;
		return -1;
	}
	return sock;
}

void tessera_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}
