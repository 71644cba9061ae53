#include "CDqliteShim.h"

#include <dqlite.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int tessera_dqlite_connect_nodelay(void *arg, const char *address, int *fd)
{
	(void)arg;
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

int tessera_dqlite_install_nodelay_connect(struct dqlite_node *node)
{
	return dqlite_node_set_connect_func(node, tessera_dqlite_connect_nodelay, NULL);
}

void tessera_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}
