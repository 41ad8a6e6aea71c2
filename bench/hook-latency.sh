#!/bin/bash
# bench/hook-latency.sh [N]: hook event latency on a 3-node cluster on loopback: N
# sequential writes through node 1's mount, each timed from open(2) to the MOVED_TO of
# its event file that inotifywait sees in node 2's spool directory; prints p50, p99, max.
#
# Needs FUSE, Debian's inotify-tools and a build of aspen (ASPEN=path, default the debug
# build). Each write waits for its event before the next one: latency, not throughput.
set -euo pipefail
N=${1:-1000}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
require_fuse
command -v inotifywait >/dev/null || { echo "needs inotifywait (apt-get install inotify-tools)" >&2; exit 1; }
start_cluster
python3 - "$T/m1" "$T/n2/hooks" "$N" <<'PY'
import json, os, subprocess, sys, threading, time
m1, spool, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = os.path.join(spool, "kv.write")
os.makedirs(d, exist_ok=True)
p = subprocess.Popen(["inotifywait", "-m", "-e", "moved_to", "--format", "%f", d],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
for line in p.stderr:  # "Watches established." once the watch is set up
    if "established" in line:
        break
seen, cv = {}, threading.Condition()
def reader():
    for line in p.stdout:
        t = time.monotonic()
        try:
            e = json.load(open(os.path.join(d, line.strip())))
        except (OSError, ValueError):
            continue
        # A create through the mount may store the empty file first: wait for the data.
        if e["value_bytes"] > 0:
            with cv:
                for k in e["keys"]:
                    seen[k] = t
                cv.notify_all()
threading.Thread(target=reader, daemon=True).start()
os.makedirs(os.path.join(m1, "kv", "lat"), exist_ok=True)
lat = []
for i in range(n):
    key = f"lat/{i}"
    t0 = time.monotonic()
    with open(os.path.join(m1, "kv", key), "w") as f:
        f.write("x")
    with cv:
        if not cv.wait_for(lambda: key in seen, timeout=10):
            sys.exit(f"no event for {key} within 10 s")
    lat.append((seen[key] - t0) * 1000)
lat.sort()
print(f"hook latency, write on node 1 to inotify on node 2's spool: n={len(lat)} "
      f"p50={lat[len(lat) // 2]:.1f} ms p99={lat[max(0, int(len(lat) * 0.99) - 1)]:.1f} ms "
      f"max={lat[-1]:.1f} ms")
p.kill()
PY
