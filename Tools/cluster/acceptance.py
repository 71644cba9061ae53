#!/usr/bin/env python3
"""Store-cluster acceptance with real tesserad processes on 127.0.0.1.

Three tesserad nodes (distinct iSCSI, peer and admin ports, separate data
dirs) form one cluster; node 1 seeds a target from its TOML, nodes 2 and 3
have none and must serve it from the store. A writer (tessera-store-bench,
independent of tesserad) commits idempotent rows as fast as it can while:
  1. the store leader is kill -9'ed KILLS times (restarted each time):
     writes resume, every acknowledged write present, none duplicated;
  2. the leader is SIGSTOPped until a new leader commits, then resumed:
     it commits nothing (no duplicate, no lost row) and rejoins;
  3. 2 of 3 nodes are killed: the survivor refuses writes and its health
     endpoint reports the lapsed lease;
  4. all three are killed with -9 and restarted: all state is there.
Prints one line per check and "N passed, N failed". Loopback only, bounded.
Usage: acceptance.py --tesserad BIN --bench BIN [--kills 20] [--base-port 29800]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster_secret  # noqa: E402
import urllib.error
import urllib.request

from stagekit import Results  # noqa: E402

TARGET = "iqn.2026-11.dev.tessera:cluster"


class Cluster:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="tessera-cluster-")
        self.secret = f"{self.work}/cluster.secret"
        self.base = args.base_port
        self.procs = {}
        self.peers = ",".join(self.peer(i) for i in (1, 2, 3))
        for i in (1, 2, 3):
            self.write_config(i)

    def iscsi(self, i): return self.base + i
    def peer(self, i): return f"127.0.0.1:{self.base + 10 + i}"
    def admin(self, i): return self.base + 20 + i

    def write_config(self, i):
        target = f"""
[[target]]
name = "{TARGET}"
alias = "cluster-acceptance"

[[target.lun]]
id = 0
size = "16MiB"
backing = "memory"
""" if i == 1 else ""
        join = ", ".join(f'"{self.peer(j)}"' for j in (1, 2, 3))
        text = f"""[node]
data_dir = "{self.work}/node{i}"
log_level = "info"

[[portal]]
listen = "127.0.0.1:{self.iscsi(i)}"

[cluster]
node_id = {i}
peer = "{self.peer(i)}"
join = [{join}]
lease = "2s"
secret_file = "{self.secret}"

[admin]
listen = "127.0.0.1:{self.admin(i)}"
{target}"""
        with open(f"{self.work}/node{i}.toml", "w") as f:
            f.write(text)

    def start(self, i):
        cluster_secret.ensure(self.secret)
        log = open(f"{self.work}/node{i}.log", "a")
        self.procs[i] = subprocess.Popen(
            [self.args.tesserad, "--config", f"{self.work}/node{i}.toml"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.get(i)
        if p and p.poll() is None:
            p.send_signal(sig)
            if sig == signal.SIGKILL:
                p.wait(timeout=10)

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def health(self, i, timeout=1.0):
        """(HTTP status, report dict) or (None, None)."""
        url = f"http://127.0.0.1:{self.admin(i)}/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read())
            except ValueError:
                return e.code, None
        except (OSError, ValueError):
            return None, None

    def wait_healthy(self, i, within=60.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.alive(i):
                return False
            status, _ = self.health(i)
            if status == 200:
                return True
            time.sleep(0.1)
        return False

    def wait_serving(self, i, within=120.0):
        """Waits until node i's /health says it serves its portals (the
        cluster formed and its LUNs are placed)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.alive(i):
                return False
            status, body = self.health(i)
            if status == 200 and body and body.get("serving"):
                return True
            time.sleep(0.1)
        return False

    def bench(self, *argv, timeout=60):
        """tessera-store-bench with the cluster's secret (tesserad's store port asks for it)."""
        return subprocess.run([self.args.bench, *argv, "--secret-file", self.secret], capture_output=True, text=True,
                              timeout=timeout)

    def leader(self):
        r = self.bench("leader", "--seeds", self.peers, timeout=20)
        return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else None

    def acked(self):
        try:
            with open(f"{self.work}/acked.log") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def stop_all(self):
        for i in list(self.procs):
            p = self.procs[i]
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass


def wait_for(predicate, within, step=0.01):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def iscsi_ls(port):
    if not shutil.which("iscsi-ls"):
        return None
    try:
        r = subprocess.run(["iscsi-ls", f"iscsi://127.0.0.1:{port}"], capture_output=True, text=True, timeout=10)
        return r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return ""


PR_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance", "pr_client.py")


def pr(port, *argv):
    """Tools/conformance/pr_client.py against 127.0.0.1:port; (exit code, output)."""
    try:
        r = subprocess.run([sys.executable, PR_CLIENT, f"127.0.0.1:{port}", TARGET, *argv],
                           capture_output=True, text=True, timeout=20)
        return r.returncode, (r.stdout + r.stderr).strip()
    except subprocess.TimeoutExpired:
        return None, "timeout"


def dqlite_leader_request():
    """dqlite's protocol version word, then a LEADER request (doc/protocol.md):
    header = UInt32 body words | UInt8 type 0 | UInt8 schema | UInt16 0, body = one UInt64."""
    return struct.pack("<Q", 1) + struct.pack("<IBBH", 1, 0, 0, 0) + struct.pack("<Q", 0)


def store_exchange(port, key=None, timeout=5.0):
    """(handshake outcome or None, bytes answered to a LEADER request) on node's store port."""
    outcome, answer = None, b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            if key is not None:
                outcome = cluster_secret.handshake(sock, key, b"STOR", check_responder=False)
                if outcome != "accepted":
                    return outcome, b""
            sock.sendall(dqlite_leader_request())
            while len(answer) < 8:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
    except OSError as e:
        outcome = outcome or f"closed ({type(e).__name__})"
    return outcome, answer


def check_cluster_secret(c, r):
    """Nothing reaches the store without the cluster secret: a plain dqlite
    client, a client with another secret, and a node with another secret
    that tries to join are each refused; a client with the secret is answered."""
    port = c.base + 12
    key = cluster_secret.read(c.secret)
    wrong = os.path.join(c.work, "other.secret")
    cluster_secret.ensure(wrong)
    _, plain = store_exchange(port)
    r.check("cluster secret: a dqlite client without the handshake gets no answer from node 2's store port",
            plain == b"", f"{len(plain)} bytes answered")
    outcome, _ = store_exchange(port, cluster_secret.read(wrong))
    r.check("cluster secret: a handshake with another secret is refused by node 2's store port",
            outcome == "refused", f"handshake: {outcome}")
    outcome, answer = store_exchange(port, key)
    r.check("cluster secret: with the cluster's secret the same request is answered (LEADER)",
            outcome == "accepted" and len(answer) >= 8, f"handshake: {outcome}, {len(answer)} bytes")
    w = subprocess.run([c.args.bench, "write-once", "--seeds", c.peers, "--deadline-ms", "3000", "--secret-file", wrong],
                       capture_output=True, text=True, timeout=30)
    r.check("cluster secret: a store client with another secret can neither read nor write (write-once fails)",
            w.returncode != 0, f"exit {w.returncode}: {(w.stdout + w.stderr).strip()[:200]}")
    # A fourth node with another secret tries to join through the members.
    rogue_dir = os.path.join(c.work, "rogue")
    os.makedirs(rogue_dir, exist_ok=True)
    toml = os.path.join(c.work, "rogue.toml")
    with open(toml, "w") as f:
        f.write(f"""[node]
data_dir = "{rogue_dir}"
[[portal]]
listen = "127.0.0.1:{c.base + 9}"
[cluster]
node_id = 9
peer = "127.0.0.1:{c.base + 19}"
join = [{", ".join(f'"{c.peer(i)}"' for i in (1, 2, 3))}]
secret_file = "{wrong}"
""")
    try:
        p = subprocess.run([c.args.tesserad, "--config", toml], capture_output=True, text=True, timeout=60)
        out, code = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, code = str(e.stderr or ""), "timeout"
    members = None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{c.admin(1)}/v1/cluster", timeout=5) as resp:
            members = [m.get("id") for m in json.loads(resp.read()).get("members", [])]
    except (OSError, ValueError):
        pass
    r.check("cluster secret: a node with another secret cannot join (exits, says the store refused its secret; "
            "the members stay 1, 2, 3)",
            code not in (0, "timeout") and "refused this node's cluster secret" in out and members is not None
            and sorted(members) == [1, 2, 3],
            f"exit {code}; members {members}; {out.strip().splitlines()[-1][:240] if out.strip() else ''}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tesserad", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--base-port", type=int, default=29800)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    c = Cluster(args)
    r = Results()
    writer = None
    started = time.monotonic()
    try:
        # Formation: node 1 bootstraps, 2 and 3 join; all hold the lease.
        c.start(1)
        r.check("node 1 bootstraps and holds the lease", c.wait_healthy(1))
        c.start(2)
        c.start(3)
        ok = c.wait_healthy(2) and c.wait_healthy(3)
        r.check("nodes 2 and 3 join and hold the lease", ok)
        ok = ok and all(c.wait_serving(i) for i in (1, 2, 3))
        r.check("all three serve once the cluster formed", ok)
        if not ok:
            return r
        reports = [c.health(i)[1] or {} for i in (1, 2, 3)]
        r.check("every node serves the target seeded by node 1 (store is the source of truth)",
                all(TARGET in rep.get("targets", []) for rep in reports), json.dumps(reports[2]))
        check_cluster_secret(c, r)
        listing = iscsi_ls(c.iscsi(3))
        if listing is not None:
            r.check("node 3 (no targets in its TOML) lists the target over iSCSI discovery",
                    TARGET in listing, listing.strip()[:200])

        # PR with APTPL through node 1: kept in the store (checked at the end,
        # through the other nodes, after kill -9 of all three).
        have_pr = os.path.exists(PR_CLIENT)
        if have_pr:
            rc1, out1 = pr(c.iscsi(1), "register", "0xabc123", "--aptpl")
            rc2, out2 = pr(c.iscsi(1), "reserve", "0xabc123", "3")
            r.check("PR OUT with APTPL (register, reserve Exclusive Access) through node 1",
                    rc1 == 0 and rc2 == 0, f"{out1} {out2}")

        writer = subprocess.Popen(
            [args.bench, "writer", "--seeds", c.peers, "--log", f"{c.work}/acked.log", "--secret-file", c.secret],
            stdout=open(f"{c.work}/writer.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        r.check("writer commits", wait_for(lambda: c.acked() > 50, 20), f"{c.acked()} acknowledged")

        # 1. kill -9 the leader, restart it, KILLS times.
        failovers = []
        kill_ok = True
        for k in range(1, args.kills + 1):
            leader = c.leader()
            if leader is None:
                kill_ok = r.check(f"kill {k}: a leader is known", False)
                break
            before = c.acked()
            t0 = time.monotonic()
            c.kill(leader)
            # +1: one commit may have been acknowledged by the old leader in flight.
            resumed = wait_for(lambda: c.acked() > before + 1, 15)
            took = (time.monotonic() - t0) * 1000
            if not resumed or writer.poll() is not None:
                kill_ok = r.check(f"kill {k}: writes resume after kill -9 of leader node {leader}", False)
                break
            failovers.append(took)
            print(f"  kill -9 {k}: leader node {leader}, writes resumed after {took:.0f} ms", flush=True)
            c.start(leader)
            if not c.wait_healthy(leader, 30):
                kill_ok = r.check(f"kill {k}: node {leader} restarts and holds the lease", False)
                break
        if failovers:
            s = sorted(failovers)
            print(f"  failover over {len(s)} kills: p50 {s[len(s) // 2]:.0f} ms, max {s[-1]:.0f} ms", flush=True)
        r.check(f"{args.kills} leader kill -9s: writes resume each time", kill_ok and len(failovers) == args.kills)

        # 2. SIGSTOP the leader until a new leader commits; resume it.
        leader = c.leader()
        if leader is not None:
            before = c.acked()
            c.kill(leader, signal.SIGSTOP)
            resumed = wait_for(lambda: c.acked() > before + 5, 15)
            others = [i for i in (1, 2, 3) if i != leader]
            new_leader = c.leader()
            r.check("SIGSTOPped leader: a new leader takes writes",
                    resumed and new_leader in others, f"old {leader}, new {new_leader}")
            c.kill(leader, signal.SIGCONT)
            r.check("resumed old leader rejoins and holds the lease again", c.wait_healthy(leader, 20))
            time.sleep(1)
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=10)
        v = c.bench("verify", "--seeds", c.peers, "--log", f"{c.work}/acked.log")
        r.check("every acknowledged write present exactly once", v.returncode == 0, v.stdout.strip())
        # Rows beyond the acknowledged ones: at most the writer's last request,
        # in flight when it was stopped. A resumed old leader that committed
        # its stale log would show up here (or as a duplicate above).
        m = re.search(r"acknowledged (\d+), rows (\d+)", v.stdout)
        r.check("the resumed old leader committed nothing of its own (rows - acknowledged <= 1)",
                m is not None and 0 <= int(m.group(2)) - int(m.group(1)) <= 1, v.stdout.strip())

        # 3. Two of three down: the survivor refuses writes and says so.
        survivor = 3
        for i in (1, 2):
            c.kill(i)
        w = c.bench("write-once", "--seeds", c.peers, "--deadline-ms", "3000", timeout=30)
        r.check("2 of 3 down: survivor refuses writes", w.returncode == 1, w.stdout.strip()[:160])
        lapsed = wait_for(lambda: c.health(survivor)[0] == 503, 5, 0.1)
        status, rep = c.health(survivor)
        r.check("2 of 3 down: survivor's /health reports the lapsed lease (503)",
                lapsed and rep is not None and rep.get("lease") == "lapsed" and not rep.get("may_change_context"),
                json.dumps(rep))
        with open(f"{c.work}/node{survivor}.log") as f:
            r.check("2 of 3 down: survivor logs the lapsed lease", "LAPSED" in f.read())
        if have_pr:
            rc, out = pr(c.iscsi(survivor), "register", "0x5eed", "--aptpl", "--initiator", "iqn.2026-11.dev.tessera:late")
            r.check("2 of 3 down: survivor refuses a context change (PR OUT with APTPL not acknowledged)",
                    rc == 1, out)

        # 4. kill -9 all and restart: all state there.
        c.kill(survivor)
        for i in (1, 2, 3):
            c.start(i)
        ok = all(c.wait_serving(i, 60) for i in (1, 2, 3))
        r.check("kill -9 all three and restart: cluster comes back", ok)
        v = c.bench("verify", "--seeds", c.peers, "--log", f"{c.work}/acked.log")
        r.check("kill -9 all three and restart: every acknowledged write present once", v.returncode == 0, v.stdout.strip())
        reports = [c.health(i)[1] or {} for i in (1, 2, 3)]
        r.check("kill -9 all three and restart: every node serves the target",
                all(TARGET in rep.get("targets", []) for rep in reports))
        if have_pr:
            for i in (2, 3):
                _, keys = pr(c.iscsi(i), "read-keys")
                _, held = pr(c.iscsi(i), "read-reservation")
                r.check(f"kill -9 all three and restart: APTPL state read through node {i}",
                        "0xabc123" in keys and "5eed" not in keys and "type=3" in held, f"{keys}; {held}")
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        c.stop_all()
        print(f"elapsed {time.monotonic() - started:.0f} s; logs in {c.work}" if (r.failed or args.keep) else
              f"elapsed {time.monotonic() - started:.0f} s", flush=True)
        if not r.failed and not args.keep:
            shutil.rmtree(c.work, ignore_errors=True)
    return r


if __name__ == "__main__":
    results = main()
    print(f"{results.passed} passed, {results.failed} failed")
    sys.exit(1 if results.failed else 0)
