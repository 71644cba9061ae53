#ifndef TESSERA_CDQLITE_CALLBACKS_H
#define TESSERA_CDQLITE_CALLBACKS_H

/// Free C callbacks handed to libdqlite. They live here, not in Swift, because
/// dqlite calls them on its own thread (a Swift closure in main.swift would be
/// main-actor isolated and trap there).

struct dqlite_node;

/// Installs `tessera_dqlite_connect_nodelay` as the node's connect function.
/// Stock dqlite 1.11 connects without TCP_NODELAY, which raises p99 commit
/// latency from ~2 ms to ~43 ms. Returns dqlite's return code.
int tessera_dqlite_install_nodelay_connect(struct dqlite_node *node);

/// Connects to "host:port" (IPv4 or IPv6 literal or name) over TCP, sets
/// TCP_NODELAY, and stores the socket in *fd. Returns 0 or DQLITE_ERROR.
int tessera_dqlite_connect_nodelay(void *arg, const char *address, int *fd);

/// Ignores SIGPIPE for the whole process: without it, surviving dqlite nodes
/// die when a peer's socket closes under them.
void tessera_ignore_sigpipe(void);

#endif
