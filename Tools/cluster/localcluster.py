#!/usr/bin/env python3
"""Three real tesserad nodes from Targets/cluster-node{1,2,3}.toml, on 127.0.0.1.

The TOMLs are copied into a work directory and run from there (their
data_dir = "./tessera-data/nodeN" is relative to it). With a base port B the
ports are rewritten keeping the same shape: portal 3260+i -> B+i, store
9000+i -> B+10+i, wire 9100+i -> B+20+i, admin 8080+i -> B+30+i (every
"127.0.0.1:PORT" in the files, so `join` follows). With --peer-base-port P as
well, store, wire and admin move to P+10+i, P+20+i, P+30+i instead.

Used as a module (data-acceptance.py) and from the shell (the benchmark):
  localcluster.py up   --work DIR [--tesserad BIN] [--base-port B] [--peer-base-port P] [--node1-extra FILE]
                       [--all-extra FILE] [--lun-size 256MiB] [--strip-new-keys]
(readiness is the "tesserad ready" log line: keep log_level at info or notice)
  localcluster.py down --work DIR
`up` leaves the nodes running (their PIDs in DIR/nodeN.pid) once every node
logged "tesserad ready"; `down` sends SIGTERM, then SIGKILL after 10 s.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster_secret  # noqa: E402

try:
    import tomllib
except ImportError:  # Python < 3.11: the shape is fixed, a regex is enough
    tomllib = None

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NODES = (1, 2, 3)
# The keys the distributed LUN adds; --strip-new-keys drops them so the
# mechanics can run against a tesserad that does not parse them yet.
NEW_KEYS = ("wire", "replicas", "sub_unit_size")


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*(KiB|MiB|GiB|TiB)?\s*", text)
    if not m:
        raise ValueError(f"bad size {text!r}")
    return int(m.group(1)) << {None: 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m.group(2)]


def _ports(text):
    """{'portal': p, 'store': p, 'wire': p, 'admin': p, 'group': tag} of one node TOML."""
    if tomllib is not None:
        doc = tomllib.loads(text)
        cluster = doc.get("cluster", {})
        out = {"portal": int(doc["portal"][0]["listen"].rsplit(":", 1)[1]),
               "group": int(doc["portal"][0].get("group", 1)),
               "store": int(cluster["peer"].rsplit(":", 1)[1]),
               "admin": int(doc["admin"]["listen"].rsplit(":", 1)[1])}
        if "wire" in cluster:
            out["wire"] = int(cluster["wire"].rsplit(":", 1)[1])
        targets = doc.get("target", [])
        out["targets"] = [(t["name"], [(lun["id"], lun.get("size")) for lun in t.get("lun", [])]) for t in targets]
        return out
    raise RuntimeError("needs Python 3.11 (tomllib)")


class LocalCluster:
    def __init__(self, tesserad, work, base_port=None, node1_extra="", all_extra="", lun_size=None,
                 strip_new_keys=False, targets_dir=None, peer_base_port=None):
        self.tesserad = tesserad
        self.work = work
        self.procs = {}
        self.logs = {}
        targets_dir = targets_dir or os.path.join(REPO, "Targets")
        os.makedirs(work, exist_ok=True)
        originals = {i: open(os.path.join(targets_dir, f"cluster-node{i}.toml")).read() for i in NODES}
        shapes = {i: _ports(originals[i]) for i in NODES}
        mapping = {}
        if base_port is not None:
            peer = base_port if peer_base_port is None else peer_base_port
            for i in NODES:
                mapping[shapes[i]["portal"]] = base_port + i
                mapping[shapes[i]["store"]] = peer + 10 + i
                if "wire" in shapes[i]:
                    mapping[shapes[i]["wire"]] = peer + 20 + i
                mapping[shapes[i]["admin"]] = peer + 30 + i
        self.node = {}
        for i in NODES:
            text = re.sub(r"127\.0\.0\.1:(\d+)",
                          lambda m: f"127.0.0.1:{mapping.get(int(m.group(1)), int(m.group(1)))}", originals[i])
            if lun_size is not None:
                text = re.sub(r'(?m)^(size\s*=\s*)"[^"]*"', rf'\1"{lun_size}"', text)
            if i == 1 and node1_extra:
                text = text.rstrip("\n") + "\n\n" + node1_extra.strip("\n") + "\n"
            if all_extra:
                text = text.rstrip("\n") + "\n\n" + all_extra.strip("\n") + "\n"
            if strip_new_keys:
                text = "".join(line for line in text.splitlines(True)
                               if not re.match(rf"\s*({'|'.join(NEW_KEYS)})\s*=", line))
            path = os.path.join(work, f"node{i}.toml")
            with open(path, "w") as f:
                f.write(text)
            shape = _ports(text)
            shape["config"] = path
            self.node[i] = shape
        node1 = self.node[1]["targets"]
        self.target = node1[0][0] if node1 else None
        self.targets = node1

    # --- addresses -------------------------------------------------------
    def portal(self, i):
        return self.node[i]["portal"]

    def group(self, i):
        return self.node[i]["group"]

    def wire(self, i):
        return self.node[i].get("wire")

    def admin(self, i):
        return self.node[i]["admin"]

    def url(self, i, target=None, lun=0):
        return f"iscsi://127.0.0.1:{self.portal(i)}/{target or self.target}/{lun}"

    def busy_ports(self):
        """Ports of the configuration that something already listens on."""
        busy = []
        for i in NODES:
            for key in ("portal", "store", "wire", "admin"):
                port = self.node[i].get(key)
                if port is None:
                    continue
                s = socket.socket()
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
                finally:
                    s.close()
        return busy

    # --- processes -------------------------------------------------------
    def secret_path(self, i):
        """Node i's cluster secret file (its TOML's secret_file, relative to the work directory)."""
        m = re.search(r'(?m)^secret_file\s*=\s*"([^"]*)"', open(self.node[i]["config"]).read())
        return os.path.join(self.work, m.group(1)) if m else None

    def start(self, i):
        path = self.secret_path(i)
        if path:
            cluster_secret.ensure(path)
        log_path = os.path.join(self.work, f"node{i}.log")
        log = open(log_path, "a")
        self.procs[i] = subprocess.Popen([self.tesserad, "--config", self.node[i]["config"]], cwd=self.work,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        log.close()
        self.logs[i] = log_path
        with open(os.path.join(self.work, f"node{i}.pid"), "w") as f:
            f.write(f"{self.procs[i].pid}\n")
        return self.procs[i].pid

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def log_text(self, i):
        try:
            with open(self.logs.get(i) or os.path.join(self.work, f"node{i}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def ready(self, i):
        return "tesserad ready" in self.log_text(i)

    def wait_ready(self, nodes=NODES, within=90.0):
        """True when every node in `nodes` logged "tesserad ready"; False if one exited or time ran out."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(self.ready(i) for i in nodes):
                return True
            if any(not self.alive(i) for i in nodes):
                return False
            time.sleep(0.2)
        return all(self.ready(i) for i in nodes)

    def start_all(self, within=90.0):
        """Node 1, then 2 and 3 (each waits for every member named in join)."""
        self.start(1)
        # node 1 bootstraps the store: give it a moment to listen before the others join
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.alive(1):
            s = socket.socket()
            s.settimeout(0.2)
            try:
                s.connect(("127.0.0.1", self.node[1]["store"]))
                break
            except OSError:
                time.sleep(0.1)
            finally:
                s.close()
        self.start(2)
        self.start(3)
        return self.wait_ready(NODES, within)

    def stop(self, i, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` s. Returns the exit status (negative: signal)."""
        p = self.procs.get(i)
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        return p.returncode

    def stop_all(self, grace=10.0):
        for i in list(self.procs):
            p = self.procs[i]
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
                except OSError:
                    pass
        deadline = time.monotonic() + grace
        codes = {}
        for i, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            codes[i] = p.returncode
        return codes


def stop_pidfiles(work, grace=10.0):
    """`down`: the PIDs `up` wrote; only those processes, only if still tesserad."""
    pids = []
    for i in NODES:
        path = os.path.join(work, f"node{i}.pid")
        try:
            pid = int(open(path).read().strip())
        except (OSError, ValueError):
            continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        if comm.startswith("tesserad"):
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + grace
    for pid in pids:
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and \
                open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            time.sleep(0.1)
        if os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("--work", required=True)
    ap.add_argument("--tesserad", default=os.path.join(REPO, ".build", "debug", "tesserad"))
    ap.add_argument("--base-port", type=int, default=None)
    ap.add_argument("--peer-base-port", type=int, default=None, help="store/wire/admin ports from here (with --base-port)")
    ap.add_argument("--node1-extra", default=None, help="TOML appended to node 1's file")
    ap.add_argument("--all-extra", default=None, help="TOML appended to every node's file")
    ap.add_argument("--lun-size", default=None)
    ap.add_argument("--strip-new-keys", action="store_true")
    a = ap.parse_args()
    if a.action == "down":
        stop_pidfiles(a.work)
        return 0
    read = lambda p: open(p).read() if p else ""
    c = LocalCluster(a.tesserad, a.work, a.base_port, read(a.node1_extra), read(a.all_extra), a.lun_size,
                     a.strip_new_keys, peer_base_port=a.peer_base_port)
    busy = c.busy_ports()
    if busy:
        print(f"ports already in use: {busy}", file=sys.stderr)
        return 1
    if not c.start_all():
        print(f"the cluster did not become ready (logs in {a.work})", file=sys.stderr)
        for i in NODES:
            print(f"--- node {i}:\n" + "\n".join(c.log_text(i).splitlines()[-8:]), file=sys.stderr)
        c.stop_all()
        return 1
    for i in NODES:
        print(f"node {i} pid {c.procs[i].pid} portal 127.0.0.1:{c.portal(i)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
