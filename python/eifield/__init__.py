"""eifield: a lattice of coupled excitatory-inhibitory population oscillators.

The same engine as the ``eifield`` command line, for notebooks:

>>> import eifield
>>> scene = eifield.Scene.builtin("seed_notebook")
>>> scene["coupling.frac_ee"] = 0.3          # parameters by their scene names
>>> result = eifield.run(scene)              # NumPy arrays, GIL released
>>> result.E.shape                           # (samples, rows, cols)
(2001, 7, 7)
>>> eifield.analyze(result).summary["extent"]

``eifield.load_run(folder)`` reads a folder written by ``eifield run``;
``eifield.sweep(spec, client=...)`` runs a parameter sweep on a Dask cluster.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

# Looking for a GPU loads the Vulkan drivers, whose Wayland library says
# "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on
# stderr where no display is configured, though nothing is wrong. Pointed at
# a runtime folder that cannot exist, it finds no display quietly (as the
# `eifield` command does). Set here, at import, before the extension starts
# any thread.
if "XDG_RUNTIME_DIR" not in os.environ and "WAYLAND_DISPLAY" not in os.environ:
    os.environ["XDG_RUNTIME_DIR"] = "/dev/null/no-display"

from . import _core

__all__ = [
    "Scene",
    "Sweep",
    "sweep",
    "RunResult",
    "Analysis",
    "run",
    "analyze",
    "load_run",
    "builtin_names",
    "__version__",
]

__version__: str = _core.__version__


class Scene:
    """A scene: every parameter of a run, validated as the command line does.

    Make one with :meth:`Scene.load` (a ``.ron`` file or a built-in name),
    :meth:`Scene.from_ron` or :meth:`Scene.builtin`. Parameters are read and set
    by their scene names, ``scene["coupling.frac_ee"] = 0.5``; a bad name or
    value raises ``ValueError`` naming the field, and leaves the scene as it
    was. :meth:`replace` returns an edited copy.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_core.Scene") -> None:
        self._inner = inner

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Scene":
        """Reads, parses and validates a scene file (or a built-in scene's name)."""
        return cls(_core.Scene.load(str(path)))

    @classmethod
    def from_ron(cls, text: str, origin: str = "<string>") -> "Scene":
        """Parses and validates RON text; ``origin`` names it in error messages."""
        return cls(_core.Scene.from_ron(text, origin))

    @classmethod
    def builtin(cls, name: str) -> "Scene":
        """A scene shipped with eifield: see :func:`builtin_names`."""
        return cls(_core.Scene.builtin(name))

    def to_ron(self) -> str:
        """The scene as RON text, as ``eifield`` reads it."""
        return self._inner.to_ron()

    def save(self, path: Union[str, Path], overwrite: bool = False) -> None:
        """Writes the scene to a file, with its per-cell arrays beside it as
        ``.npy`` files named after it (``my.ron``: ``my.drive_h_ex.npy``,
        ``my.initial_E.npy``, …) and its coupling matrices (``coupling_ee.*``
        and ``coupling_ei.*``); an existing file is kept unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        self._inner.save(str(path), overwrite)

    def set_coupling_matrix(self, ee: Any, ei: Any) -> None:
        """Sets the coupling to the notebook's general matrices: cell ``i`` is
        fed by ``sum_j M[j, i] * E[j]`` (the diagonal is the self weight), for
        ``u`` with ``ee`` and for ``v`` with ``ei``. Each is an n × n NumPy
        array or SciPy sparse matrix, n = rows × cols (cells row-major); the
        fractions and the self weight then no longer apply. A wrong shape or a
        non-finite weight raises ``ValueError`` naming the matrix."""
        self._inner.set_coupling_csc(_csc_parts(ee, "ee", self.shape), _csc_parts(ei, "ei", self.shape))

    def cell_drives(self) -> tuple:
        """The constant drives ``(h_ex, h_in)`` of every cell after the
        heterogeneity, as ``(rows, cols)`` float64 arrays."""
        h_ex, h_in = self._inner.cell_drives()
        return h_ex.reshape(self.shape), h_in.reshape(self.shape)

    def set_cell_drives(self, h_ex: Any, h_in: Any) -> None:
        """Sets explicit drives per cell (absolute values): arrays of shape
        ``(rows, cols)`` or ``(rows * cols,)``. They are written beside the
        scene as ``.npy`` files when it is saved or run; a wrong shape or a
        non-finite value raises ``ValueError`` naming the field."""
        self._inner.set_cell_drives(
            _cell_values(h_ex, "drive.heterogeneity.h_ex", self.shape),
            _cell_values(h_in, "drive.heterogeneity.h_in", self.shape),
        )

    def initial_state(self) -> Optional[tuple]:
        """The state ``(E, I)`` at t = 0 as ``(rows, cols)`` arrays, or
        ``None`` for ``Rest`` (found when the scene runs)."""
        state = self._inner.initial_state()
        if state is None:
            return None
        return state[0].reshape(self.shape), state[1].reshape(self.shape)

    def set_initial_state(self, E: Any, I: Any) -> None:
        """Sets an explicit initial state (arrays as for
        :meth:`set_cell_drives`)."""
        self._inner.set_initial_state(
            _cell_values(E, "initial.ex", self.shape), _cell_values(I, "initial.inh", self.shape)
        )

    def resolved(self) -> "Scene":
        """The scene with its defaults written out (as ``eifield run`` records it; seeds stay seeds)."""
        return Scene(self._inner.resolved())

    def __getitem__(self, name: str) -> float:
        return self._inner[name]

    def __setitem__(self, name: str, value: float) -> None:
        self._inner[name] = float(value)

    def replace(self, params: Optional[Dict[str, float]] = None, **kwargs: float) -> "Scene":
        """An edited copy. Names are scene names (``{"coupling.frac_ee": 0.5}``);
        as keyword arguments, write ``__`` for the dot (``coupling__frac_ee=0.5``)."""
        copy = self.copy()
        edits = dict(params or {})
        edits.update({key.replace("__", "."): value for key, value in kwargs.items()})
        for name, value in edits.items():
            copy[name] = value
        return copy

    def params(self) -> Dict[str, float]:
        """Every parameter this scene has, by name."""
        return {name: self._inner[name] for name in self._inner.params()}

    def copy(self) -> "Scene":
        return Scene(self._inner.clone_scene())

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def shape(self) -> tuple:
        """``(rows, cols)`` of the lattice."""
        return self._inner.shape

    def stimulated_cells(self) -> list:
        """The stimulated cells, as row-major indices."""
        return self._inner.stimulated_cells()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scene) and self._inner == other._inner

    def __repr__(self) -> str:
        return repr(self._inner)

    def __reduce__(self):
        # Scenes travel to other processes (Dask workers) as their RON text,
        # with the coupling matrices they hold in memory (their files may not
        # be where the other process looks).
        return (_scene_from_parts, (self._inner.portable_ron(), self.name, self._inner.coupling_csc()))


def _cell_values(values: Any, field: str, shape: tuple) -> np.ndarray:
    """One value per cell, row-major, as a contiguous float64 vector."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape not in (tuple(shape), (shape[0] * shape[1],)):
        raise ValueError(
            f"invalid value for `{field}`: expected shape {tuple(shape)} or ({shape[0] * shape[1]},), "
            f"got {array.shape}"
        )
    return np.ascontiguousarray(array.ravel())


def _scene_from_parts(text: str, name: str, matrices: Optional[tuple]) -> Scene:
    scene = Scene.from_ron(text, name)
    if matrices is not None:
        scene._inner.set_coupling_csc(*matrices)
    return scene


@dataclass
class RunResult:
    """A run: model times ``t`` and the states ``E`` and ``I``.

    ``E`` and ``I`` are float64 arrays (float32 for an f32 run) shaped
    ``[samples, rows, cols]``; each is
    a view of the same data as the command line's ``[samples, rows * cols]``
    (``result.E.reshape(len(result.t), -1)`` makes no copy).
    """

    t: np.ndarray
    E: np.ndarray
    I: np.ndarray
    scene: Scene
    manifest: Dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.manifest.get("stop", {}).get("reason") == "completed"


@dataclass
class Analysis:
    """The spread of a run, as ``eifield analyze`` measures it.

    ``first_activation`` (NaN where a cell never activated),
    ``activation_count`` and ``induced`` are ``[rows, cols]`` maps; ``summary``
    holds ``extent``, ``speed``, ``intercept``, ``r2``, ``cells_used``,
    ``activations_driven``, ``activations_control``, ``cells_induced`` and the
    ``threshold``.
    """

    first_activation: np.ndarray
    activation_count: np.ndarray
    induced: np.ndarray
    summary: Dict[str, Any]
    control: RunResult


def _csc_parts(matrix: Any, name: str, shape: tuple) -> tuple:
    """``(indptr, indices, data)`` of a dense or SciPy sparse matrix in CSC form."""
    n = shape[0] * shape[1]
    if hasattr(matrix, "tocsc"):
        csc = matrix.tocsc()
        if csc.shape != (n, n):
            raise ValueError(
                f"invalid value for `coupling.kernel.{name}`: the matrix has shape {csc.shape}; "
                f"the lattice has n = rows × cols = {n} cells, so it must be {n} × {n}"
            )
        return (
            np.asarray(csc.indptr, dtype=np.int64),
            np.asarray(csc.indices, dtype=np.int64),
            np.asarray(csc.data, dtype=np.float64),
        )
    dense = np.asarray(matrix, dtype=np.float64)
    if dense.shape != (n, n):
        raise ValueError(
            f"invalid value for `coupling.kernel.{name}`: the matrix has shape {dense.shape}; "
            f"the lattice has n = rows × cols = {n} cells, so it must be {n} × {n}"
        )
    rows, cols = np.nonzero(dense.T)
    # Column i of M is row i of M.T: sources j of cell i, in order.
    counts = np.bincount(rows, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, cols.astype(np.int64), dense.T[rows, cols].astype(np.float64)


def builtin_names() -> list:
    """The names of the scenes shipped with eifield."""
    return list(_core.Scene.builtin_names())


def _as_scene(scene: Union[Scene, str, Path]) -> Scene:
    if isinstance(scene, Scene):
        return scene
    if isinstance(scene, (str, Path)):
        return Scene.load(scene)
    raise TypeError(f"expected an eifield.Scene or a scene file, got {type(scene).__name__}")


def run(
    scene: Union[Scene, str, Path],
    threads: Optional[int] = None,
    backend: str = "cpu",
    precision: Optional[str] = None,
) -> RunResult:
    """Integrates a scene and returns its samples.

    The result equals ``eifield run --backend B --precision P`` bit for bit
    (on the same GPU, for the GPU engine). The GIL is released while the
    engine integrates; Ctrl-C raises ``KeyboardInterrupt``. A numerical
    blow-up stops the run: the samples before it are returned and a
    ``RuntimeWarning`` says where (``result.manifest["stop"]``); the
    manifest names the engine (``backend``, ``adapter``, ``precision``).

    Parameters
    ----------
    scene : Scene, or a path or built-in name
    threads : CPU engine threads (default: all cores)
    backend : ``"cpu"`` (default), ``"gpu"`` (any GPU adapter, a software one
        too; ``RuntimeError`` where there is none) or ``"auto"`` (the GPU for
        lattices of at least 256 × 256 cells on a hardware GPU with what the
        precision needs, else the CPU)
    precision : ``"f64"`` or ``"f32"`` (default: f64 on the CPU; on the GPU
        f64 where it has f64 shaders). f32 is about twice as fast with float32
        arrays, for exploration: its rounding can move a spike or a wave
        front, so check a result in f64.
    """
    if backend not in ("cpu", "gpu", "auto"):
        raise ValueError(f'backend must be "cpu", "gpu" or "auto" (got {backend!r})')
    if precision not in (None, "f64", "f32"):
        raise ValueError(f'precision must be "f64" or "f32" (got {precision!r})')
    scene = _as_scene(scene)
    t, e, i, info = _core.run(scene._inner, threads, precision, backend)
    manifest = json.loads(info)
    rows, cols = scene.shape
    result = RunResult(
        t=t,
        E=e.reshape(len(t), rows, cols),
        I=i.reshape(len(t), rows, cols),
        scene=scene.resolved(),
        manifest=manifest,
    )
    stop = manifest["stop"]
    if stop["reason"] != "completed":
        warnings.warn(stop.get("message", str(stop)), RuntimeWarning, stacklevel=2)
    return result


def analyze(result: RunResult, threshold: float = 1.0, threads: Optional[int] = None) -> Analysis:
    """Measures how far the activity spread from the stimulated cells.

    Runs the control (the same scene with every stimulus removed), then
    compares activations: a cell is induced when it activates more often than
    in the control and is joined to a stimulated cell by such cells. See
    ``eifield analyze`` for the definitions.
    """
    control = run(
        Scene(result.scene._inner.without_stimuli()),
        threads=threads,
        backend=result.manifest.get("backend", "cpu"),
        precision=result.manifest.get("precision", "f64"),
    )
    samples = len(result.t)
    first, count, induced, summary = _core.spread(
        result.scene._inner,
        np.ascontiguousarray(result.t),
        np.ascontiguousarray(result.E.reshape(samples, -1), dtype=np.float64),
        np.ascontiguousarray(control.t),
        np.ascontiguousarray(control.E.reshape(len(control.t), -1), dtype=np.float64),
        threshold,
    )
    rows, cols = result.scene.shape
    return Analysis(
        first_activation=first.reshape(rows, cols),
        activation_count=count.reshape(rows, cols),
        induced=induced.reshape(rows, cols),
        summary=json.loads(summary),
        control=control,
    )


def load_run(folder: Union[str, Path]) -> RunResult:
    """Reads a folder written by ``eifield run``: ``E.npy``, ``I.npy`` and
    ``t.npy``, or the Zarr store ``run.zarr`` (``--format zarr``, read with
    zarr-python: ``pip install zarr``), with ``scene.ron`` and
    ``manifest.json``. ``E`` and ``I`` have the shape ``[samples, rows, cols]``
    (the kept rows and columns of a run with ``--stride``), in the element
    type the run recorded."""
    folder = Path(folder)
    store = folder / "run.zarr"
    names = ("scene.ron",) if store.exists() else ("E.npy", "I.npy", "t.npy", "scene.ron")
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a run folder: no {', '.join(missing)}")
    scene = Scene.load(folder / "scene.ron")
    rows, cols = scene.shape
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if store.exists():
        try:
            import zarr
        except ImportError as e:
            raise ImportError(f"{store} is a Zarr store: reading it needs zarr-python (pip install zarr)") from e
        group = zarr.open_group(store, mode="r")
        e, i, t = group["E"], group["I"], group["time"]
        samples = min(e.shape[0], i.shape[0], t.shape[0])
        return RunResult(t=t[:samples], E=e[:samples], I=i[:samples], scene=scene, manifest=manifest)
    t = np.load(folder / "t.npy")
    e = np.load(folder / "E.npy")
    i = np.load(folder / "I.npy")
    if e.shape != (len(t), rows * cols) or i.shape != e.shape:
        raise ValueError(
            f"{folder}: E.npy {e.shape} and I.npy {i.shape} do not match t.npy ({len(t)} samples) "
            f"and the {rows} × {cols} grid"
        )
    return RunResult(
        t=t,
        E=e.reshape(len(t), rows, cols),
        I=i.reshape(len(t), rows, cols),
        scene=scene,
        manifest=manifest,
    )


class Sweep:
    """A parameter sweep: a base scene and axes of values (see ``eifield sweep``).

    The points are the product of the axes, numbered with the last axis varying
    fastest. A sweep pickles as its spec and its base scene's RON text, so it
    travels to Dask workers whatever folder its base scene was read from.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_core.Sweep") -> None:
        self._inner = inner

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Sweep":
        """Reads a sweep file; a relative base scene path is taken from its folder."""
        return cls(_core.Sweep.load(str(path)))

    @classmethod
    def from_ron(cls, text: str, origin: str = "<string>", folder: Optional[Union[str, Path]] = None) -> "Sweep":
        """Parses a sweep; a relative base scene path is taken from ``folder``."""
        return cls(_core.Sweep.from_ron(text, origin, None if folder is None else str(folder)))

    @property
    def points(self) -> int:
        """The number of points."""
        return self._inner.points

    def columns(self) -> list:
        """The table's columns: ``index``, the axes' parameters, then the results."""
        return self._inner.columns()

    def scene(self, index: int) -> Scene:
        """The scene of point ``index``."""
        return Scene(self._inner.scene(index))

    def run_point(self, index: int, threads: int = 1, backend: str = "cpu") -> Dict[str, Any]:
        """Runs point ``index`` (its scene, the control without stimuli and the
        analysis) on the CPU engine or (``backend="gpu"``) on this process's
        GPU, and returns its row of the table."""
        return _row(self._inner, json.loads(self._inner.run_point(index, threads, backend)))

    def run_points(self, indices: Sequence[int], batch: Optional[int] = None) -> List[Dict[str, Any]]:
        """Runs the points ``indices`` on this process's GPU in batches of
        ``batch`` points (default: as many as the GPU and this machine's
        memory hold): the scenes of a batch's points and their controls
        integrate together, one dispatch per step for all of them. Returns
        their rows, in order."""
        texts = self._inner.run_points([int(k) for k in indices], batch)
        return [_row(self._inner, json.loads(text)) for text in texts]

    def __reduce__(self):
        spec, base = self._inner.parts()
        return (_sweep_from_parts, (spec, base))

    def __repr__(self) -> str:
        return f"Sweep({self.points} points, columns {self.columns()})"


def _sweep_from_parts(spec: str, base: str) -> Sweep:
    return Sweep(_core.Sweep.from_parts(spec, base))


def _row(inner: "_core.Sweep", row: Dict[str, Any]) -> Dict[str, Any]:
    """A point's JSON row as the table's columns."""
    summary = row["summary"]
    out: Dict[str, Any] = {"index": row["index"]}
    out.update({param: value for param, value in row["values"]})
    out["stop"] = row["stop"]
    for key in ("extent", "speed", "r2", "cells_induced", "activations_driven", "activations_control"):
        value = summary[key]
        out[key] = float("nan") if value is None else value
    return out


def _run_point(sweep_: Sweep, index: int, backend: str = "cpu") -> Dict[str, Any]:
    return sweep_.run_point(index, backend=backend)


def _run_points(sweep_: Sweep, indices: List[int], batch: Optional[int] = None) -> List[Dict[str, Any]]:
    return sweep_.run_points(indices, batch=batch)


def sweep(
    spec: Union["Sweep", str, Path],
    client: Any = None,
    precision: Optional[str] = None,
    backend: str = "cpu",
    batch: Optional[int] = None,
):
    """Runs every point of a sweep and returns its table as a pandas DataFrame
    (the columns of ``eifield sweep``'s ``points.csv``, one row per point).

    ``spec`` is an :class:`eifield.Sweep`, a path to a sweep file, or its RON
    text. With a ``dask.distributed.Client`` (a ``LocalCluster``, or
    ``dask_jobqueue.SLURMCluster`` on a cluster) the points are mapped over
    its workers; without one they run here, one after another. ``precision``
    (``"f64"`` or ``"f32"``) overrides the sweep file's. ``backend="gpu"``
    runs the points on the GPU of the process that runs them (here, or each
    Dask worker's) in batches of ``batch`` points (default: as many as the
    GPU and memory hold; ``batch=1``: one lattice at a time), their scenes
    and controls integrated together; with a client, each worker gets
    whole batches.
    """
    if backend not in ("cpu", "gpu"):
        raise ValueError(f'backend must be "cpu" or "gpu" (got {backend!r})')
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a whole number ≥ 1 (got {batch!r})")
    import pandas as pd

    if isinstance(spec, Sweep):
        sweep_ = spec
    elif isinstance(spec, Path) or (isinstance(spec, str) and "(" not in spec):
        sweep_ = Sweep.load(spec)
    else:
        sweep_ = Sweep.from_ron(spec)
    if precision is not None:
        sweep_ = Sweep(sweep_._inner.with_precision(precision))
    indices = list(range(sweep_.points))
    batched = backend == "gpu" and batch != 1
    if client is None and batched:
        rows = sweep_.run_points(indices, batch=batch)
    elif client is None:
        rows = [sweep_.run_point(k, backend=backend) for k in indices]
    elif batched:
        # Whole batches per task: one per worker, or of `batch` points.
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = batch or -(-len(indices) // workers)
        chunks = [indices[k : k + size] for k in range(0, len(indices), size)]
        shared = client.scatter(sweep_, broadcast=True)
        futures = client.map(_run_points, [shared] * len(chunks), chunks, batch=batch, pure=False)
        rows = [row for chunk in client.gather(futures) for row in chunk]
    else:
        shared = client.scatter(sweep_, broadcast=True)
        futures = client.map(_run_point, [shared] * len(indices), indices, backend=backend, pure=False)
        rows = client.gather(futures)
    return pd.DataFrame(rows, columns=sweep_.columns())
