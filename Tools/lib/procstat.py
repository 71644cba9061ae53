#!/usr/bin/env python3
"""What /proc says about a process, standard library only: resident memory and open files.

    procstat.rss_mib(pid)    # resident memory of its own in MiB (None once the process is gone)
    procstat.fd_count(pid)   # entries of /proc/PID/fd (None once gone)
    procstat.fds_on_ports(pid, {3260})  # (open fds, of them TCP connections on those local ports)
    procstat.alive(pid)      # exists and is not a zombie
"""
import os


def status_kib(pid, field):
    """A "kB" field of /proc/PID/status (VmRSS, VmHWM, ...) as an int, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name == field:
                    return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mib(pid):
    """The process's own resident memory: RssAnon + RssShmem, i.e. VmRSS less
    the file pages it maps. tesserad lends large cached reads as mapped pages
    of the backing file; those are the page cache, shared and reclaimable, and
    counting them would make VmRSS grow with every block ever read."""
    anon, shmem = status_kib(pid, "RssAnon"), status_kib(pid, "RssShmem")
    return None if anon is None or shmem is None else (anon + shmem) / 1024


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def tcp_local_ports():
    """{socket inode: local port} of every TCP socket that is not listening (/proc/net/tcp, tcp6)."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) > 9 and cols[3] != "0A":   # 0A: LISTEN
                        out[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
        except (OSError, StopIteration, ValueError):
            pass
    return out


def fds_on_ports(pid, ports):
    """(open fds, how many of them are TCP connections whose local port is in `ports`), or (None, None).
    A connection the process still holds after its peer closed (CLOSE_WAIT) counts too."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None, None
    links = []
    for n in names:
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:   # closed meanwhile
            pass
    local = tcp_local_ports()
    on = sum(1 for link in links if link.startswith("socket:[") and local.get(link[8:-1]) in ports)
    return len(links), on


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
