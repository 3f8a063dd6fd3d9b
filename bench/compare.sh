#!/usr/bin/env bash
# Runs the NumPy peer baseline and `eifield bench` one after the other on this
# machine and prints eifield's throughput as a ratio of the peer's.
# Usage: bench/compare.sh [PEER_SCRIPT]   (default: ../shared/bench/numpy_peer.py)
# EIFIELD_BIN names a prebuilt eifield binary (default: build target/release/eifield).
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:-../shared/bench/numpy_peer.py}
bin=${EIFIELD_BIN:-target/release/eifield}
if [ -z "${EIFIELD_BIN:-}" ]; then
    cargo build --release --quiet
fi
python3 - "$peer" "$bin" <<'PY'
import json, re, subprocess, sys
peer, eifield = sys.argv[1], sys.argv[2]
# Steps per side: enough for about a second of NumPy work.
cases = {7: 20000, 64: 2000, 256: 150, 1024: 10}
numpy = {}
for side, steps in cases.items():
    out = subprocess.run([sys.executable, peer, str(side), str(side), str(steps)],
                         check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"cell_steps_per_s=(\S+)", out).group(1))
    numpy[side] = rate
    print(out.strip())
out = subprocess.run([eifield, "bench", "--json"], check=True,
                     capture_output=True, text=True).stdout
print(out.strip())
rows = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("json ")]
print()
print(f"{'side':>6} {'threads':>8} {'eifield':>12} {'numpy':>12} {'ratio':>8}")
for r in rows:
    base = numpy.get(r["side"])
    if base:
        print(f"{r['side']:>6} {r['threads']:>8} {r['cell_steps_per_s']:>12.4g} {base:>12.4g} {r['cell_steps_per_s'] / base:>7.1f}x")
PY
