#!/usr/bin/env python3
"""Run commands interleaved (A B A B ...) so drift in a noisy machine hits all of them alike.
   interleave.py RUNS WARMUP NAME=CMD [NAME=CMD ...]   (CMD split on spaces, no shell)
Prints per command: median, mean, p10, p90 (ms); then each command's median ratio to the
last one."""
import statistics, subprocess, sys, time

runs, warm = int(sys.argv[1]), int(sys.argv[2])
cmds = [a.split("=", 1) for a in sys.argv[3:]]
times = {n: [] for n, _ in cmds}
for i in range(warm + runs):
    for n, c in cmds:
        t = time.perf_counter()
        r = subprocess.run(c.split(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t) * 1000
        if r.returncode != 0:
            sys.exit(f"{n}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
        if i >= warm:
            times[n].append(dt)
for n, v in times.items():
    v.sort()
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
    print(f"  {n:10s} median {statistics.median(v):7.1f} ms  mean {statistics.mean(v):7.1f}  p10 {q(0.1):7.1f}  p90 {q(0.9):7.1f}  ({len(v)} runs)")
last = cmds[-1][0]
for n, _ in cmds[:-1]:
    print(f"RATIO {n}/{last} = {statistics.median(times[n]) / statistics.median(times[last]):.3f}")
# Extra ratios asked for by name: INTERLEAVE_PAIRS="a/b c/d".
import os
for pair in os.environ.get("INTERLEAVE_PAIRS", "").split():
    a, b = pair.split("/")
    if a in times and b in times:
        print(f"RATIO {a}/{b} = {statistics.median(times[a]) / statistics.median(times[b]):.3f}")
