"""What the Python e2e scripts share: a private daemon (berthd, or dockerd when
BERTH_COMPARE_DOCKERD=1), a busybox image made from the host's /bin/busybox, a loopback
registry with basic auth, and a tiny case runner.

A private dockerd runs in its own network namespace (`unshare -n`) with its own data root,
exec root, pidfile and socket, `--bridge=none --iptables=false`: it touches nothing of the
host's docker. Every daemon and directory made here is removed by `Daemon.stop`.
"""
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compare_dockerd():
    return os.environ.get("BERTH_COMPARE_DOCKERD") == "1"


def find_berthd(argv):
    if len(argv) > 1:
        return argv[1]
    for p in ("target/release/berthd", "target/debug/berthd"):
        c = os.path.join(ROOT, p)
        if os.access(c, os.X_OK):
            return c
    print("FAIL berthd binary not found (cargo build -p berthd)")
    sys.exit(1)


def rootfs_tar(apps=("sh", "echo", "cat", "sleep", "true", "ls", "env", "top", "ps", "touch", "rm", "mkdir", "yes", "head", "id", "hostname", "printf", "seq", "false", "wc", "tr")):
    """A busybox root filesystem as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            t.addfile(ti)
        t.add("/bin/busybox", arcname="bin/busybox")
        for app in apps:
            ti = tarfile.TarInfo(f"bin/{app}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            t.addfile(ti)
        for name, data in (("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
                           ("etc/group", b"root:x:0:\nnogroup:x:65534:\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def in_netns(pid):
    """The command prefix that runs a command in process `pid`'s network namespace."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net"] if pid else []


def wait_port(addr, netns_pid=None, tries=100):
    host, port = addr.split(":")
    for _ in range(tries):
        if netns_pid:
            probe = in_netns(netns_pid) + ["bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"]
            if subprocess.run(probe, stderr=subprocess.DEVNULL).returncode == 0:
                return True
        else:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                pass
        time.sleep(0.1)
    return False


class Registry:
    """docker-registry on loopback with basic auth (user e2e, password s3cret); in the
    network namespace of process `netns_pid` when given (a private dockerd's)."""

    USER, PASSWORD = "e2e", "s3cret"

    def __init__(self, work, addr, netns_pid=None):
        self.proc = None
        self.addr = None
        self.netns_pid = netns_pid
        if not shutil.which("docker-registry") or not shutil.which("htpasswd"):
            return
        self.addr = addr
        pw = subprocess.run(["htpasswd", "-Bbn", self.USER, self.PASSWORD], capture_output=True, check=True).stdout
        with open(os.path.join(work, "htpasswd"), "wb") as f:
            f.write(pw)
        os.makedirs(os.path.join(work, "reg"))
        with open(os.path.join(work, "reg.yml"), "w") as f:
            f.write(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {work}/reg\n  delete:\n    enabled: true\nauth:\n  htpasswd:\n    realm: py\n"
                f"    path: {work}/htpasswd\nhttp:\n  addr: {self.addr}\n"
            )
        self.proc = subprocess.Popen(
            in_netns(netns_pid) + ["docker-registry", "serve", os.path.join(work, "reg.yml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_port(self.addr, netns_pid):
            raise RuntimeError(f"registry at {self.addr} did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


class Daemon:
    """berthd (or, with BERTH_COMPARE_DOCKERD=1, a private dockerd) on a temporary socket."""

    def __init__(self, berthd, prefix, insecure=None):
        # A script ended by a signal still stops its daemon (its `finally`), which runs in a
        # session of its own and would outlive it.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)
        self.kind = "dockerd" if compare_dockerd() else "berthd"
        self.work = tempfile.mkdtemp(prefix=f"{prefix}.")
        self.sock = os.path.join(self.work, f"{self.kind}.sock")
        self.log_path = os.path.join(self.work, f"{self.kind}.log")
        self.log = open(self.log_path, "w")
        data, run = os.path.join(self.work, "root"), os.path.join(self.work, "exec")
        extra = ["--insecure-registry", insecure] if insecure else []
        if self.kind == "dockerd":
            # Own netns (its loopback up; the suite's registry runs in it too: `netns_pid`),
            # own roots.
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   "dockerd", "--data-root", data, "--exec-root", run,
                   "--pidfile", os.path.join(self.work, "dockerd.pid"), "-H", f"unix://{self.sock}",
                   "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                   "--ip-masq=false", "--userland-proxy=false", "--storage-driver=overlay2",
                   "--containerd-namespace", "berth-cmp", "--containerd-plugins-namespace", "berth-cmp-p",
                   "--exec-opt", "native.cgroupdriver=cgroupfs"] + extra
        else:
            cmd = [berthd, "-H", f"unix://{self.sock}", "--root", data, "--exec-root", run, "--bridge", "none"] + extra
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, start_new_session=True)
        for _ in range(600):
            if os.path.exists(self.sock) or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(self.sock):
            self.stop(show_log=True)
            raise RuntimeError(f"{self.kind} did not start")
        time.sleep(0.2 if self.kind == "dockerd" else 0)

    @property
    def netns_pid(self):
        """The process whose network namespace the daemon is in (None: the host's)."""
        return self.proc.pid if self.kind == "dockerd" else None

    def client(self, timeout=60):
        import docker
        return docker.DockerClient(base_url=f"unix://{self.sock}", version="auto", timeout=timeout)

    def import_busybox(self, client, repo="pybox", tag="1"):
        client.api.import_image_from_data(rootfs_tar(), repository=repo, tag=tag,
                                          changes=['CMD ["sh"]'])
        return client.images.get(f"{repo}:{tag}")

    def remove_all(self):
        try:
            c = self.client(timeout=30)
            for x in c.containers.list(all=True):
                try:
                    x.remove(force=True)
                except Exception:  # noqa: BLE001 - best effort clean-up
                    pass
        except Exception:  # noqa: BLE001
            pass

    def stop(self, show_log=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if show_log:
            print(open(self.log_path, errors="replace").read()[-4000:])
        root = os.path.join(self.work, "root")
        # Whatever the daemon left mounted below its own directory, deepest first.
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                if mp.startswith(self.work + "/"):
                    mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-R", root], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.work, ignore_errors=True)


class Cases:
    """Named cases: each a function that raises (AssertionError or anything) on failure."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def run(self, name, fn, *args):
        t = time.time()
        try:
            fn(*args)
        except Skip as s:
            self.skipped += 1
            print(f"SKIP {name}: {s}")
            return
        except Exception as e:  # noqa: BLE001 - any exception is the case failing
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL {name}: {e!r}")
            traceback.print_exc(limit=3, file=sys.stdout)
            return
        self.passed += 1
        print(f"PASS {name} ({time.time() - t:.2f}s)")


class Skip(Exception):
    """A case that cannot run here (a tool missing)."""


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
