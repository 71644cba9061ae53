#!/usr/bin/env python3
"""The admin API and the `tessera` CLI with three real tesserad nodes (Targets/cluster-node{1,2,3}.toml).

Every node's [admin] gets token_file = "<work>/admin.token" (mode 600). Checks, each
"PASS name" / "FAIL name: detail":

  refuse     tesserad refuses to start (non-zero exit, a message on stderr) with [admin]
             listen off loopback and no token, and with a token file group/others can read
             ("chmod 600"); tessera exits 2 on bad usage (also a node id of 0, a removal without --yes), and
             1 with "no node answered: tried ..." when nothing listens
  auth       on every node: /v1/... without the token, with a wrong one, with another scheme
             get 401 and a JSON {"error", "hint"}; with the token 200; /health and /metrics
             need no token; an unknown path is a JSON 404, POST a 405 with Allow
  agree      a key registered and a reservation taken through node 1's portal; then
             `tessera cluster status`, `lun show 0`, `pr show 0`, `target list` through node 2
             and through node 3 agree (same members, same sub-unit map, same PR state) and
             show the reservation; no answer holds a CHAP secret
  prclear    `tessera pr clear 0 --yes` through node 2: gone through node 3, 2A/03 to the
             registered nexus through node 1, logged; without --yes, exit 2
  catalog    a target and a LUN made with the CLI only; grown under a verifying qemu-io writer,
             shrunk with --force (06/2A/09, 05/21/00 past the end, a node away during a shrink
             cuts its file when it starts), its alias changed and seen by a new login through
             another node; deleted (see check_catalog)
  access     with the CLI only: through node 2 `acl add` the acceptance initiator and a
             second one and `chap set` per-initiator CHAP for the second (secret from a file,
             then from stdin); then through node 3 (another node) iscsi-inq with the second
             name and the right secret logs in within 5 s, a wrong secret, no CHAP, and a name
             outside the ACL are refused; bad input exits 2 (a name) or 1 with the reason (a
             short secret, an unknown target, the last ACL entry); a request id replayed after
             the change was undone changes nothing; `acl remove` through node 1 refuses a new
             login through node 2 within 5 s; acl list shows every target; no answer or
             output holds the secret
  clionly    a target with a LUN over all three nodes, an ACL and per-initiator CHAP made
             with tessera only: iscsi-inq and iscsi-ls through every node with the right
             secret; a wrong secret and a name outside the ACL refused through every node; a
             new secret set through node 2 is in force there as the command returns (the old
             one refused, the new one taken) and on nodes 1 and 3 within 5 s
  masks      `tessera lun map 0 <acceptance initiator>` through node 2: another initiator's
             session through node 3 stops seeing LUN 0 (REPORT LUNS empty, 05/25/00) within 5 s,
             the mapped one through node 1 gets 06/3F/0E and keeps it; the last initiator
             cannot be unmapped alone (exit 1); `unmap 0 --all` through node 3 shows it again
  sessions   sessions held through node 3 and node 2 are listed through node 1 (with the
             portal and the host's address) and node 2's as live through node 2; node 3's
             closed through node 1 (asked through the store) and node 2's through node 2
             (at once): both connections drop, both leave the list; without --yes exit 2,
             a session that is gone exit 1
  seed       through the CLI, LUN 5 of node 1's TOML target admin-chap is deleted, its alias changed
             and a per-initiator CHAP set; node 1 restarts (SIGTERM) with the same TOML: LUN 5 is
             not made again, the alias and the CHAP stay, and node 1 logs each TOML item it skipped
             with the node that seeded it and when; the alias and the CHAP are put back
  failover   node 1 gets SIGKILL; `tessera --node <node1> --node <node2> lun show 0` answers
             through node 2 and (within 30 s) shows every replica on node 1 stale, and
             `cluster status` shows node 1 dead and its port group unavailable; `session list`
             answers and a target made through node 3 takes an ACL through node 2; then node 1
             restarts and `resync status` answers (every replica in sync again within 90 s)
  metrics    reads and one write of LUN 0 through node 2's portal: node 2's /metrics (no
             token) counts them (tessera_lun_commands_total kind read/write, bytes, read and
             write latency histograms with cumulative buckets and +Inf equal to _count), shows
             the open session and connection and the store transaction histogram; node 3's
             counts for LUN 0 do not move
  nolog      the token string and the CHAP secrets appear in no node's log (covers every
             check before it)
  nodes      (last: it changes the members) V is the store leader, A and B the others: a
             verifying writer through A and B while `tessera node drain V --wait` through B
             moves every replica off V with progress lines; V ends drained with 0 replicas,
             every sub-unit keeps two in-sync replicas; the writer saw no error and the whole
             LUN reads back right; `node remove V` through V itself is refused, through A it is
             done (leadership moves first), V shuts down, and started again it refuses to join;
             a node 4 started with cluster.join gets its share with `tessera node add 4 --wait`
             through A (node 4 shows the copies' progress) and the whole LUN reads back right
             through node 4's portal
Then every node gets SIGTERM (SIGKILL after 10 s). Ends with "admin: N passed, M failed".

Usage: admin-acceptance.py --tesserad BIN --tessera BIN [--base-port B] [--portal-base P] [--keep]
                           [--checks a,b,...] [--samples DIR]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "Tools", "lib"))
import localcluster  # noqa: E402
import scsi_cmds as scsi  # noqa: E402
import verifying_writer as vw  # noqa: E402
from iscsi_client import Session  # noqa: E402
from stagekit import info, run, run_stage, short  # noqa: E402

TOKEN = "tessera-acceptance-token-7f3a9c"
CHAP_SECRETS = ("acceptance-chap-secret-1", "acceptance-chap-mutual-2")
ALL_CHECKS = ["refuse", "auth", "agree", "prclear", "catalog", "clionly", "masks", "access", "sessions", "metrics", "seed", "failover",
              "nolog", "nodes"]
PR_KEY = 0xADC0FFEE
INITIATOR = "iqn.2026-11.dev.tessera:admin-check"
SECOND = "iqn.2026-11.dev.tessera:access-host2"
STRANGER = "iqn.2026-11.dev.tessera:access-stranger"
ACCESS_SECRET = "access-chap-secret-93f1c"
WRONG_SECRET = "access-chap-wrong-00000"
# How long a change may take to reach every node's logins (the follower reads once a second).
ACCESS_BOUND = 5.0

# A second target with CHAP on node 1, so the CHAP secrets are in the store.
NODE1_EXTRA = f"""
[[target]]
name = "iqn.2026-11.dev.tessera:admin-chap"
alias = "admin-chap"
chap = {{ user = "alice", secret = "{CHAP_SECRETS[0]}", mutual_user = "tgt", mutual_secret = "{CHAP_SECRETS[1]}" }}

[[target.lun]]
id = 5
size = "16MiB"
backing = "file"
path = "chap5.img"
replicas = 2
sub_unit_size = "8MiB"
"""


def http(port, path, token=None, method="GET", authorization=None, timeout=10, body=None, headers=None):
    """(status, headers, body text) of one request to 127.0.0.1:port."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    elif token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, {}, str(e)


def tessera(args, *cli, env_token=True, timeout=30, stdin=None):
    """(exit status, stdout, stderr) of the CLI; `stdin` text is fed to it."""
    env = dict(os.environ)
    env.pop("TESSERA_NODE", None)
    env.pop("TESSERA_TOKEN", None)
    if env_token:
        env["TESSERA_TOKEN"] = TOKEN
    if stdin is None:
        p = subprocess.run([args.tessera, *cli], capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
    else:
        p = subprocess.run([args.tessera, *cli], capture_output=True, text=True, timeout=timeout, env=env,
                           input=stdin)
    return p.returncode, p.stdout, p.stderr


def node_flag(c, i):
    return ["--node", f"127.0.0.1:{c.admin(i)}"]


def save_sample(args, name, command, output):
    if args.samples:
        os.makedirs(args.samples, exist_ok=True)
        with open(os.path.join(args.samples, name + ".txt"), "w") as f:
            f.write("$ " + command + "\n" + output)


# --- checks --------------------------------------------------------------------------------

def check_refuse(c, r, work, args):
    port = args.base_port + 40
    base = f"""
[node]
data_dir = "{work}/refuse"
[[portal]]
listen = "127.0.0.1:{port + 1}"
[cluster]
peer = "127.0.0.1:{port + 2}"
wire = "127.0.0.1:{port + 3}"
"""
    open_path = os.path.join(work, "refuse-open.toml")
    with open(open_path, "w") as f:
        f.write(base + f'[admin]\nlisten = "0.0.0.0:{port + 4}"\n')
    p = subprocess.run([args.tesserad, "--config", open_path], capture_output=True, text=True, timeout=30, cwd=work)
    r.check("refuse: [admin] listen 0.0.0.0 without a token stops tesserad (non-zero, stderr says why)",
            p.returncode != 0 and "no token" in p.stderr and "token_file" in p.stderr,
            f"exit {p.returncode}: {short(p.stderr, 300)}")
    loose = os.path.join(work, "loose.token")
    with open(loose, "w") as f:
        f.write("loose-token\n")
    os.chmod(loose, 0o644)
    loose_path = os.path.join(work, "refuse-loose.toml")
    with open(loose_path, "w") as f:
        f.write(base + f'[admin]\nlisten = "127.0.0.1:{port + 4}"\ntoken_file = "{loose}"\n')
    p = subprocess.run([args.tesserad, "--config", loose_path], capture_output=True, text=True, timeout=30, cwd=work)
    r.check("refuse: a token file others can read stops tesserad with 'chmod 600'",
            p.returncode != 0 and "chmod 600" in p.stderr and "loose-token" not in p.stderr,
            f"exit {p.returncode}: {short(p.stderr, 300)}")
    usage = [tessera(args, "lun", "show", "abc"), tessera(args, "lun", "show"), tessera(args, "frob")]
    r.check("refuse: tessera exits 2 on bad usage", all(u[0] == 2 for u in usage),
            "; ".join(f"{u[0]} {short(u[2], 80)}" for u in usage))
    pending = [tessera(args, *cmd) for cmd in (["node", "add", "x"], ["node", "drain", "0"], ["node", "remove", "2"])]
    r.check("refuse: node commands with a bad id, or a removal without --yes, exit 2 with the reason",
            all(u[0] == 2 and u[2].strip() for u in pending) and "--yes" in pending[2][2],
            "; ".join(f"{u[0]} {short(u[2], 80)}" for u in pending))
    dead = [f"127.0.0.1:{port + 5}", f"127.0.0.1:{port + 6}"]
    rc, out, err = tessera(args, "cluster", "status", "--node", dead[0], "--node", dead[1])
    r.check("refuse: no node answering exits 1 and names the nodes tried",
            rc == 1 and f"no node answered: tried {dead[0]}" in err and dead[1] in err and "--node" in err,
            f"exit {rc}: {short(err, 300)}")


def check_auth(c, r, work, args):
    for i in localcluster.NODES:
        port = c.admin(i)
        bad = []
        for path in ("/v1/cluster", "/v1/luns", "/v1/luns/0", "/v1/luns/0/reservations", "/v1/targets", "/v1/luns/x"):
            for label, auth in (("no token", None), ("wrong token", "Bearer wrong"), ("basic", "Basic " + TOKEN),
                                ("bare token", TOKEN)):
                status, _, body = http(port, path, authorization=auth) if auth else http(port, path)
                try:
                    parsed = json.loads(body)
                    shaped = bool(parsed.get("error")) and bool(parsed.get("hint"))
                except ValueError:
                    shaped = False
                if status != 401 or not shaped or TOKEN in body:
                    bad.append(f"{path} {label}: {status} {short(body, 80)}")
        r.check(f"auth: node {i} answers 401 with a JSON error and hint on every /v1 route without the token",
                not bad, "; ".join(bad[:4]))
        answers = {path: http(port, path, token=TOKEN)[0] for path in ("/v1/cluster", "/v1/luns", "/v1/targets")}
        answers["/health"] = http(port, "/health")[0]
        answers["/metrics"] = http(port, "/metrics")[0]
        r.check(f"auth: node {i} answers 200 with the token, and /health and /metrics without one",
                all(s == 200 for s in answers.values()), str(answers))
        s404, _, b404 = http(port, "/v1/nope", token=TOKEN)
        s405, h405, b405 = http(port, "/v1/cluster", token=TOKEN, method="POST")
        r.check(f"auth: node {i}: unknown path is a JSON 404, POST a 405 with Allow",
                s404 == 404 and '"hint"' in b404 and s405 == 405 and "GET" in h405.get("Allow", ""),
                f"{s404} {short(b404, 80)} | {s405} {h405.get('Allow')}")


def register_and_reserve(c):
    """REGISTER key PR_KEY and RESERVE Write Exclusive through node 1's portal."""
    s = Session("127.0.0.1", c.portal(1), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x41, 1]))
    try:
        def command(cdb, data):
            for _ in range(5):
                result = s.command(cdb, data)
                if not result.unit_attention():
                    return result
            return result
        reg = command(scsi.pr_out(scsi.PROUT_REGISTER), scsi.pr_out_params(key=0, sark=PR_KEY))
        res = command(scsi.pr_out(scsi.PROUT_RESERVE, pr_type=1), scsi.pr_out_params(key=PR_KEY))
        return reg.good and res.good, f"register: {reg}; reserve: {res}"
    finally:
        try:
            s.logout()
        except Exception:  # noqa: BLE001 - the check is what the store holds
            pass
        s.close()


def check_agree(c, r, work, args):
    ok, detail = register_and_reserve(c)
    r.check("agree: PR REGISTER and RESERVE through node 1's portal", ok, detail)
    views = {}
    for i in (2, 3):
        view = {}
        for name, cmd in (("cluster", ["cluster", "status"]), ("lun", ["lun", "show", "0"]),
                          ("pr", ["pr", "show", "0"]), ("targets", ["target", "list"]), ("luns", ["lun", "list"])):
            rc, out, err = tessera(args, *cmd, "--json", *node_flag(c, i))
            hrc, human, herr = tessera(args, *cmd, *node_flag(c, i))
            save_sample(args, f"{name}-node{i}", "tessera " + " ".join(cmd + node_flag(c, i)), human)
            try:
                view[name] = json.loads(out) if rc == 0 else None
            except ValueError:
                view[name] = None
            view[name + "-human"] = (hrc, human, herr)
            if rc != 0 or hrc != 0:
                r.check(f"agree: tessera {' '.join(cmd)} through node {i} exits 0", False,
                        f"json exit {rc}: {short(err, 200)}; human exit {hrc}: {short(herr, 200)}")
        views[i] = view
    a, b = views[2], views[3]
    if not all(a.get(k) and b.get(k) for k in ("cluster", "lun", "pr", "targets")):
        r.check("agree: every command answered through nodes 2 and 3", False, "see above")
        return
    members = lambda v: [(m["id"], m["store_address"], m["peer_address"], m["iscsi_portals"]) for m in v["cluster"]["members"]]
    r.check("agree: cluster status through node 2 and node 3 list the same three members",
            members(a) == members(b) and [m[0] for m in members(a)] == [1, 2, 3], f"{members(a)} vs {members(b)}")
    r.check("agree: each answer says which node answered",
            a["cluster"]["answered_by"] == 2 and b["cluster"]["answered_by"] == 3,
            f'{a["cluster"]["answered_by"]}, {b["cluster"]["answered_by"]}')
    leaders = {a["cluster"]["store_leader"], b["cluster"]["store_leader"]}
    r.check("agree: both name the same store leader", len(leaders) == 1 and None not in leaders, str(leaders))
    r.check("agree: lun show 0 through node 2 and node 3 give the same sub-unit map",
            a["lun"]["sub_units"] == b["lun"]["sub_units"] and len(a["lun"]["sub_units"]) == 8,
            short(json.dumps(a["lun"]["sub_units"])[:300]))
    r.check("agree: pr show 0 through node 2 and node 3 agree and show the registration and reservation",
            a["pr"] == b["pr"] and any(reg["key"] == f"0x{PR_KEY:016x}" for reg in a["pr"]["registrations"])
            and (a["pr"].get("reservation") or {}).get("type") == "write_exclusive",
            short(json.dumps(a["pr"]), 300))
    human = a["pr-human"][1]
    r.check("agree: pr show prints the key and the holder", f"0x{PR_KEY:016x}" in human and INITIATOR in human,
            short(human, 300))
    chap = [t for t in a["targets"] if t["name"].endswith(":admin-chap")]
    r.check("agree: target list shows CHAP as user and mutual only",
            chap and chap[0].get("chap") == {"user": "alice", "mutual": True}, short(json.dumps(a["targets"]), 300))
    leaked = []
    for i in localcluster.NODES:
        for path in ("/v1/cluster", "/v1/luns", "/v1/luns/0", "/v1/luns/5", "/v1/luns/0/reservations",
                     "/v1/luns/5/reservations", "/v1/targets", "/health", "/metrics"):
            _, _, body = http(c.admin(i), path, token=TOKEN)
            leaked += [f"node {i} {path}" for secret in CHAP_SECRETS + (TOKEN,) if secret in body]
        for v in views.values():
            for key, value in v.items():
                if key.endswith("-human") and any(s in value[1] + value[2] for s in CHAP_SECRETS + (TOKEN,)):
                    leaked.append(f"tessera {key}")
    r.check("agree: no answer of any node, and no tessera output, holds a CHAP secret or the token",
            not leaked, ", ".join(sorted(set(leaked))[:6]))


def inq(c, node, initiator, user=None, secret=None):
    """(exit status, output) of iscsi-inq on LUN 0 through `node`'s portal as `initiator`, with CHAP if given."""
    auth = f"{user}%{secret}@" if user else ""
    return run(["iscsi-inq", "-i", initiator, f"iscsi://{auth}127.0.0.1:{c.portal(node)}/{c.target}/0"], timeout=30)


def until(predicate, bound):
    """(whether `predicate()` held within `bound` seconds, seconds it took, its last value)."""
    started = time.monotonic()
    value = predicate()
    while not value[0] and time.monotonic() - started < bound:
        time.sleep(0.2)
        value = predicate()
    return value[0], time.monotonic() - started, value


def check_access(c, r, work, args):
    secret_file = os.path.join(work, "host2.secret")
    with open(secret_file, "w") as f:
        f.write(ACCESS_SECRET + "\n")
    os.chmod(secret_file, 0o600)
    outputs = []

    def cli(*cmd, node, stdin=None):
        rc, out, err = tessera(args, *cmd, *node_flag(c, node), stdin=stdin)
        outputs.append(out + err)
        save_sample(args, f"access-{len(outputs):02d}-" + "-".join(x for x in cmd[:2]) + f"-node{node}",
                    "tessera " + " ".join(list(cmd) + node_flag(c, node)), out + err)
        return rc, out, err

    # Through node 2: the acceptance initiator first (so that the other checks' logins stay
    # allowed once the ACL is not empty): then an initiator outside it is refused through node 3.
    rc1, out1, err1 = cli("acl", "add", c.target, INITIATOR, node=2)
    changed = time.monotonic()
    refused, _, (_, (_, sout)) = until(lambda: (lambda res: (res[0] != 0, res))(inq(c, 3, SECOND)), ACCESS_BOUND)
    info(f"{SECOND} refused through node 3 {time.monotonic() - changed:.2f} s after the first acl add")
    r.check(f"access: once tessera acl add through node 2 made the ACL non-empty, {SECOND} is refused through "
            f"node 3 within {ACCESS_BOUND:.0f} s", rc1 == 0 and refused and "Authorization failure" in sout,
            short(out1 + err1 + sout, 300))
    # The second initiator is added through node 2 and can log in through node 3.
    rc2, out2, err2 = cli("acl", "add", c.target, SECOND, node=2)
    changed = time.monotonic()
    r.check("access: tessera acl add through node 2 exits 0 and lists both initiators",
            rc2 == 0 and INITIATOR in out2 and SECOND in out2, short(out2 + err2, 300))
    ok, _, (_, (_, aout)) = until(lambda: (lambda res: (res[0] == 0, res))(inq(c, 3, SECOND)), ACCESS_BOUND)
    info(f"{SECOND} accepted through node 3 {time.monotonic() - changed:.2f} s after its acl add")
    r.check(f"access: after acl add, iscsi-inq -i {SECOND} logs in through node 3 within {ACCESS_BOUND:.0f} s",
            ok and "DIRECT_ACCESS" in aout, short(aout, 200))
    # Per-initiator CHAP, the secret from a file.
    rc, out, err = cli("chap", "set", c.target, SECOND, "--user", "host2", "--secret-file", secret_file, node=2)
    changed = time.monotonic()
    r.check("access: tessera chap set --secret-file through node 2 exits 0 and shows the user, not the secret",
            rc == 0 and "user host2" in out and ACCESS_SECRET not in out + err, short(out + err, 300))
    ok, _, (_, (_, wout)) = until(
        lambda: (lambda res: (res[0] != 0, res))(inq(c, 3, SECOND, "host2", WRONG_SECRET)), ACCESS_BOUND)
    info(f"a wrong secret refused through node 3 {time.monotonic() - changed:.2f} s after chap set")
    r.check(f"access: after chap set, a wrong secret is refused through node 3 within {ACCESS_BOUND:.0f} s",
            ok and "Authentication failure" in wout, short(wout, 200))
    rc, out = inq(c, 3, SECOND, "host2", ACCESS_SECRET)
    r.check(f"access: iscsi-inq -i {SECOND} with the right CHAP secret logs in through node 3",
            rc == 0 and "DIRECT_ACCESS" in out, short(out, 200))
    rc, out = inq(c, 3, SECOND)
    r.check("access: the same initiator without CHAP is refused through node 3", rc != 0, short(out, 200))
    rc, out = inq(c, 3, STRANGER, "host2", ACCESS_SECRET)
    r.check("access: an initiator outside the ACL is refused through node 3, even with the secret", rc != 0
            and "Authorization failure" in out, short(out, 200))
    rc, out = inq(c, 3, INITIATOR)
    r.check("access: the acceptance initiator (in the ACL, no CHAP of its own) still logs in", rc == 0,
            short(out, 200))
    # The secret from stdin, mutual CHAP; then the one-way credentials again.
    rc, out, err = cli("chap", "set", c.target, SECOND, "--user", "host2", "--secret-stdin", "--mutual-user", "tgt2",
                       "--mutual-secret-stdin", node=3, stdin=ACCESS_SECRET + "\nmutual-secret-for-host2\n")
    r.check("access: chap set --secret-stdin --mutual-secret-stdin shows mutual CHAP", rc == 0 and "mutual" in out,
            short(out + err, 300))
    rc, out, err = cli("chap", "set", c.target, SECOND, "--user", "host2", "--secret-stdin", node=2,
                       stdin=ACCESS_SECRET + "\n")
    r.check("access: chap set --secret-stdin back to one-way CHAP", rc == 0 and "mutual" not in out,
            short(out + err, 300))
    # Bad input: exit 2 for a name tessera can check, 1 with the node's reason otherwise.
    short_file = os.path.join(work, "short.secret")
    with open(short_file, "w") as f:
        f.write("tooshort\n")
    bad = [cli("acl", "add", c.target, "host2", node=2), cli("chap", "set", c.target, SECOND, "--user", "u", node=2),
           cli("chap", "set", c.target, SECOND, "--user", "u", "--secret-file", short_file, node=2),
           cli("acl", "add", "iqn.2026-11.dev.tessera:nope", SECOND, node=2),
           cli("acl", "remove", c.target, STRANGER, node=2)]
    r.check("access: a bad initiator name and a missing secret exit 2; a short secret, an unknown target and "
            "an initiator not in the ACL exit 1 with the reason",
            [b[0] for b in bad] == [2, 2, 1, 1, 1] and "not an iSCSI initiator name" in bad[0][2]
            and "12...255 bytes" in bad[2][2] and "no target" in bad[3][2] and "is not in the ACL" in bad[4][2],
            "; ".join(f"{b[0]} {short(b[2], 90)}" for b in bad))
    # A retry is harmless: a request id replayed after its change was undone changes nothing.
    third = "iqn.2026-11.dev.tessera:access-retry"
    path = f"/v1/targets/{c.target}/acls"
    s1, _, b1 = http(c.admin(2), path, token=TOKEN, method="POST", body={"initiator": third},
                     headers={"Idempotency-Key": "acceptance-retry-1"})
    s2, _, b2 = http(c.admin(3), f"{path}/{third}", token=TOKEN, method="DELETE",
                     headers={"Idempotency-Key": "acceptance-retry-2"})
    s3, _, b3 = http(c.admin(1), path, token=TOKEN, method="POST", body={"initiator": third},
                     headers={"Idempotency-Key": "acceptance-retry-1"})
    acl = lambda body: (json.loads(body).get("acl") if body.startswith("{") else None) or []
    r.check("access: POST acls with an Idempotency-Key, DELETE, then the same POST replayed: the replay "
            "answers 200 and does not add the initiator again",
            (s1, s2, s3) == (200, 200, 200) and third in acl(b1) and third not in acl(b2) and third not in acl(b3),
            f"{s1} {s2} {s3} {short(b3, 200)}")
    # Removing through node 1; a new login through node 2 is refused within the bound.
    rc, out, err = cli("acl", "remove", c.target, SECOND, node=1)
    changed = time.monotonic()
    r.check("access: tessera acl remove through node 1 exits 0 and the ACL no longer lists it",
            rc == 0 and (SECOND not in out or SECOND + " (not in ACL)" in out), short(out + err, 300))
    ok, took, (_, (irc, iout)) = until(
        lambda: (lambda res: (res[0] != 0, res))(inq(c, 2, SECOND, "host2", ACCESS_SECRET)), ACCESS_BOUND)
    info(f"login through node 2 refused {time.monotonic() - changed:.2f} s after acl remove")
    r.check(f"access: after acl remove, a new login through node 2 is refused within {ACCESS_BOUND:.0f} s",
            ok, short(iout, 200))
    rc, out, err = cli("acl", "remove", c.target, INITIATOR, node=1)
    r.check("access: removing the last initiator of an ACL is refused (an empty ACL admits everyone)",
            rc == 1 and "last initiator" in err, short(out + err, 300))
    rc, out, err = cli("chap", "remove", c.target, SECOND, node=3)
    rc_list, listed, _ = cli("acl", "list", c.target, node=3)
    rc_all, every, _ = cli("acl", "list", node=3)
    r.check("access: acl list of every target shows the other target's CHAP as the target's",
            rc_all == 0 and "user alice, mutual (target's)" in every and "any initiator" in every, short(every, 300))
    r.check("access: chap remove and acl list through node 3", rc == 0 and rc_list == 0 and "host2" not in listed
            and INITIATOR in listed, short(listed, 300))
    leaked = [f"tessera output {i}" for i, text in enumerate(outputs) if ACCESS_SECRET in text]
    for i in localcluster.NODES:
        for path in ("/v1/targets", "/v1/cluster", "/health"):
            _, _, body = http(c.admin(i), path, token=TOKEN)
            if ACCESS_SECRET in body:
                leaked.append(f"node {i} {path}")
    r.check("access: the CHAP secret is in no answer and no tessera output", not leaked, ", ".join(leaked))


def check_nolog(c, r, work, args):
    hits = [i for i in localcluster.NODES if TOKEN in c.log_text(i)]
    r.check("nolog: the token string appears in no node's log", not hits, f"in the logs of nodes {hits}" if hits else "")
    secrets = (ACCESS_SECRET, "mutual-secret-for-host2", SEED_SECRET) + CHAP_SECRETS
    hits = [i for i in localcluster.NODES if any(s in c.log_text(i) for s in secrets)]
    r.check("nolog: no CHAP secret appears in any node's log", not hits, f"in the logs of nodes {hits}" if hits else "")
    lines = sum(len(c.log_text(i).splitlines()) for i in localcluster.NODES)
    info(f"searched {lines} log lines")


def lun_on(args, c, nodes):
    """`tessera --node .. --node .. --json --verbose lun show 0`: the global options before the subcommand."""
    rc, out, err = tessera(args, *sum((node_flag(c, i) for i in nodes), []), "--json", "--verbose", "lun", "show", "0")
    try:
        return rc, json.loads(out) if rc == 0 else None, err
    except ValueError:
        return rc, None, err


def check_failover(c, r, work, args):
    rc, before, _ = lun_on(args, c, [2])
    on1 = sum(1 for s in (before or {}).get("sub_units", []) for rep in s["replicas"] if rep["node"] == 1)
    info(f"node 1 holds {on1} replicas before the kill")
    c.procs[1].kill()
    c.procs[1].wait(timeout=10)
    started = time.monotonic()
    lun, err, stale = None, "", False
    while time.monotonic() - started < 30:
        rc, lun, err = lun_on(args, c, [1, 2])
        replicas = [rep for s in (lun or {}).get("sub_units", []) for rep in s["replicas"] if rep["node"] == 1]
        if rc == 0 and replicas and all(rep["state"] == "stale" for rep in replicas):
            stale = True
            break
        time.sleep(0.5)
    info(f"node 1's replicas stale after {time.monotonic() - started:.1f} s")
    answered = f"answered by 127.0.0.1:{c.admin(2)}" in err and f"127.0.0.1:{c.admin(1)} did not answer" in err
    r.check("failover: tessera --node <node1> --node <node2> lun show 0 answers through node 2", answered,
            short(err, 300))
    primaries = {s["primary"] for s in (lun or {}).get("sub_units", [])}
    r.check("failover: lun show shows every replica on node 1 stale and none of its sub-units primary there",
            stale and 1 not in primaries and on1 > 0, short(json.dumps((lun or {}).get("sub_units", []))[:300]))
    hrc, human, _ = tessera(args, "lun", "show", "0", *node_flag(c, 1), *node_flag(c, 2))
    save_sample(args, "lun-after-kill", "tessera lun show 0 " + " ".join(node_flag(c, 1) + node_flag(c, 2)), human)
    status, group = None, None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rc, out, err = tessera(args, "cluster", "status", "--json", *node_flag(c, 1), *node_flag(c, 2))
        try:
            status = json.loads(out) if rc == 0 else None
        except ValueError:
            status = None
        group = next((g for g in (status or {}).get("port_groups", []) if g["id"] == c.group(1)), None)
        member = next((m for m in (status or {}).get("members", []) if m["id"] == 1), None)
        if group and group["state"] == "unavailable" and member and member["lease"]["liveness"] == "dead":
            break
        time.sleep(0.5)
    _, human, _ = tessera(args, "cluster", "status", *node_flag(c, 1), *node_flag(c, 2))
    save_sample(args, "cluster-after-kill", "tessera cluster status " + " ".join(node_flag(c, 1) + node_flag(c, 2)), human)
    member = next((m for m in (status or {}).get("members", []) if m["id"] == 1), None)
    r.check("failover: cluster status shows node 1 dead (fenced) and its port group unavailable",
            group is not None and group["state"] == "unavailable" and member is not None
            and member["lease"]["liveness"] == "dead" and member["lease"]["fenced"],
            f"group {group}; member {member}")
    # With node 1 down, the survivors still list sessions and take access changes.
    held = _try(lambda: Session("127.0.0.1", c.portal(3), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x4F, 3])))
    def listed():
        rc, out, err = tessera(args, "session", "list", *node_flag(c, 1), *node_flag(c, 2))
        return rc == 0 and INITIATOR in out and "0x800000004f03" in out.lower(), (rc, out, err)
    # Node 3 publishes its sessions within about a second of a change.
    _, _, (_, (rc, out, err)) = until(listed, 5)
    r.check("failover: with node 1 down, session list through node 2 lists a session held through node 3",
            held and rc == 0 and INITIATOR in out and "0x800000004f03" in out.lower(), f"exit {rc}: {short(out + err, 300)}")
    if held:
        held.close()
    down_iqn = "iqn.2026-12.dev.tessera:while-down"
    made = tessera(args, "target", "create", down_iqn, *node_flag(c, 3))
    added = tessera(args, "acl", "add", down_iqn, INITIATOR, *node_flag(c, 2))
    listed = tessera(args, "acl", "list", down_iqn, *node_flag(c, 3))
    deleted = tessera(args, "target", "delete", down_iqn, "--yes", *node_flag(c, 2))
    r.check("failover: with node 1 down, a target made through node 3 takes an ACL through node 2, seen through node 3",
            made[0] == 0 and added[0] == 0 and listed[0] == 0 and INITIATOR in listed[1] and deleted[0] == 0,
            "; ".join(f"exit {x[0]}: {short(x[1] + x[2], 120)}" for x in (made, added, listed, deleted)))
    # Node 1 comes back: it rejoins and its replicas are resynced from the primaries.
    ready_before = c.log_text(1).count("tesserad ready")
    c.start(1)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and c.alive(1) and c.log_text(1).count("tesserad ready") <= ready_before:
        time.sleep(0.2)
    back = c.log_text(1).count("tesserad ready") > ready_before
    r.check("failover: node 1 restarts and logs 'tesserad ready' again", back,
            short("\n".join(c.log_text(1).splitlines()[-4:])))
    if not back:
        return
    deadline = time.monotonic() + 90
    samples = 0
    while time.monotonic() < deadline:
        rc, out, err = tessera(args, "resync", "status", *node_flag(c, 2), *node_flag(c, 3))
        if rc == 0 and samples < 3 and "every replica is in sync" not in out:
            save_sample(args, f"resync-{samples}", "tessera resync status " + " ".join(node_flag(c, 2)), out)
            samples += 1
        if rc == 0 and "every replica is in sync" in out:
            break
        time.sleep(0.5)
    save_sample(args, "resync-done", "tessera resync status " + " ".join(node_flag(c, 2)), out)
    r.check("failover: resync status answers and, within 90 s, every replica is in sync again",
            rc == 0 and "every replica is in sync" in out, short(out + err, 300))


def check_prclear(c, r, work, args):
    """The registration and reservation `agree` made through node 1, cleared
    by an administrator through node 2: gone through node 3, the registered
    nexus told RESERVATIONS PREEMPTED (2A/03) through node 1, the clear logged."""
    s = Session("127.0.0.1", c.portal(1), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x41, 1]))
    try:
        for _ in range(5):   # the login's own unit attentions first
            if s.command(scsi.tur()).good:
                break
        rc, out, err = tessera(args, "pr", "clear", "0", *node_flag(c, 2))
        r.check("prclear: without --yes, tessera pr clear exits 2 and says what to add",
                rc == 2 and "--yes" in err, f"exit {rc}: {short(err, 200)}")
        rc, out, err = tessera(args, "pr", "clear", "0", "--yes", "--json", *node_flag(c, 2))
        cleared = json.loads(out) if rc == 0 else {}
        if rc == 0:
            _, human, _ = tessera(args, "pr", "show", "0", *node_flag(c, 3))
            save_sample(args, "pr-after-clear", f"tessera pr show 0 --node 127.0.0.1:{c.admin(3)}", human)
            if args.samples:   # the human answer, from a second clear (nothing left to clear)
                _, human, _ = tessera(args, "pr", "clear", "0", "--yes", *node_flag(c, 3))
                save_sample(args, "pr-clear", f"tessera pr clear 0 --yes --node 127.0.0.1:{c.admin(3)}", human)
        r.check("prclear: tessera pr clear 0 --yes through node 2 answers with no registration and no reservation",
                rc == 0 and cleared.get("registrations") == [] and not cleared.get("reservation"),
                short(out + err, 300))
        rc, out, err = tessera(args, "pr", "show", "0", "--json", *node_flag(c, 3))
        seen = json.loads(out) if rc == 0 else {}
        r.check("prclear: pr show 0 through node 3 agrees (the generation moved on)",
                rc == 0 and seen.get("registrations") == [] and not seen.get("reservation")
                and seen.get("generation") == cleared.get("generation"), short(out + err, 300))
        told = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = s.command(scsi.tur())
            if result.unit_attention():
                told = result.asc_ascq
                break
            time.sleep(0.2)
        r.check("prclear: the registered nexus through node 1 gets RESERVATIONS PREEMPTED (2A/03)",
                told == (0x2A, 0x03), f"unit attention {told}")
    finally:
        try:
            s.logout()
        except Exception:  # noqa: BLE001 - the checks above are what matter
            pass
        s.close()
    r.check("prclear: node 2 logged the administrator's clear",
            "persistent reservations cleared by an administrator" in c.log_text(2), "")


def dropped(session, bound):
    """True once `session`'s connection is closed by the target (within `bound` seconds)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            session.nop(timeout=1)
        except Exception:  # noqa: BLE001 - EOF, reset or a timeout on a closed connection
            return True
        time.sleep(0.2)
    return False


def check_sessions(c, r, work, args):
    """Sessions held through node 3 and node 2, listed through node 1 (and node 2 for its
    own, live); node 3's closed through node 1 (asked through the store), node 2's through
    node 2 (at once); both connections dropped, both gone from the list through node 3."""
    s3 = Session("127.0.0.1", c.portal(3), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x53, 3]))
    s2 = Session("127.0.0.1", c.portal(2), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x53, 2]))
    try:
        def listed(node):
            rc, out, err = tessera(args, "session", "list", "--json", *node_flag(c, node))
            return {(s["node"], s["tsih"]): s for s in json.loads(out)} if rc == 0 else {}

        want = {(3, s3.tsih), (2, s2.tsih)}
        _, _, (_, seen) = until(lambda: (lambda found: (want <= set(found), found))(listed(1)), 10)
        r.check("sessions: both sessions (node 3's, node 2's) listed through node 1 within 10 s",
                want <= set(seen), f"listed {sorted(seen)}, want {sorted(want)}")
        one = seen.get((3, s3.tsih), {})
        r.check("sessions: node 3's entry names the initiator port, portal and the host's address",
                one.get("initiator") == INITIATOR and one.get("isid") == "0x800000005303"
                and one.get("portal") == f"127.0.0.1:{c.portal(3)}"
                and one.get("initiator_address") == f"127.0.0.1:{s3.sock.getsockname()[1]}"
                and one.get("source") == "published", short(json.dumps(one), 300))
        own = listed(2).get((2, s2.tsih), {})
        r.check("sessions: node 2 lists its own session live", own.get("source") == "live", short(json.dumps(own), 200))
        rc, out, err = tessera(args, "session", "list", *node_flag(c, 1))
        save_sample(args, "session-list", "tessera session list " + " ".join(node_flag(c, 1)), out)
        r.check("sessions: the table has a header and a row per session",
                rc == 0 and out.startswith("NODE") and len(out.strip().splitlines()) >= 3, short(out + err, 300))

        rc, out, err = tessera(args, "session", "close", "3", str(s3.tsih), *node_flag(c, 1))
        r.check("sessions: close without --yes exits 2 and says what to add", rc == 2 and "--yes" in err,
                f"exit {rc}: {short(err, 200)}")
        rc, out, err = tessera(args, "session", "close", "3", str(s3.tsih), "--yes", "--json", *node_flag(c, 1))
        answer = json.loads(out) if rc == 0 else {}
        r.check("sessions: node 3's session closed through node 1 is 'requested'",
                answer.get("outcome") == "requested", short(out + err, 300))
        gone3 = dropped(s3, 5)
        r.check("sessions: node 3 drops that connection within 5 s", gone3, "" if gone3 else "still answering NOP-Outs")
        rc, out, err = tessera(args, "session", "close", "2", str(s2.tsih), "--yes", *node_flag(c, 2))
        save_sample(args, "session-close", f"tessera session close 2 {s2.tsih} --yes --node 127.0.0.1:{c.admin(2)}", out)
        r.check("sessions: node 2's session closed through node 2 is closed at once",
                rc == 0 and out.startswith("closed session"), short(out + err, 300))
        gone2 = dropped(s2, 2)
        r.check("sessions: node 2 drops that connection within 2 s", gone2, "" if gone2 else "still answering NOP-Outs")
        gone, _, (_, left) = until(lambda: (lambda found: (not (want & set(found)), found))(listed(3)), 10)
        r.check("sessions: within 10 s neither is listed through node 3", gone,
                "" if gone else f"still {sorted(want & set(left))}")
        gone1, _, (_, left1) = until(lambda: (lambda found: (not (want & set(found)), found))(listed(1)), 10)
        r.check("sessions: nor, within 10 s, through node 1 (each node republished its list)", gone1,
                "" if gone1 else f"still {sorted(want & set(left1))}")
        rc, out, err = tessera(args, "session", "close", "3", str(s3.tsih), "--yes", *node_flag(c, 1))
        r.check("sessions: closing a session that is gone exits 1 and says how to list them",
                rc == 1 and "session list" in err, f"exit {rc}: {short(err, 200)}")
        r.check("sessions: node 3 logged the close it was asked for",
                "session closed as asked through another node" in c.log_text(3), "")
    finally:
        for s in (s3, s2):
            s.close()


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics(port):
    """(status, {(name, frozenset of (label, value)): float}, text) of a node's /metrics, no token."""
    status, _, body = http(port, "/metrics")
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if m:
            labels = frozenset(METRIC_LABEL.findall(m.group(2) or ""))
            samples[(m.group(1), labels)] = float(m.group(3))
    return status, samples, body


def lun_sample(samples, name, target, lun, **extra):
    """The value of `name` for `target`/`lun` (and any `extra` labels), 0 when absent."""
    for (n, labels), value in samples.items():
        d = dict(labels)
        if n == name and d.get("target") == target and d.get("lun") == str(lun) \
                and all(d.get(k) == v for k, v in extra.items()):
            return value
    return 0.0


def histogram_ok(samples, name, target, lun):
    """(whether the `le` buckets are cumulative with +Inf equal to _count, the count, detail)."""
    buckets = []
    for (n, labels), value in samples.items():
        d = dict(labels)
        if n == name + "_bucket" and d.get("target") == target and d.get("lun") == str(lun):
            buckets.append((float("inf") if d["le"] == "+Inf" else float(d["le"]), value))
    buckets.sort()
    count = lun_sample(samples, name + "_count", target, lun)
    cumulative = all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    ok = len(buckets) >= 2 and buckets[-1][0] == float("inf") and buckets[-1][1] == count and cumulative
    return ok, count, f"{len(buckets)} buckets, +Inf {buckets[-1][1] if buckets else None}, _count {count}"


def check_metrics(c, r, work, args):
    """Four READ(10)s and one WRITE(10) of LUN 0 through node 2's portal, counted in node 2's
    /metrics (with latency histograms, the session and connection open), not in node 3's."""
    target = c.target
    _, before2, _ = metrics(c.admin(2))
    _, before3, _ = metrics(c.admin(3))
    s = Session("127.0.0.1", c.portal(2), INITIATOR, target, bytes([0x80, 0, 0, 0, 0x4D, 0x32]))
    try:
        def command(cdb, data=b"", read_length=0):
            for _ in range(5):
                result = s.command(cdb, data, read_length)
                if not result.unit_attention():
                    return result
            return result
        capacity = command(scsi.read_capacity16(), read_length=32)
        block = int.from_bytes(capacity.data[8:12], "big") if capacity.good else 512
        reads = [command(scsi.read10(8 * i, 8), read_length=8 * block) for i in range(4)]
        first = command(scsi.read10(0, 1), read_length=block)
        # The block read back written unchanged: the LUN's data stays what the other checks left.
        write = command(scsi.write10(0, 1), first.data) if first.good else first
        r.check("metrics: reads and a write of LUN 0 through node 2 end GOOD",
                all(x.good for x in reads) and first.good and write.good,
                "; ".join(str(x) for x in reads + [first, write]))
        status, after, text = metrics(c.admin(2))
        r.check("metrics: node 2's /metrics answers 200 without the token", status == 200, f"status {status}")
        delta = {kind: lun_sample(after, "tessera_lun_commands_total", target, 0, kind=kind)
                 - lun_sample(before2, "tessera_lun_commands_total", target, 0, kind=kind)
                 for kind in ("read", "write")}
        r.check("metrics: node 2 counts 5 reads and 1 write of LUN 0 (tessera_lun_commands_total)",
                delta["read"] == 5 and delta["write"] == 1
                and lun_sample(after, "tessera_lun_commands_total", target, 0, kind="read") > 0, str(delta))
        read_bytes = lun_sample(after, "tessera_lun_read_bytes_total", target, 0) \
            - lun_sample(before2, "tessera_lun_read_bytes_total", target, 0)
        written = lun_sample(after, "tessera_lun_written_bytes_total", target, 0) \
            - lun_sample(before2, "tessera_lun_written_bytes_total", target, 0)
        r.check("metrics: node 2 counts the bytes read and written",
                read_bytes == 33 * block and written == block, f"read {read_bytes}, written {written} (block {block})")
        shapes = [histogram_ok(after, f"tessera_lun_{kind}_latency_seconds", target, 0) for kind in ("read", "write")]
        r.check("metrics: read and write latency histograms: cumulative buckets, +Inf equal to _count, counted",
                all(ok for ok, _, _ in shapes) and shapes[0][1] >= 5 and shapes[1][1] >= 1,
                "; ".join(detail for _, _, detail in shapes))
        sessions = after.get(("tessera_iscsi_sessions", frozenset([("node", "2")])), 0)
        connections = after.get(("tessera_iscsi_connections", frozenset([("node", "2")])), 0)
        store = after.get(("tessera_store_transaction_latency_seconds_count", frozenset([("node", "2")])))
        r.check("metrics: node 2 shows the session and connection open and the store transaction histogram",
                sessions >= 1 and connections >= 1 and store is not None,
                f"sessions {sessions}, connections {connections}, store transactions {store}")
        def trips_now():
            _, now, _ = metrics(c.admin(2))
            found = {peer: (now or {}).get(("tessera_peer_round_trip_seconds", frozenset([("node", "2"), ("peer", str(peer))])))
                     for peer in (1, 3)}
            return all(v is not None for v in found.values()), found
        _, _, (_, trips) = until(trips_now, 10)
        r.check("metrics: node 2 shows its peer-port round trip to nodes 1 and 3 (0 < rtt < 1 s)",
                all(v is not None and 0 < v < 1 for v in trips.values()), f"{trips}")
        _, after3, _ = metrics(c.admin(3))
        moved3 = lun_sample(after3, "tessera_lun_commands_total", target, 0, kind="read") \
            - lun_sample(before3, "tessera_lun_commands_total", target, 0, kind="read")
        r.check("metrics: node 3's read count of LUN 0 does not move", moved3 == 0, f"moved by {moved3}")
        lun_lines = [line for line in text.splitlines()
                     if f'target="{target}",lun="0"' in line or line.startswith("tessera_iscsi")
                     or line.startswith("tessera_store_transaction") or line.startswith("tessera_peer_round_trip")]
        save_sample(args, "metrics", f"curl -s http://127.0.0.1:{c.admin(2)}/metrics", "\n".join(lun_lines) + "\n")
    finally:
        try:
            s.logout()
        except Exception:  # noqa: BLE001 - the figures are what the check is about
            pass
        s.close()


def check_masks(c, r, work, args):
    """LUN 0 mapped to the acceptance initiator only, through node 2: another initiator's
    session through node 3 stops seeing it (REPORT LUNS empty, TUR 05/25/00) within 5 s,
    the mapped initiator's session through node 1 is told 06/3F/0E and keeps it; the last
    initiator cannot leave alone (exit 1); unmap --all through node 3 shows it again."""
    other_name = "iqn.2026-11.dev.tessera:mask-other"
    mine = Session("127.0.0.1", c.portal(1), INITIATOR, c.target, bytes([0x80, 0, 0, 0, 0x4D, 1]))
    other = Session("127.0.0.1", c.portal(3), other_name, c.target, bytes([0x80, 0, 0, 0, 0x4D, 3]))
    try:
        for s in (mine, other):
            for _ in range(5):   # the login's own unit attentions first
                if s.command(scsi.tur()).good:
                    break
        def luns(s):
            result = s.command(scsi.report_luns(), read_length=4096)
            return scsi.parse_report_luns(result.data) if result.good else None
        r.check("masks: before, both initiators see LUN 0", luns(mine) == [0] and luns(other) == [0],
                f"{luns(mine)} {luns(other)}")
        rc, out, err = tessera(args, "lun", "map", "0", INITIATOR, *node_flag(c, 2))
        save_sample(args, "lun-map", f"tessera lun map 0 {INITIATOR} " + " ".join(node_flag(c, 2)), out)
        r.check("masks: tessera lun map 0 through node 2 shows LUN 0 seen by the acceptance initiator only",
                rc == 0 and re.search(rf"(?m)^\S+\s+0\s+{re.escape(INITIATOR)}$", out) is not None, short(out + err, 300))
        hidden, took, _ = until(lambda: (luns(other) == [], None), 5)
        r.check("masks: within 5 s, the other initiator's REPORT LUNS through node 3 is empty",
                hidden, f"after {took:.1f} s: {luns(other)}")
        result = other.command(scsi.tur())
        r.check("masks: its TEST UNIT READY to LUN 0 gets LOGICAL UNIT NOT SUPPORTED (05/25/00)",
                result.key == 0x5 and result.asc_ascq == (0x25, 0x00), str(result))
        told = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and told is None:
            result = mine.command(scsi.tur())
            if result.unit_attention():
                told = result.asc_ascq
            time.sleep(0.2)
        r.check("masks: the mapped initiator's session through node 1 is told REPORTED LUNS DATA HAS CHANGED (06/3F/0E)",
                told == (0x3F, 0x0E), f"unit attention {told}")
        r.check("masks: and still sees LUN 0", luns(mine) == [0] and mine.command(scsi.tur()).good, f"{luns(mine)}")
        rc, out, err = tessera(args, "lun", "unmap", "0", INITIATOR, *node_flag(c, 1))
        r.check("masks: unmapping the last initiator alone exits 1 and says to use --all",
                rc == 1 and "--all" in err, f"exit {rc}: {short(err, 200)}")
        rc, out, err = tessera(args, "lun", "unmap", "0", "--all", *node_flag(c, 3))
        save_sample(args, "lun-unmap", f"tessera lun unmap 0 --all --node 127.0.0.1:{c.admin(3)}", out)
        r.check("masks: tessera lun unmap 0 --all through node 3 shows LUN 0 to every initiator",
                rc == 0 and "every initiator the ACL admits" in out, short(out + err, 300))
        shown, took, _ = until(lambda: (luns(other) == [0], None), 5)
        r.check("masks: within 5 s the other initiator sees LUN 0 again", shown, f"after {took:.1f} s: {luns(other)}")
        r.check("masks: node 3 logged the mask change", "LUN masks changed" in c.log_text(3), "")
    finally:
        for s in (mine, other):
            s.close()


# The verifying writer of the catalog check: qemu-io (qemu's libiscsi driver, which retries a
# command that met a UNIT ATTENTION) writing 64 KiB chunks, each with its own pattern byte.
WRITER_CHUNK = 64 << 10
WRITER_CHUNKS = 192


def writer_pattern(i, seed=0):
    return 0x11 + (i + seed) % 0xE0


def start_writer(url, seconds, seed=0):
    """qemu-io writing WRITER_CHUNKS chunks at the start of `url`, fed over about `seconds` s.
    Returns (process, feeding thread); collect with finish_writer."""
    import threading
    p = subprocess.Popen(["qemu-io", "-f", "raw", url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)

    def feed():
        try:
            for i in range(WRITER_CHUNKS):
                p.stdin.write(f"write -P {writer_pattern(i, seed)} {i * WRITER_CHUNK} {WRITER_CHUNK}\n")
                p.stdin.flush()
                time.sleep(seconds / WRITER_CHUNKS)
            p.stdin.write("quit\n")
            p.stdin.flush()
        except (OSError, ValueError):
            pass
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return p, thread


def finish_writer(writer, timeout=60):
    """(chunks acknowledged, failure lines, unit-attention lines) of a writer from start_writer."""
    p, thread = writer
    thread.join(timeout)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    wrote = len(re.findall(r"wrote 65536/65536 bytes", out))
    failures = [line for line in (out + err).splitlines() if "failed" in line.lower() or "error" in line.lower()
                and "CheckCondition" not in line]
    attentions = [line for line in err.splitlines() if "UNIT_ATTENTION" in line or "CheckCondition" in line]
    return wrote, failures, attentions


def verify_writer(url, chunks=WRITER_CHUNKS, seed=0):
    """(chunks read back with their pattern, output) through `url`."""
    commands = []
    for i in range(chunks):
        commands += ["-c", f"read -P {writer_pattern(i, seed)} {i * WRITER_CHUNK} {WRITER_CHUNK}"]
    rc, out = run(["qemu-io", "-f", "raw", url, *commands], timeout=120)
    read = len(re.findall(r"read 65536/65536 bytes", out))
    return (read if rc == 0 and "failed" not in out.lower() else 0), out


def check_catalog(c, r, work, args):
    """A target and a 2-replica LUN made with the CLI only (through nodes 2 and 3) are
    served by every node within 5 s (the target by node 2 as its command returns); grown through node 2 while a session on every node
    holds it and a verifying writer (qemu-io) writes through node 1: the writer meets no
    error but the CAPACITY DATA HAS CHANGED it retries, and its blocks read back through
    node 3; each session is told 06/2A/09 and reads the new capacity, and a block written
    past the old end through node 3 reads back through node 1; shrinking is refused
    without --force (exit 1); forced through node 3 (needs --yes) while the writer writes
    below the new end through node 1 again (no error but the retried unit attention),
    each session is told 06/2A/09, every node says the smaller capacity and refuses I/O
    past it with 05/21/00 while the blocks before it read back through node 2 as the
    writer left them; grown again through node 1, the cut block reads as zeros; a memory
    LUN and a size below the minimum cannot shrink; node 2, stopped while the LUN shrinks
    again, cuts its replica file when it starts and serves the smaller size; the alias
    changed through node 2 is in a new login's TargetAlias through node 3 within
    5 s; deleted through node 1 (needs --yes), every node stops serving it and removes
    its replica file."""
    iqn = "iqn.2026-12.dev.tessera:catalog"
    rc, out, err = tessera(args, "target", "create", iqn, "--alias", "catalog", *node_flag(c, 2))
    save_sample(args, "target-create", f"tessera target create {iqn} --alias catalog", out)
    r.check("catalog: tessera target create through node 2", rc == 0 and f"created target {iqn}" in out, short(out + err, 200))
    # The node a change went through serves it when the command returns: discovery
    # through node 2 lists the target at once (the other nodes follow within a second).
    listed_rc, listed = run(["iscsi-ls", "-i", INITIATOR, f"iscsi://127.0.0.1:{c.portal(2)}"], timeout=30)
    r.check("catalog: right after it returns, discovery (iscsi-ls) through node 2 lists the target",
            listed_rc == 0 and iqn in listed, short(f"exit {listed_rc}: {listed}", 400))
    # --wait: node 2 serves the target from its create on, so a login there before node 2
    # serves the LUN too would meet the LUN's arrival (29/00) instead of a settled LUN.
    rc, out, err = tessera(args, "lun", "create", iqn, "64M", "--sub-unit-size", "8M", "--replicas", "2",
                           "--wait", "--timeout", "30", *node_flag(c, 3))
    save_sample(args, "lun-create", f"tessera lun create {iqn} 64M --sub-unit-size 8M --replicas 2 --wait", out)
    r.check("catalog: tessera lun create --wait through node 3 places 8 sub-units with 2 replicas and returns "
            "once all three nodes serve it",
            rc == 0 and "8 sub-units of 8 MiB, 2 replicas each" in out and "served by 3 of 3 nodes" in out,
            short(out + err, 300))
    sessions = []
    def capacity(s):
        result = s.command(scsi.read_capacity16(), read_length=32)
        return (int.from_bytes(result.data[0:8], "big") + 1) * int.from_bytes(result.data[8:12], "big") if result.good else None

    def told_all():
        told = []
        for s in sessions:
            seen = None
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and seen is None:
                result = s.command(scsi.tur())
                if result.unit_attention():
                    seen = result.asc_ascq
                else:
                    time.sleep(0.2)
            told.append(seen)
        return told

    def url(i):
        return f"iscsi://127.0.0.1:{c.portal(i)}/{iqn}/0"
    try:
        def login_all():
            for s in sessions:
                s.close()
            sessions.clear()
            for i in (1, 2, 3):
                sessions.append(Session("127.0.0.1", c.portal(i), INITIATOR, iqn, bytes([0x80, 0, 0, 0, 0x4E, i])))
            return True
        served, took, _ = until(lambda: (_try(login_all), None), 5)
        r.check("catalog: within 5 s all three nodes accept a login to the new target", served and len(sessions) == 3,
                f"after {took:.1f} s: {len(sessions)} sessions")
        if len(sessions) != 3:
            raise _Skip()
        aliases = [s.target_keys.get("TargetAlias") for s in sessions]
        r.check("catalog: every node's login answers TargetAlias=catalog", aliases == ["catalog"] * 3, f"{aliases}")
        for s in sessions:
            for _ in range(5):   # the login's own unit attentions first
                if s.command(scsi.tur()).good:
                    break
        sizes = [capacity(s) for s in sessions]
        r.check("catalog: READ CAPACITY(16) through every node says 64 MiB", sizes == [64 << 20] * 3, f"{sizes}")
        writer = start_writer(url(1), 4.0)
        time.sleep(1.0)
        rc, out, err = tessera(args, "lun", "resize", "0", "128M", "--target", iqn, "--wait", "--timeout", "30",
                               *node_flag(c, 2))
        save_sample(args, "lun-resize", f"tessera lun resize 0 128M --target {iqn} --wait", out)
        r.check("catalog: tessera lun resize 0 128M --wait through node 2 while the writer runs: 16 sub-units, "
                "and it returns once all three nodes serve 128 MiB",
                rc == 0 and "16 sub-units" in out and "100.0%" in out and "served by 3 of 3 nodes" in out,
                short(out + err, 400))
        # --wait returns once every node serves the new size, which each does
        # after queueing the unit attention: the next command through every
        # node meets it, with no wait
        told = []
        for s in sessions:
            result = s.command(scsi.tur())
            told.append(result.asc_ascq if result.unit_attention() else None)
        wrote, failures, attentions = finish_writer(writer)
        info(f"catalog: the writer met {len(attentions)} unit attention(s): {short(' | '.join(attentions), 300)}")
        r.check(f"catalog: the writer through node 1 had all {WRITER_CHUNKS} writes acknowledged, no error "
                "(a CAPACITY DATA HAS CHANGED is retried)",
                wrote == WRITER_CHUNKS and not failures and all("CAPACITY" in a.upper() or "2A09" in a.upper() for a in attentions),
                f"{wrote} acknowledged; {short(' | '.join(failures + attentions), 400)}")
        read_back, out = verify_writer(url(3))
        r.check("catalog: and every block it wrote reads back through node 3", read_back == WRITER_CHUNKS,
                f"{read_back} of {WRITER_CHUNKS}: {short(out, 300)}")
        r.check("catalog: each node's session is told CAPACITY DATA HAS CHANGED (06/2A/09) at its first command "
                "after --wait returned", told == [(0x2A, 0x09)] * 3, f"{told}")
        sizes = [capacity(s) for s in sessions]
        r.check("catalog: and READ CAPACITY(16) through every node says 128 MiB", sizes == [128 << 20] * 3, f"{sizes}")
        lba = (120 << 20) // 512
        block = bytes([0xC7]) * 512
        wrote = sessions[2].command(scsi.write10(lba, 1), data_out=block)
        read = sessions[0].command(scsi.read10(lba, 1), read_length=512)
        r.check("catalog: a block past the old end written through node 3 reads back through node 1",
                wrote.good and read.good and read.data == block, f"{wrote} {read}")
        rc, out, err = tessera(args, "lun", "resize", "0", "64M", "--target", iqn, *node_flag(c, 3))
        save_sample(args, "lun-shrink-refused", f"tessera lun resize 0 64M --target {iqn}", err)
        r.check("catalog: shrinking without --force is refused (exit 1) with the reason and how to force it",
                rc == 1 and "shrinking" in err and "--force --yes" in err, f"exit {rc}: {short(err, 300)}")
        rc, out, err = tessera(args, "lun", "resize", "0", "64M", "--force", "--target", iqn, *node_flag(c, 3))
        r.check("catalog: --force without --yes exits 2", rc == 2 and "--yes" in err, f"exit {rc}: {short(err, 200)}")
        writer = start_writer(url(1), 4.0, seed=0x40)
        time.sleep(1.0)
        rc, out, err = tessera(args, "lun", "resize", "0", "64M", "--force", "--yes", "--target", iqn, *node_flag(c, 3))
        save_sample(args, "lun-shrink", f"tessera lun resize 0 64M --target {iqn} --force --yes", out)
        r.check("catalog: tessera lun resize 0 64M --force --yes through node 3, the writer running again, leaves 8 sub-units",
                rc == 0 and "8 sub-units" in out and "64 MiB" in out, short(out + err, 300))
        wrote, failures, attentions = finish_writer(writer)
        info(f"catalog: through the shrink the writer met {len(attentions)} unit attention(s)")
        r.check(f"catalog: the writer through node 1 below the new end had all {WRITER_CHUNKS} writes acknowledged through "
                "the shrink, no error (a CAPACITY DATA HAS CHANGED is retried)",
                wrote == WRITER_CHUNKS and not failures and all("CAPACITY" in a.upper() or "2A09" in a.upper() for a in attentions),
                f"{wrote} acknowledged; {short(' | '.join(failures + attentions), 400)}")
        told = told_all()
        r.check("catalog: after the shrink each node's session is told CAPACITY DATA HAS CHANGED (06/2A/09)",
                told == [(0x2A, 0x09)] * 3, f"{told}")
        sizes = [capacity(s) for s in sessions]
        r.check("catalog: and READ CAPACITY(16) through every node says 64 MiB", sizes == [64 << 20] * 3, f"{sizes}")
        past = [sessions[0].command(scsi.write10((100 << 20) // 512, 1), data_out=block),
                sessions[1].command(scsi.read10(lba, 1), read_length=512),
                sessions[2].command(scsi.read10((64 << 20) // 512, 1), read_length=512)]
        r.check("catalog: I/O past the new end gets LBA OUT OF RANGE (05/21/00) through every node",
                all(x.key == 0x05 and x.asc_ascq == (0x21, 0x00) for x in past), f"{past}")
        read_back, out = verify_writer(url(2), seed=0x40)
        r.check("catalog: the writer's blocks before the new end read back through node 2",
                read_back == WRITER_CHUNKS, f"{read_back} of {WRITER_CHUNKS}: {short(out, 300)}")
        rc, out, err = tessera(args, "lun", "resize", "0", "128M", "--target", iqn, *node_flag(c, 1))
        told = told_all()
        read = sessions[1].command(scsi.read10(lba, 1), read_length=512)
        r.check("catalog: grown again through node 1, the block that was cut off reads as zeros through node 2",
                rc == 0 and told == [(0x2A, 0x09)] * 3 and read.good and read.data == bytes(512),
                f"exit {rc}, told {told}, {read} {read.data[:8].hex() if read.good else ''}")
        status, _, body = http(c.admin(2), f"/v1/luns/0?target={iqn}&force=yes", TOKEN, method="PATCH",
                               body={"size_bytes": 4096})
        r.check("catalog: PATCH ?force=yes below the minimum size is a 400 with the reason",
                status == 400 and "out of range" in body, f"{status} {short(body, 200)}")
        rc, out, err = tessera(args, "lun", "create", iqn, "16M", "--lun", "1", "--backing", "memory", "--replicas", "1",
                               "--sub-unit-size", "8M", *node_flag(c, 1))
        rc2, out2, err2 = tessera(args, "lun", "resize", "1", "8M", "--force", "--yes", "--target", iqn, *node_flag(c, 2))
        r.check("catalog: a memory LUN cannot shrink (exit 1, the reason)",
                rc == 0 and rc2 == 1 and "cannot shrink" in err2, f"create exit {rc}: {short(err, 100)}; exit {rc2}: {short(err2, 200)}")
        rc, out, err = tessera(args, "lun", "delete", "1", "--target", iqn, "--yes", *node_flag(c, 1))
        # A node away during a shrink cuts its replica file when it starts again.
        import glob
        files = glob.glob(os.path.join(c.work, "tessera-data", "node2", "lun-*.img"))
        _try(lambda: sessions[1].close())
        ready_before = c.log_text(2).count("tesserad ready")
        stopped = c.stop(2)
        rc, out, err = tessera(args, "lun", "resize", "0", "32M", "--force", "--yes", "--target", iqn, *node_flag(c, 3))
        length_away = os.path.getsize(files[0]) if len(files) == 1 else None
        c.start(2)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and c.alive(2) and c.log_text(2).count("tesserad ready") <= ready_before:
            time.sleep(0.2)
        back = c.log_text(2).count("tesserad ready") > ready_before
        length_back = os.path.getsize(files[0]) if len(files) == 1 else None

        def capacity_through_2():
            s = Session("127.0.0.1", c.portal(2), INITIATOR, iqn, bytes([0x80, 0, 0, 0, 0x50, 2]))
            try:
                for _ in range(5):
                    if s.command(scsi.tur()).good:
                        break
                return capacity(s)
            finally:
                s.close()
        size_back = _try(capacity_through_2) if back else None
        r.check("catalog: node 2, stopped while the LUN shrank to 32 MiB through node 3, starts again, cuts its "
                "replica file from 128 MiB to 32 MiB and serves 32 MiB",
                stopped == 0 and rc == 0 and back and length_away == 128 << 20 and length_back == 32 << 20
                and size_back == 32 << 20 and "replica file is cut to the LUN's size" in c.log_text(2),
                f"stop exit {stopped}, resize exit {rc} {short(err, 100)}, ready again {back}, file {files} "
                f"{length_away} -> {length_back}, READ CAPACITY {size_back}")
        rc, out, err = tessera(args, "target", "set-alias", iqn, "catalog renamed", *node_flag(c, 2))
        save_sample(args, "target-set-alias", f"tessera target set-alias {iqn} 'catalog renamed'", out)
        r.check("catalog: tessera target set-alias through node 2", rc == 0 and "catalog renamed" in out, short(out + err, 300))

        def renamed():
            s = Session("127.0.0.1", c.portal(3), INITIATOR, iqn, bytes([0x80, 0, 0, 0, 0x4F, 3]))
            alias = s.target_keys.get("TargetAlias")
            s.close()
            return alias == "catalog renamed", alias
        seen, took, last = until(lambda: _try(renamed) or (False, None), 5)
        r.check("catalog: within 5 s a new login through node 3 answers TargetAlias=catalog renamed", seen,
                f"after {took:.1f} s: {last}")
    except _Skip:
        pass
    finally:
        for s in sessions:
            s.close()
    rc, out, err = tessera(args, "lun", "delete", "0", "--target", iqn, *node_flag(c, 1))
    r.check("catalog: tessera lun delete without --yes exits 2", rc == 2 and "--yes" in err, f"exit {rc}")
    rc, out, err = tessera(args, "lun", "delete", "0", "--target", iqn, "--yes", *node_flag(c, 1))
    r.check("catalog: tessera lun delete --yes through node 1", rc == 0 and "deleted LUN 0" in out, short(out + err, 200))
    rc, out, err = tessera(args, "target", "delete", iqn, "--yes", *node_flag(c, 3))
    r.check("catalog: tessera target delete --yes through node 3", rc == 0 and f"deleted target {iqn}" in out, short(out + err, 200))
    def gone():
        for i in (1, 2, 3):
            if iqn in c.log_text(i) and "catalog: target deleted through the cluster" not in c.log_text(i):
                return False
        return True
    stopped, took, _ = until(lambda: (gone(), None), 5)
    r.check("catalog: within 5 s every node logs that it stopped serving the target", stopped, f"after {took:.1f} s")


def nodes_on(args, c, i):
    """`tessera node list --json` through node i: {id: status}, or None."""
    rc, out, _ = tessera(args, "--json", "node", "list", *node_flag(c, i))
    try:
        return {n["id"]: n for n in json.loads(out)} if rc == 0 else None
    except ValueError:
        return None


def node4_config(c, work, args):
    """Node 3's TOML turned into a fourth node's: its own id, portal group, ports and data_dir."""
    text = open(c.node[3]["config"]).read()
    ports = {c.node[3]["portal"]: args.portal_base + 4, c.node[3]["store"]: args.base_port + 14,
             c.node[3]["admin"]: args.base_port + 34}
    if c.wire(3):
        ports[c.wire(3)] = args.base_port + 24
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports.get(int(m.group(1)), int(m.group(1)))}", text)
    text = re.sub(r"(?m)^node_id = 3$", "node_id = 4", text)
    text = re.sub(r"(?m)^group = 3(\b.*)$", r"group = 4\1", text)
    text = text.replace("tessera-data/node3", "tessera-data/node4")
    path = os.path.join(work, "node4.toml")
    with open(path, "w") as f:
        f.write(text)
    shape = localcluster._ports(text)
    shape["config"] = path
    return shape


def check_nodes(c, r, work, args):
    """Drain the store leader under a verifying writer, remove it, add a node 4 (see the module docstring)."""
    rc, out, _ = tessera(args, "--json", "cluster", "status", *node_flag(c, 2))
    try:
        leader = json.loads(out)["store_leader"] if rc == 0 else None
    except (ValueError, KeyError):
        leader = None
    v = leader if leader in (1, 2, 3) else 3
    a, b = [i for i in (1, 2, 3) if i != v]
    info(f"nodes: draining node {v} (the store leader: {leader}); writer and commands through nodes {a} and {b}")
    before = nodes_on(args, c, a)
    rc, out, err = tessera(args, "node", "list", *node_flag(c, a))
    save_sample(args, "node-list", "tessera node list", out)
    r.check(f"nodes: node list through node {a} shows three active members, node {v} holding replicas",
            before is not None and sorted(before) == [1, 2, 3] and all(n["state"] == "active" for n in before.values())
            and before[v]["replicas"] > 0, short(out + err, 300))
    if before is None or v not in before:
        return
    # A drain ended at once: moves that had begun finish, the rest are dropped; no sub-unit keeps a replica too many.
    rc1, _, err1 = tessera(args, "node", "drain", str(v), *node_flag(c, a))
    rc2, out2, err2 = tessera(args, "node", "undrain", str(v), *node_flag(c, b))
    save_sample(args, "node-undrain", f"tessera node undrain {v}", out2)
    def settled():
        nodes = nodes_on(args, c, a)
        rc, lun, _ = lun_on(args, c, [a])
        subs = (lun or {}).get("sub_units", [])
        ok = (nodes is not None and nodes.get(v, {}).get("state") == "active"
              and all(n["moves_off"] == 0 and n["moves_on"] == 0 for n in nodes.values()) and subs
              and all(len(s["replicas"]) == 2 and all(rep["state"] == "in_sync" for rep in s["replicas"]) for s in subs))
        return ok, (nodes, [len(s["replicas"]) for s in subs])
    calm, took, (_, seen_state) = until(settled, 60)
    r.check(f"nodes: drain then undrain of node {v}: active again, no move left, every sub-unit with exactly 2 in-sync replicas",
            rc1 == 0 and rc2 == 0 and calm, f"exit {rc1}/{rc2} {short(err1 + err2, 100)} after {took:.1f} s: {seen_state}")
    blocks = (64 << 20) // 512
    portals = {a: ("127.0.0.1", c.portal(a)), b: ("127.0.0.1", c.portal(b))}
    # As the acceptance initiator: the access check leaves the target's ACL naming it.
    w = vw.VerifyingWriter(portals, c.target, 512, blocks, first_nodes=(a, b), seed=11, sub_unit_bytes=8 << 20,
                           initiator=INITIATOR)
    w.start()
    try:
        time.sleep(1.0)
        t = time.monotonic()
        rc, out, err = tessera(args, "node", "drain", str(v), "--wait", "--timeout", "150", *node_flag(c, b), timeout=180)
        took = time.monotonic() - t
        save_sample(args, "node-drain", f"tessera node drain {v} --wait", out)
        progress = [line for line in out.splitlines() if f"% node {v} draining" in line]
        r.check(f"nodes: tessera node drain {v} --wait through node {b} ends drained, with progress lines",
                rc == 0 and f"node {v}: drained" in out and progress, f"exit {rc} after {took:.0f} s: {short(out + err, 400)}")
        time.sleep(1.0)
    finally:
        stopped = w.stop()
    st = w.stats
    r.check(f"nodes: the writer through nodes {a} and {b} kept writing during the drain, no write given up, no wrong read",
            stopped and w.error is None and st["acked"] > 50 and st["given_up"] == 0 and st["wrong_reads"] == 0,
            f"{st} error {w.error}")
    after = nodes_on(args, c, a)
    rc, lun, _ = lun_on(args, c, [a])
    subs = (lun or {}).get("sub_units", [])
    on_v = [s["index"] for s in subs if any(rep["node"] == v for rep in s["replicas"])]
    whole = [s["index"] for s in subs if sum(1 for rep in s["replicas"] if rep["state"] == "in_sync") < 2]
    r.check(f"nodes: node {v} is drained (0 replicas) and every sub-unit has two in-sync replicas on nodes {a} and {b}",
            after is not None and after.get(v, {}).get("state") == "drained" and after[v]["replicas"] == 0
            and subs and not on_v and not whole, f"node {v}: {(after or {}).get(v)}; on {v}: {on_v}; short: {whole}")
    verified = vw.verify_all(w.ledger, "127.0.0.1", c.portal(b), c.target, 512, blocks, w.write_blocks, initiator=INITIATOR)
    r.check(f"nodes: the whole LUN reads back right through node {b} after the drain",
            verified["checked"] > 0 and verified["lost"] == 0 and verified["wrong"] == 0 and verified["unreadable"] == 0,
            short(f"{verified}", 300))
    rc, out, err = tessera(args, "node", "remove", str(v), "--yes", *node_flag(c, v))
    r.check(f"nodes: node remove {v} through node {v} itself is refused (exit 1) with the reason",
            rc == 1 and "cannot remove itself" in err, f"exit {rc}: {short(err, 200)}")
    rc, out, err = tessera(args, "node", "remove", str(v), "--yes", *node_flag(c, a))
    save_sample(args, "node-remove", f"tessera node remove {v} --yes", out)
    r.check(f"nodes: node remove {v} --yes through node {a} (node {v} led the store)", rc == 0 and "out of the cluster" in out,
            short(out + err, 300))
    exited, took, _ = until(lambda: (not c.alive(v), None), 15)
    r.check(f"nodes: node {v} shuts down within 15 s, logging that it was removed",
            exited and "this node was removed from the cluster" in c.log_text(v), f"after {took:.1f} s")
    status = None
    rc, out, _ = tessera(args, "--json", "cluster", "status", *node_flag(c, a))
    try:
        status = json.loads(out) if rc == 0 else None
    except ValueError:
        pass
    r.check(f"nodes: cluster status through node {a} lists members {a} and {b} only, and a store leader among them",
            status is not None and sorted(m["id"] for m in status["members"]) == [a, b]
            and status.get("store_leader") in (a, b), short(out, 300))
    if not exited:
        return
    c.start(v)
    refused, took, _ = until(lambda: (not c.alive(v), None), 30)
    r.check(f"nodes: node {v} started again refuses to join (exits non-zero, says it was removed)",
            refused and c.procs[v].returncode not in (0, None) and "was removed from the cluster" in c.log_text(v),
            f"exit {c.procs[v].returncode} after {took:.1f} s")
    # Node v is out for good: the stage neither expects it running nor stops it.
    c.retired = {v}
    if refused:
        c.procs.pop(v)
    c.node[4] = node4_config(c, work, args)
    c.start(4)
    ready = c.wait_ready((4,), within=90)
    r.check("nodes: a node 4 with cluster.join starts and logs 'tesserad ready'", ready,
            short("\n".join(c.log_text(4).splitlines()[-4:]), 300))
    if not ready:
        return
    listed, _, (_, joined) = until(lambda: (lambda n: (n is not None and 4 in n, n))(nodes_on(args, c, a)), 10)
    r.check("nodes: node list shows node 4 active with no replicas", listed and joined[4]["replicas"] == 0
            and joined[4]["state"] == "active", f"{(joined or {}).get(4)}")
    # While the add runs, node 4 (it runs no copy: the primaries do) shows the copies' progress.
    seen = []
    def watch_resyncs():
        for _ in range(200):
            rc, text, _ = tessera(args, "resync", "status", *node_flag(c, 4))
            if rc == 0 and "% (" in text:
                seen.append(text)
                return
            time.sleep(0.2)
    watcher = threading.Thread(target=watch_resyncs, daemon=True)
    watcher.start()
    rc, out, err = tessera(args, "node", "add", "4", "--wait", "--timeout", "150", *node_flag(c, a), timeout=180)
    save_sample(args, "node-add", "tessera node add 4 --wait", out)
    watcher.join(timeout=60)
    if seen:
        save_sample(args, "resync-during-add", "tessera resync status", seen[0])
    r.check("nodes: during the add, resync status through node 4 shows a copy's progress run by another node",
            bool(seen) and re.search(rf"\s[{a}{b}]\s+4\s+(stale|resyncing)\s+[0-9.]+% \(", seen[0]) is not None,
            short(seen[0] if seen else "never saw a percentage", 400))
    final = nodes_on(args, c, b)
    r.check(f"nodes: tessera node add 4 --wait through node {a} moves replicas to node 4, all in sync",
            rc == 0 and final is not None and final.get(4, {}).get("replicas", 0) > 0
            and all(n["replicas_not_in_sync"] == 0 and n["moves_on"] == 0 for n in final.values()),
            f"exit {rc}: {short(out + err, 300)}; {final}")
    verified = vw.verify_all(w.ledger, "127.0.0.1", c.node[4]["portal"], c.target, 512, blocks, w.write_blocks,
                             initiator=INITIATOR)
    r.check("nodes: the whole LUN reads back right through node 4's portal",
            verified["checked"] > 0 and verified["lost"] == 0 and verified["wrong"] == 0 and verified["unreadable"] == 0,
            short(f"{verified}", 300))


def check_clionly(c, r, work, args):
    """A target made with the CLI only, with a LUN spread over all three nodes, an ACL and
    per-initiator CHAP: iscsi-ls and iscsi-inq through every node see it with the right
    secret, a wrong secret and a name outside the ACL are refused through every node; a
    new secret set through node 2 is in force there when the command returns, and on the
    other nodes within ACCESS_BOUND."""
    iqn = "iqn.2026-12.dev.tessera:cli-only"
    host = "iqn.2026-12.dev.tessera:cli-only-host"
    secret = "cli-only-secret-7e21"
    secret_file = os.path.join(work, "cli-only.secret")
    with open(secret_file, "w") as f:
        f.write(secret + "\n")
    os.chmod(secret_file, 0o600)
    steps = [
        tessera(args, "target", "create", iqn, *node_flag(c, 1)),
        tessera(args, "lun", "create", iqn, "96M", "--sub-unit-size", "8M", "--replicas", "2", *node_flag(c, 2)),
        tessera(args, "acl", "add", iqn, host, *node_flag(c, 3)),
        tessera(args, "chap", "set", iqn, host, "--user", "clihost", "--secret-file", secret_file, *node_flag(c, 1)),
    ]
    r.check("clionly: target, LUN, ACL and per-initiator CHAP made with tessera through nodes 1, 2, 3, 1",
            all(step[0] == 0 for step in steps), "; ".join(f"exit {x[0]}: {short(x[1] + x[2], 100)}" for x in steps))
    rc, lun, _ = (lambda rc, out, err: (rc, json.loads(out) if rc == 0 else {}, err))(
        *tessera(args, "--json", "lun", "show", "0", "--target", iqn, *node_flag(c, 3)))
    holders = {rep["node"] for s in lun.get("sub_units", []) for rep in s["replicas"]}
    # Placement is rendezvous hashing: 12 sub-units leave one of three nodes out about once in 10^5 LUNs.
    r.check("clionly: its 12 sub-units have replicas on all three nodes", holders == {1, 2, 3} and len(lun.get("sub_units", [])) == 12,
            f"holders {sorted(holders)}: {short(json.dumps(lun.get('sub_units', [])), 400)}")

    def url(i, user=None, password=None):
        auth = f"{user}%{password}@" if user else ""
        return f"iscsi://{auth}127.0.0.1:{c.portal(i)}/{iqn}/0"

    def seen_everywhere():
        results = []
        for i in (1, 2, 3):
            rc, out = run(["iscsi-inq", "-i", host, url(i, "clihost", secret)], timeout=30)
            results.append(rc == 0 and "TESSERA" in out.upper())
        return all(results), results
    ok, took, (_, results) = until(seen_everywhere, 5)
    r.check("clionly: iscsi-inq with the right CHAP secret answers through every node within 5 s", ok,
            f"after {took:.1f} s: {results}")
    # Discovery only: -s would also log in to the other targets, whose CHAP this host does not have.
    listed = [run(["iscsi-ls", "-i", host, f"iscsi://clihost%{secret}@127.0.0.1:{c.portal(i)}"], timeout=30)
              for i in (1, 2, 3)]
    r.check("clionly: iscsi-ls through every node lists the target",
            all(rc == 0 and iqn in out for rc, out in listed), short(" | ".join(f"exit {rc}: {out}" for rc, out in listed), 600))
    # The right secret logs in before the CHAP setting reaches a node too (no CHAP asked
    # yet), so it does not show the setting in force: the refusals get their own 5 s.
    def refused_everywhere():
        wrong = [run(["iscsi-inq", "-i", host, url(i, "clihost", "wrong-secret-000000")], timeout=30)[0] for i in (1, 2, 3)]
        stranger = [run(["iscsi-inq", "-i", STRANGER, url(i)], timeout=30)[0] for i in (1, 2, 3)]
        return all(x != 0 for x in wrong + stranger), (wrong, stranger)
    ok, took, (_, (wrong, stranger)) = until(refused_everywhere, 5)
    r.check("clionly: a wrong secret and a name outside the ACL are refused through every node within 5 s",
            ok, f"after {took:.1f} s: wrong {wrong}, stranger {stranger}")
    # A new secret set through node 2 is in force on node 2 when the command returns
    # (read-your-writes, no wait), and on the other nodes within ACCESS_BOUND.
    renewed = "cli-only-secret-renewed-5d90"
    with open(secret_file, "w") as f:
        f.write(renewed + "\n")
    rc, out, err = tessera(args, "chap", "set", iqn, host, "--user", "clihost", "--secret-file", secret_file, *node_flag(c, 2))
    old_at_2 = run(["iscsi-inq", "-i", host, url(2, "clihost", secret)], timeout=30)[0]
    new_at_2 = run(["iscsi-inq", "-i", host, url(2, "clihost", renewed)], timeout=30)[0]
    r.check("clionly: right after tessera chap set through node 2 returns, node 2 refuses the old secret "
            "and takes the new one", rc == 0 and old_at_2 != 0 and new_at_2 == 0,
            f"chap set exit {rc} {short(out + err, 100)}; old secret exit {old_at_2}, new secret exit {new_at_2}")
    def renewed_everywhere():
        old = [run(["iscsi-inq", "-i", host, url(i, "clihost", secret)], timeout=30)[0] for i in (1, 3)]
        new = [run(["iscsi-inq", "-i", host, url(i, "clihost", renewed)], timeout=30)[0] for i in (1, 3)]
        return all(x != 0 for x in old) and all(x == 0 for x in new), (old, new)
    ok, took, (_, (old, new)) = until(renewed_everywhere, ACCESS_BOUND)
    r.check(f"clionly: and nodes 1 and 3 within {ACCESS_BOUND:.0f} s", ok, f"after {took:.1f} s: old {old}, new {new}")
    done = [tessera(args, "lun", "delete", "0", "--target", iqn, "--yes", *node_flag(c, 3)),
            tessera(args, "target", "delete", iqn, "--yes", *node_flag(c, 2))]
    r.check("clionly: deleted again", all(x[0] == 0 for x in done), "; ".join(short(x[1] + x[2], 100) for x in done))


SEED_INITIATOR = "iqn.2026-11.dev.tessera:seed-check"
SEED_SECRET = "seed-check-secret-4411"


def check_seed(c, r, work, args):
    """A TOML seeds the cluster once: what was deleted or changed through the CLI stays so
    across node 1's restart with the same TOML, and node 1 logs each item it skipped."""
    chap_iqn = "iqn.2026-11.dev.tessera:admin-chap"
    rc, out, err = tessera(args, "lun", "delete", "5", "--target", chap_iqn, "--yes", *node_flag(c, 2))
    r.check("seed: LUN 5 of node 1's TOML target deleted through node 2", rc == 0 and "deleted LUN 5" in out,
            short(out + err, 200))
    rc, out, err = tessera(args, "target", "set-alias", chap_iqn, "renamed by admin", *node_flag(c, 3))
    secret = os.path.join(work, "seed.secret")
    with open(secret, "w") as f:
        f.write(SEED_SECRET + "\n")
    os.chmod(secret, 0o600)
    rc2, out2, err2 = tessera(args, "chap", "set", chap_iqn, SEED_INITIATOR, "--user", "seeduser", "--secret-file", secret,
                              *node_flag(c, 2))
    r.check("seed: its alias and a per-initiator CHAP changed through nodes 3 and 2", rc == 0 and rc2 == 0,
            short(out + err + out2 + err2, 300))
    before = len(c.log_text(1))
    ready_before = c.log_text(1).count("tesserad ready")
    stopped = c.stop(1)
    c.start(1)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and c.alive(1) and c.log_text(1).count("tesserad ready") <= ready_before:
        time.sleep(0.2)
    back = c.log_text(1).count("tesserad ready") > ready_before
    r.check("seed: node 1 stops (SIGTERM) and starts again with the same TOML", stopped == 0 and back,
            f"exit {stopped}; " + short("\n".join(c.log_text(1).splitlines()[-3:]), 300))
    log = c.log_text(1)[before:]
    skipped = [line for line in log.splitlines() if "configuration not applied" in line]
    for line in skipped:
        info("seed: " + line)
    r.check("seed: node 1 logs that it did not make LUN 5 again, saying who seeded it and when",
            any(f"lun {chap_iqn}/5: seeded by node 1 at " in line and "not created again" in line for line in skipped),
            short(" | ".join(skipped), 500))
    r.check("seed: and that it kept the store's alias and ACL/CHAP of the target",
            any(f"target {chap_iqn}: seeded by node 1" in line for line in skipped)
            and any(f"access {chap_iqn}: seeded by node 1" in line for line in skipped), short(" | ".join(skipped), 500))
    status, _, body = http(c.admin(1), "/v1/luns", TOKEN)
    luns = json.loads(body) if status == 200 else []
    status, _, body = http(c.admin(1), f"/v1/targets/{chap_iqn}", TOKEN)
    target = json.loads(body) if status == 200 else {}
    r.check("seed: through node 1 the target has no LUN 5, keeps the alias and the per-initiator CHAP",
            not any(l["target"] == chap_iqn and l["lun"] == 5 for l in luns) and target.get("alias") == "renamed by admin"
            and any(x["initiator"] == SEED_INITIATOR for x in target.get("initiator_chap") or []),
            short(json.dumps(target), 300))
    tessera(args, "target", "set-alias", chap_iqn, "admin-chap", *node_flag(c, 2))
    tessera(args, "chap", "remove", chap_iqn, SEED_INITIATOR, *node_flag(c, 3))


class _Skip(Exception):
    """The rest of a check cannot run; its clean-up still does."""


def _try(body):
    try:
        return body()
    except Exception:
        return False


CHECKS = {"catalog": check_catalog, "clionly": check_clionly, "refuse": check_refuse, "auth": check_auth, "agree": check_agree, "prclear": check_prclear,
          "access": check_access, "sessions": check_sessions, "masks": check_masks,
          "metrics": check_metrics, "nolog": check_nolog, "failover": check_failover, "seed": check_seed,
          "nodes": check_nodes}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tesserad", required=True)
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--base-port", type=int, default=14400,
                    help="store B+11.., wire B+21.., admin B+31.., the refuse check's node B+41..")
    ap.add_argument("--portal-base", type=int, default=4400, help="iSCSI portals P+1, P+2, P+3")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--checks", default=",".join(ALL_CHECKS))
    ap.add_argument("--samples", default=None, help="write the human output of each command here")
    args = ap.parse_args()
    args.tesserad = os.path.abspath(args.tesserad)
    args.tessera = os.path.abspath(args.tessera)
    wanted = [name for name in args.checks.split(",") if name]
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        print(f"unknown checks {unknown}; choose from {ALL_CHECKS}")
        print("admin: 0 passed, 1 failed")
        return 2

    def prepare(c):
        token_path = os.path.join(c.work, "admin.token")
        with open(token_path, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_path, 0o600)
        for i in localcluster.NODES:
            path = c.node[i]["config"]
            text = open(path).read()
            old_portal = c.node[i]["portal"]
            new_portal = args.portal_base + i
            text = text.replace(f'listen = "127.0.0.1:{old_portal}"', f'listen = "127.0.0.1:{new_portal}"')
            text = re.sub(r'(?m)^(\[admin\]\nlisten = "[^"]*")$', rf'\1\ntoken_file = "{token_path}"', text)
            # Copies take a second per 8 MiB sub-unit, so the nodes check sees resyncs run.
            text = re.sub(r'(?m)^\[cluster\]$', '[cluster]\nresync_rate = "8MiB"', text)
            with open(path, "w") as f:
                f.write(text)
            c.node[i]["portal"] = new_portal

    r = run_stage(args, CHECKS, wanted, "tessera-admin-", node1_extra=NODE1_EXTRA, prepare=prepare)
    print(f"admin: {r.passed} passed, {r.failed} failed", flush=True)
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
