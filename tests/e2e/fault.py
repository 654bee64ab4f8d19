#!/usr/bin/env python3
"""Fault injection: berthd, or one berth-monitor, killed with SIGKILL at a random point of an
operation (load, pull, create, start, exec, commit, rm, prune), then the invariants checked and
the operation retried.

Usage: tests/e2e/fault.py [--seed N] [--rounds N] [path/to/berthd]
       FAULT_ROUNDS (default 50) and FAULT_SEED (default: random, printed) as environment.

Invariants after every round (berthd restarted when it was the one killed):
  * nothing half-made is visible: every listed image and container is inspectable, every
    image's layers are present (its GraphDriver directories exist), inspect and list agree;
  * containers that were running still run, can be exec'ed into and attached to; a ticker
    container that prints a counter every 10 ms has a log without holes;
  * nothing leaked: mounts under the test's roots, cgroups of our containers under /berth,
    network namespace files, processes below this one (a child subreaper: orphans come to us)
    are all justified by a container that is running or created;
  * the interrupted operation succeeds when retried.
Not checked: that an interrupted pull or load leaves no unreferenced blob behind (that needs
the content store's garbage collection of unused blobs, which does not exist yet).
Exits 1 on any failure; prints one line per round.
"""
import ctypes
import hashlib
import json
import urllib.parse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

sys.dont_write_bytecode = True  # (no __pycache__ beside the helpers below)
from fault_api import (API, ApiError, Daemon, base_layer, data_layer, demux, docker_archive,
                       registry_push, start_registry, stream_errors)
from fault_host import (berth_cgroups, cgroup_of, cgroup_pids, comm_of, container_of_fds,
                        descendants, describe, mounts_under, proc_table, procview_providers,
                        reap_orphans, reaper)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- the test --------------------------------------------------------------------------------
class Killed(Exception):
    pass


class Fault:
    def __init__(self, berthd, seed, rounds):
        self.rng = random.Random(seed)
        self.seed, self.rounds = seed, rounds
        self.work = tempfile.mkdtemp(prefix="berth-fault.")
        self.d = Daemon(berthd, self.work)
        self.reg = None
        self.addr = None
        self.running = {}      # name -> id: containers that must be running
        self.images = set()    # references that must be inspectable
        self.fill_ref = None   # what a volume filled from the image's /bin holds
        self.keeper = None     # (volume, its data dir): data no prune may touch
        self.seen = set()      # every container id ever listed
        self.n = 0             # names
        self.durations = {}    # op -> seconds of its last uninterrupted run
        self.ticker_last = -1
        self.failures = []
        self.kills = {"berthd": 0, "monitor": 0}
        self.commits = []
        self.done = 0

    # ---- set-up
    def setup(self):
        self.reg, self.addr = start_registry(self.work)
        base = base_layer()
        self.base_tar = base
        self.archives = []
        for k in range(3):
            self.archives.append((f"fault/load{k}:1", docker_archive([base, data_layer(self.rng, f"l{k}", 3 << 20)], f"fault/load{k}:1")))
        self.pulls = []
        for k in range(3):
            registry_push(self.addr, f"fault/img{k}", "1", [base, data_layer(self.rng, f"p{k}", 3 << 20)])
            self.pulls.append(f"{self.addr}/fault/img{k}:1")
        self.d.ours.add(self.reg.pid)
        threading.Thread(target=reaper, args=(self.d.ours,), daemon=True).start()
        self.d.start()
        st, b = self.d.req("POST", "/images/create?fromSrc=-&repo=fault/base&tag=1", body=base,
                           headers={"Content-Type": "application/x-tar"})
        if st != 200 or stream_errors(b):
            raise RuntimeError(f"import the base image: {st} {b[:300]!r}")
        self.images.add("fault/base:1")
        self.ticker = self.run_container(
            "ticker", ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); usleep 10000; done"])

    def name(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def create(self, name, cmd):
        r = self.d.json("POST", f"/containers/create?name={name}", {
            "Image": "fault/base:1", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}})
        self.seen.add(r["Id"])
        return r["Id"]

    def run_container(self, name, cmd=None):
        cid = self.create(name, cmd or ["sleep", "10000"])
        self.d.json("POST", f"/containers/{cid}/start", ok=(204,))
        self.running[name] = cid
        return cid

    def exec_echo(self, cid, word):
        e = self.d.json("POST", f"/containers/{cid}/exec", {"Cmd": ["echo", word], "AttachStdout": True, "AttachStderr": True})
        st, b = self.d.req("POST", f"/exec/{e['Id']}/start", {"Detach": False, "Tty": False})
        if st != 200:
            raise ApiError("POST", "/exec/start", st, b)
        out = demux(b).decode(errors="replace").strip()
        if out != word:
            raise RuntimeError(f"exec in {cid[:12]}: got {out!r}, want {word!r}")

    def inspect_status(self, x):
        st, b = self.d.req("GET", f"/containers/{x}/json")
        return json.loads(b)["State"] if st == 200 else None

    def a_running(self):
        """A running container other than the ticker (one is started if there is none)."""
        names = [n for n in self.running if n != "ticker"]
        if names:
            n = self.rng.choice(sorted(names))
            return n, self.running[n]
        n = self.name("r")
        return n, self.run_container(n)

    def tidy(self):
        """Keep the number of containers and images small (uninterrupted)."""
        cs = self.d.json("GET", "/containers/json?all=1")
        extra = [c for c in cs if c["Names"][0].lstrip("/") not in self.running]
        for c in extra[:-3] if len(extra) > 3 else []:
            self.d.req("DELETE", f"/containers/{c['Id']}?force=1")
        runners = [n for n in self.running if n != "ticker"]
        while len(runners) > 3:
            n = runners.pop(0)
            self.d.req("DELETE", f"/containers/{self.running.pop(n)}?force=1")
        while len(self.commits) > 2:
            ref = self.commits.pop(0)
            self.d.req("DELETE", f"/images/{ref}?force=1")
            self.images.discard(ref)

    # ---- operations: each returns (run, retry, container it works on or None). `run` is what
    # a kill interrupts; `retry` runs after the invariants and must succeed (it also verifies).
    def op_load(self):
        ref, data = self.rng.choice(self.archives)
        self.d.req("DELETE", f"/images/{ref}?force=1")
        self.images.discard(ref)

        def run():
            st, b = self.d.req("POST", "/images/load?quiet=1", body=data, headers={"Content-Type": "application/x-tar"})
            if st != 200 or stream_errors(b):
                raise ApiError("POST", "/images/load", st, b)

        def retry():
            run()
            self.d.json("GET", f"/images/{ref}/json")
            self.images.add(ref)
        return run, retry, None

    def op_pull(self):
        ref = self.rng.choice(self.pulls)
        self.d.req("DELETE", f"/images/{ref}?force=1")
        self.images.discard(ref)
        repo, tag = ref.rsplit(":", 1)

        def run():
            st, b = self.d.req("POST", f"/images/create?fromImage={urllib.parse.quote(repo, safe='')}&tag={tag}")
            if st != 200 or stream_errors(b):
                raise ApiError("POST", "/images/create", st, b)

        def retry():
            run()
            self.d.json("GET", f"/images/{ref}/json")
            self.images.add(ref)
        return run, retry, None

    def op_create(self):
        name = self.name("c")

        def run():
            self.create(name, ["sleep", "10000"])

        def retry():
            if self.d.req("GET", f"/containers/{name}/json")[0] != 200:
                run()
            s = self.inspect_status(name)
            if not s or s["Status"] != "created":
                raise RuntimeError(f"created container {name}: {s}")
        return run, retry, None

    def op_start(self):
        name = self.name("s")
        cid = self.create(name, ["sleep", "10000"])
        r = self.rng.random()
        if r < 0.2:
            # Its monitor, made at create (the container waits for its start), dies first:
            # the start must make the container again, not fail.
            deadline = time.time() + 5
            mon = None
            while mon is None and time.time() < deadline:
                mon = next((p for p, c in self.monitors().items() if c == cid), None)
                time.sleep(0.01)
            if mon is None:
                raise RuntimeError(f"{name}: no monitor made at create within 5 s")
            os.kill(mon, signal.SIGKILL)
            self.kills["monitor"] += 1
            while os.path.exists(f"/proc/{mon}") and proc_table().get(mon, (0, "Z"))[1] != "Z":
                time.sleep(0.01)
            self.d.json("POST", f"/containers/{cid}/start", ok=(204,))
        elif r < 0.6:
            time.sleep(0.05)  # its preparation is done

        def run():
            self.d.json("POST", f"/containers/{cid}/start", ok=(204, 304))

        def retry():
            run()
            self.running[name] = cid
            self.exec_echo(cid, "started")
        return run, retry, cid

    def op_exec(self):
        name, cid = self.a_running()
        word = f"x{self.n}"

        def run():
            self.exec_echo(cid, word)

        def retry():
            if name not in self.running:  # its monitor was killed: start it again first
                self.d.json("POST", f"/containers/{cid}/start", ok=(204, 304))
                self.running[name] = cid
            run()
        return run, retry, cid

    def op_commit(self):
        name, cid = self.a_running()
        self.exec_echo(cid, "c")
        tag = str(self.name(""))
        ref = f"fault/commit:{tag}"

        def run():
            self.d.json("POST", f"/commit?container={cid}&repo=fault/commit&tag={tag}", ok=(201,))

        def retry():
            run()
            img = self.d.json("GET", f"/images/{ref}/json")
            if len(img["RootFS"]["Layers"]) < 2:
                raise RuntimeError(f"commit {ref}: layers {img['RootFS']['Layers']}")
            self.images.add(ref)
            self.commits.append(ref)
        return run, retry, cid

    def op_rm(self):
        name, cid = self.a_running()
        self.running.pop(name)  # (an interrupted removal may or may not have happened)

        def run():
            st, b = self.d.req("DELETE", f"/containers/{cid}?force=1")
            if st not in (204, 404):
                raise ApiError("DELETE", "/containers", st, b)

        def retry():
            run()
            if self.d.req("GET", f"/containers/{cid}/json")[0] != 404:
                raise RuntimeError(f"removed container {name} still inspectable")
        return run, retry, cid

    def op_prune(self):
        gone = []
        for _ in range(2):
            n = self.name("p")
            cid = self.create(n, ["true"])
            self.d.json("POST", f"/containers/{cid}/start", ok=(204,))
            self.d.json("POST", f"/containers/{cid}/wait", timeout=30)
            gone.append(cid)

        def run():
            self.d.json("POST", "/containers/prune")
            self.d.json("POST", "/images/prune")

        def retry():
            run()
            for cid in gone:
                if self.d.req("GET", f"/containers/{cid}/json")[0] != 404:
                    raise RuntimeError(f"pruned container {cid[:12]} still there")
        return run, retry, None

    def op_volfill(self):
        """A create that makes a volume and fills it from the image's /bin."""
        name = self.name("f")
        vol = f"fill{self.n}"

        def run():
            r = self.d.json("POST", f"/containers/create?name={name}", {
                "Image": "fault/base:1", "Cmd": ["true"],
                "HostConfig": {"NetworkMode": "none", "Binds": [f"{vol}:/bin"]}})
            self.seen.add(r["Id"])

        def retry():
            if self.d.req("GET", f"/containers/{name}/json")[0] != 200:
                run()
            got = self.volume_files(vol)
            if self.fill_ref is None:
                self.fill_ref = got
            elif got != self.fill_ref:
                raise RuntimeError(f"volume {vol} not filled whole: {len(got)} entries")
        return run, retry, None

    def op_volprune(self):
        """`volume prune --all --filter label!=keep` of two unused volumes holding data, beside
        one it must leave alone."""
        if self.keeper is None:
            # (Kept by a label! filter: the other rounds prune containers, so none holds it.)
            self.d.json("POST", "/volumes/create", {"Name": "keepvol", "Labels": {"keep": "1"}},
                        ok=(201,))
            data = self.d.json("GET", "/volumes/keepvol")["Mountpoint"]
            with open(os.path.join(data, "precious"), "w") as f:
                f.write("precious data\n" * 1000)
            self.keeper = ("keepvol", data)
        gone = []
        for _ in range(2):
            v = f"pv{self.name('')}"
            data = self.d.json("POST", "/volumes/create", {"Name": v}, ok=(201,))["Mountpoint"]
            with open(os.path.join(data, "f"), "wb") as f:
                f.write(os.urandom(1 << 20))
            gone.append(v)

        def run():
            self.d.json("POST", "/volumes/prune?filters="
                        + urllib.parse.quote('{"all":["true"],"label!":["keep"]}'))

        def retry():
            run()
            for v in gone:
                if self.d.req("GET", f"/volumes/{v}")[0] != 404:
                    raise RuntimeError(f"pruned volume {v} still there")
        return run, retry, None

    def volume_files(self, vol):
        data = self.d.json("GET", f"/volumes/{vol}")["Mountpoint"]
        return sorted((n, os.lstat(os.path.join(data, n)).st_size) for n in os.listdir(data))

    def check_volumes(self):
        """No half volume visible: every listed volume is inspectable, one filled from the
        image holds all of it; no prune touched the keeper's data."""
        bad = []
        vols = self.d.json("GET", "/volumes")["Volumes"] or []
        for v in vols:
            if self.d.req("GET", f"/volumes/{v['Name']}")[0] != 200:
                bad.append(f"listed volume {v['Name']} not inspectable")
            elif v["Name"].startswith("fill") and self.fill_ref is not None:
                got = self.volume_files(v["Name"])
                if got != self.fill_ref:
                    bad.append(f"volume {v['Name']} visible half filled ({len(got)} entries)")
        if self.keeper:
            try:
                with open(os.path.join(self.keeper[1], "precious")) as f:
                    if f.read() != "precious data\n" * 1000:
                        bad.append("the keeper volume's data changed")
            except OSError as e:
                bad.append(f"the keeper volume's data: {e}")
        d = os.path.join(self.d.root, "volumes")
        tmps = [n for n in os.listdir(d) if n.startswith(".tmp-")] if os.path.isdir(d) else []
        if tmps:
            bad.append(f"temporary volume directories left: {tmps[:3]}")
        return bad

    OPS = ("load", "pull", "create", "start", "exec", "commit", "rm", "prune", "volfill", "volprune")

    # ---- invariants
    def check_consistent(self):
        bad = []
        cs = self.d.json("GET", "/containers/json?all=1")
        for c in cs:
            self.seen.add(c["Id"])
            st, b = self.d.req("GET", f"/containers/{c['Id']}/json")
            if st != 200:
                bad.append(f"listed container {c['Names']} not inspectable: {st}")
                continue
            i = json.loads(b)
            if i["Name"] != c["Names"][0] or i["State"]["Status"] != c["State"]:
                bad.append(f"container {c['Names']}: list says {c['State']}, inspect {i['Name']} {i['State']['Status']}")
            if self.d.req("GET", f"/images/{i['Image']}/json")[0] != 200:
                bad.append(f"container {c['Names']}: its image {i['Image'][:19]} is gone")
        imgs = self.d.json("GET", "/images/json?all=1")
        tags = set()
        for im in imgs:
            tags.update(im.get("RepoTags") or [])
            st, b = self.d.req("GET", f"/images/{im['Id']}/json")
            if st != 200:
                bad.append(f"listed image {im['Id'][:19]} {im.get('RepoTags')} not inspectable: {st}")
                continue
            i = json.loads(b)
            if sorted(i.get("RepoTags") or []) != sorted(im.get("RepoTags") or []):
                bad.append(f"image {im['Id'][:19]}: list tags {im.get('RepoTags')}, inspect {i.get('RepoTags')}")
            if not i.get("RootFS", {}).get("Layers"):
                bad.append(f"image {im['Id'][:19]} has no layers")
            bad += self.check_layers(im["Id"], i.get("RootFS", {}).get("Layers") or [])
        # No half-written blob or layer left behind (nothing is pulled or loaded right now).
        for sub in ("content/sha256", "snapshots"):
            d = os.path.join(self.d.root, "image", sub)
            tmps = [n for n in os.listdir(d) if n.startswith(".tmp-")] if os.path.isdir(d) else []
            if tmps:
                bad.append(f"temporary files in {sub}: {tmps[:3]}")
        for ref in self.images:
            if ref not in tags:
                bad.append(f"image {ref} not listed")
            if self.d.req("GET", f"/images/{ref}/json")[0] != 200:
                bad.append(f"image {ref} not inspectable")
        return bad, cs

    def check_layers(self, image_id, diff_ids):
        """The image's config, layer blobs and unpacked layers are on disk (read from the
        store's own files: the API does not show them)."""
        store = os.path.join(self.d.root, "image")
        try:
            with open(os.path.join(store, "images.json")) as f:
                rec = json.load(f)["images"].get(image_id.split(":")[-1])
        except (OSError, ValueError, KeyError) as e:
            return [f"image {image_id[:19]}: images.json: {e}"]
        if rec is None:
            return [f"image {image_id[:19]} listed but not in images.json"]
        bad = []
        has_blob = lambda b: os.path.isfile(os.path.join(store, "content", "sha256", b.split(":")[-1]))
        if not has_blob(image_id):
            bad.append(f"image {image_id[:19]}: config blob missing")
        # a layer's blob, or its unpacked snapshot with a tar-split description (then the blob
        # was dropped, once the snapshot was synced: it is not listed in snapshots/.unsynced)
        try:
            with open(os.path.join(store, "snapshots", ".unsynced")) as f:
                unsynced = set(f.read().split())
        except OSError:
            unsynced = set()
        chain = None
        for l in rec["layers"]:
            d = l["diff_id"]
            chain = d if chain is None else "sha256:" + hashlib.sha256(f"{chain} {d}".encode()).hexdigest()
            h = chain.split(":")[-1]
            split = os.path.isfile(os.path.join(store, "snapshots", h, "tarsplit.zst")) and h not in unsynced
            if not has_blob(l["blob"]) and not split:
                bad.append(f"image {image_id[:19]}: layer {d[:19]} has neither its blob nor a tar-split snapshot")
        if [l["diff_id"] for l in rec["layers"]] != diff_ids:
            bad.append(f"image {image_id[:19]}: inspect's layers are not its record's")
        # (Unpacked layers are not checked: a snapshot not synced before a crash is dropped at
        # start-up by design and unpacked again from its blob when a container needs it.)
        return bad

    def check_running(self):
        bad = []
        for name, cid in self.running.items():
            s = self.inspect_status(cid)
            if not s or not s["Running"]:
                bad.append(f"{name} is not running: {s}")
                continue
            try:
                os.kill(s["Pid"], 0)
            except OSError:
                bad.append(f"{name}: its pid {s['Pid']} is gone")
            if name != "ticker":
                try:
                    self.exec_echo(cid, "alive")
                except Exception as e:  # noqa: BLE001 (reported)
                    bad.append(f"{name}: exec: {e}")
        bad += self.check_ticker()
        return bad

    def check_ticker(self):
        st, b = self.d.req("GET", "/containers/ticker/logs?stdout=1&stderr=1")
        if st != 200:
            return [f"ticker logs: {st} {b[:200]!r}"]
        lines = demux(b).decode(errors="replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        nums = []
        for l in lines:
            if not l.isdigit():
                return [f"ticker log line {l!r}"]
            nums.append(int(l))
        holes = [(a, b) for a, b in zip(nums, nums[1:]) if b != a + 1]
        if nums and nums[0] != 0 or holes:
            return [f"ticker log has holes: starts at {nums[:1]}, {holes[:5]}"]
        if not nums or nums[-1] <= self.ticker_last:
            return [f"ticker log does not grow: last {nums[-1:]} (before {self.ticker_last})"]
        self.ticker_last = nums[-1]
        # attached, the next numbers arrive
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(3)
            s.connect(self.d.sock)
            s.sendall(f"POST {API}/containers/ticker/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: berth\r\n"
                      "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
            buf = b""
            deadline = time.time() + 3
            while b"\r\n\r\n" not in buf and time.time() < deadline:
                buf += s.recv(4096)
            head, _, rest = buf.partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n")[0] and b" 200 " not in head.split(b"\r\n")[0]:
                return [f"ticker attach: {head[:100]!r}"]
            while time.time() < deadline:
                out = demux(rest).decode(errors="replace").split("\n")
                got = [int(x) for x in out[:-1] if x.isdigit()]
                if got and got[-1] > self.ticker_last:
                    return []
                rest += s.recv(4096)
            return [f"ticker attach: no new number in 3 s ({rest[:80]!r})"]
        except OSError as e:
            return [f"ticker attach: {e}"]
        finally:
            s.close()

    def check_leaks(self, cs, final=False):
        bad = []
        live = {c["Id"] for c in cs if c["State"] in ("running", "paused", "restarting", "created")}
        t = proc_table()
        me = os.getpid()
        sub = descendants(t, me) - descendants(t, self.reg.pid) - {self.reg.pid, self.d.proc.pid}
        spares = []
        created = {c["Id"] for c in cs if c["State"] == "created"}
        # A truthful-/proc provider runs the monitor's binary but is no monitor: it must serve
        # a live container (its procview.pid in that container's runtime dir).
        providers = procview_providers(os.path.join(self.work, "run"))
        is_provider = {p for p in sub if p in t and comm_of(p) == "berth-procview"}
        is_monitor = {p for p in sub if p in t and t[p][2] == "berth-monitor"
                      and cgroup_of(p) is None and p not in is_provider}
        for pid in sorted(sub):
            if pid not in t:
                continue
            ppid, state, exe = t[pid]
            if state == "Z":
                continue
            cg = cgroup_of(pid)
            if pid in is_provider:
                cid = providers.get(pid)
                if cid is None:
                    bad.append(f"procview provider {pid} of no container: {describe(pid)}")
                elif cid not in live:
                    bad.append(f"procview provider {pid} of container {cid[:12]} that is not live")
                continue
            if pid in is_monitor:
                cid = container_of_fds(pid)
                if cid is None:
                    spares.append(pid)
                elif cid not in live:
                    bad.append(f"monitor {pid} of container {cid[:12]} that is not live")
                continue
            if cg is not None and cg not in live:
                bad.append(f"process {pid} ({exe}) of container {cg[:12]} that is not live")
                continue
            a = ppid
            while a in sub and a not in is_monitor:
                a = t[a][0]
            if a in is_monitor or a == self.d.proc.pid:
                continue
            # The init of a prepared container whose monitor died waits for its start (which
            # makes the container again) or its expiry (which deletes it): allowed until then.
            if cg in created and not final:
                continue
            bad.append(f"process {pid} ({exe}, parent {ppid}, container {(cg or '-')[:12]}) has no monitor")
        if len(spares) > 1:
            bad.append(f"{len(spares)} spare monitors: {', '.join(describe(p) for p in spares)}")
        nets = 0
        for mp in mounts_under(self.work):
            rel = os.path.relpath(mp, self.work)
            parts = rel.split("/")
            if rel == "run":
                continue
            if parts[:2] == ["run", "netns"] and len(parts) == 3:
                nets += 1
                continue
            # A live container's truthful /proc (FUSE, mounted by its provider); gone with it.
            if parts[:2] == ["run", "runtime"] and len(parts) == 4 and parts[3] == "procview":
                if parts[2] in live:
                    continue
            if parts[:2] == ["root", "containers"] and len(parts) == 4 and parts[3] == "rootfs":
                if parts[2] in live or parts[2].startswith(".tmp-pool-"):
                    continue
            bad.append(f"mount {rel} not justified")
        n_live = len(live)
        if nets > n_live + 3:
            bad.append(f"{nets} network namespaces for {n_live} live containers")
        for path, name in berth_cgroups():
            if name in live:
                continue
            if name in self.seen or cgroup_pids(path) & sub:
                bad.append(f"cgroup {path} of a container that is not live")
        return bad

    def check(self, final=False):
        """Invariants, with a few seconds for what happens after a kill (exit handling)."""
        deadline = time.time() + 6
        while True:
            bad, cs = self.check_consistent()
            bad += self.check_volumes()
            if not bad:
                bad = self.check_running() + self.check_leaks(cs, final)
            if not bad or time.time() > deadline:
                return bad
            time.sleep(0.25)

    # ---- rounds
    def monitors(self):
        """pid -> container id (None: a spare) of every berth-monitor below us."""
        t = proc_table()
        sub = descendants(t, os.getpid())
        return {p: container_of_fds(p) for p in sub if p in t and t[p][2] == "berth-monitor"
                and t[p][1] != "Z" and comm_of(p) != "berth-procview"}

    def kill_monitor(self, target):
        """Kill the monitor of `target` (its container's or an exec's), else any but the
        ticker's. Returns the name of a container that lost its main monitor, if any."""
        mons = self.monitors()
        tick = self.running.get("ticker")
        pick = [p for p, c in mons.items() if target and c == target]
        if not pick:
            pick = [p for p, c in mons.items() if c != tick]
        if not pick:
            return None, None
        pid = self.rng.choice(sorted(pick))
        cid = mons[pid]
        main = None
        if cid:
            s = self.inspect_status(cid)
            t = proc_table()
            if s and s.get("Pid") in t and t[s["Pid"]][0] == pid:
                main = cid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None, None
        return pid, main

    def round(self, i):
        self.tidy()
        op = self.rng.choice(self.OPS)
        victim = "berthd" if self.rng.random() < 0.7 else "monitor"
        try:
            run, retry, target = getattr(self, f"op_{op}")()
        except Exception as e:  # noqa: BLE001 (reported)
            print(f"round {i:2d} {op:6s} FAIL before the fault: {e}", flush=True)
            self.failures.append((i, op, [str(e)]))
            return
        span = self.durations.get(op, 0.05)
        delay = self.rng.uniform(0, span * 1.2)
        err = []

        def body():
            try:
                run()
            except Exception as e:  # noqa: BLE001 (expected: the daemon was killed)
                err.append(e)
        th = threading.Thread(target=body, daemon=True)
        t0 = time.time()
        th.start()
        th.join(delay)
        finished = not th.is_alive()
        r0 = time.time()
        what = ""
        if victim == "berthd":
            self.d.kill9()
            self.kills["berthd"] += 1
            th.join(60)
            if th.is_alive():
                print(f"    ({op} still waiting for an answer 60 s after berthd was killed)")
            self.d.start()
            what = "berthd"
        else:
            pid, main = self.kill_monitor(target)
            if pid:
                self.kills["monitor"] += 1
                what = f"monitor {pid}" + (f" (of {main[:12]})" if main else "")
            th.join(60)
            if main:
                for n in [n for n, c in self.running.items() if c == main]:
                    del self.running[n]
                # berthd notices (the container's end is reported as an exit)
                deadline = time.time() + 10
                while (self.inspect_status(main) or {}).get("Running") and time.time() < deadline:
                    time.sleep(0.02)
        if finished and not err:
            self.durations[op] = time.time() - t0
        bad = self.check()
        try:
            retry()
        except Exception as e:  # noqa: BLE001 (reported)
            bad.append(f"retry of {op} failed: {e}")
        if not bad:
            bad = self.check()
        status = "ok" if not bad else "FAIL"
        print(f"round {i:2d} {op:6s} kill {what or 'nothing'} after {delay * 1000:.0f} ms"
              f"{' (op had finished)' if finished else ''}: {status} ({time.time() - r0:.1f} s)", flush=True)
        for b in bad:
            print(f"    {b}", flush=True)
        if bad:
            self.failures.append((i, op, bad))

    def warm_up(self):
        """Each operation once, uninterrupted: its duration bounds the kill delay."""
        for op in self.OPS:
            run, retry, _ = getattr(self, f"op_{op}")()
            t0 = time.time()
            run()
            self.durations[op] = time.time() - t0
            retry()
        bad = self.check()
        if bad:
            raise RuntimeError(f"invariants before any fault: {bad}")

    def cleanup(self, keep_dir):
        try:
            if keep_dir:
                self.d.kill9()
            if self.d.proc and self.d.proc.poll() is None:
                for c in self.d.json("GET", "/containers/json?all=1"):
                    self.d.req("DELETE", f"/containers/{c['Id']}?force=1")
            self.d.stop()
        except Exception as e:  # noqa: BLE001 (best effort)
            print(f"cleanup: {e}")
            self.d.kill9()
        if self.reg:
            self.reg.kill()
            self.reg.wait()
        # Whatever is left below us (monitors, their containers) and its cgroups.
        for _ in range(3):
            left = descendants(proc_table(), os.getpid())
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
            reap_orphans(set())
        for path, name in berth_cgroups():
            if name in self.seen:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        for mp in sorted(mounts_under(self.work), reverse=True):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        if keep_dir:
            print(f"kept {self.work} (FAULT_KEEP=1)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

def main():
    args = sys.argv[1:]
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1 << 30))
    rounds = int(os.environ.get("FAULT_ROUNDS") or 50)
    berthd = None
    while args:
        a = args.pop(0)
        if a == "--seed":
            seed = int(args.pop(0))
        elif a == "--rounds":
            rounds = int(args.pop(0))
        else:
            berthd = a
    berthd = berthd or os.path.join(ROOT, "target/debug/berthd")
    if os.geteuid() != 0:
        print("SKIP fault.py: needs root")
        return 0
    if not shutil.which("docker-registry"):
        print("SKIP fault.py: docker-registry is not installed")
        return 0
    # Orphans (a killed monitor's container, a monitor that outlives berthd) come to us.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        print("FAIL prctl(PR_SET_CHILD_SUBREAPER)")
        return 1
    f = Fault(berthd, seed, rounds)
    print(f"fault.py: seed {seed}, {rounds} rounds, work dir {f.work}", flush=True)
    t0 = time.time()
    try:
        f.setup()
        f.warm_up()
        for i in range(rounds):
            f.round(i)
            f.done += 1
        # Prepared containers not started expire after 10 s: then nothing may be left that
        # no monitor owns.
        time.sleep(11)
        bad = f.check(final=True)
        print(f"final check after 11 s: {'ok' if not bad else 'FAIL'}", flush=True)
        for b in bad:
            print(f"    {b}", flush=True)
        if bad:
            f.failures.append(("final", "", bad))
    except Exception as e:  # noqa: BLE001 (reported)
        f.failures.append(("setup", "", [repr(e)]))
        print(f"FAIL {e!r}", flush=True)
        traceback.print_exc()
    finally:
        f.cleanup(os.environ.get("FAULT_KEEP") == "1" and f.failures)
    ok = f.done - len([x for x in f.failures if isinstance(x[0], int)])
    print(f"# fault.py seed {seed}: {ok}/{rounds} rounds passed, kills {f.kills}, "
          f"{time.time() - t0:.0f} s", flush=True)
    return 1 if f.failures else 0


if __name__ == "__main__":
    sys.exit(main())
