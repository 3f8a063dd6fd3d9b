//! The extension module `eifield._core`: scenes parsed, validated and edited
//! by name with the engine crate's own code (so errors read as on the command
//! line), headless runs with the GIL released and Ctrl-C honoured between
//! chunks of samples, and the analysis of the spread. The Python package
//! `eifield` wraps it in its public API.

use std::path::PathBuf;
use std::time::Instant;

use eifield_model::analysis::{self, Summary};
use eifield_model::coupling::{Coupler, CouplingMatrix};
use eifield_model::scene::{
    BUILTIN_SCENES, Coupling, Heterogeneity, Initial, Kernel, MatrixFile, SceneSource,
    builtin_names,
};
use eifield_model::sweep::{
    RunArrays, RunError, Sweep, csv_header, run_point, run_point_with, run_points_with,
    run_to_arrays_checked,
};
use eifield_model::{FieldScene, Precision};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `"f64"` or `"f32"` as a precision; anything else is refused by name.
fn precision_of(name: &str) -> PyResult<Precision> {
    match name {
        "f64" => Ok(Precision::F64),
        "f32" => Ok(Precision::F32),
        other => Err(value_error(format!(
            "precision must be \"f64\" or \"f32\" (got {other:?})"
        ))),
    }
}

/// A matrix in CSC form for Python: `(indptr, indices, data)`.
type CscParts<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
);

/// A scene: every parameter of a run (see the command line's scene files).
#[pyclass(name = "Scene", module = "eifield._core", skip_from_py_object)]
#[derive(Clone)]
struct PyScene {
    scene: FieldScene,
}

#[pymethods]
impl PyScene {
    /// Reads, parses and validates a scene file (or a built-in scene's name).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let source = SceneSource::resolve(&path);
        let scene = source.load().map_err(|e| match e {
            eifield_model::SceneError::Io { .. } => PyOSError::new_err(e.to_string()),
            e => value_error(e),
        })?;
        Ok(Self { scene })
    }

    /// Parses and validates RON text; `origin` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_ron(text: &str, origin: &str) -> PyResult<Self> {
        let mut scene = FieldScene::from_ron_str(text, origin).map_err(value_error)?;
        // Per-cell arrays it names as .npy files: relative to this folder.
        scene
            .read_cell_arrays(std::path::Path::new("."), origin)
            .map_err(value_error)?;
        Ok(Self { scene })
    }

    /// The RON text with the per-cell arrays inline (self-contained).
    fn portable_ron(&self) -> String {
        self.scene.with_arrays_inline().to_ron_string()
    }

    /// The constant drives per cell `(h_ex, h_in)` (row-major, after the
    /// heterogeneity).
    fn cell_drives<'py>(&self, py: Python<'py>) -> ArrayPair<'py> {
        let (h_ex, h_in) = self.scene.cell_drives();
        (PyArray1::from_vec(py, h_ex), PyArray1::from_vec(py, h_in))
    }

    /// Sets explicit per-cell drives (absolute values, row-major); a wrong
    /// length or value is a `ValueError` naming the field and position, and
    /// leaves the scene as it was.
    fn set_cell_drives(
        &mut self,
        h_ex: PyReadonlyArray1<'_, f64>,
        h_in: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let mut scene = self.scene.clone();
        scene.drive.heterogeneity = Heterogeneity::Explicit {
            h_ex: h_ex.as_slice()?.to_vec().into(),
            h_in: h_in.as_slice()?.to_vec().into(),
        };
        scene.validate().map_err(value_error)?;
        self.scene = scene;
        Ok(())
    }

    /// The initial state `(E, I)` per cell, or `None` for `Rest` (found
    /// when the scene runs).
    fn initial_state<'py>(&self, py: Python<'py>) -> Option<ArrayPair<'py>> {
        let (e, i) = self.scene.initial_arrays()?;
        Some((PyArray1::from_vec(py, e), PyArray1::from_vec(py, i)))
    }

    /// Sets an explicit initial state (row-major); errors as
    /// `set_cell_drives`.
    fn set_initial_state(
        &mut self,
        e: PyReadonlyArray1<'_, f64>,
        i: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let mut scene = self.scene.clone();
        scene.initial = Initial::Explicit {
            ex: e.as_slice()?.to_vec().into(),
            inh: i.as_slice()?.to_vec().into(),
        };
        scene.validate().map_err(value_error)?;
        self.scene = scene;
        Ok(())
    }

    /// A scene shipped with eifield, by name (see `builtin_names()`).
    #[staticmethod]
    fn builtin(name: &str) -> PyResult<Self> {
        let builtin = BUILTIN_SCENES
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| {
                value_error(format!(
                    "no built-in scene named {name:?}; the built-in scenes are {}",
                    builtin_names().join(", ")
                ))
            })?;
        Self::from_ron(builtin.text, name)
    }

    /// The names of the shipped scenes.
    #[staticmethod]
    fn builtin_names() -> Vec<&'static str> {
        builtin_names()
    }

    /// The scene as RON text (what `eifield` reads).
    fn to_ron(&self) -> String {
        self.scene.to_ron_string()
    }

    /// The scene with its defaults written out (as `eifield run` records it; seeds stay seeds).
    fn resolved(&self) -> Self {
        Self {
            scene: self.scene.resolved(),
        }
    }

    /// The same scene with every stimulus removed (the control of an analysis).
    fn without_stimuli(&self) -> Self {
        let mut scene = self.scene.clone();
        scene.stimuli = Some(Vec::new());
        Self { scene }
    }

    /// A parameter's value, by its name (`coupling.frac_ee`, `stimuli[0].freq`).
    fn __getitem__(&self, name: &str) -> PyResult<f64> {
        self.scene.param(name).map_err(value_error)
    }

    /// Sets a parameter by its name; the scene must stay valid.
    fn __setitem__(&mut self, name: &str, value: f64) -> PyResult<()> {
        let mut edited = self.scene.clone();
        edited.set_param(name, value).map_err(value_error)?;
        edited.validate().map_err(value_error)?;
        self.scene = edited;
        Ok(())
    }

    /// The names of every parameter this scene has.
    fn params(&self) -> Vec<String> {
        self.scene.param_names()
    }

    /// The scene's name.
    #[getter]
    fn name(&self) -> String {
        self.scene.name.clone()
    }

    /// `(rows, cols)` of the lattice.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.scene.grid.rows, self.scene.grid.cols)
    }

    /// Whether the scene has a session's events.
    #[getter]
    fn has_events(&self) -> bool {
        self.scene.events.is_some()
    }

    /// A copy (coupling matrices given in memory are shared, not copied).
    fn clone_scene(&self) -> Self {
        self.clone()
    }

    /// Sets the coupling to the general matrices given in CSC form (column
    /// `i` holds the weights with which every cell feeds cell `i`): for each
    /// of ee and ei, `(indptr, indices, data)` of an n × n matrix, n = rows ×
    /// cols. The fractions and the self weight then no longer apply.
    #[allow(clippy::too_many_arguments)]
    fn set_coupling_csc(
        &mut self,
        ee: (
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, f64>,
        ),
        ei: (
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, f64>,
        ),
    ) -> PyResult<()> {
        let n = self.scene.grid.len();
        let matrix = |name: &str,
                      (indptr, indices, data): &(
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, i64>,
            PyReadonlyArray1<'_, f64>,
        )|
         -> PyResult<MatrixFile> {
            let field = |m: String| value_error(format!("invalid value for `{name}`: {m}"));
            let (indptr, indices, data) =
                (indptr.as_slice()?, indices.as_slice()?, data.as_slice()?);
            if indptr.len() != n + 1 {
                return Err(field(format!(
                    "the matrix has {} columns; the lattice has n = rows × cols = {n} cells, so it must be {n} × {n}",
                    indptr.len().saturating_sub(1)
                )));
            }
            if indices.len() != data.len() || indptr[0] != 0 || indptr[n] as usize != data.len() {
                return Err(field("indptr, indices and data do not match".into()));
            }
            let mut entries = Vec::with_capacity(data.len());
            for i in 0..n {
                let (a, b) = (indptr[i], indptr[i + 1]);
                if b < a || b as usize > data.len() {
                    return Err(field(format!("indptr is not increasing at {i}")));
                }
                for k in a as usize..b as usize {
                    let j = indices[k];
                    if j < 0 || j as usize >= n {
                        return Err(field(format!("row index {j} is outside 0..{n}")));
                    }
                    if !data[k].is_finite() {
                        return Err(field(format!(
                            "the weight M[{j}, {i}] is {}; weights must be finite",
                            data[k]
                        )));
                    }
                    entries.push((j as usize, i, data[k]));
                }
            }
            let m = CouplingMatrix::from_entries(n, entries);
            let file = if name.ends_with("ee") {
                "coupling_ee.npz"
            } else {
                "coupling_ei.npz"
            };
            Ok(MatrixFile::with_matrix(file, std::sync::Arc::new(m)))
        };
        let kernel = Kernel::Matrix {
            ee: matrix("coupling.kernel.ee", &ee)?,
            ei: matrix("coupling.kernel.ei", &ei)?,
        };
        self.scene.coupling = Coupling {
            kernel,
            ..Coupling::default()
        };
        Ok(())
    }

    /// The coupling matrices the scene holds in memory (a `Matrix` kernel
    /// set from arrays or read with the scene), each as the CSC parts
    /// `(indptr, indices, data)` that `set_coupling_csc` takes; `None` for
    /// other kernels.
    #[allow(clippy::type_complexity)]
    fn coupling_csc<'py>(&self, py: Python<'py>) -> Option<(CscParts<'py>, CscParts<'py>)> {
        let Kernel::Matrix { ee, ei } = &self.scene.coupling.kernel else {
            return None;
        };
        let parts = |file: &MatrixFile| -> Option<CscParts<'py>> {
            let m = file.matrix.as_ref()?;
            let as_i64 = |v: Vec<i64>| PyArray1::from_vec(py, v);
            Some((
                as_i64(m.offsets.iter().map(|&k| k as i64).collect()),
                as_i64(m.sources.iter().map(|&j| i64::from(j)).collect()),
                PyArray1::from_vec(py, m.weights.clone()),
            ))
        };
        Some((parts(ee)?, parts(ei)?))
    }

    /// Writes the scene to `path`, with its per-cell arrays beside it
    /// (`STEM.drive_h_ex.npy`, `STEM.initial_E.npy`, …) and its coupling
    /// matrices (`coupling_ee.*`, `coupling_ei.*`) when it has any; unless
    /// `overwrite`, an existing file is kept (`FileExistsError`).
    #[pyo3(signature = (path, overwrite = false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        self.scene.save_with_arrays(&path, overwrite).map_err(|e| {
            if e.contains(" exists;") {
                pyo3::exceptions::PyFileExistsError::new_err(e)
            } else {
                PyOSError::new_err(e)
            }
        })
    }

    /// The stimulated cells (row-major indices, each once).
    fn stimulated_cells(&self) -> Vec<usize> {
        self.scene.stimulated_cells()
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.scene == other.scene
    }

    fn __repr__(&self) -> String {
        format!(
            "Scene({:?}, {} × {}, {} units of time)",
            self.scene.name, self.scene.grid.rows, self.scene.grid.cols, self.scene.run.duration
        )
    }
}

/// The engine a run used, for its manifest.
struct EngineUsed {
    /// `"cpu"` or `"gpu"`.
    backend: &'static str,
    /// The GPU adapter's name, or the CPU and its SIMD kernel.
    adapter: String,
    /// On the GPU: `"fused"` or `"per stage"`.
    gpu_step: Option<&'static str>,
}

/// What a run returns besides its arrays (a JSON object).
fn run_info(scene: &FieldScene, run: &RunArrays, engine: &EngineUsed, wall: f64) -> String {
    let stop = match &run.blow_up {
        None => serde_json::json!({"reason": "completed"}),
        Some(b) => serde_json::json!({
            "reason": "blow_up",
            "time": b.time,
            "row": b.row,
            "col": b.col,
            "variable": b.variable,
            "message": b.to_string(),
        }),
    };
    serde_json::json!({
        "program": "eifield",
        "version": env!("CARGO_PKG_VERSION"),
        "scene_name": scene.name,
        "grid": [scene.grid.rows, scene.grid.cols],
        "method": run.method,
        "dt": run.dt,
        "threads": run.threads,
        "simd": run.simd,
        "steps": run.steps,
        "samples": run.t.len(),
        "samples_requested": scene.run.samples(),
        "model_time": run.t.last().copied().unwrap_or(0.0),
        "wall_time_s": wall,
        "backend": engine.backend,
        "adapter": engine.adapter,
        "precision": run.precision.name(),
        "gpu_step": engine.gpu_step,
        "stop": stop,
    })
    .to_string()
}

/// Integrates a scene as `eifield run --backend B --precision P` does (the
/// same steps, so the same bits) and returns `(t, E, I, info_json)`, E and I
/// shaped `[samples, rows * cols]`, float64 or float32 as the precision.
/// `backend`: `"cpu"`, `"gpu"` (any adapter, a software one too) or `"auto"`
/// (the command line's rule); `precision` `None`: f64 on the CPU, on the GPU
/// f64 where the adapter has it. The GIL is released while it integrates;
/// Ctrl-C raises `KeyboardInterrupt` within about 50 ms.
#[pyfunction]
#[pyo3(signature = (scene, threads = None, precision = None, backend = "cpu"))]
#[allow(clippy::type_complexity)]
fn run<'py>(
    py: Python<'py>,
    scene: &PyScene,
    threads: Option<usize>,
    precision: Option<&str>,
    backend: &str,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    String,
)> {
    let precision = precision.map(precision_of).transpose()?;
    let scene = &scene.scene;
    if scene.events.is_some() {
        return Err(value_error(
            "this scene has a session's events; replay it with `eifield run` (the Python package does not replay events)",
        ));
    }
    let threads = match threads {
        Some(0) => return Err(value_error("threads must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let gpu = match backend {
        "cpu" => None,
        "gpu" => Some(
            py.detach(|| {
                eifield_gpu::GpuContext::open(eifield_gpu::ContextRequest {
                    precision,
                    allow_software: true,
                })
            })
            .map_err(|e| PyRuntimeError::new_err(format!("backend=\"gpu\": {e}")))?,
        ),
        "auto" => py.detach(|| eifield_gpu::run::auto_context(scene, precision)),
        other => {
            return Err(value_error(format!(
                "backend must be \"cpu\", \"gpu\" or \"auto\" (got {other:?})"
            )));
        }
    };
    let started = Instant::now();
    let check = || Python::attach(|py| py.check_signals());
    let (run, engine) = py
        .detach(|| match &gpu {
            None => {
                let precision = precision.unwrap_or_default();
                run_to_arrays_checked(scene, threads, precision, check).map(|run| {
                    let engine = EngineUsed {
                        backend: "cpu",
                        adapter: format!("CPU ({} kernel)", run.simd),
                        gpu_step: None,
                    };
                    (run, engine)
                })
            }
            Some(ctx) => eifield_gpu::run::run_to_arrays_checked(ctx, scene, precision, check).map(
                |(run, step)| {
                    let engine = EngineUsed {
                        backend: "gpu",
                        adapter: ctx.adapter.name.clone(),
                        gpu_step: Some(step),
                    };
                    (run, engine)
                },
            ),
        })
        .map_err(|e| match e {
            RunError::Scene(message) => value_error(message),
            RunError::Memory(message) => PyMemoryError::new_err(message),
            RunError::Failed(message) => PyRuntimeError::new_err(message),
            RunError::Stopped(error) => error,
        })?;
    let info = run_info(scene, &run, &engine, started.elapsed().as_secs_f64());
    let (samples, cells) = (run.t.len(), scene.grid.len());
    // An f32 run's values are f32 numbers held in f64: narrowing is exact.
    let array = |values: Vec<f64>| -> PyResult<Bound<'py, PyAny>> {
        Ok(match run.precision {
            Precision::F64 => PyArray1::from_vec(py, values)
                .reshape([samples, cells])?
                .into_any(),
            Precision::F32 => {
                let single: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                PyArray1::from_vec(py, single)
                    .reshape([samples, cells])?
                    .into_any()
            }
        })
    };
    let (e, i) = (array(run.e)?, array(run.i)?);
    Ok((PyArray1::from_vec(py, run.t), e, i, info))
}

/// The spread of a driven run against its control (the same scene without
/// stimuli), as `eifield analyze` measures it. Returns `(first_activation,
/// activation_count, induced, summary_json)`, each map of `rows * cols`
/// values.
#[pyfunction]
#[pyo3(signature = (scene, t, e, t_control, e_control, threshold = 1.0))]
#[allow(clippy::type_complexity)]
fn spread<'py>(
    py: Python<'py>,
    scene: &PyScene,
    t: PyReadonlyArray1<'py, f64>,
    e: PyReadonlyArray2<'py, f64>,
    t_control: PyReadonlyArray1<'py, f64>,
    e_control: PyReadonlyArray2<'py, f64>,
    threshold: f64,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<bool>>,
    String,
)> {
    let grid = scene.scene.grid;
    let coupler = Coupler::build(&scene.scene.coupling, grid).map_err(value_error)?;
    let cells = grid.len();
    for (name, times, values) in [("E", &t, &e), ("E of the control", &t_control, &e_control)] {
        let shape = values.shape();
        if shape.len() != 2 || shape[1] != cells || shape[0] != times.len() {
            return Err(value_error(format!(
                "{name} has shape {shape:?}; expected [samples, {cells}] with one sample per time"
            )));
        }
    }
    if !threshold.is_finite() {
        return Err(value_error(format!(
            "threshold must be a finite number (got {threshold})"
        )));
    }
    let (t, e, tc, ec) = (
        t.as_slice()?,
        e.as_slice()?,
        t_control.as_slice()?,
        e_control.as_slice()?,
    );
    let stimulated = scene.scene.stimulated_cells();
    let spread = analysis::spread(&coupler, &stimulated, (e, t), (ec, tc), threshold);
    let summary = serde_json::to_string(&Summary::of(&spread, threshold)).map_err(value_error)?;
    Ok((
        PyArray1::from_vec(py, spread.driven.first),
        PyArray1::from_vec(py, spread.driven.count),
        PyArray1::from_vec(py, spread.induced),
        summary,
    ))
}

/// A parameter sweep (see `eifield sweep`): a base scene and axes.
#[pyclass(name = "Sweep", module = "eifield._core", skip_from_py_object)]
#[derive(Clone)]
struct PySweep {
    sweep: Sweep,
}

#[pymethods]
impl PySweep {
    /// Reads a sweep file; its base scene is resolved relative to the file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Sweep::load(&path)
            .map(|sweep| Self { sweep })
            .map_err(value_error)
    }

    /// Parses a sweep; a relative base path is taken from `folder`.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>", folder = None))]
    fn from_ron(text: &str, origin: &str, folder: Option<PathBuf>) -> PyResult<Self> {
        Sweep::from_ron_str(text, origin, folder.as_deref())
            .map(|sweep| Self { sweep })
            .map_err(value_error)
    }

    /// A sweep from its spec's RON text and its base scene's (self-contained:
    /// how a sweep travels to other processes).
    #[staticmethod]
    fn from_parts(spec: &str, base: &str) -> PyResult<Self> {
        let spec = Sweep::parse_spec(spec, "<sweep>").map_err(value_error)?;
        let base = FieldScene::from_ron_str(base, "<base scene>").map_err(value_error)?;
        Sweep::new(spec, base, "<sweep>")
            .map(|sweep| Self { sweep })
            .map_err(value_error)
    }

    /// `(spec, base)` as RON text (see `from_parts`).
    fn parts(&self) -> (String, String) {
        (
            self.sweep.spec.to_ron_string(),
            self.sweep.base.with_arrays_inline().to_ron_string(),
        )
    }

    /// The same sweep run in `precision` (`"f64"` or `"f32"`).
    fn with_precision(&self, precision: &str) -> PyResult<Self> {
        let mut sweep = self.sweep.clone();
        sweep.spec.precision = precision_of(precision)?;
        Ok(Self { sweep })
    }

    /// The engine's precision (`"f64"` or `"f32"`).
    #[getter]
    fn precision(&self) -> &'static str {
        self.sweep.spec.precision.name()
    }

    /// The number of points.
    #[getter]
    fn points(&self) -> u64 {
        self.sweep.points()
    }

    /// The table's columns (as in `points.csv`).
    fn columns(&self) -> Vec<String> {
        csv_header(&self.sweep)
            .split(',')
            .map(String::from)
            .collect()
    }

    /// The scene of point `index`.
    fn scene(&self, index: u64) -> PyResult<PyScene> {
        self.sweep
            .point_scene(index)
            .map(|scene| PyScene { scene })
            .map_err(value_error)
    }

    /// Runs point `index` (the scene, its control, the analysis) with the GIL
    /// released, on the CPU engine or (`backend="gpu"`) on this process's
    /// GPU; returns its row as JSON.
    #[pyo3(signature = (index, threads = 1, backend = "cpu"))]
    fn run_point(
        &self,
        py: Python<'_>,
        index: u64,
        threads: usize,
        backend: &str,
    ) -> PyResult<String> {
        let sweep = &self.sweep;
        let threads = threads.max(1);
        let precision = sweep.spec.precision;
        let row = match backend {
            "cpu" => py.detach(|| run_point(sweep, index, threads)),
            "gpu" => {
                let ctx = py.detach(|| gpu_context(precision))?;
                py.detach(|| {
                    let runner = |scene: &FieldScene| {
                        let run = eifield_gpu::run::run_to_arrays(&ctx, scene, Some(precision));
                        ("gpu", run)
                    };
                    run_point_with(sweep, index, &runner)
                })
            }
            other => {
                return Err(value_error(format!(
                    "backend must be \"cpu\" or \"gpu\" (got {other:?})"
                )));
            }
        };
        let (row, _, _) = row.map_err(value_error)?;
        serde_json::to_string(&row).map_err(value_error)
    }

    /// Runs the points `indices` on this process's GPU in batches of
    /// `batch` points (`None`: as many as the GPU and memory hold), their
    /// scenes and controls integrated together, with the GIL released;
    /// returns their rows as JSON, in order.
    #[pyo3(signature = (indices, batch = None))]
    fn run_points(
        &self,
        py: Python<'_>,
        indices: Vec<u64>,
        batch: Option<usize>,
    ) -> PyResult<Vec<String>> {
        let sweep = &self.sweep;
        let precision = sweep.spec.precision;
        if batch == Some(0) {
            return Err(value_error("batch must be at least 1 (got 0)"));
        }
        let ctx = py.detach(|| gpu_context(precision))?;
        let (points, members) = eifield_gpu::run::sweep_batch(&ctx, &sweep.base, precision, batch);
        let mut rows = Vec::with_capacity(indices.len());
        for chunk in indices.chunks(points) {
            let outcomes = py.detach(|| {
                let runner = |scenes: &[FieldScene]| {
                    eifield_gpu::run::run_batch_to_arrays(&ctx, scenes, Some(precision), members)
                        .into_iter()
                        .map(|run| ("gpu", run))
                        .collect()
                };
                run_points_with(sweep, chunk, &runner)
            });
            for (row, _, _) in outcomes.map_err(value_error)? {
                rows.push(serde_json::to_string(&row).map_err(value_error)?);
            }
            // Ctrl-C between batches.
            py.check_signals()?;
        }
        Ok(rows)
    }
}

/// This process's GPU for `precision`, opened once (a software adapter will
/// do); no adapter is a `RuntimeError` that says what was looked for.
fn gpu_context(precision: Precision) -> PyResult<eifield_gpu::GpuContext> {
    static OPENED: std::sync::Mutex<Vec<(Precision, eifield_gpu::GpuContext)>> =
        std::sync::Mutex::new(Vec::new());
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, ctx)) = opened.iter().find(|(p, _)| *p == precision) {
        return Ok(ctx.clone());
    }
    let ctx = eifield_gpu::GpuContext::open(eifield_gpu::ContextRequest {
        precision: Some(precision),
        allow_software: true,
    })
    .map_err(|e| PyRuntimeError::new_err(format!("backend=\"gpu\": {e}")))?;
    opened.push((precision, ctx.clone()));
    Ok(ctx)
}

/// Two float64 arrays (per-cell values of E and I, or of the two drives).
type ArrayPair<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScene>()?;
    m.add_class::<PySweep>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(spread, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
