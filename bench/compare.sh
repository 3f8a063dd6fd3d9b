#!/usr/bin/env bash
# Runs the NumPy peer baseline and `eifield bench` one after the other on this
# machine, ROUNDS times (default 3), and prints eifield's throughput as a ratio
# of the peer's measured in the same round: the median over the rounds, and
# the lowest and highest. Machines with noisy neighbours change speed from one
# second to the next, so one round alone can mislead.
# Usage: bench/compare.sh [PEER_SCRIPT]   (default: ../shared/bench/numpy_peer.py)
# EIFIELD_BIN names a prebuilt eifield binary (default: build target/release/eifield).
# ROUNDS sets the number of rounds. Needs python3 with NumPy.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:-../shared/bench/numpy_peer.py}
bin=${EIFIELD_BIN:-target/release/eifield}
rounds=${ROUNDS:-3}
if ! python3 -c 'import numpy' 2>/dev/null; then
    echo "bench/compare.sh: the NumPy peer needs NumPy for python3; install it with:" >&2
    echo "    python3 -m pip install numpy" >&2
    exit 1
fi
if [ -z "${EIFIELD_BIN:-}" ]; then
    cargo build --release --quiet
fi
python3 - "$peer" "$bin" "$rounds" <<'PY'
import json, re, statistics, subprocess, sys
peer, eifield, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Steps per side: enough for about a second of NumPy work.
cases = {7: 20000, 64: 2000, 256: 150, 1024: 10}
ratios, rates, peers = {}, {}, {}
for round_ in range(1, rounds + 1):
    print(f"round {round_} of {rounds}", flush=True)
    numpy = {}
    for side, steps in cases.items():
        out = subprocess.run([sys.executable, peer, str(side), str(side), str(steps)],
                             check=True, capture_output=True, text=True).stdout
        numpy[side] = float(re.search(r"cell_steps_per_s=(\S+)", out).group(1))
        print("  " + out.strip())
    out = subprocess.run([eifield, "bench", "--json"], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if not line.startswith("json "):
            print("  " + line)
    seen = set()
    for line in out.splitlines():
        if not line.startswith("json "):
            continue
        r = json.loads(line[5:])
        key = (r["side"], r["threads"])
        # Small lattices run on one thread whatever is asked: count them once.
        if key in seen or r["side"] not in numpy:
            continue
        seen.add(key)
        ratios.setdefault(key, []).append(r["cell_steps_per_s"] / numpy[r["side"]])
        rates.setdefault(key, []).append(r["cell_steps_per_s"])
        peers.setdefault(key, []).append(numpy[r["side"]])
print()
print(f"{'side':>6} {'threads':>8} {'eifield':>12} {'numpy':>12} {'ratio':>8}   range over {rounds} rounds")
for key in sorted(ratios):
    side, threads = key
    rs = ratios[key]
    print(f"{side:>6} {threads:>8} {statistics.median(rates[key]):>12.4g} "
          f"{statistics.median(peers[key]):>12.4g} {statistics.median(rs):>7.1f}x   "
          f"{min(rs):.1f}x – {max(rs):.1f}x")
PY
