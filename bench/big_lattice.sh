#!/usr/bin/env bash
# A headless CPU run end to end on big lattices, as a new user runs it:
#   1. two RK4 steps (duration 0.01, 2 samples) at 128², 1024², 2048² and
#      4096²: wall time, peak memory, scene.ron and E.npy sizes;
#   2. one unit of model time (200 steps) at 1024² (and 4096² with BIG=1)
#      with 2 samples and with the default 101, against the engine alone
#      (the same steps without recording): how much of the run recording
#      costs;
#   3. 1024² sampled every 20 steps, as NPY, Zarr and float32 Zarr, against
#      the engine alone: whether writing keeps up.
# Usage: bench/big_lattice.sh [BIN] (default target/release/eifield);
# ROUNDS=N repeats parts 2 and 3 (default 3); ONLY_FORMATS=1 runs part 3
# alone, SKIP_FORMATS=1 leaves it out. Writes into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/eifield}"
rounds="${ROUNDS:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scene() { # side duration sample_rate
    printf '(grid: (rows: %s, cols: %s, boundary: Open), run: (duration: %s, sample_rate: %s))\n' \
        "$1" "$1" "$2" "$3" >"$work/s.ron"
}

if [ "${ONLY_FORMATS:-0}" != 1 ]; then
echo "| lattice | wall time | peak memory | bytes per cell | scene.ron | E.npy (2 samples) |"
echo "|---|---|---|---|---|---|"
for side in 128 1024 2048 4096; do
    scene "$side" 0.01 100.0
    rm -rf "$work/o"
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" run "$work/s.ron" --out "$work/o" \
        --backend cpu --quiet
    read -r wall kb <"$work/time"
    cells=$((side * side))
    printf '| %s² | %s s | %s MB | %s | %s B | %s MB |\n' "$side" "$wall" $((kb / 1024)) \
        $((kb * 1024 / cells)) "$(stat -c %s "$work/o/scene.ron")" \
        $(($(stat -c %s "$work/o/E.npy") / 1000000))
done

echo
echo "| lattice | samples | whole run (cell-steps/s) | engine alone (eifield bench) | run / engine |"
echo "|---|---|---|---|---|"
sides=(1024)
[ "${BIG:-0}" = 1 ] && sides+=(4096)
for side in "${sides[@]}"; do
    cells=$((side * side))
    for round in $(seq "$rounds"); do
        # The engine alone, all threads, in the same round.
        alone=$("$bin" bench --backend cpu --precision f64 --sides "$side" --seconds 2 \
            | awk -v s="$side" '$1 == "cpu" && $3 == s { rate = $NF } END { print rate }')
        for rate in 1.0 100.0; do
            scene "$side" 1.0 "$rate"
            rm -rf "$work/o"
            "$bin" run "$work/s.ron" --out "$work/o" --backend cpu --quiet
            python3 - "$work/o/manifest.json" "$side" "$cells" "$alone" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
side, cells, alone = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rate = m["steps"] * cells / m["wall_time_s"]
print(f"| {side}² | {m['samples']} | {rate:.3g} | {alone:.3g} | {rate / alone:.2f} |")
EOF
        done
    done
done
fi

# 3. Writing as fast as the engine: 1024² sampled every 20 steps (10 samples
#    per unit), 3 units, in each format, against the engine alone measured
#    in the same round. SKIP_FORMATS=1 leaves it out.
[ "${SKIP_FORMATS:-0}" = 1 ] && exit 0
echo
echo "| format | samples | whole run (cell-steps/s) | engine alone | run / engine | written |"
echo "|---|---|---|---|---|---|"
side=1024
cells=$((side * side))
for round in $(seq "$rounds"); do
    alone=$("$bin" bench --backend cpu --precision f64 --sides "$side" --seconds 2 \
        | awk -v s="$side" '$1 == "cpu" && $3 == s { rate = $NF } END { print rate }')
    for format in "npy" "zarr" "zarr --dtype f32"; do
        scene "$side" 3.0 10.0
        rm -rf "$work/o"
        # shellcheck disable=SC2086
        "$bin" run "$work/s.ron" --out "$work/o" --backend cpu --quiet --format $format
        written=$(du -sm --exclude=scene.ron --exclude=manifest.json "$work/o" | cut -f1)
        python3 - "$work/o/manifest.json" "$cells" "$alone" "$format" "$written" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
cells, alone, fmt, written = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
rate = m["steps"] * cells / m["wall_time_s"]
print(f"| {fmt} | {m['samples']} | {rate:.3g} | {alone:.3g} | {rate / alone:.2f} | {written} MB |")
PY
    done
done
