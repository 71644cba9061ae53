#!/usr/bin/env python3
"""What the cluster stages share: PASS/FAIL bookkeeping, bounded subprocesses, and
one `run_stage` that starts the three nodes, runs the chosen checks, and stops
every node it started (also on SIGTERM/SIGHUP, e.g. from timeout(1)).

A check is `fn(c, r, work, args)`: `c` the LocalCluster, `r` the Results.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import localcluster


class Results:
    """Counts checks and prints each as "PASS name: detail" / "FAIL name: detail"."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        detail = detail.strip()
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        return ok


def info(text):
    print(f"  {text}", flush=True)


def run(cmd, timeout=120, **kw):
    """(exit status, stdout+stderr); 124 on timeout. Interrupted (SIGTERM raised as SystemExit),
    the child gets SIGTERM first (iscsi_test_cu.py hands it on to its client), SIGKILL 5 s later."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return 124, (out or b"").decode("utf-8", "replace") + f"\n(timed out after {timeout} s)"
    except BaseException:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        raise


def short(text, n=400):
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= n else text[:n] + " ..."


def run_stage(args, checks, wanted, prefix, node1_extra="", all_extra="", prepare=None, setup=None):
    """Starts the cluster (args.tesserad, args.base_port, args.strip_new_keys), runs `checks[name]`
    for each name in `wanted`, stops the nodes; returns the Results. `prepare(c)` runs before the
    nodes start; `setup(c, r, work, args)` once they are ready, and False from it ends the run.
    A check that raises is a failed check; a node that dies ends the run."""
    started = time.monotonic()

    def terminated(signum, frame):  # timeout(1) or Ctrl-C: still stop the nodes (they run in their own sessions)
        raise SystemExit(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    work = tempfile.mkdtemp(prefix=prefix)
    r = Results()
    c = localcluster.LocalCluster(os.path.abspath(args.tesserad), work, args.base_port, node1_extra=node1_extra,
                                  all_extra=all_extra, strip_new_keys=getattr(args, "strip_new_keys", False))
    if prepare:
        prepare(c)
    try:
        busy = c.busy_ports()
        if busy:
            r.check("cluster: the configuration's ports are free", False, f"in use: {busy} (use --base-port)")
            return r
        for i in localcluster.NODES:
            rc, out = run([c.tesserad, "--check-config", "--config", c.node[i]["config"]], timeout=30, cwd=work)
            if rc != 0:
                r.check(f"cluster: node {i}'s TOML passes tesserad --check-config", False, short(out, 600))
        ok = c.start_all(within=90)
        detail = ""
        if not ok:
            detail = " | ".join(f"node {i}: " + short("\n".join(c.log_text(i).splitlines()[-4:]), 300)
                                for i in localcluster.NODES)
        if not r.check("cluster: node 1, then 2 and 3 start and log 'tesserad ready'", ok, detail):
            return r
        info(f"ready after {time.monotonic() - started:.1f} s; work dir {work}")
        if setup is not None and setup(c, r, work, args) is False:
            return r
        for name in wanted:
            t = time.monotonic()
            try:
                checks[name](c, r, work, args)
            except Exception as e:  # noqa: BLE001 - a broken check is a failed check, the rest still run
                r.check(f"{name}: ran to completion", False, f"{type(e).__name__}: {e}")
            info(f"{name}: {time.monotonic() - t:.1f} s")
            # A check may take a node out of the cluster for good (c.retired).
            for i in (i for i in localcluster.NODES if i not in getattr(c, "retired", ())):
                if not c.alive(i):
                    r.check(f"cluster: node {i} still running after the {name} checks", False,
                            short("\n".join(c.log_text(i).splitlines()[-6:]), 500))
                    return r
    except SystemExit as e:  # SIGTERM/SIGHUP: counted, and the nodes still stop below
        r.check("cluster: the stage ran to its end", False, str(e))
    finally:
        codes = c.stop_all(grace=10)
        if codes:
            r.check("cluster: every node exits 0 on SIGTERM (within 10 s)",
                    all(code == 0 for code in codes.values()), ", ".join(f"node {i}: {code}" for i, code in codes.items()))
        if r.failed:
            for i in localcluster.NODES:
                tail = [line for line in c.log_text(i).splitlines() if " error " in line or " critical " in line
                        or " warning " in line][-5:]
                for line in tail:
                    info(f"node {i} log: {line[:300]}")
        print(f"elapsed {time.monotonic() - started:.0f} s" + (f"; work dir kept: {work}" if args.keep else ""),
              flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return r
