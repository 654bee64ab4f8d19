"""fault.py's side of the daemon and the images: raw HTTP over berthd's unix socket, the
daemon process, images made here (a busybox layer, layers of random bytes) as docker-save
archives and pushed to a loopback registry (Debian's docker-registry)."""
import gzip
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request

from fault_host import describe, holders_of

API = "/v1.47"


# --- HTTP over the unix socket -----------------------------------------------------------------
class UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("berth", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Daemon:
    def __init__(self, berthd, work):
        self.berthd = berthd
        self.work = work
        self.sock = os.path.join(work, "berth.sock")
        self.root = os.path.join(work, "root")
        self.exec_root = os.path.join(work, "run")
        self.proc = None
        self.ours = set()  # our own children (Popen's): not for the reaper
        self.log = open(os.path.join(work, "berthd.log"), "ab")

    def start(self):
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass
        self.proc = subprocess.Popen(
            [self.berthd, "-H", f"unix://{self.sock}", "--root", self.root, "--exec-root", self.exec_root, "--bridge", "none"]
            + (["--debug"] if os.environ.get("FAULT_DEBUG") == "1" else []),
            stdout=self.log, stderr=self.log,
        )
        self.ours.add(self.proc.pid)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                holders = [describe(p) for p in holders_of(os.path.join(self.root, "berthd.lock"))]
                raise RuntimeError(f"berthd exited with {self.proc.returncode} (see {self.work}/berthd.log);"
                                   f" its lock is held by {holders}")
            if os.path.exists(self.sock):
                try:
                    if self.req("GET", "/_ping", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("berthd did not answer /_ping within 30 s")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def req(self, method, path, body=None, headers=None, timeout=60):
        """(status, body bytes); JSON bodies are sent for dicts."""
        c = UnixConn(self.sock, timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c.request(method, API + path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, ok=(200, 201), timeout=60):
        st, b = self.req(method, path, body, timeout=timeout)
        if st not in ok:
            raise ApiError(method, path, st, b)
        return json.loads(b) if b.strip() else None


class ApiError(Exception):
    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path}: {status} {body[:300]!r}")
        self.status = status


def stream_errors(body):
    """The error messages of a JSON-lines progress stream (pull, load)."""
    errs = []
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            m = json.loads(line)
        except ValueError:
            errs.append(f"not JSON: {line[:100]!r}")
            continue
        if m.get("error") or m.get("errorDetail"):
            errs.append(m.get("error") or str(m.get("errorDetail")))
    return errs


def demux(b):
    """stdout+stderr of a multiplexed (non-tty) stream."""
    out, i = bytearray(), 0
    while i + 8 <= len(b):
        n = int.from_bytes(b[i + 4:i + 8], "big")
        out += b[i + 8:i + 8 + n]
        i += 8 + n
    return bytes(out)


# --- images, made here: a busybox base layer and layers of random bytes -------------------------
def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o755
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


APPLETS = ("sh", "echo", "cat", "sleep", "usleep", "true", "dd", "ls", "head", "seq")


def base_layer():
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    e = [("bin", "dir", None), ("etc", "dir", None), ("tmp", "dir", None), ("bin/busybox", "file", bb)]
    e += [(f"bin/{a}", "link", "busybox") for a in APPLETS]
    e.append(("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n"))
    return tar_bytes(e)


def data_layer(rng, name, size):
    return tar_bytes([("data", "dir", None), (f"data/{name}", "file", rng.randbytes(size))])


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def image_config(diff_ids, tag):
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"fault": tag}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z"} for _ in diff_ids],
    }, sort_keys=True).encode()


def docker_archive(layers, tag):
    """A `docker save` archive of an image made of these (uncompressed) layers."""
    cfg = image_config([sha(l) for l in layers], tag)
    entries = [(f"{sha(cfg)[7:]}.json", "file", cfg)]
    names = []
    for l in layers:
        d = sha(l)[7:]
        entries += [(d, "dir", None), (f"{d}/layer.tar", "file", l)]
        names.append(f"{d}/layer.tar")
    manifest = [{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": [tag], "Layers": names}]
    entries.append(("manifest.json", "file", json.dumps(manifest).encode()))
    return tar_bytes(entries)


def registry_push(addr, repo, tag, layers):
    """Upload blobs and a schema 2 manifest straight to the registry."""
    def put_blob(data):
        d = sha(data)
        base = f"http://{addr}/v2/{repo}/blobs"
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/{d}", method="HEAD"))
            return d
        except urllib.error.HTTPError:
            pass
        r = urllib.request.urlopen(urllib.request.Request(f"{base}/uploads/", data=b"", method="POST"))
        loc = urllib.parse.urljoin(f"http://{addr}", r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        urllib.request.urlopen(urllib.request.Request(
            f"{loc}{sep}digest={d}", data=data, method="PUT",
            headers={"Content-Type": "application/octet-stream"}))
        return d

    cfg = image_config([sha(l) for l in layers], f"{repo}:{tag}")
    gz = [gzip.compress(l, mtime=0) for l in layers]
    put_blob(cfg)
    descs = []
    for g in gz:
        descs.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                      "size": len(g), "digest": put_blob(g)})
    man = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cfg),
                   "digest": sha(cfg)},
        "layers": descs,
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{addr}/v2/{repo}/manifests/{tag}", data=man, method="PUT",
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_registry(work):
    addr = f"127.0.0.1:{free_port()}"
    os.makedirs(os.path.join(work, "reg"))
    with open(os.path.join(work, "reg.yml"), "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {work}/reg\nhttp:\n  addr: {addr}\n")
    p = subprocess.Popen(["docker-registry", "serve", os.path.join(work, "reg.yml")],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "reg.log"), "wb"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", int(addr.split(":")[1])), timeout=1).close()
            return p, addr
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("docker-registry did not listen")
