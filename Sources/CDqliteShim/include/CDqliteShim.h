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

/// Installs `tessera_dqlite_connect_authenticated` with a copy of the cluster
/// secret: every Raft connection this node opens proves the secret to the
/// member it dials (CClusterAuth's handshake, purpose "STOR") before dqlite
/// uses it. Returns the copy, to be freed with
/// `tessera_dqlite_free_connect_secret` after the node is destroyed, and
/// dqlite's return code in *rc (NULL on failure).
void *tessera_dqlite_install_authenticated_connect(struct dqlite_node *node, const unsigned char *secret,
						   unsigned long length, int *rc);

/// TCP connect with TCP_NODELAY, then the cluster handshake (at most 2 s per
/// step). `arg` is the secret copy. Returns 0 or DQLITE_ERROR.
int tessera_dqlite_connect_authenticated(void *arg, const char *address, int *fd);

/// Wipes and frees the secret copy (NULL is fine).
void tessera_dqlite_free_connect_secret(void *secret);

/// A connected socket to the abstract Unix socket `name` (without the
/// leading '@' dqlite prints), or -1 with errno set. The store tunnel uses
/// it to reach the dqlite node bound to "@...".
int tessera_connect_abstract(const char *name);

/// Ignores SIGPIPE for the whole process: without it, surviving dqlite nodes
/// die when a peer's socket closes under them.
void tessera_ignore_sigpipe(void);

#endif
