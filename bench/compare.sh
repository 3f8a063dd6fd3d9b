#!/usr/bin/env bash
# Measures every Python peer in ../shared/bench (NumPy, Numba, JAX in float64
# and float32) and `eifield bench` (CPU engine, f64 and f32) one after the
# other on this machine, ROUNDS times (default 3), all threads, and prints one
# table: each throughput's median over the rounds and eifield's ratio to each
# peer measured in the same round (median, lowest, highest). Machines with
# noisy neighbours change speed from one second to the next, so one round
# alone can mislead.
#
# The peers' packages come from bench/peers-requirements.txt (pinned), installed
# by this script into their own virtual environment (PEERS_VENV, default
# target/peers-venv) the first time, and again when the file changes: no root,
# nothing installed elsewhere.
#
# Usage: bench/compare.sh [SIDE...]   (default: 256 1024)
# EIFIELD_BIN names a prebuilt eifield binary (default: build target/release/eifield).
# ROUNDS sets the number of rounds, MEASURE_SECONDS the seconds per measurement (default 1.5).
# PEERS_DIR names the peers' folder (default: ../shared/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
sides=${*:-256 1024}
bin=${EIFIELD_BIN:-target/release/eifield}
rounds=${ROUNDS:-3}
seconds=${MEASURE_SECONDS:-1.5}
peers_dir=${PEERS_DIR:-../shared/bench}
venv=${PEERS_VENV:-target/peers-venv}
requirements=bench/peers-requirements.txt

for peer in numpy_peer.py numba_peer.py jax_peer.py; do
    if [ ! -f "$peers_dir/$peer" ]; then
        echo "bench/compare.sh: $peers_dir/$peer is missing (set PEERS_DIR to the peers' folder)" >&2
        exit 1
    fi
done

# The peers' environment, made (or remade) from the pinned requirements.
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "bench/compare.sh: installing the peers' packages into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

if [ -z "${EIFIELD_BIN:-}" ]; then
    cargo build --release --quiet
fi

"$venv/bin/python" - "$peers_dir" "$bin" "$rounds" "$seconds" $sides <<'PY'
import json, math, os, platform, re, statistics, subprocess, sys

peers_dir, eifield, rounds, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sides = [int(s) for s in sys.argv[5:]]
python = sys.executable
# name, script, extra arguments, a rough rate to size the steps (cell-steps/s)
peers = [
    ("NumPy f64", "numpy_peer.py", [], 1.3e7),
    ("Numba f64", "numba_peer.py", [], 1.6e7),
    ("JAX f64", "jax_peer.py", [], 5e7),
    ("JAX f32", "jax_peer.py", ["--f32"], 1.2e8),
]


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def peer_rate(script, extra, side, guess):
    steps = max(2, math.ceil(guess * seconds / (side * side)))
    out = subprocess.run([python, os.path.join(peers_dir, script), str(side), str(side), str(steps), *extra],
                         check=True, capture_output=True, text=True).stdout
    line = out.strip().splitlines()[-1]
    print("  " + line, flush=True)
    return float(re.search(r"cell_steps_per_s=(\S+)", line).group(1))


def eifield_rates():
    out = subprocess.run([eifield, "bench", "--backend", "cpu", "--json", "--seconds", str(seconds),
                          "--sides", ",".join(map(str, sides))],
                         check=True, capture_output=True, text=True).stdout
    rates, threads = {}, {}
    for line in out.splitlines():
        if not line.startswith("json "):
            print("  " + line, flush=True)
            continue
        r = json.loads(line[5:])
        # All threads: the highest thread count measured at each side.
        key = (r["precision"], r["side"])
        if r["threads"] >= threads.get(key, 0):
            threads[key] = r["threads"]
            rates[key] = r["cell_steps_per_s"]
    return rates


rates = {}  # (name, side) -> [rate per round]
ratios = {}  # (eifield precision, peer name, side) -> [ratio per round]
for round_ in range(1, rounds + 1):
    print(f"round {round_} of {rounds}", flush=True)
    measured = {}
    for name, script, extra, guess in peers:
        for side in sides:
            measured[(name, side)] = peer_rate(script, extra, side, guess)
    for (precision, side), r in eifield_rates().items():
        measured[(f"eifield {precision}", side)] = r
    for key, r in measured.items():
        rates.setdefault(key, []).append(r)
    for precision in ("f64", "f32"):
        for name, *_ in peers:
            for side in sides:
                mine = measured.get((f"eifield {precision}", side))
                if mine is not None:
                    ratios.setdefault((precision, name, side), []).append(mine / measured[(name, side)])

print()
print(f"{cpu_name()}, {os.cpu_count()} threads; all threads; RK4, dt 0.005; median of {rounds} rounds")
print("(ratios: eifield's throughput over the peer's, measured in the same round; lowest – highest)")
names = [p[0] for p in peers] + ["eifield f64", "eifield f32"]
for side in sides:
    print()
    print(f"{side}²{'':<10} {'cell-steps/s':>13} {'eifield f64 ÷ it':>22} {'eifield f32 ÷ it':>22}")
    for name in names:
        rs = rates.get((name, side))
        if not rs:
            continue
        cells = [f"{name:<13} {statistics.median(rs):>13.3g}"]
        for precision in ("f64", "f32"):
            q = ratios.get((precision, name, side))
            cells.append(f"{statistics.median(q):>6.2f}x ({min(q):.2f} – {max(q):.2f})" if q else f"{'':>22}")
        print(" ".join(cells))
PY
