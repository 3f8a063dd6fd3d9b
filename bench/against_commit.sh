#!/usr/bin/env bash
# Compares the CPU engine of this checkout with the one of an earlier commit
# in one run: builds the model crate's `engine_speed` example (the problem of
# `eifield bench`) at both, in release, then alternates the two ROUNDS times
# (default 5) per lattice side, on one thread and on all, and prints each
# one's median cell-steps/s and the ratio now / then (with its range over the
# rounds). Alternating keeps a noisy machine from favouring either.
# Usage: bench/against_commit.sh REV [SIDE ...]   (default sides: 256 1024)
# SECONDS_PER_RUN sets the time per measurement (default 1.5); PRECISION=f32
# measures the single-precision engine (default f64).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: bench/against_commit.sh REV [SIDE ...]" >&2
    exit 2
fi
rev=$1
shift
[ $# -gt 0 ] || set -- 256 1024
sides=("$@")
rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-1.5}
commit=$(git rev-parse --verify "$rev^{commit}")

then_dir=target/against/$commit
if [ ! -d "$then_dir" ]; then
    mkdir -p target/against
    git worktree add --detach "$then_dir" "$commit" >/dev/null
fi
# The example reads only the engine's public API, so the same file builds there.
cp crates/eifield-model/examples/engine_speed.rs "$then_dir/crates/eifield-model/examples/"
echo "building the engine at $commit and at this checkout (release)" >&2
(cd "$then_dir" && cargo build --release --quiet -p eifield-model --example engine_speed)
cargo build --release --quiet -p eifield-model --example engine_speed
then_bin=$then_dir/target/release/examples/engine_speed
now_bin=target/release/examples/engine_speed

precision=${PRECISION:-f64}
case $precision in f32 | f64) ;; *)
    echo "PRECISION must be f32 or f64, not '$precision'" >&2
    exit 2
    ;;
esac
echo "precision: $precision" >&2

python3 - "$then_bin" "$now_bin" "$rounds" "$seconds" "$precision" "${sides[@]}" <<'PY'
import os, re, statistics, subprocess, sys
then_bin, now_bin, rounds, seconds, precision = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                                 sys.argv[4], sys.argv[5])
sides = [int(s) for s in sys.argv[6:]]
cores = os.cpu_count() or 1
cases = [(side, threads) for side in sides for threads in sorted({1, cores})]
rates = {}
for round_ in range(1, rounds + 1):
    for side, threads in cases:
        for name, binary in (("then", then_bin), ("now", now_bin)):
            out = subprocess.run([binary, str(side), seconds, str(threads), precision], check=True,
                                 capture_output=True, text=True).stdout
            rate = float(re.search(r"cell_steps_per_s=(\S+)", out).group(1))
            rates.setdefault((side, threads, name), []).append(rate)
            print(f"round {round_}: {name:>4} {out.strip()}", flush=True)
print()
print(f"{'side':>6} {'threads':>8} {'then':>12} {'now':>12} {'now/then':>9}   range over {rounds} rounds")
for side, threads in cases:
    then, now = rates[(side, threads, "then")], rates[(side, threads, "now")]
    ratios = [b / a for a, b in zip(then, now)]
    print(f"{side:>6} {threads:>8} {statistics.median(then):>12.4g} {statistics.median(now):>12.4g} "
          f"{statistics.median(ratios):>9.3f}   {min(ratios):.3f} to {max(ratios):.3f}")
PY
