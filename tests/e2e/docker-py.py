#!/usr/bin/env python3
"""docker-py (PyPI `docker`, pinned in scripts/deps.sh) compatibility suite against berthd.

Usage: tests/e2e/docker-py.py [path/to/berthd]
  BERTH_COMPARE_DOCKERD=1  run the same cases against a private dockerd instead (own network
                           namespace, roots and socket; see pyharness.py): the suite is meant
                           to be green on both.
  PY_CASES=a,b             only the cases whose name contains one of these words
Starts the daemon on a temporary socket and root, a loopback registry with basic auth, imports
a busybox image built from the host's /bin/busybox, then runs each case (what a user checks of
containers, exec, logs, attach, images, registry, events and system calls). Exits 1 on any
failure.
"""
import datetime
import io
import os
import socket
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyharness as h  # noqa: E402
from pyharness import eq, Skip  # noqa: E402

try:
    import docker
except ImportError:
    print("FAIL docker-py is not installed (pip install docker==7.1.0)")
    sys.exit(1)

IMG = "pybox:1"


class Ctx:
    """What the cases share: the client, the daemon, the registry."""

    def __init__(self, daemon, client, registry):
        self.d = daemon
        self.c = client
        self.reg = registry
        self.made = []

    def run(self, cmd, **kw):
        """A detached container of the suite (removed at the end)."""
        kw["labels"] = {"suite": "py", **kw.get("labels", {})}
        x = self.c.containers.run(IMG, cmd, detach=True, **kw)
        self.made.append(x)
        return x

    def create(self, cmd, **kw):
        kw["labels"] = {"suite": "py", **kw.get("labels", {})}
        x = self.c.containers.create(IMG, cmd, **kw)
        self.made.append(x)
        return x

    def cleanup(self):
        for x in self.made:
            try:
                x.remove(force=True)
            except docker.errors.NotFound:
                pass


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def untar(chunks):
    data = b"".join(chunks)
    return tarfile.open(fileobj=io.BytesIO(data))


def unix_time(rfc3339):
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds."""
    base, frac = rfc3339.rstrip("Z").split(".") if "." in rfc3339 else (rfc3339.rstrip("Z"), "0")
    t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc).timestamp()
    return t + float("0." + frac)


def until_true(fn, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.05)
    return False


# --- system -------------------------------------------------------------------------------

def t_ping(x):
    eq(x.c.ping(), True, "ping")


def t_version(x):
    v = x.c.version()
    for k in ("ApiVersion", "Version", "Os", "Arch", "MinAPIVersion", "GoVersion"):
        assert v.get(k), f"version has no {k}: {v}"
    eq(v["Os"], "linux", "Os")


def t_info(x):
    i = x.c.info()
    for k in ("Containers", "Images", "Driver", "OperatingSystem", "NCPU", "MemTotal", "ServerVersion", "DockerRootDir"):
        assert k in i, f"info has no {k}"
    assert i["NCPU"] >= 1 and i["MemTotal"] > 0, i
    eq(i.get("Swarm", {}).get("LocalNodeState"), "inactive", "Swarm.LocalNodeState")


def t_df(x):
    df = x.c.df()
    for k in ("LayersSize", "Images", "Containers", "Volumes"):
        assert k in df, f"df has no {k}: {list(df)}"
    assert any(IMG in (i.get("RepoTags") or []) for i in df["Images"]), df["Images"]


# --- containers ----------------------------------------------------------------------------

def t_run_output(x):
    eq(x.c.containers.run(IMG, ["sh", "-c", "echo hello; echo err >&2"], remove=True), b"hello\n", "run")


def t_healthcheck(x):
    # as docker-py sends it: the fields not given are null
    h = x.c.containers.run(IMG, ["sleep", "30"], detach=True, healthcheck={"test": "true", "interval": 250_000_000})
    try:
        def healthy():
            h.reload()
            return h.attrs["State"].get("Health", {}).get("Status") == "healthy"
        assert until_true(healthy), h.attrs["State"].get("Health")
        eq([c.id for c in x.c.containers.list(filters={"health": "healthy"})], [h.id], "health=healthy filter")
    finally:
        h.remove(force=True)


def t_run_stderr(x):
    out = x.c.containers.run(IMG, ["sh", "-c", "echo err >&2"], remove=True, stdout=False, stderr=True)
    eq(out, b"err\n", "run stderr")


def t_run_error(x):
    try:
        x.c.containers.run(IMG, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    except docker.errors.ContainerError as e:
        eq(e.exit_status, 3, "exit status")
        assert b"bad" in (e.stderr or b""), e.stderr
        return
    raise AssertionError("no ContainerError")


def t_missing_image(x):
    try:
        x.c.containers.create("no-such-image-py:1", ["true"])
    except docker.errors.ImageNotFound:
        return
    raise AssertionError("no ImageNotFound")


def t_create_inspect(x):
    c = x.create(["sleep", "30"], name="py-inspect", environment={"FOO": "bar"}, working_dir="/tmp",
                 user="nobody", hostname="pyhost", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    a = x.c.api.inspect_container(c.id)
    eq(a["Name"], "/py-inspect", "Name")
    eq(a["State"]["Status"], "created", "State.Status")
    assert "FOO=bar" in a["Config"]["Env"], a["Config"]["Env"]
    eq(a["Config"]["WorkingDir"], "/tmp", "WorkingDir")
    eq(a["Config"]["User"], "nobody", "User")
    eq(a["Config"]["Hostname"], "pyhost", "Hostname")
    eq(a["Config"]["Labels"], {"suite": "py"}, "Labels")
    eq(a["HostConfig"]["RestartPolicy"], {"Name": "on-failure", "MaximumRetryCount": 2}, "RestartPolicy")
    eq(a["HostConfig"]["LogConfig"]["Type"], "json-file", "LogConfig.Type")
    eq(a["Image"], x.c.images.get(IMG).id, "Image")
    eq(a["Path"], "sleep", "Path")
    eq(a["Args"], ["30"], "Args")


def t_start_inspect_running(x):
    c = x.run(["sh", "-c", "echo $FOO $(id -u) $(pwd) $(hostname); sleep 30"], environment={"FOO": "bar"},
              working_dir="/tmp", user="nobody", hostname="pyhost")
    c.reload()
    eq(c.status, "running", "status")
    st = c.attrs["State"]
    assert st["Running"] and st["Pid"] > 0 and not st["StartedAt"].startswith("0001"), st
    assert until_true(lambda: c.logs() != b""), "no output"
    eq(c.logs(), b"bar 65534 /tmp pyhost\n", "process environment")


def t_stop(x):
    c = x.run(["sleep", "30"])  # pid 1 ignores SIGTERM: stop kills it after the timeout
    t = time.time()
    c.stop(timeout=1)
    took = time.time() - t
    c.reload()
    eq(c.status, "exited", "status")
    eq(c.attrs["State"]["ExitCode"], 137, "ExitCode")
    assert 0.9 < took < 10, f"stop took {took:.1f}s"


def t_stop_term(x):
    c = x.run(["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"])
    time.sleep(0.3)
    c.stop(timeout=10)
    eq(c.wait(timeout=10)["StatusCode"], 42, "exit code after SIGTERM")


def t_kill(x):
    c = x.run(["sleep", "30"])
    c.kill(signal="SIGKILL")
    eq(c.wait(timeout=10)["StatusCode"], 137, "exit code")
    try:
        c.kill()
    except docker.errors.APIError as e:
        eq(e.status_code, 409, "kill of a stopped container")
        return
    raise AssertionError("kill of a stopped container succeeded")


def t_restart(x):
    c = x.run(["sleep", "30"])
    c.reload()
    started = c.attrs["State"]["StartedAt"]
    c.restart(timeout=0)
    c.reload()
    eq(c.status, "running", "status")
    assert c.attrs["State"]["StartedAt"] != started, "StartedAt unchanged"


def t_pause(x):
    c = x.run(["sleep", "30"])
    c.pause()
    c.reload()
    eq(c.status, "paused", "status")
    assert c.attrs["State"]["Paused"], c.attrs["State"]
    c.unpause()
    c.reload()
    eq(c.status, "running", "status after unpause")


def t_wait_conditions(x):
    c = x.create(["sh", "-c", "exit 7"])
    w = x.c.api.wait(c.id, condition="not-running", timeout=5)
    eq(w["StatusCode"], 0, "not-running of a created container")
    c.start()
    eq(c.wait(timeout=10)["StatusCode"], 7, "StatusCode")


def t_remove(x):
    c = x.c.containers.create(IMG, ["sleep", "30"])
    c.start()
    try:
        c.remove()
        raise AssertionError("removed a running container without force")
    except docker.errors.APIError as e:
        eq(e.status_code, 409, "remove of a running container")
    c.remove(force=True)
    try:
        x.c.containers.get(c.id)
        raise AssertionError("still there")
    except docker.errors.NotFound:
        pass


def t_auto_remove(x):
    c = x.c.containers.run(IMG, ["true"], detach=True, auto_remove=True)
    # (The low-level list: containers.list() inspects each one, racing the removal.)
    assert until_true(lambda: c.id not in [y["Id"] for y in x.c.api.containers(all=True)]), "not removed"


def t_list_filters(x):
    a = x.create(["true"], name="py-list-a", labels={"suite": "py", "k": "a"})
    b = x.run(["sleep", "30"], name="py-list-b")
    ids = lambda **f: sorted(y.id for y in x.c.containers.list(all=True, filters=f))  # noqa: E731
    eq(ids(label="k=a"), [a.id], "label filter")
    eq(ids(name="py-list-b"), [b.id], "name filter")
    eq(ids(id=a.id[:12]), [a.id], "id filter")
    assert b.id in ids(status="running") and a.id not in ids(status="running"), "status filter"
    assert a.id in ids(status="created"), "status=created"
    running = [y.id for y in x.c.containers.list()]
    assert b.id in running and a.id not in running, "list without all"
    eq([y.id for y in x.c.containers.list(all=True, limit=1)], [sorted(x.c.containers.list(all=True), key=lambda y: y.attrs["Created"])[-1].id], "limit=1 is the newest")


def t_list_exit_and_ancestor_filters(x):
    ok = exited(x, "exit 0")
    bad = exited(x, "exit 3")
    ids = lambda **f: [y.id for y in x.c.containers.list(all=True, filters=f)]  # noqa: E731
    assert ok.id in ids(exited=0) and bad.id not in ids(exited=0), "exited=0"
    assert bad.id in ids(exited=3) and ok.id not in ids(exited=3), "exited=3"
    assert ok.id in ids(ancestor=IMG) and bad.id in ids(ancestor=IMG), "ancestor"
    eq(ids(ancestor="pyother-none:1"), [], "ancestor of another image")


def t_containers_prune(x):
    c = x.c.containers.create(IMG, ["true"], labels={"pyprune": "1"})
    c.start()
    c.wait(timeout=10)
    keep = x.run(["sleep", "30"], labels={"pyprune": "1"})
    r = x.c.containers.prune(filters={"label": "pyprune=1"})
    eq(r.get("ContainersDeleted"), [c.id], "ContainersDeleted")
    eq(x.c.containers.get(keep.id).status, "running", "running container kept")


def t_wait_removed(x):
    c = x.c.containers.create(IMG, ["sh", "-c", "exit 4"], auto_remove=True)
    import threading
    res = {}
    w = threading.Thread(target=lambda: res.update(x.c.api.wait(c.id, condition="removed", timeout=20)))
    w.start()
    time.sleep(0.2)
    c.start()
    w.join()
    eq(res.get("StatusCode"), 4, "StatusCode")


def t_update(x):
    c = x.run(["sleep", "30"])
    c.update(mem_limit="64m", memswap_limit="128m", cpu_shares=512)
    c.reload()
    eq(c.attrs["HostConfig"]["Memory"], 64 << 20, "Memory")
    eq(c.attrs["HostConfig"]["CpuShares"], 512, "CpuShares")


def t_rename(x):
    c = x.create(["true"], name="py-old-name")
    c.rename("py-new-name")
    c.reload()
    eq(c.name, "py-new-name", "name")
    eq(x.c.containers.get("py-new-name").id, c.id, "get by the new name")


def t_top(x):
    c = x.run(["sleep", "31"])
    t = c.top()
    assert "PID" in t["Titles"] and "CMD" in t["Titles"], t["Titles"]
    cmd = t["Titles"].index("CMD")
    assert any("sleep 31" in p[cmd] for p in t["Processes"]), t["Processes"]


def t_stats(x):
    c = x.run(["sleep", "30"])
    s = c.stats(stream=False)
    for k in ("read", "cpu_stats", "memory_stats", "pids_stats"):
        assert k in s, f"stats has no {k}: {list(s)}"
    assert s["memory_stats"].get("usage", 0) > 0, s["memory_stats"]
    eq(s["id"], c.id, "id")


def t_diff(x):
    c = x.run(["sh", "-c", "touch /tmp/new-file; rm /bin/true"])
    c.wait(timeout=10)
    d = {(e["Path"], e["Kind"]) for e in c.diff()}
    assert ("/tmp/new-file", 1) in d, d
    assert ("/bin/true", 2) in d, d
    assert ("/tmp", 0) in d, d


def t_export(x):
    c = x.create(["true"])
    t = untar(c.export())
    names = t.getnames()
    assert "bin/busybox" in names or "./bin/busybox" in names, names[:20]


def t_archive(x):
    c = x.run(["sleep", "30"])
    assert c.put_archive("/tmp", tar_of({"hello.txt": b"put-archive\n"})), "put_archive"
    eq(c.exec_run(["cat", "/tmp/hello.txt"]).output, b"put-archive\n", "file put")
    stream, stat = c.get_archive("/tmp/hello.txt")
    eq(stat["name"], "hello.txt", "stat name")
    eq(stat["size"], 12, "stat size")
    t = untar(stream)
    eq(t.extractfile("hello.txt").read(), b"put-archive\n", "file got")
    try:
        c.get_archive("/no/such/path")
        raise AssertionError("no NotFound")
    except docker.errors.NotFound:
        pass


def t_commit(x):
    c = x.run(["sh", "-c", "echo committed > /etc/mark"])
    c.wait(timeout=10)
    img = c.commit(repository="pycommit", tag="1", changes=["ENV MARK=yes", 'CMD ["cat", "/etc/mark"]'],
                   message="py commit", author="suite")
    try:
        eq(img.attrs["Author"], "suite", "Author")
        assert "MARK=yes" in img.attrs["Config"]["Env"], img.attrs["Config"]["Env"]
        eq(x.c.containers.run("pycommit:1", remove=True), b"committed\n", "run of the committed image")
    finally:
        x.c.images.remove("pycommit:1", force=True)


# --- exec ----------------------------------------------------------------------------------

def t_exec_exit_code(x):
    c = x.run(["sleep", "30"])
    r = c.exec_run(["sh", "-c", "echo in-exec; exit 2"])
    eq((r.exit_code, r.output), (2, b"in-exec\n"), "exec_run")


def t_exec_demux(x):
    c = x.run(["sleep", "30"])
    r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    eq(r.output, (b"o\n", b"e\n"), "demuxed output")


def t_exec_env_user_workdir(x):
    c = x.run(["sleep", "30"])
    r = c.exec_run(["sh", "-c", "echo $FOO; id -u; pwd"], environment={"FOO": "bar"}, user="nobody", workdir="/tmp")
    eq(r.output, b"bar\n65534\n/tmp\n", "exec settings")


def t_exec_stream(x):
    c = x.run(["sleep", "30"])
    r = c.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    eq(b"".join(r.output), b"a\nb\n", "streamed output")


def t_exec_detach_inspect(x):
    c = x.run(["sleep", "30"])
    e = x.c.api.exec_create(c.id, ["sh", "-c", "sleep 0.2; exit 5"])
    i = x.c.api.exec_inspect(e["Id"])
    eq((i["Running"], i["ExitCode"], i["ContainerID"]), (False, None, c.id), "before start")
    eq(i["ProcessConfig"]["entrypoint"], "sh", "ProcessConfig.entrypoint")
    x.c.api.exec_start(e["Id"], detach=True)
    assert until_true(lambda: not x.c.api.exec_inspect(e["Id"])["Running"]), "still running"
    i = x.c.api.exec_inspect(e["Id"])
    eq(i["ExitCode"], 5, "ExitCode")
    assert i["Pid"] > 0, i


def t_exec_stopped(x):
    c = x.create(["true"])
    try:
        c.exec_run(["true"])
        raise AssertionError("exec in a created container")
    except docker.errors.APIError as e:
        eq(e.status_code, 409, "status")


# --- logs ----------------------------------------------------------------------------------

def exited(x, script):
    c = x.run(["sh", "-c", script])
    c.wait(timeout=10)
    return c


def t_logs_timestamps(x):
    c = exited(x, "echo one; echo two")
    lines = c.logs(timestamps=True).decode().splitlines()
    eq([ln.split(" ", 1)[1] for ln in lines], ["one", "two"], "lines")
    for ln in lines:
        t = ln.split(" ", 1)[0]
        assert t.endswith("Z") and abs(unix_time(t) - time.time()) < 60, t


def t_logs_tail(x):
    c = exited(x, "seq 1 10")
    eq(c.logs(tail=3), b"8\n9\n10\n", "tail=3")
    eq(c.logs(tail=0), b"", "tail=0")
    eq(c.logs(tail="all"), b"".join(b"%d\n" % i for i in range(1, 11)), "tail=all")


def t_logs_tail_then_streams(x):
    # dockerd counts the tail over both streams, then selects the stream.
    c = exited(x, "echo o1; sleep 0.1; echo e1 >&2; sleep 0.1; echo o2; sleep 0.1; echo e2 >&2")
    eq(c.logs(stdout=True, stderr=False, tail=3), b"o2\n", "stdout, tail 3")
    eq(c.logs(stdout=False, stderr=True, tail=3), b"e1\ne2\n", "stderr, tail 3")


def t_logs_since_until(x):
    c = exited(x, "echo a; sleep 0.3; echo b; sleep 0.3; echo c")
    ts = [unix_time(ln.split(" ")[0]) for ln in c.logs(timestamps=True).decode().splitlines()]
    eq(len(ts), 3, "lines")
    mid = (ts[0] + ts[1]) / 2
    eq(c.logs(since=mid), b"b\nc\n", "since")
    eq(c.logs(until=(ts[1] + ts[2]) / 2), b"a\nb\n", "until")
    eq(c.logs(since=mid, until=(ts[1] + ts[2]) / 2), b"b\n", "since and until")


def t_logs_follow(x):
    c = x.run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"])
    t = time.time()
    got = []
    for chunk in c.logs(stream=True, follow=True):
        got.append((chunk, time.time() - t))
    eq(b"".join(g for g, _ in got), b"1\n2\n3\n", "followed")
    assert got[0][1] < got[-1][1] - 0.2, f"not live: {got}"


def t_logs_follow_stopped(x):
    c = exited(x, "echo done")
    t = time.time()
    eq(b"".join(c.logs(stream=True, follow=True)), b"done\n", "follow of a stopped container")
    assert time.time() - t < 5, "the follow of a stopped container did not end"


def t_logs_follow_tail(x):
    c = x.run(["sh", "-c", "echo old1; echo old2; sleep 0.5; echo new"])
    time.sleep(0.3)
    eq(b"".join(c.logs(stream=True, follow=True, tail=1)), b"old2\nnew\n", "tail=1 then follow")


# --- attach --------------------------------------------------------------------------------

def frames(raw):
    out = err = b""
    while len(raw) >= 8:
        n = int.from_bytes(raw[4:8], "big")
        if raw[0] == 1:
            out += raw[8:8 + n]
        else:
            err += raw[8:8 + n]
        raw = raw[8 + n:]
    return out, err


def t_attach_socket_stdin(x):
    c = x.create(["cat"], stdin_open=True)
    s = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    sock = s._sock
    c.start()
    sock.sendall(b"ping\n")
    sock.settimeout(10)
    raw = b""
    while len(frames(raw)[0]) < 5:
        d = sock.recv(4096)
        if not d:
            break
        raw += d
    eq(frames(raw)[0], b"ping\n", "echoed input")
    sock.shutdown(socket.SHUT_WR)  # stdin ends: cat exits
    c.wait(timeout=10)
    sock.close()


def t_attach_stream(x):
    c = x.create(["sh", "-c", "echo out; echo err >&2"])
    stream = c.attach(stdout=True, stderr=True, stream=True, demux=True)
    c.start()
    out = err = b""
    for o, e in stream:
        out += o or b""
        err += e or b""
    eq((out, err), (b"out\n", b"err\n"), "attached output")


def t_attach_running(x):
    c = x.run(["sh", "-c", "echo before; sleep 0.5; echo live"])
    assert until_true(lambda: c.logs() != b""), "no output"
    out = b"".join(c.attach(stdout=True, stderr=True, stream=True))
    eq(out, b"live\n", "live output from the attach on")


# --- images --------------------------------------------------------------------------------

def t_image_inspect(x):
    img = x.c.images.get(IMG)
    eq(img.attrs["Os"], "linux", "Os")
    eq(img.attrs["Config"]["Cmd"], ["sh"], "Config.Cmd")
    assert IMG in img.tags and img.id.startswith("sha256:"), (img.tags, img.id)
    assert img.attrs["Size"] > 0 and img.attrs["RootFS"]["Type"] == "layers", img.attrs["RootFS"]


def t_image_tag_list(x):
    img = x.c.images.get(IMG)
    assert img.tag("pyother", "2")
    try:
        eq([i["RepoTags"] for i in x.c.api.images(name="pyother")], [["pyother:2"]], "images(name=)")
        eq(x.c.images.get("pyother:2").id, img.id, "same image")
        assert any(i.id == img.id for i in x.c.images.list(filters={"reference": "pybox:*"})), "reference filter"
    finally:
        x.c.images.remove("pyother:2")
    assert "pyother:2" not in x.c.images.get(IMG).tags


def t_image_history(x):
    hist = x.c.images.get(IMG).history()
    assert len(hist) >= 1 and all("Created" in e and "CreatedBy" in e for e in hist), hist
    eq(hist[0]["Id"], x.c.images.get(IMG).id, "newest entry is the image")


def t_image_save_load(x):
    img = x.c.images.get(IMG)
    img.tag("pysave", "1")
    data = b"".join(x.c.api.get_image("pysave:1"))
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert "manifest.json" in names, names
    x.c.images.remove("pysave:1")
    loaded = x.c.images.load(data)
    try:
        assert any("pysave:1" in i.tags for i in loaded), [i.tags for i in loaded]
        eq(x.c.images.get("pysave:1").id, img.id, "loaded image id")
    finally:
        x.c.images.remove("pysave:1")


def t_image_remove(x):
    x.c.images.get(IMG).tag("pyrm", "1")
    x.c.images.remove("pyrm:1")
    try:
        x.c.images.get("pyrm:1")
        raise AssertionError("still there")
    except docker.errors.ImageNotFound:
        pass
    try:
        x.c.images.remove("pyrm:1")
        raise AssertionError("removed twice")
    except docker.errors.ImageNotFound:
        pass


def t_image_in_use(x):
    x.c.images.get(IMG).tag("pyuse", "1")
    c = x.c.containers.create("pyuse:1", ["true"])
    try:
        try:
            x.c.images.remove(x.c.images.get("pyuse:1").id)
            raise AssertionError("removed an image in use by id")
        except docker.errors.APIError as e:
            eq(e.status_code, 409, "status")
    finally:
        c.remove()
        x.c.images.remove("pyuse:1")


def t_image_prune(x):
    c = exited(x, "echo x > /dangling")
    img = c.commit()  # no repository: dangling
    assert img.tags == [], img.tags
    x.c.containers.get(c.id).remove()
    x.made.remove(c)
    r = x.c.images.prune(filters={"dangling": True})
    assert img.id in [d.get("Deleted") for d in (r.get("ImagesDeleted") or [])], r
    try:
        x.c.images.get(img.id)
        raise AssertionError("dangling image kept")
    except docker.errors.ImageNotFound:
        pass


def need_registry(x):
    if not x.reg.addr:
        raise Skip("docker-registry or htpasswd not installed")


def t_login(x):
    need_registry(x)
    try:
        x.c.login("e2e", "wrong", registry=x.reg.addr, reauth=True)
        raise AssertionError("login with a wrong password")
    except docker.errors.APIError as e:
        assert e.status_code in (400, 401, 500), e
    r = x.c.login(h.Registry.USER, h.Registry.PASSWORD, registry=x.reg.addr, reauth=True)
    eq(r.get("Status"), "Login Succeeded", "login")


def t_push_pull(x):
    need_registry(x)
    x.c.login(h.Registry.USER, h.Registry.PASSWORD, registry=x.reg.addr, reauth=True)
    repo = f"{x.reg.addr}/py/box"
    img = x.c.images.get(IMG)
    img.tag(repo, "1")
    out = list(x.c.api.push(repo, tag="1", stream=True, decode=True))
    assert not any("error" in o for o in out), out[-3:]
    digest = [o["aux"]["Digest"] for o in out if "aux" in o]
    assert digest and digest[0].startswith("sha256:"), out[-3:]
    x.c.images.remove(f"{repo}:1")
    pulled = x.c.images.pull(repo, tag="1")
    try:
        assert f"{repo}:1" in pulled.tags, pulled.tags
        eq(pulled.id, img.id, "pulled image id")
        assert f"{repo}@{digest[0]}" in pulled.attrs["RepoDigests"], pulled.attrs["RepoDigests"]
    finally:
        x.c.images.remove(f"{repo}:1")


def t_pull_missing(x):
    need_registry(x)
    x.c.login(h.Registry.USER, h.Registry.PASSWORD, registry=x.reg.addr, reauth=True)
    try:
        x.c.images.pull(f"{x.reg.addr}/py/none", tag="1")
        raise AssertionError("pulled what is not there")
    except (docker.errors.NotFound, docker.errors.APIError):
        pass


def t_skopeo(x):
    """skopeo docker-daemon: to the registry and back (an image out of the daemon, one in)."""
    need_registry(x)
    import shutil
    if not shutil.which("skopeo"):
        raise Skip("skopeo not installed")
    daemon = f"unix://{x.d.sock}"
    creds = f"{h.Registry.USER}:{h.Registry.PASSWORD}"
    ns = h.in_netns(x.d.netns_pid)
    run = lambda *a: subprocess.run(ns + ["skopeo", "--insecure-policy"] + list(a), capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run("copy", "--src-daemon-host", daemon, "--dest-tls-verify=false", "--dest-creds", creds,
            f"docker-daemon:{IMG}", f"docker://{x.reg.addr}/py/skopeo:1")
    assert r.returncode == 0, r.stderr[-500:]
    r = run("copy", "--src-tls-verify=false", "--src-creds", creds, "--dest-daemon-host", daemon,
            f"docker://{x.reg.addr}/py/skopeo:1", "docker-daemon:pyskopeo:back")
    assert r.returncode == 0, r.stderr[-500:]
    try:
        eq(x.c.containers.run("pyskopeo:back", ["echo", "via-skopeo"], remove=True), b"via-skopeo\n", "run")
    finally:
        x.c.images.remove("pyskopeo:back")


# --- events --------------------------------------------------------------------------------

def t_events_since_until(x):
    since = time.time() - 1
    c = x.c.containers.create(IMG, ["true"])
    c.start()
    c.wait(timeout=10)
    c.remove()
    until = time.time() + 1
    ev = list(x.c.events(since=since, until=until, decode=True, filters={"container": c.id, "type": "container"}))
    actions = [e["Action"] for e in ev]
    eq([a for a in actions if a in ("create", "start", "die", "destroy")], ["create", "start", "die", "destroy"], "actions")
    assert all(e["Actor"]["ID"] == c.id and e["Type"] == "container" for e in ev), ev
    die = [e for e in ev if e["Action"] == "die"][0]
    eq(die["Actor"]["Attributes"].get("exitCode"), "0", "die exitCode")
    assert all(since <= e["time"] <= until for e in ev), ev


def t_events_filter_event(x):
    since = time.time() - 1
    c = x.c.containers.create(IMG, ["true"], labels={"pyev": "1"})
    c.start()
    c.wait(timeout=10)
    c.remove()
    ev = list(x.c.events(since=since, until=time.time() + 1, decode=True,
                         filters={"event": "die", "label": "pyev=1"}))
    eq([(e["Action"], e["id"]) for e in ev], [("die", c.id)], "die events")


def t_events_image(x):
    since = time.time() - 1
    x.c.images.get(IMG).tag("pyevtag", "1")
    x.c.images.remove("pyevtag:1")
    ev = list(x.c.events(since=since, until=time.time() + 1, decode=True, filters={"type": "image"}))
    actions = [e["Action"] for e in ev]
    assert "tag" in actions and "untag" in actions, actions


CASES = [
    ("system ping", t_ping), ("system version", t_version), ("system info", t_info), ("system df", t_df),
    ("run output", t_run_output), ("run stderr", t_run_stderr), ("run error", t_run_error),
    ("run missing image", t_missing_image), ("healthcheck with nulls", t_healthcheck),
    ("container create and inspect", t_create_inspect), ("container start and inspect", t_start_inspect_running),
    ("container stop after timeout", t_stop), ("container stop with SIGTERM", t_stop_term), ("container kill", t_kill),
    ("container restart", t_restart), ("container pause", t_pause), ("container wait conditions", t_wait_conditions),
    ("container remove", t_remove), ("container auto remove", t_auto_remove), ("container list filters", t_list_filters),
    ("container list exited and ancestor filters", t_list_exit_and_ancestor_filters),
    ("containers prune", t_containers_prune), ("container wait removed", t_wait_removed),
    ("container update", t_update), ("container rename", t_rename), ("container top", t_top),
    ("container stats one-shot", t_stats), ("container diff", t_diff), ("container export", t_export),
    ("container archive put/get", t_archive), ("container commit", t_commit),
    ("exec exit code", t_exec_exit_code), ("exec demux", t_exec_demux), ("exec env user workdir", t_exec_env_user_workdir),
    ("exec stream", t_exec_stream), ("exec detach and inspect", t_exec_detach_inspect), ("exec in a stopped container", t_exec_stopped),
    ("logs timestamps", t_logs_timestamps), ("logs tail", t_logs_tail), ("logs tail before stream selection", t_logs_tail_then_streams),
    ("logs since until", t_logs_since_until), ("logs follow", t_logs_follow), ("logs follow of a stopped container", t_logs_follow_stopped), ("logs follow with tail", t_logs_follow_tail),
    ("attach socket stdin", t_attach_socket_stdin), ("attach stream", t_attach_stream), ("attach running", t_attach_running),
    ("image inspect", t_image_inspect), ("image tag and list", t_image_tag_list), ("image history", t_image_history),
    ("image save and load", t_image_save_load), ("image remove", t_image_remove), ("image in use", t_image_in_use),
    ("image prune", t_image_prune),
    ("registry login", t_login), ("registry push and pull", t_push_pull), ("registry pull missing", t_pull_missing),
    ("skopeo docker-daemon both ways", t_skopeo),
    ("events since until", t_events_since_until), ("events event filter", t_events_filter_event), ("events image", t_events_image),
]


def main():
    only = [w for w in os.environ.get("PY_CASES", "").split(",") if w]
    addr = f"127.0.0.1:{h.free_port()}"
    d = h.Daemon(h.find_berthd(sys.argv), "berth-dockerpy", insecure=addr)
    reg = None
    cases = h.Cases()
    t0 = time.time()
    try:
        reg = h.Registry(d.work, addr, d.netns_pid)
        client = d.client()
        d.import_busybox(client)
        x = Ctx(d, client, reg)
        for name, fn in CASES:
            if only and not any(w in name for w in only):
                continue
            cases.run(name, fn, x)
        x.cleanup()
    except Exception as e:  # noqa: BLE001 - the set-up failing fails the suite
        cases.run("set-up", lambda: (_ for _ in ()).throw(e))
    finally:
        if reg:
            reg.stop()
        d.remove_all()
        d.stop(show_log=cases.failed > 0)
    print(f"# docker-py.py ({d.kind}): {cases.passed} passed, {cases.failed} failed, {cases.skipped} skipped"
          f" in {time.time() - t0:.0f}s" + (f"; failed: {', '.join(cases.failures)}" if cases.failures else ""))
    sys.exit(1 if cases.failed else 0)


if __name__ == "__main__":
    main()
