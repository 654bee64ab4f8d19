#!/usr/bin/env python3
"""No output is ever lost: short containers whose output is read through every stream a client
may open around their start and exit, N times each (issue 17 item 2).

Usage: tests/e2e/streams.py [path/to/berthd]
  STREAMS_N        runs per pattern (default 500)
  STREAMS_WORKERS  parallel clients (default 6)
  BERTH_COMPARE_DOCKERD=1  the same against a private dockerd (see pyharness.py)

Patterns (each container runs `sh -c 'echo hello; echo err >&2'`):
  run            docker-py containers.run(remove=True): create, start, logs?follow opened at
                 once, wait, remove, then the stream is read (stdout only, docker-py's default)
  run-both       the same with stdout and stderr
  autoremove-follow   AutoRemove container (sleep 0.3 first): create, start, logs?follow,
                 the stream read after its removal
  follow-after-start  create, start, logs?follow, read to the end (no wait)
  follow-after-wait   create, start, wait, logs?follow
  logs-after-wait     create, start, wait, logs
  attach-before-start create, attach?stream (hijacked), start, read to EOF
  attach-during-start create (a 0.2 s sleep first), then start and attach?stream at once
  follow-before-start create, logs?follow, start: a follow stream of a container that is not
                 running ends at once, with what the log has (nothing), as dockerd does
Exits 1 if any run lost (or gained) output.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyharness as h  # noqa: E402

CMD = ["sh", "-c", "echo hello; echo err >&2"]
BOTH = ["err", "hello"]


def lines(b):
    return sorted(b.decode(errors="replace").split())


def p_run(c, img):
    return c.containers.run(img, CMD, remove=True) == b"hello\n"


def p_run_both(c, img):
    return lines(c.containers.run(img, CMD, remove=True, stdout=True, stderr=True)) == BOTH


def p_autoremove_follow(c, img):
    # It runs for a moment so that the stream opens while it runs (a request after its removal
    # is a 404 on dockerd too); the request is raw: docker-py's logs() inspects the container
    # after opening the stream, which may find it removed.
    cmd = ["sh", "-c", "sleep 0.3; echo hello; echo err >&2"]
    cid = c.api.create_container(img, cmd, host_config=c.api.create_host_config(auto_remove=True))["Id"]
    c.api.start(cid)
    params = {"follow": 1, "stdout": 1, "stderr": 1}
    res = c.api._get(c.api._url("/containers/{0}/logs", cid), params=params, stream=True)
    c.api._raise_for_status(res)
    time.sleep(0.5)  # it exits and is removed before the stream is read
    return lines(b"".join(c.api._multiplexed_response_stream_helper(res))) == BOTH


def created(c, img):
    return c.api.create_container(img, CMD)["Id"]


def p_follow_after_start(c, img):
    cid = created(c, img)
    c.api.start(cid)
    out = b"".join(c.api.logs(cid, stdout=True, stderr=True, stream=True, follow=True))
    c.api.remove_container(cid, force=True)
    return lines(out) == BOTH


def p_follow_after_wait(c, img):
    cid = created(c, img)
    c.api.start(cid)
    c.api.wait(cid)
    out = b"".join(c.api.logs(cid, stdout=True, stderr=True, stream=True, follow=True))
    c.api.remove_container(cid)
    return lines(out) == BOTH


def p_logs_after_wait(c, img):
    cid = created(c, img)
    c.api.start(cid)
    c.api.wait(cid)
    out = c.api.logs(cid, stdout=True, stderr=True)
    c.api.remove_container(cid)
    return lines(out) == BOTH


def p_attach_before_start(c, img):
    cid = c.api.create_container(img, CMD, stdin_open=False)["Id"]
    stream = c.api.attach(cid, stdout=True, stderr=True, stream=True, demux=True)
    c.api.start(cid)
    out, err = b"", b""
    for o, e in stream:
        out += o or b""
        err += e or b""
    c.api.wait(cid)
    c.api.remove_container(cid)
    return out == b"hello\n" and err == b"err\n"


def p_attach_during_start(c, img):
    # Attach while the start is under way (another connection): the session is either taken by
    # the start or connects to the running container; its output comes after 0.2 s, all of it.
    cid = c.api.create_container(img, ["sh", "-c", "sleep 0.2; echo hello; echo err >&2"])["Id"]
    starter = threading.Thread(target=c.api.start, args=(cid,))
    starter.start()
    stream = c.api.attach(cid, stdout=True, stderr=True, stream=True, demux=True)
    out, err = b"", b""
    for o, e in stream:
        out += o or b""
        err += e or b""
    starter.join()
    c.api.wait(cid)
    c.api.remove_container(cid)
    return out == b"hello\n" and err == b"err\n"


def p_follow_before_start(c, img):
    cid = created(c, img)
    stream = c.api.logs(cid, stdout=True, stderr=True, stream=True, follow=True)
    out = b"".join(stream)
    c.api.start(cid)
    c.api.wait(cid)
    c.api.remove_container(cid)
    return out == b""


PATTERNS = [
    ("run", p_run),
    ("run-both", p_run_both),
    ("autoremove-follow", p_autoremove_follow),
    ("follow-after-start", p_follow_after_start),
    ("follow-after-wait", p_follow_after_wait),
    ("logs-after-wait", p_logs_after_wait),
    ("attach-before-start", p_attach_before_start),
    ("attach-during-start", p_attach_during_start),
    ("follow-before-start", p_follow_before_start),
]


def main():
    n = int(os.environ.get("STREAMS_N", "500"))
    workers = int(os.environ.get("STREAMS_WORKERS", "6"))
    only = os.environ.get("STREAMS_PATTERNS")
    patterns = [p for p in PATTERNS if not only or p[0] in only.split(",")]
    d = h.Daemon(h.find_berthd(sys.argv), "berth-streams")
    lost = {name: 0 for name, _ in patterns}
    errors = {name: [] for name, _ in patterns}
    lock = threading.Lock()
    jobs, next_job, ts = [], [0], []
    try:
        c0 = d.client()
        img = d.import_busybox(c0, "streams", "1").id
        jobs.extend((name, fn) for i in range(n) for name, fn in patterns)

        def worker():
            c = d.client(timeout=30)  # a stream that hangs is a lost one
            while True:
                with lock:
                    if next_job[0] >= len(jobs):
                        return
                    name, fn = jobs[next_job[0]]
                    next_job[0] += 1
                try:
                    ok = fn(c, img)
                except Exception as e:  # noqa: BLE001 - a failed run is a lost one
                    ok = False
                    with lock:
                        errors[name].append(repr(e))
                if not ok:
                    with lock:
                        lost[name] += 1

        t = time.time()
        ts.extend(threading.Thread(target=worker) for _ in range(workers))
        for x in ts:
            x.start()
        for x in ts:
            x.join()
        took = time.time() - t
    finally:
        # (Ended early by a signal: the workers finish the run they are in before the clean-up.)
        with lock:
            next_job[0] = len(jobs)
        for x in ts:
            x.join(timeout=60)
        d.remove_all()
        d.stop()
    total = sum(lost.values())
    for name, _ in patterns:
        extra = f" (errors: {len(errors[name])}, first: {errors[name][0]})" if errors[name] else ""
        print(f"{'PASS' if lost[name] == 0 else 'FAIL'} {name}: {lost[name]}/{n} lost{extra}")
    print(f"# streams.py ({d.kind}): {len(patterns) * n} runs in {took:.0f}s, {total} lost")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
