"""Tests of the Python package: the reference solution, bit-equality with the
command line, parameters by name, load_run, analyze, the GIL and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import eifield

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("EIFIELD_REFERENCE_DIR", ROOT.parent / "shared" / "reference" / "seed_default"))


def eifield_binary() -> Path:
    """The command line built by `cargo build` (or EIFIELD_BIN)."""
    path = Path(os.environ.get("EIFIELD_BIN", ROOT / "target" / "debug" / "eifield"))
    if not path.exists():
        pytest.skip(f"no eifield binary at {path} (build it with `cargo build`, or set EIFIELD_BIN)")
    return path


def cli_run(scene: str, out: Path, *extra: str) -> None:
    done = subprocess.run(
        [str(eifield_binary()), "run", scene, "--out", str(out), "--quiet", "--threads", "1", *extra],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_reference_case_matches_within_1e_4():
    result = eifield.run(eifield.Scene.builtin("seed_notebook"))
    ref_e = np.load(REFERENCE / "E.npy")
    ref_i = np.load(REFERENCE / "I.npy")
    ref_t = np.load(REFERENCE / "t.npy")
    samples = len(ref_t)
    assert result.E.shape == (samples, 7, 7)
    np.testing.assert_array_equal(result.t, ref_t)
    assert np.abs(result.E.reshape(samples, -1) - ref_e).max() <= 1e-4
    assert np.abs(result.I.reshape(samples, -1) - ref_i).max() <= 1e-4
    assert result.completed


def test_results_equal_the_command_line_bit_for_bit(tmp_path):
    scene = eifield.Scene.builtin("waves")
    scene["run.duration"] = 40.0  # the whole run is long for a test; 40 units cover several waves
    scene.save(tmp_path / "short.ron")
    cli_run(str(tmp_path / "short.ron"), tmp_path / "short")
    result = eifield.run(scene, threads=2)
    cli = eifield.load_run(tmp_path / "short")
    assert result.E.shape == cli.E.shape
    assert np.array_equal(result.E.view(np.uint64), cli.E.view(np.uint64))
    assert np.array_equal(result.I.view(np.uint64), cli.I.view(np.uint64))
    assert np.array_equal(result.t, cli.t)
    # E is a view of the command line's layout.
    flat = result.E.reshape(len(result.t), -1)
    assert np.shares_memory(flat, result.E)


def test_single_precision_returns_float32_arrays_equal_to_the_command_lines(tmp_path):
    scene = eifield.Scene.builtin("waves")
    scene["run.duration"] = 20.0
    scene.save(tmp_path / "short.ron")
    cli_run(str(tmp_path / "short.ron"), tmp_path / "short", "--backend", "cpu", "--precision", "f32")
    result = eifield.run(scene, threads=2, precision="f32")
    cli = eifield.load_run(tmp_path / "short")
    assert result.E.dtype == np.float32 and cli.E.dtype == np.float32
    assert result.manifest["precision"] == "f32" and cli.manifest["precision"] == "f32"
    assert np.array_equal(result.E.view(np.uint32), cli.E.view(np.uint32))
    assert np.array_equal(result.I.view(np.uint32), cli.I.view(np.uint32))
    # Another engine than f64's: not the same numbers.
    double = eifield.run(scene, threads=2)
    assert np.abs(result.E - double.E).max() > 0
    # The analysis runs its control in the same precision.
    analysis = eifield.analyze(result)
    assert analysis.control.E.dtype == np.float32
    with pytest.raises(ValueError, match='precision must be "f64" or "f32"'):
        eifield.run(scene, precision="f16")


def test_the_gpu_engine_gives_the_command_lines_bits_in_both_precisions(tmp_path):
    scene = eifield.Scene.builtin("seed_notebook")
    scene["run.duration"] = 5.0
    scene.save(tmp_path / "short.ron")
    for precision, dtype, view in [("f64", np.float64, np.uint64), ("f32", np.float32, np.uint32)]:
        out = tmp_path / precision
        cli_run(str(tmp_path / "short.ron"), out, "--backend", "gpu", "--precision", precision)
        cli = eifield.load_run(out)
        here = eifield.run(scene, backend="gpu", precision=precision)
        assert here.manifest["backend"] == "gpu" and here.manifest["precision"] == precision
        assert here.manifest["adapter"] == cli.manifest["adapter"] != ""
        assert here.manifest["gpu_step"] == "fused"
        assert here.E.dtype == dtype and cli.E.dtype == dtype
        assert np.array_equal(here.E.view(view), cli.E.view(view)), precision
        assert np.array_equal(here.I.view(view), cli.I.view(view)), precision
    # The reference case on the GPU in f64, as on the CPU.
    ref = eifield.run(eifield.Scene.builtin("seed_notebook"), backend="gpu")
    assert np.abs(ref.E.reshape(len(ref.t), -1) - np.load(REFERENCE / "E.npy")).max() <= 1e-4
    # `auto` keeps a 7 × 7 lattice on the CPU, as the command line does.
    assert eifield.run(scene, backend="auto").manifest["backend"] == "cpu"
    with pytest.raises(ValueError, match='backend must be "cpu", "gpu" or "auto"'):
        eifield.run(scene, backend="tpu")


def test_no_gpu_adapter_is_a_runtime_error_that_names_what_was_looked_for():
    code = (
        "import eifield\n"
        "try:\n"
        "    eifield.run(eifield.Scene.builtin('seed_notebook'), backend='gpu')\n"
        "except RuntimeError as e:\n"
        "    print('RuntimeError:', e)\n"
    )
    # A Vulkan loader that finds no driver: no adapter at all.
    env = dict(os.environ, VK_ICD_FILENAMES="/nonexistent.json", VK_DRIVER_FILES="/nonexistent.json")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "RuntimeError: backend=\"gpu\": no GPU adapter found" in done.stdout, done.stdout
    assert "Vulkan" in done.stdout


def test_looking_for_a_gpu_without_a_display_prints_nothing():
    # Without a display, Mesa's Wayland library said "error: XDG_RUNTIME_DIR
    # is invalid or not set in the environment." twice while the adapters
    # were listed, though nothing was wrong.
    code = (
        "import eifield\n"
        "scene = eifield.Scene.builtin('seed_notebook')\n"
        "scene['run.duration'] = 0.5\n"
        "print(eifield.run(scene, backend='gpu', precision='f32').manifest['backend'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gpu"
    assert "XDG_RUNTIME_DIR" not in done.stderr, done.stderr


def test_parameters_by_name_and_bad_ones_raise_value_error():
    scene = eifield.Scene.builtin("seed_notebook")
    assert scene["coupling.frac_ee"] == 0.26
    scene["coupling.frac_ee"] = 0.5
    assert scene["coupling.frac_ee"] == 0.5
    other = scene.replace({"drive.h_ex": -6.2}, coupling__frac_ei=0.1)
    assert (other["drive.h_ex"], other["coupling.frac_ei"]) == (-6.2, 0.1)
    assert scene["coupling.frac_ei"] == 0.0, "replace leaves the original alone"
    with pytest.raises(ValueError, match="coupling.frac"):
        scene["coupling.frac"] = 1.0
    with pytest.raises(ValueError, match="stimuli\\[0\\].row"):
        scene["stimuli[0].row"] = 99
    with pytest.raises(ValueError, match="integrator.dt"):
        scene["integrator.dt"] = -1.0
    assert scene["integrator.dt"] == 0.005, "a refused edit changes nothing"
    with pytest.raises(ValueError, match="run.duration"):
        eifield.Scene.from_ron("(run: (duration: -1.0))", "bad.ron")
    with pytest.raises(ValueError, match="bad.ron:1:"):
        eifield.Scene.from_ron("(grid: (rows: x))", "bad.ron")
    assert "coupling.frac_ee" in scene.params()
    assert eifield.Scene.from_ron(scene.to_ron()) == scene
    assert set(eifield.builtin_names()) >= {"waves", "seed_notebook", "snic"}


def test_load_run_reads_a_command_line_run(tmp_path):
    cli_run("seed_notebook", tmp_path / "seed")
    run = eifield.load_run(tmp_path / "seed")
    assert run.E.shape == (2001, 7, 7)
    assert run.manifest["stop"]["reason"] == "completed"
    assert run.scene.name == "Seed notebook"
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        eifield.load_run(tmp_path)


def test_a_zarr_run_opens_in_xarray_and_zarr_with_the_npy_runs_values(tmp_path):
    import warnings

    import xarray as xr
    import zarr

    cli_run("waves", tmp_path / "npy", "--backend", "cpu")
    cli_run("waves", tmp_path / "zarr", "--backend", "cpu", "--format", "zarr")
    npy, run = eifield.load_run(tmp_path / "npy"), eifield.load_run(tmp_path / "zarr")
    assert run.E.dtype == np.float64 and run.E.shape == npy.E.shape
    for name in ("t", "E", "I"):
        assert np.array_equal(getattr(run, name).view(np.uint64), getattr(npy, name).view(np.uint64)), name
    assert run.manifest["format"] == "zarr"
    # xarray opens it lazily, from its consolidated metadata, with no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(tmp_path / "zarr" / "run.zarr")
    assert ds.E.dims == ("time", "row", "col")
    assert ds.E.chunks is not None  # a Dask array: nothing read yet
    assert np.array_equal(ds.time.values, npy.t)
    assert np.array_equal(ds.row.values, np.arange(npy.E.shape[1]))
    assert np.array_equal(ds.E.isel(row=3, col=5).values, npy.E[:, 3, 5])
    assert ds.attrs["manifest"]["samples"] == len(npy.t)
    assert eifield.Scene.from_ron(ds.attrs["scene"]).shape == npy.E.shape[1:]
    group = zarr.open_group(tmp_path / "zarr" / "run.zarr", mode="r")
    assert group["E"].metadata.dimension_names == ("time", "row", "col")
    assert np.array_equal(group["I"][-1], npy.I[-1])
    # A stride keeps every n-th row and column, named by their lattice index.
    cli_run("waves", tmp_path / "strided", "--backend", "cpu", "--format", "zarr", "--stride", "4", "--dtype", "f32")
    small = xr.open_zarr(tmp_path / "strided" / "run.zarr")
    assert small.E.dtype == np.float32 and small.attrs["stride"] == 4
    assert np.array_equal(small.row.values, np.arange(0, npy.E.shape[1], 4))
    assert np.array_equal(small.E.values, npy.E[:, ::4, ::4].astype(np.float32))
    assert np.array_equal(eifield.load_run(tmp_path / "strided").E, small.E.values)


def test_analyze_measures_the_spread_as_the_command_line_does(tmp_path):
    result = eifield.run(eifield.Scene.builtin("seed_notebook"))
    analysis = eifield.analyze(result)
    assert analysis.summary["cells_induced"] == 9
    assert abs(analysis.summary["extent"] - 2 ** 0.5) < 1e-12
    assert analysis.summary["speed"] is None
    assert analysis.induced.shape == (7, 7) and analysis.induced[3, 3]
    done = subprocess.run(
        [str(eifield_binary()), "run", "seed_notebook", "--out", str(tmp_path / "a"), "--quiet", "--analyze"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    cli = json.loads((tmp_path / "a" / "analysis" / "summary.json").read_text())
    assert cli == analysis.summary


def test_the_gil_is_released_while_integrating():
    scene = eifield.Scene.builtin("waves")
    scene["run.duration"] = 20.0
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    started = time.perf_counter()
    eifield.run(scene, threads=1)
    seconds = time.perf_counter() - started
    done.set()
    counter.join()
    # A thread that needs the GIL kept running: about one tick per millisecond.
    assert ticks > 0.2 * seconds * 1000, f"{ticks} ticks in {seconds:.2f} s"


def test_ctrl_c_interrupts_a_run_with_keyboard_interrupt():
    code = (
        "import eifield, signal, sys\n"
        # A shell that starts a job in the background makes it ignore
        # SIGINT, and Python keeps that: ask for the usual handler.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "s = eifield.Scene.builtin('seed_notebook')\n"
        "s['run.sample_rate'] = 0.01\n"
        "s['run.duration'] = 1000000.0\n"
        "print('started', flush=True)\n"
        "try:\n"
        "    eifield.run(s, threads=1)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(7)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.0)
    started = time.perf_counter()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 7, out
    assert "interrupted" in out
    assert time.perf_counter() - started < 5.0


def test_a_run_too_large_for_memory_is_a_memory_error():
    scene = eifield.Scene.builtin("waves")
    scene["run.duration"] = 1e7
    with pytest.raises(MemoryError, match="run.duration"):
        eifield.run(scene)


def test_the_example_script_draws_the_notebook_figures(tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_notebook.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    for name in ["traces.png", "raster.png", "stimulated_cell.png", "heatmap.gif"]:
        assert (tmp_path / name).stat().st_size > 1000, name


def nearest_matrix(rows: int, cols: int, frac: float, self_weight: float, periodic: bool) -> np.ndarray:
    """The 4-neighbour stencil as a dense matrix M[j, i] (j feeds i)."""
    n = rows * cols
    m = np.zeros((n, n))
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            m[i, i] += self_weight
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if periodic:
                    rr, cc = rr % rows, cc % cols
                elif not (0 <= rr < rows and 0 <= cc < cols):
                    continue
                m[rr * cols + cc, i] += frac
    return m


def test_coupling_matrices_from_numpy_and_scipy_give_the_nearest_run(tmp_path):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    scene = eifield.Scene.builtin("seed_notebook")
    scene["run.duration"] = 10.0
    scene["coupling.frac_ei"] = 0.05
    want = eifield.run(scene)
    rows, cols = scene.shape
    c = scene.params()
    m_ee = nearest_matrix(rows, cols, c["coupling.frac_ee"], c["coupling.self_weight"], False)
    m_ei = nearest_matrix(rows, cols, c["coupling.frac_ei"], c["coupling.self_weight"], False)
    for ee, ei in ((m_ee, m_ei), (scipy_sparse.csr_matrix(m_ee), scipy_sparse.csc_matrix(m_ei))):
        matrices = scene.copy()
        matrices.set_coupling_matrix(ee=ee, ei=ei)
        assert "coupling.frac_ee" not in matrices.params()
        got = eifield.run(matrices)
        assert np.abs(got.E - want.E).max() <= 1e-12
        assert np.abs(got.I - want.I).max() <= 1e-12
    # Saved with its matrices beside it, the scene reruns from the file; the
    # command line reads the scipy files too.
    scipy_sparse.save_npz(tmp_path / "ee.npz", scipy_sparse.csr_matrix(m_ee))
    scipy_sparse.save_npz(tmp_path / "ei.npz", scipy_sparse.csc_matrix(m_ei))
    text = scene.to_ron().replace("kernel: Nearest,", 'kernel: Matrix(ee: "ee.npz", ei: "ei.npz"),')
    for field in ("frac_ee", "frac_ei", "self_weight"):
        text = "\n".join(line for line in text.splitlines() if not line.strip().startswith(field + ":"))
    (tmp_path / "matrix.ron").write_text(text)
    cli_run(str(tmp_path / "matrix.ron"), tmp_path / "run")
    cli = eifield.load_run(tmp_path / "run")
    assert np.abs(cli.E - want.E).max() <= 1e-12
    assert sorted(p.name for p in (tmp_path / "run").glob("coupling_*")) == ["coupling_ee.npz", "coupling_ei.npz"]
    saved = scene.copy()
    saved.set_coupling_matrix(ee=m_ee, ei=m_ei)
    (tmp_path / "saved").mkdir()
    saved.save(tmp_path / "saved" / "scene.ron")
    assert (tmp_path / "saved" / "coupling_ee.npz").exists()
    again = eifield.run(eifield.Scene.load(tmp_path / "saved" / "scene.ron"))
    assert np.array_equal(again.E, eifield.run(saved).E)
    # A scene with matrices in memory travels to other processes (Dask
    # workers) with them, in whatever folder they run.
    import pickle

    for held in (saved, eifield.Scene.load(tmp_path / "saved" / "scene.ron")):
        copy = pickle.loads(pickle.dumps(held))
        assert np.array_equal(eifield.run(copy).E, again.E)


def test_a_coupling_matrix_of_the_wrong_shape_names_what_was_expected():
    scene = eifield.Scene.builtin("seed_notebook")
    with pytest.raises(ValueError, match=r"coupling\.kernel\.ee.*n = rows × cols = 49"):
        scene.set_coupling_matrix(ee=np.eye(48), ei=np.eye(49))
    bad = np.eye(49)
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"coupling\.kernel\.ei.*M\[3, 4\]"):
        scene.set_coupling_matrix(ee=np.eye(49), ei=bad)


def test_per_cell_arrays_from_numpy_are_saved_beside_the_scene(tmp_path):
    import pickle

    scene = eifield.Scene.builtin("seed_notebook")
    scene["run.duration"] = 2.0
    rows, cols = scene.shape
    h_ex = np.linspace(-6.5, -6.2, rows * cols).reshape(rows, cols)
    h_in = np.full((rows, cols), -4.0)
    scene.set_cell_drives(h_ex, h_in)
    assert np.array_equal(scene.cell_drives()[0], h_ex)
    state = np.random.default_rng(3).normal(0.0, 0.1, (2, rows, cols))
    scene.set_initial_state(state[0], state[1].ravel())
    assert np.array_equal(scene.initial_state()[1], state[1])
    scene.save(tmp_path / "my.ron")
    assert np.array_equal(np.load(tmp_path / "my.drive_h_ex.npy"), h_ex)
    assert np.array_equal(np.load(tmp_path / "my.initial_E.npy"), state[0])
    assert len((tmp_path / "my.ron").read_text()) < 4096
    again = eifield.Scene.load(tmp_path / "my.ron")
    assert again == scene
    assert np.array_equal(eifield.run(again).E, eifield.run(scene).E)
    # It travels to other processes with its arrays.
    assert pickle.loads(pickle.dumps(again)) == again
    with pytest.raises(FileExistsError):
        scene.save(tmp_path / "my.ron")
    with pytest.raises(ValueError, match=r"drive\.heterogeneity\.h_ex"):
        scene.set_cell_drives(np.zeros(3), h_in)
    with pytest.raises(ValueError, match=r"initial\.ex"):
        scene.set_initial_state(state[0] * np.nan, state[1])
    assert again == scene, "a refused edit leaves the scene as it was"
