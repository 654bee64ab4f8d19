#!/usr/bin/env python3
"""docker-py (PyPI `docker`) smoke test against berthd.

Usage: tests/e2e/docker-py.py [path/to/berthd]
Starts berthd on a temporary socket and root, imports a busybox image built from the host's
/bin/busybox, then create/start/logs/wait/remove through docker-py. Exits 1 on any failure.
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

try:
    import docker
except ImportError:
    print("FAIL docker-py is not installed (pip install docker)")
    sys.exit(1)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASS = FAIL = 0


def check(name, ok, detail=""):
    global PASS, FAIL
    if ok:
        PASS += 1
        print(f"PASS {name}")
    else:
        FAIL += 1
        print(f"FAIL {name} {detail}")


def find_berthd():
    if len(sys.argv) > 1:
        return sys.argv[1]
    for p in ("target/release/berthd", "target/debug/berthd"):
        c = os.path.join(ROOT, p)
        if os.access(c, os.X_OK):
            return c
    print("FAIL berthd binary not found (cargo build -p berthd)")
    sys.exit(1)


def rootfs_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            t.addfile(ti)
        t.add("/bin/busybox", arcname="bin/busybox")
        for app in ("sh", "echo", "cat", "sleep", "true"):
            ti = tarfile.TarInfo(f"bin/{app}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            t.addfile(ti)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        ti = tarfile.TarInfo("etc/passwd")
        ti.size = len(passwd)
        t.addfile(ti, io.BytesIO(passwd))
    return buf.getvalue()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(work):
    """A registry with basic auth (user e2e, password s3cret), or None without the tools."""
    if not shutil.which("docker-registry") or not shutil.which("htpasswd"):
        return None, None
    addr = f"127.0.0.1:{free_port()}"
    pw = subprocess.run(["htpasswd", "-Bbn", "e2e", "s3cret"], capture_output=True, check=True).stdout
    with open(os.path.join(work, "htpasswd"), "wb") as f:
        f.write(pw)
    os.makedirs(os.path.join(work, "reg"))
    with open(os.path.join(work, "reg.yml"), "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {work}/reg\nauth:\n  htpasswd:\n    realm: py\n"
            f"    path: {work}/htpasswd\nhttp:\n  addr: {addr}\n"
        )
    proc = subprocess.Popen(
        ["docker-registry", "serve", os.path.join(work, "reg.yml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    host, port = addr.split(":")
    for _ in range(100):
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, addr


def main():
    berthd = find_berthd()
    work = tempfile.mkdtemp(prefix="berth-dockerpy.")
    sock = os.path.join(work, "berth.sock")
    log = open(os.path.join(work, "berthd.log"), "w")
    reg, reg_addr = start_registry(work)
    extra = ["--insecure-registry", reg_addr] if reg_addr else []
    proc = subprocess.Popen(
        [berthd, "-H", f"unix://{sock}", "--root", os.path.join(work, "root"), "--exec-root", os.path.join(work, "exec"),
         "--bridge", f"bp{os.getpid()}"]
        + extra,
        stderr=log,
    )
    try:
        for _ in range(300):
            if os.path.exists(sock) or proc.poll() is not None:
                break
            time.sleep(0.05)
        client = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=60)
        check("ping", client.ping() is True)
        check("version", client.version().get("ApiVersion") == "1.47", str(client.version()))
        check("info", client.info().get("Swarm", {}).get("LocalNodeState") == "inactive")

        # Import the busybox rootfs (POST /images/create?fromSrc=-).
        client.api.import_image_from_data(rootfs_tar(), repository="pybox", tag="1")
        img = client.images.get("pybox:1")
        check("image imported", "pybox:1" in img.tags, str(img.tags))

        c = client.containers.create("pybox:1", ["sh", "-c", "echo hello-py; echo err-py >&2; exit 4"], labels={"suite": "py"})
        check("create", len(c.id) == 64, c.id)
        c.start()
        res = c.wait(timeout=60)
        check("wait exit code", res.get("StatusCode") == 4, str(res))
        check("logs stdout", c.logs(stdout=True, stderr=False) == b"hello-py\n", repr(c.logs(stdout=True, stderr=False)))
        check("logs stderr", c.logs(stdout=False, stderr=True) == b"err-py\n")
        listed = client.containers.list(all=True, filters={"label": "suite=py"})
        check("list with list-form filters", [x.id for x in listed] == [c.id], str(listed))
        c.reload()
        check("inspect state", c.attrs["State"]["Status"] == "exited" and c.attrs["State"]["ExitCode"] == 4)
        c.remove()
        try:
            client.containers.get(c.id)
            check("remove", False, "still there")
        except docker.errors.NotFound:
            check("remove", True)

        out = client.containers.run("pybox:1", ["echo", "run-py"], remove=True)
        check("containers.run", out == b"run-py\n", repr(out))

        r = client.containers.run("pybox:1", ["sleep", "30"], detach=True)
        ex = r.exec_run(["sh", "-c", "echo in-exec; exit 2"])
        check("exec_run", ex.exit_code == 2 and ex.output == b"in-exec\n", repr(ex))
        r.kill()
        r.remove(force=True)

        # images(name=...) is a `reference` filter (list form): only that repository's tags.
        # (images.list() re-inspects each image by ID, which shows all of its tags.)
        img.tag("pyother", "1")
        listed = [i["RepoTags"] for i in client.api.images(name="pyother")]
        check("images(name=) only the matching tags", listed == [["pyother:1"]], str(listed))
        client.images.remove("pyother:1")

        check("networks.prune", client.networks.prune() == {"NetworksDeleted": []})

        # Registry credentials as docker-py sends them: "email": null in /auth and in
        # X-Registry-Auth.
        if reg_addr:
            r = client.login("e2e", "s3cret", registry=reg_addr, reauth=True)
            check("login", r.get("Status") == "Login Succeeded", str(r))
            repo = f"{reg_addr}/py/box"
            img.tag(repo, "1")
            out = list(client.api.push(repo, tag="1", stream=True, decode=True))
            check("push with credentials", any("aux" in x for x in out) and not any("error" in x for x in out), str(out[-3:]))
            client.images.remove(f"{repo}:1")
            pulled = client.images.pull(repo, tag="1")
            check("pull with credentials", f"{repo}:1" in pulled.tags, str(pulled.tags))
            client.images.remove(f"{repo}:1")
        else:
            print("SKIP registry login/push/pull (docker-registry or htpasswd not installed)")

        try:
            client.containers.create("no-such-image-py:1", ["true"])
            check("missing image -> ImageNotFound", False)
        except docker.errors.ImageNotFound:
            check("missing image -> ImageNotFound", True)
    except Exception as e:  # noqa: BLE001 - report any failure as a test failure
        check("docker-py flow", False, repr(e))
    finally:
        if reg:
            reg.terminate()
            reg.wait(timeout=10)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if FAIL:
            print(open(os.path.join(work, "berthd.log")).read()[-3000:])
        subprocess.run(["umount", "-R", os.path.join(work, "root")], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    print(f"# docker-py.py: {PASS} passed, {FAIL} failed")
    sys.exit(1 if FAIL else 0)


if __name__ == "__main__":
    main()
