"""The cluster secret file the test stages give their nodes (standard library only).

tesserad refuses a secret file that its group or others can read, and a node
that joins a cluster must hold the same secret as the members. `ensure(path)`
makes one (64 hex digits, mode 600) unless it exists; `read(path)` returns the
key bytes the handshake uses (the line, white space trimmed); `handshake`
runs the connecting side of the cluster handshake (Sources/CClusterAuth's
header has the layout).
"""
import hashlib
import hmac
import os
import secrets
import socket

MAGIC = b"TSA1"


def ensure(path):
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read().strip()


def _proof(key, purpose, role, initiator_nonce, responder_nonce):
    return hmac.new(key, MAGIC + purpose + role + initiator_nonce + responder_nonce, hashlib.sha256).digest()


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        part = sock.recv(n - len(data))
        if not part:
            raise ConnectionError("closed during the cluster handshake")
        data += part
    return data


def handshake(sock, key, purpose, check_responder=True):
    """Runs the initiator's side on a connected socket (purpose b"STOR" or
    b"PEER"). Returns "accepted", "refused" (the other side found our proof
    wrong), "impostor" (the other side's proof is wrong) or "closed".
    check_responder=False sends a proof even to a responder whose own proof
    is wrong, as a node with another secret that skipped the check would (a
    test of the responder's refusal)."""
    nonce = secrets.token_bytes(32)
    try:
        sock.sendall(MAGIC + purpose + nonce)
        challenge = _recv_exact(sock, 68)
        if challenge[:4] != MAGIC:
            return "impostor"
        if check_responder and not hmac.compare_digest(
                challenge[36:], _proof(key, purpose, b"R", nonce, challenge[4:36])):
            return "impostor"
        sock.sendall(_proof(key, purpose, b"I", nonce, challenge[4:36]))
        verdict = _recv_exact(sock, 1)
    except (ConnectionError, socket.timeout, OSError):
        return "closed"
    return "accepted" if verdict == b"\x01" else "refused"
