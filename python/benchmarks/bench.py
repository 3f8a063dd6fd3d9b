"""Benchmarks of the Python package (figures for the README, not tests):

- `eifield.run` of the seed scene (the notebook's 7 × 7, 20 units of time),
  against the notebook's own SciPy odeint time quoted in the README (3.6 s);
- a sweep's overhead per point: the time a sweep takes beyond its points' own
  work (each point's run, its control and the analysis), here and on a Dask
  LocalCluster.

    python python/benchmarks/bench.py [--points 100]
"""

import argparse
import statistics
import time

import eifield


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100)
    args = parser.parse_args()

    scene = eifield.Scene.builtin("seed_notebook")
    eifield.run(scene)  # warm up
    times = []
    for _ in range(20):
        started = time.perf_counter()
        eifield.run(scene)
        times.append(time.perf_counter() - started)
    print(f"eifield.run(seed_notebook): median {1000 * statistics.median(times):.2f} ms, "
          f"min {1000 * min(times):.2f} ms over {len(times)} runs")

    side = max(1, int(round(args.points ** 0.5)))
    spec = f"""(
        base: "seed_notebook",
        axes: [
            (param: "coupling.frac_ee", range: (start: 0.2, stop: {0.2 + 0.01 * (side - 1):.2f}, step: 0.01)),
            (param: "drive.h_ex", range: (start: -6.4, stop: {-6.4 + 0.01 * (side - 1):.2f}, step: 0.01)),
        ],
    )"""
    sweep = eifield.Sweep.from_ron(spec)
    started = time.perf_counter()
    rows = [sweep.run_point(k) for k in range(sweep.points)]
    local = time.perf_counter() - started
    work = []
    for k in range(sweep.points):
        t0 = time.perf_counter()
        sweep.run_point(k)
        work.append(time.perf_counter() - t0)
    print(f"{len(rows)} points here: {1000 * local / len(rows):.2f} ms per point, "
          f"of which the point's own work {1000 * statistics.mean(work):.2f} ms")

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("dask.distributed is not installed: no Dask figure")
        return
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        eifield.sweep(sweep, client=client)  # warm up the workers
        started = time.perf_counter()
        table = eifield.sweep(sweep, client=client)
        wall = time.perf_counter() - started
    per_point = 1000 * wall / len(table)
    own = 1000 * statistics.mean(work) / 2  # two workers share the points
    print(f"{len(table)} points on a Dask LocalCluster of 2 workers: {per_point:.2f} ms per point "
          f"(the points' own work, shared by 2 workers: {own:.2f} ms per point; overhead {per_point - own:.2f} ms)")


if __name__ == "__main__":
    main()
