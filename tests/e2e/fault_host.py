"""fault.py's view of the host: processes below the test (a child subreaper), mounts under
its roots, the containers' cgroups under /berth."""
import os
import re
import time


# --- what exists on the host: processes below us, mounts under our roots, cgroups --------------
def proc_table():
    """pid -> (ppid, state, exe basename)."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            rest = st[st.rindex(")") + 2:].split()
            try:
                # (" (deleted)": the binary was rebuilt meanwhile)
                exe = os.path.basename(os.readlink(f"/proc/{d}/exe")).removesuffix(" (deleted)")
            except OSError:
                exe = ""
            t[int(d)] = (int(rest[1]), rest[0], exe)
        except (OSError, ValueError):
            pass
    return t


def descendants(t, root):
    kids = {}
    for pid, (ppid, _, _) in t.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            if k not in out:
                out.add(k)
                todo.append(k)
    return out


def container_of_fds(pid):
    """The container id a monitor serves, from the paths of its open files."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            m = re.search(r"/containers/([0-9a-f]{64})", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            return m.group(1)
    # A prepared monitor (its container created, not started) has no such file open yet:
    # its child, the container's init, is in the container's cgroup.
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        kids = []
    for k in kids:
        c = cgroup_of(int(k))
        if c:
            return c
    return None


def comm_of(pid):
    """A process's name (/proc/<pid>/comm): a truthful-/proc provider renames itself
    `berth-procview` but runs the monitor's binary (forked by the runtime in the monitor)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def procview_providers(exec_root):
    """pid -> container id of each truthful-/proc provider, from the runtime's
    <exec root>/runtime/<id>/procview.pid files."""
    out = {}
    base = os.path.join(exec_root, "runtime")
    try:
        ids = os.listdir(base)
    except OSError:
        return out
    for cid in ids:
        try:
            with open(os.path.join(base, cid, "procview.pid")) as f:
                out[int(f.read().strip())] = cid
        except (OSError, ValueError):
            pass
    return out


def describe(pid):
    """A process, for a message: pid, its children and its open files."""
    try:
        fds = sorted({os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")})
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError as e:
        return f"{pid} ({e})"
    return f"{pid} (children {kids}, files {fds})"


def cgroup_of(pid):
    """The container (its cgroup /berth/<id>) a process is in, or None."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            m = re.search(r"/berth/([0-9a-f]{64})", f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def holders_of(path):
    """Processes with `path` open."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                if os.readlink(f"/proc/{d}/fd/{fd}") == path:
                    out.append(int(d))
                    break
        except OSError:
            pass
    return out


def reap_orphans(keep):
    """Reap zombies that came to us as the subreaper (not our own Popen children)."""
    for pid, (ppid, state, _) in proc_table().items():
        if ppid == os.getpid() and state == "Z" and pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def reaper(keep):
    """Reap, as init would, what comes to us as the subreaper: a killed monitor's container
    init, whose runtime delete waits for it to be gone. `keep`: our own children (Popen's)."""
    while True:
        try:
            si = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            time.sleep(0.01)
            continue
        if si is None or si.si_pid in keep:
            time.sleep(0.01)
            continue
        try:
            os.waitpid(si.si_pid, 0)
        except ChildProcessError:
            pass


def mounts_under(prefix):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def berth_cgroups():
    """(path, name) of every cgroup directly under /berth, on every hierarchy."""
    out = []
    base = "/sys/fs/cgroup"
    cands = [os.path.join(base, "berth")] + [os.path.join(base, c, "berth") for c in os.listdir(base)]
    for d in cands:
        try:
            for n in os.listdir(d):
                if os.path.isdir(os.path.join(d, n)):
                    out.append((os.path.join(d, n), n))
        except OSError:
            pass
    return out


def cgroup_pids(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()
