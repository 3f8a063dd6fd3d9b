#!/usr/bin/env bash
# How far the f32 CPU engine strays from f64 on every built-in scene: runs
# each scene with `eifield run --backend cpu` in both precisions (its own
# length, sample rate and seeds) and prints a Markdown table of the largest
# |E_f32 − E_f64| over the run, the first sample time at which it passes
# 0.01 and 0.1, and the activations (upward crossings of E = 1, summed over
# the cells) in each precision. For scale, the last column is the model's own
# sensitivity: when an f64 run with the step 10 % shorter passes 0.1 away
# from the f64 run.
# Usage: bench/precision_gap.sh [SCENE...]   (default: every built-in scene)
# EIFIELD_BIN names a prebuilt eifield binary (default: build target/release/eifield).
# Needs python3 with NumPy.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${EIFIELD_BIN:-target/release/eifield}
if [ -z "${EIFIELD_BIN:-}" ]; then
    cargo build --release --quiet
fi
if ! python3 -c 'import numpy' 2>/dev/null; then
    echo "bench/precision_gap.sh: needs NumPy for python3 (python3 -m pip install numpy)" >&2
    exit 1
fi
scenes=${*:-$("$bin" scenes | awk '{print $1}')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for scene in $scenes; do
    for precision in f64 f32; do
        "$bin" run "$scene" --out "$work/$scene-$precision" --backend cpu \
            --precision "$precision" --quiet 2>/dev/null
    done
    # The resolved scene with the step 10 % shorter, beside it (its large
    # arrays are files named relative to it).
    python3 - "$work/$scene-f64/scene.ron" "$work/$scene-f64/short.ron" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text, count = re.subn(r"(integrator: \w+\(\s*dt: )([0-9.eE+-]+)", lambda m: f"{m.group(1)}{float(m.group(2)) * 0.9!r}", text)
assert count == 1, "one integrator step"
open(sys.argv[2], "w").write(text)
PY
    "$bin" run "$work/$scene-f64/short.ron" --out "$work/$scene-short" --backend cpu --quiet
done
python3 - "$work" $scenes <<'PY'
import json, sys
from pathlib import Path
import numpy as np

work = Path(sys.argv[1])
print("| scene | lattice | run | max \\|E₃₂ − E₆₄\\| | passes 0.01 at | passes 0.1 at | activations f64 / f32 | f64 with dt × 0.9 passes 0.1 at |")
print("|---|---|---|---|---|---|---|---|")
for scene in sys.argv[2:]:
    runs = {p: work / f"{scene}-{p}" for p in ("f64", "f32", "short")}
    e = {p: np.load(d / "E.npy").astype(np.float64) for p, d in runs.items()}
    t = np.load(runs["f64"] / "t.npy")
    manifest = json.loads((runs["f64"] / "manifest.json").read_text())
    gap = np.abs(e["f32"] - e["f64"]).max(axis=1)
    def first(level, gap=gap):
        over = np.nonzero(gap > level)[0]
        return f"t = {t[over[0]]:g}" if len(over) else "never"
    sensitivity = first(0.1, np.abs(e["short"] - e["f64"]).max(axis=1))
    def activations(x):
        return int(((x[:-1] < 1.0) & (x[1:] >= 1.0)).sum())
    rows, cols = manifest["grid"]
    print(f"| `{scene}` | {rows} × {cols} | {t[-1]:g} | {gap.max():.2g} | {first(0.01)} | {first(0.1)} | "
          f"{activations(e['f64'])} / {activations(e['f32'])} | {sensitivity} |")
PY
