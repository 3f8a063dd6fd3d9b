"""Sweeps: the command line and Dask give the same table, --index runs give
the same rows, a resumed sweep skips finished points."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import eifield

pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("dask.distributed")

ROOT = Path(__file__).resolve().parents[2]

SWEEP = """(
    base: "seed_notebook",
    axes: [
        (param: "coupling.frac_ee", values: [0.2, 0.3]),
        (param: "drive.h_ex", range: (start: -6.4, stop: -6.3, step: 0.1)),
    ],
    seeds: PerPoint,
)
"""


def binary() -> str:
    path = Path(os.environ.get("EIFIELD_BIN", ROOT / "target" / "debug" / "eifield"))
    if not path.exists():
        pytest.skip(f"no eifield binary at {path}")
    return str(path)


def cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([binary(), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def table(path: Path):
    return pd.read_csv(path).sort_values("index").reset_index(drop=True)


def test_the_command_line_and_dask_give_the_same_table(tmp_path):
    spec = tmp_path / "sweep.ron"
    spec.write_text(SWEEP)
    cli("sweep", str(spec), "--out", str(tmp_path / "all"), "--quiet", "--keep", "runs")
    from_cli = table(tmp_path / "all" / "points.csv")
    # --keep runs: each point's run folder, the bits of the point's scene run here.
    kept = eifield.load_run(tmp_path / "all" / "runs" / "000003")
    here = eifield.run(eifield.Sweep.load(spec).scene(3))
    assert np.array_equal(kept.E.view(np.uint64), here.E.view(np.uint64))
    assert list(from_cli.columns) == [
        "index", "coupling.frac_ee", "drive.h_ex", "stop", "extent", "speed", "r2",
        "cells_induced", "activations_driven", "activations_control",
    ]
    assert list(from_cli["drive.h_ex"]) == [-6.4, -6.3, -6.4, -6.3], "both ends, as written"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            from_dask = eifield.sweep(str(spec), client=client)
    pd.testing.assert_frame_equal(from_cli, from_dask.sort_values("index").reset_index(drop=True), check_dtype=False)
    # Without a cluster, and from RON text, the same again.
    pd.testing.assert_frame_equal(from_cli, eifield.sweep(SWEEP), check_dtype=False)


def test_kept_runs_of_a_zarr_base_scene_are_zarr_stores_with_the_points_bits(tmp_path):
    base = eifield.Scene.builtin("seed_notebook")
    base["run.duration"] = 5.0
    base.save(tmp_path / "base.ron")
    text = (tmp_path / "base.ron").read_text().replace("format: Npy", "format: Zarr")
    assert "format: Zarr" in text
    (tmp_path / "base.ron").write_text(text)
    spec = tmp_path / "sweep.ron"
    spec.write_text(SWEEP.replace('base: "seed_notebook"', 'base: "base.ron"'))
    cli("sweep", str(spec), "--out", str(tmp_path / "all"), "--quiet", "--keep", "runs")
    folder = tmp_path / "all" / "runs" / "000002"
    assert (folder / "run.zarr" / "zarr.json").exists() and not (folder / "E.npy").exists()
    kept = eifield.load_run(folder)
    here = eifield.run(eifield.Sweep.load(spec).scene(2))
    assert np.array_equal(kept.E.view(np.uint64), here.E.view(np.uint64))
    assert np.array_equal(kept.t, here.t)


def test_a_single_precision_sweep_gives_the_same_table_here_and_on_the_command_line(tmp_path):
    spec = tmp_path / "sweep.ron"
    spec.write_text(SWEEP)
    cli("sweep", str(spec), "--out", str(tmp_path / "f32"), "--quiet", "--keep", "runs", "--precision", "f32")
    assert "precision: F32" in (tmp_path / "f32" / "sweep.ron").read_text()
    from_cli = table(tmp_path / "f32" / "points.csv")
    kept = eifield.load_run(tmp_path / "f32" / "runs" / "000001")
    here = eifield.run(eifield.Sweep.load(spec).scene(1), precision="f32")
    assert kept.E.dtype == np.float32
    assert np.array_equal(kept.E.view(np.uint32), here.E.view(np.uint32))
    pd.testing.assert_frame_equal(from_cli, eifield.sweep(SWEEP, precision="f32"), check_dtype=False)
    # The folder holds an f32 sweep: the same sweep in f64 is another one.
    done = subprocess.run(
        [binary(), "sweep", str(spec), "--out", str(tmp_path / "f32"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "holds another sweep" in done.stderr, done.stderr


def test_a_sweep_on_the_gpu_gives_the_cpu_table_in_batches_of_any_size_and_on_dask():
    on_cpu = eifield.sweep(SWEEP)
    on_gpu = eifield.sweep(SWEEP, backend="gpu")
    pd.testing.assert_frame_equal(on_cpu, on_gpu, check_dtype=False, rtol=1e-6)
    # One lattice at a time, batches of 3 + 1 points: the same bits.
    for batch in (1, 3):
        pd.testing.assert_frame_equal(on_gpu, eifield.sweep(SWEEP, backend="gpu", batch=batch))
    # Dask workers with a GPU run whole batches on it.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            on_workers = eifield.sweep(SWEEP, client=client, backend="gpu")
    pd.testing.assert_frame_equal(on_gpu, on_workers)
    rows = eifield.Sweep.from_ron(SWEEP).run_points([3, 1], batch=2)
    assert [row["index"] for row in rows] == [3, 1]
    with pytest.raises(ValueError, match='backend must be "cpu" or "gpu"'):
        eifield.sweep(SWEEP, backend="auto")
    with pytest.raises(ValueError, match="batch must be a whole number"):
        eifield.sweep(SWEEP, backend="gpu", batch=0)


def test_index_runs_give_the_rows_of_the_whole_sweep_and_a_sweep_resumes(tmp_path):
    spec = tmp_path / "sweep.ron"
    spec.write_text(SWEEP)
    cli("sweep", str(spec), "--out", str(tmp_path / "all"), "--quiet")
    whole = table(tmp_path / "all" / "points.csv")
    parts = tmp_path / "parts"
    for index in (3, 0):
        cli("sweep", str(spec), "--out", str(parts), "--index", str(index), "--quiet")
    done = cli("sweep", "--collect", str(parts))
    assert "2 of 4 points" in done.stderr
    partial = table(parts / "points.csv")
    pd.testing.assert_frame_equal(partial, whole.iloc[[0, 3]].reset_index(drop=True))
    # Resuming runs only the two missing points.
    before = {p.name: p.stat().st_mtime_ns for p in (parts / "points").iterdir()}
    done = cli("sweep", str(spec), "--out", str(parts))
    assert "2 run, 2 already done" in done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (parts / "points").iterdir()}
    assert all(after[name] == stamp for name, stamp in before.items()), "finished points were not rerun"
    pd.testing.assert_frame_equal(table(parts / "points.csv"), whole)
    # Another sweep in the same folder is refused.
    other = tmp_path / "other.ron"
    other.write_text(SWEEP.replace("0.3]", "0.35]"))
    refused = subprocess.run([binary(), "sweep", str(other), "--out", str(parts)], capture_output=True, text=True)
    assert refused.returncode == 2 and "another sweep" in refused.stderr


def test_bad_sweeps_name_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"axes\[0\].values\[1\]"):
        eifield.Sweep.from_ron(SWEEP.replace("[0.2, 0.3]", "[0.2, -1e300]"))
    spec = tmp_path / "bad.ron"
    spec.write_text(SWEEP.replace("step: 0.1", "step: 0.0"))
    done = subprocess.run([binary(), "sweep", str(spec), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2 and "axes[1].range" in done.stderr
    sweep = eifield.Sweep.from_ron(SWEEP)
    assert sweep.points == 4
    assert sweep.scene(1)["drive.h_ex"] == -6.3
