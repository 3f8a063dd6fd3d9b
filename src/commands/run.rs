//! Headless runs: a scene integrated as fast as the CPU allows through the same
//! ECS simulation as the viewer (with `MinimalPlugins`), recorded to `.npy`
//! files or a Zarr store with a manifest, a progress bar and clean stops on Ctrl-C, SIGTERM or
//! a numerical blow-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use eifield_model::scene::{Heterogeneity, Initial, Noise, OutputFormat, SceneSource};
use eifield_model::{EngineOptions, FieldScene, Precision};
use eifield_store::layout::dtype_name;
use eifield_store::zarr::{STORE_NAME, ZarrOptions};
use eifield_store::{Layout, NpySink, SampleSink, StoredRun, ZarrSink};
use serde::Serialize;

use super::AppError;
use super::progress::DelayedProgress;
use crate::sim::backend::{BackendRequest, FieldEngine, GpuDevice};
use crate::sim::probes::ProbesPlugin;
use crate::sim::record::{Flushed, OnFlush, Recorder};
use crate::sim::session::{Session, install_replay};
use crate::sim::{
    EntityMirror, Lattice, SimClock, SimPlugins, SimSettings, SimStatus, refresh_entities,
};

/// Cell-ticks integrated per app update (bounds the work between checks for Ctrl-C).
const CELL_TICKS_PER_UPDATE: usize = 1 << 16;
/// Waiting for the disk longer than this between two progress updates
/// shows in the progress line.
const DISK_WAIT_NOTICE: std::time::Duration = std::time::Duration::from_millis(20);

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The scene: a file, or the name of a built-in scene.
    pub scene: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Write into an existing folder, replacing its run files.
    pub force: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Engine threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Start from the last sample of this earlier run (of the same grid).
    pub continue_from: Option<PathBuf>,
    /// Go on with the killed or interrupted run of the same scene in `out`
    /// from its last flushed sample.
    pub resume: bool,
    /// Which engine, in which precision.
    pub backend: BackendRequest,
    /// What is recorded, in which files.
    pub output: OutputRequest,
}

/// What a run records and where (`None`: the scene's format, the engine's
/// precision, every cell).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputRequest {
    /// NPY files or a Zarr store (overrides the scene's `run.format`).
    pub format: Option<OutputFormat>,
    /// The element type of the recorded E and I.
    pub dtype: Option<Precision>,
    /// Keep every `stride`-th row and column (Zarr only).
    pub stride: Option<usize>,
}

impl OutputRequest {
    /// Whether anything is asked (a resumed run keeps what it recorded).
    fn is_given(&self) -> bool {
        self.format.is_some() || self.dtype.is_some() || self.stride.is_some()
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// Still running (only seen in a manifest written at the start).
    Running,
    /// The whole duration was integrated.
    Completed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The state became non-finite.
    BlowUp {
        /// Model time of the detection.
        time: f64,
        /// Row of the offending cell.
        row: usize,
        /// Column of the offending cell.
        col: usize,
        /// `E` or `I`.
        variable: String,
        /// Full message.
        message: String,
    },
    /// Writing the output failed.
    WriteError {
        /// Full message.
        message: String,
    },
    /// The GPU failed.
    GpuFailure {
        /// Full message.
        message: String,
    },
}

/// The `manifest.json` of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Program name.
    pub program: &'static str,
    /// Program version.
    pub version: &'static str,
    /// Scene name.
    pub scene_name: String,
    /// The scene as given: a file path, or `NAME (built in)`.
    pub scene_file: String,
    /// `[rows, cols]`.
    pub grid: [usize; 2],
    /// Seeds of the random parts of the scene.
    pub seeds: Seeds,
    /// Integration method.
    pub method: String,
    /// Largest step.
    pub dt: f64,
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// The GPU adapter's name (on the CPU: the CPU and its SIMD kernel).
    pub adapter: String,
    /// `"f64"` or `"f32"`.
    pub precision: &'static str,
    /// Engine threads (0 on the GPU).
    pub threads: usize,
    /// `"npy"` (`E.npy`, `I.npy`, `t.npy`) or `"zarr"` (`run.zarr`).
    pub format: &'static str,
    /// The element type of the recorded E and I: `"float64"` or `"float32"`.
    pub dtype: &'static str,
    /// Every `stride`-th row and column is recorded (from the first).
    pub stride: usize,
    /// SIMD kernel of the CPU engine (`null` on the GPU).
    pub simd: Option<&'static str>,
    /// How the GPU engine dispatches a step: `"fused"`, or `"per stage"`
    /// for kernels too wide for the fused step kernel (`null` on the CPU).
    pub gpu_step: Option<&'static str>,
    /// Steps taken.
    pub steps: u64,
    /// Samples written.
    pub samples: u64,
    /// Samples the scene asks for.
    pub samples_requested: u64,
    /// Model time reached.
    pub model_time: f64,
    /// Wall time of the integration loop.
    pub wall_time_s: f64,
    /// Why the run stopped.
    pub stop: StopReason,
}

/// Seeds used by the scene (absent where that part is not random).
#[derive(Debug, Clone, Serialize)]
pub struct Seeds {
    /// Seed of the random heterogeneity.
    pub heterogeneity: Option<u64>,
    /// Seed of the random initial state.
    pub initial: Option<u64>,
    /// Seed of the pink noise.
    pub noise: Option<u64>,
}

impl Seeds {
    fn of(scene: &FieldScene) -> Self {
        Self {
            heterogeneity: match scene.drive.heterogeneity {
                Heterogeneity::Random { seed, .. } => Some(seed),
                _ => None,
            },
            initial: match scene.initial {
                Initial::Random { seed, .. } => Some(seed),
                _ => None,
            },
            noise: match scene.noise {
                Noise::Pink { seed, .. } => Some(seed),
                Noise::None => None,
            },
        }
    }
}

/// The files a run writes into its folder (the NPY arrays or the Zarr store).
pub const RUN_FILES: [&str; 6] = [
    "E.npy",
    "I.npy",
    "t.npy",
    STORE_NAME,
    "scene.ron",
    "manifest.json",
];

/// Removes the arrays of the format that a run in `out` does not write (an
/// earlier run's, replaced with `--force`), so that the folder holds one run.
fn remove_other_format(out: &Path, format: OutputFormat) -> Result<(), AppError> {
    let gone = |path: &Path, removed: std::io::Result<()>| match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AppError::Output(format!(
            "cannot replace {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    };
    match format {
        OutputFormat::Npy => {
            let store = out.join(STORE_NAME);
            gone(&store, std::fs::remove_dir_all(&store))
        }
        OutputFormat::Zarr => ["E.npy", "I.npy", "t.npy"].iter().try_for_each(|name| {
            let path = out.join(name);
            gone(&path, std::fs::remove_file(&path))
        }),
    }
}

/// Creates the output folder, refusing an existing one unless `force`.
fn prepare_out_dir(out: &Path, force: bool) -> Result<(), AppError> {
    if out.exists() {
        if !force {
            return Err(AppError::Input(format!(
                "output folder {} already exists; choose another --out, or pass --force to replace its run files ({})",
                out.display(),
                RUN_FILES.join(", ")
            )));
        }
        if !out.is_dir() {
            return Err(AppError::Input(format!(
                "--out {} exists and is not a folder",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| {
        AppError::Input(format!(
            "cannot create output folder {}: {e}",
            out.display()
        ))
    })
}

/// How far a killed or interrupted run got, from its manifest (which the
/// recorder rewrites after every flush).
struct Resumed {
    /// Samples the arrays hold.
    samples: u64,
    /// Engine steps at the last of them.
    steps: u64,
    /// Wall time so far.
    wall_time_s: f64,
    /// The engine that ran it.
    backend: String,
    precision: String,
    /// What it records, in which files.
    format: OutputFormat,
    dtype: Precision,
}

impl Resumed {
    /// The run goes on with the engine that started it (another gives
    /// other bits).
    fn check_engine(&self, info: &crate::sim::backend::BackendInfo) -> Result<(), AppError> {
        if (self.backend.as_str(), self.precision.as_str()) != (info.backend, info.precision) {
            return Err(AppError::Input(format!(
                "--resume: the run was made by the {} engine in {}; resume it with                  `--backend {} --precision {}`",
                self.backend, self.precision, self.backend, self.precision
            )));
        }
        Ok(())
    }
}

/// Where the run of `scene` in `out` stopped, for `--resume`: it must be a
/// run of the same scene that did not complete or blow up.
fn resume_point(out: &Path, scene: &FieldScene) -> Result<Option<Resumed>, AppError> {
    let what =
        |e: &dyn std::fmt::Display| AppError::Input(format!("--resume {}: {e}", out.display()));
    let path = out.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| what(&format!("holds no run to resume ({}: {e})", path.display())))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| what(&format!("{}: {e}", path.display())))?;
    if scene.events.is_some() {
        return Err(what(&"a session replays from its start; run it again"));
    }
    let earlier = FieldScene::load(&out.join("scene.ron")).map_err(|e| what(&e))?;
    // The folder's format is the one it was written in (perhaps by --format).
    let mut expected = scene.resolved();
    expected.run.format = earlier.run.format;
    if earlier != expected {
        return Err(what(
            &"it holds a run of another scene (or of this one edited since)",
        ));
    }
    let reason = manifest["stop"]["reason"].as_str().unwrap_or("");
    match reason {
        "running" | "interrupted" | "write_error" | "gpu_failure" => {}
        "completed" => return Err(what(&"the run completed; there is nothing to resume")),
        other => {
            return Err(what(&format!(
                "the run stopped with `{other}`; resuming would stop there again"
            )));
        }
    }
    let number = |key: &str| manifest[key].as_u64().unwrap_or(0);
    let format = match manifest["format"].as_str() {
        Some("zarr") => OutputFormat::Zarr,
        _ => OutputFormat::Npy,
    };
    let dtype = match manifest["dtype"].as_str() {
        Some("float32") => Precision::F32,
        Some("float64") => Precision::F64,
        // Runs before the field recorded in their engine's precision.
        _ if manifest["precision"].as_str() == Some("f32") => Precision::F32,
        _ => Precision::F64,
    };
    let stride = manifest["stride"].as_u64().unwrap_or(1) as usize;
    if stride != 1 {
        return Err(what(&format!(
            "the run kept every {stride}th cell, not the whole state to go on from"
        )));
    }
    Ok(Some(Resumed {
        samples: number("samples"),
        steps: number("steps"),
        wall_time_s: manifest["wall_time_s"].as_f64().unwrap_or(0.0),
        backend: manifest["backend"].as_str().unwrap_or("").to_owned(),
        precision: manifest["precision"].as_str().unwrap_or("").to_owned(),
        format,
        dtype,
    }))
}

/// Writes `manifest.json` atomically (a temporary file, then a rename), so
/// that a reader, or a killed run, never leaves half a manifest; a Zarr
/// store gets it as an attribute too, with its arrays' metadata as they are
/// now (where a store is there yet).
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), String> {
    let value = serde_json::to_value(manifest).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    let path = out.join("manifest.json");
    let tmp = out.join("manifest.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })?;
    let store = out.join(STORE_NAME);
    if manifest.format == "zarr" && store.join("zarr.json").exists() {
        eifield_store::zarr::describe(&store, Some(&value)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The headless app: the simulation plugins (without probes, which only the
/// viewer shows) on `MinimalPlugins`, advanced a fixed number of ticks per
/// update. Nothing reads the oscillator entities during a run, so they are
/// refreshed from the engine at the end only ([`EntityMirror::OnRequest`]).
pub fn headless_app() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, SimPlugins.build().disable::<ProbesPlugin>()));
    app.insert_resource(EntityMirror::OnRequest);
    // The fixed-step systems run strictly one after another; a single-threaded
    // executor avoids the task-pool overhead on every tick.
    app.edit_schedule(FixedUpdate, |s| {
        s.set_executor(SingleThreadedExecutor::new());
    });
    // Model time comes from whole fixed ticks, never from the wall clock.
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_max_delta(Duration::from_secs(u32::MAX as u64));
    app
}

/// Runs a scene to completion (or until stopped) and writes its output.
/// `stop` is polled between updates.
pub fn run(request: &RunRequest, stop: Arc<AtomicBool>) -> Result<Manifest, AppError> {
    let source = SceneSource::resolve(&request.scene);
    let mut scene = source.load()?;
    if let Some(dir) = &request.continue_from {
        let (ex, inh) = last_state(dir, &scene).map_err(AppError::Input)?;
        scene.initial = Initial::Explicit {
            ex: ex.into(),
            inh: inh.into(),
        };
    }
    run_scene(scene, &source.to_string(), request, stop)
}

/// The last recorded state (E and I) of the run in `dir`, which must be of
/// `scene`'s grid. Only the last sample is read, however long the run.
pub fn last_state(dir: &Path, scene: &FieldScene) -> Result<(Vec<f64>, Vec<f64>), String> {
    let what = |e: &dyn std::fmt::Display| format!("--continue-from {}: {e}", dir.display());
    let earlier = FieldScene::load(&dir.join("scene.ron")).map_err(|e| what(&e))?;
    let (g, h) = (earlier.grid, scene.grid);
    if (g.rows, g.cols) != (h.rows, h.cols) {
        return Err(what(&format!(
            "that run's grid is {} × {}, this scene's is {} × {}; continue only on the same grid",
            g.rows, g.cols, h.rows, h.cols
        )));
    }
    let stored = StoredRun::open(dir, h.rows, h.cols).map_err(|e| what(&e))?;
    if stored.layout.stride != 1 {
        return Err(what(&format!(
            "that run kept every {}th cell; continue from a run that recorded every cell",
            stored.layout.stride
        )));
    }
    if stored.samples == 0 {
        return Err(what(&"the run has no samples"));
    }
    let mut state = Vec::with_capacity(2);
    for name in ["E", "I"] {
        let last = stored
            .sample(name, stored.samples - 1)
            .map_err(|e| what(&e))?;
        if let Some(k) = last.iter().position(|v| !v.is_finite()) {
            let (row, col) = h.position(k);
            return Err(what(&format!(
                "{name}: the last sample is not finite at cell (row {row}, col {col}) (the run blew up); \
                 continue from a run that completed"
            )));
        }
        state.push(last);
    }
    let i = state.pop().expect("two arrays");
    let e = state.pop().expect("two arrays");
    Ok((e, i))
}

/// The arrays of a run of `scene` in `out`: new ones, or with `resume` those
/// of the earlier run there, cut to that flush.
fn open_sink(
    out: &Path,
    format: OutputFormat,
    layout: Layout,
    scene: &FieldScene,
    resume: Option<Flushed>,
) -> Result<Box<dyn SampleSink>, eifield_store::StoreError> {
    Ok(match (format, resume) {
        (OutputFormat::Npy, None) => Box::new(NpySink::create(out, layout)?),
        (OutputFormat::Npy, Some(at)) => Box::new(NpySink::resume(out, layout, at.samples)?),
        (OutputFormat::Zarr, None) => Box::new(ZarrSink::create(
            out,
            layout,
            &scene.to_ron_string(),
            ZarrOptions::for_layout(layout),
        )?),
        (OutputFormat::Zarr, Some(at)) => Box::new(ZarrSink::resume(out, layout, at.samples)?),
    })
}

/// As [`run`], for a scene already loaded; `source` names it in messages and
/// in the manifest (`request.scene` is not read).
pub fn run_scene(
    scene: FieldScene,
    source: &str,
    request: &RunRequest,
    stop: Arc<AtomicBool>,
) -> Result<Manifest, AppError> {
    let created = !request.out.exists();
    if request.resume && request.output.is_given() {
        return Err(AppError::Input(
            "--resume goes on in the format, element type and stride the run was written with; \
             leave out --format, --dtype and --stride"
                .into(),
        ));
    }
    let asked_format = request.output.format.unwrap_or(scene.run.format);
    if request.output.stride.is_some_and(|n| n != 1) && asked_format == OutputFormat::Npy {
        return Err(AppError::Input(
            "--stride keeps every n-th cell in a Zarr store; add --format zarr".into(),
        ));
    }
    let resumed = if request.resume {
        resume_point(&request.out, &scene)?
    } else {
        prepare_out_dir(&request.out, request.force)?;
        None
    };
    let threads = request
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cpu_options = EngineOptions {
        threads,
        simd: None,
    };
    let mut gpu = None;
    let engine = match FieldEngine::build(&scene, request.backend, cpu_options, &mut gpu) {
        Ok(engine) => engine,
        Err(e) => {
            if created {
                // Leave nothing behind for a run that never started.
                let _ = std::fs::remove_dir(&request.out);
            }
            return Err(AppError::Input(format!("{source}: {e}")));
        }
    };
    let mut engine = engine;
    let (rows, cols) = (scene.grid.rows, scene.grid.cols);
    let format = match &resumed {
        Some(r) => r.format,
        None => asked_format,
    };
    let layout = match &resumed {
        Some(r) => Layout::full(rows, cols, r.dtype),
        None => Layout {
            rows,
            cols,
            stride: request.output.stride.unwrap_or(1),
            dtype: request.output.dtype.unwrap_or(engine.precision()),
        },
    };
    // A session replays for its own length.
    let run_spec = match &scene.events {
        Some(events) => events.run(&scene.run),
        None => scene.run,
    };
    let samples_requested = run_spec.samples();
    // A session replays tick by tick at its own rate; other scenes tick once per sample.
    let sample_rate = scene.run.sample_rate;
    let (ticks_per_unit, ticks_per_sample) = match &scene.events {
        Some(events) => (
            events.tick_rate(sample_rate),
            events.ticks_per_sample(sample_rate),
        ),
        None => (sample_rate, 1),
    };
    // The resolved scene runs the same without seeds; a session is written as
    // given, since its parameter edits apply to the scene as it was written.
    let mut written = if scene.events.is_some() {
        scene.clone()
    } else {
        scene.resolved()
    };
    // Rerunning the folder's scene writes the same files.
    written.run.format = format;
    // A resumed run's folder holds them already.
    if resumed.is_none() {
        remove_other_format(&request.out, format)?;
        // Coupling matrices live beside the scene, so that the folder reruns.
        eifield_model::coupling::store_matrices(&mut written.coupling.kernel, &request.out)
            .map_err(AppError::Input)?;
        // So do per-cell arrays (explicit drives, a state to continue from).
        written
            .store_cell_arrays(&request.out, "")
            .map_err(AppError::Output)?;
        let scene_path = request.out.join("scene.ron");
        std::fs::write(&scene_path, written.to_ron_string())
            .map_err(|e| AppError::Input(format!("cannot write {}: {e}", scene_path.display())))?;
    }

    let info = engine.info();
    // A resumed run goes on from its last flushed sample, with its engine.
    let resumed = resumed.filter(|r| r.samples > 0);
    let resume_tick = match &resumed {
        Some(r) => {
            r.check_engine(&info)?;
            if r.dtype == Precision::F32 && engine.precision() == Precision::F64 {
                return Err(AppError::Input(
                    "--resume: the run recorded float32, not the f64 engine's whole state".into(),
                ));
            }
            let row = r.samples - 1;
            let input = |e: &dyn std::fmt::Display| AppError::Input(format!("--resume: {e}"));
            let stored = StoredRun::open(&request.out, rows, cols).map_err(|e| input(&e))?;
            let e = stored.sample("E", row).map_err(|e| input(&e))?;
            let i = stored.sample("I", row).map_err(|e| input(&e))?;
            let tick = row * ticks_per_sample;
            engine
                .resume_at(&e, &i, tick as f64 / ticks_per_unit, r.steps)
                .map_err(|e| input(&e))?;
            tick
        }
        None => 0,
    };
    let mut manifest = Manifest {
        program: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        scene_name: scene.name.clone(),
        scene_file: source.to_owned(),
        grid: [scene.grid.rows, scene.grid.cols],
        seeds: Seeds::of(&scene),
        method: format!("{:?}", engine.method()),
        dt: engine.dt(),
        backend: info.backend,
        adapter: info.adapter,
        precision: info.precision,
        threads: engine.threads(),
        format: match format {
            OutputFormat::Npy => "npy",
            OutputFormat::Zarr => "zarr",
        },
        dtype: dtype_name(layout.dtype),
        stride: layout.stride,
        simd: match &engine {
            FieldEngine::Cpu(cpu) => Some(cpu.simd().name()),
            FieldEngine::CpuSingle(cpu) => Some(cpu.engine.simd().name()),
            FieldEngine::Gpu(_) => None,
        },
        gpu_step: info.gpu_step,
        steps: resumed.as_ref().map_or(0, |r| r.steps),
        samples: resumed.as_ref().map_or(0, |r| r.samples),
        samples_requested,
        model_time: resume_tick as f64 / ticks_per_unit,
        wall_time_s: resumed.as_ref().map_or(0.0, |r| r.wall_time_s),
        stop: StopReason::Running,
    };
    write_manifest(&request.out, &manifest).map_err(AppError::Input)?;
    // After each flush the manifest counts what the arrays hold, so that a
    // killed run's folder says how far it got.
    let mut progress_manifest = manifest.clone();
    let out_dir = request.out.clone();
    let on_flush: OnFlush = Box::new(move |flushed: Flushed| {
        progress_manifest.samples = flushed.samples;
        progress_manifest.steps = flushed.steps;
        progress_manifest.model_time = flushed.tick as f64 / ticks_per_unit;
        write_manifest(&out_dir, &progress_manifest)
    });
    let resume_at = resumed.as_ref().map(|r| Flushed {
        samples: r.samples,
        tick: resume_tick,
        steps: r.steps,
    });
    let sink = open_sink(&request.out, format, layout, &written, resume_at)
        .map_err(|e| AppError::Input(format!("cannot write the output: {e}")))?;
    let mut recorder = Recorder::create(
        &request.out,
        sink,
        (ticks_per_sample, sample_rate, samples_requested),
        Some(on_flush),
        resume_at,
    )
    .map_err(|e| AppError::Input(format!("cannot write the output: {e}")))?;
    if manifest.precision == "f32" {
        eprintln!(
            "note: f32 is for exploration: its rounding can move a spike or a wave front; \
             check a result by running the scene again with `--precision f64`"
        );
    }
    if manifest.gpu_step == Some("per stage") {
        eprintln!(
            "note: the coupling kernel's stencil is too wide for the GPU's fused step kernel; \
             each step runs one dispatch per stage"
        );
    }

    let mut app = headless_app();
    let settings = SimSettings {
        ticks_per_unit,
        engine: cpu_options,
        backend: request.backend,
    };
    if let Some(context) = gpu {
        app.insert_resource(GpuDevice {
            context,
            renderer_shares_it: false,
        });
    }
    if let Err(e) = recorder.flush() {
        return Err(AppError::Input(format!("cannot write the output: {e}")));
    }
    // Before the oscillators are spawned (see `install_engine`).
    app.insert_resource(recorder);
    install_replay(app.world_mut(), &scene, written, engine, settings)
        .map_err(|e| AppError::Input(format!("{source}: {e}")))?;
    if resume_tick > 0 {
        let world = app.world_mut();
        world.resource_mut::<Session>().tick = resume_tick;
        world.resource_mut::<SimClock>().ticks = resume_tick;
    }

    let total_ticks = (samples_requested - 1) * ticks_per_sample;
    let ticks_per_update = (CELL_TICKS_PER_UPDATE / (rows * cols).max(1)).max(1) as u64;
    let progress = DelayedProgress::new(
        total_ticks,
        "{spinner} [{elapsed_precise}] {wide_bar} t = {msg} ({percent}%, eta {eta})",
        request.quiet,
    );
    let started = Instant::now();
    let mut disk_wait = std::time::Duration::ZERO;
    app.update(); // Startup: records sample 0, integrates nothing.
    let stop_reason = loop {
        let tick = app.world().resource::<Session>().tick;
        if let SimStatus::BlownUp(b) = app.world().resource::<SimStatus>()
            && !app.world().resource::<Session>().reset_due()
        {
            break StopReason::BlowUp {
                time: b.time,
                row: b.row,
                col: b.col,
                variable: b.variable.to_owned(),
                message: b.to_string(),
            };
        }
        if let SimStatus::Failed(message) = app.world().resource::<SimStatus>() {
            break StopReason::GpuFailure {
                message: message.clone(),
            };
        }
        if let Some(message) = app.world().resource::<Recorder>().error() {
            break StopReason::WriteError { message };
        }
        if tick >= total_ticks {
            break StopReason::Completed;
        }
        if stop.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        // Say so when the simulation waits for the disk.
        let waited = app.world().resource::<Recorder>().disk_wait();
        let note = if waited > disk_wait + DISK_WAIT_NOTICE {
            " (waiting for the disk)"
        } else {
            ""
        };
        disk_wait = waited;
        progress.update(
            tick,
            format!(
                "{:.2} / {}{note}",
                tick as f64 / ticks_per_unit,
                run_spec.duration
            ),
        );
        let batch = ticks_per_update.min(total_ticks - tick) as u32;
        app.insert_resource(TimeUpdateStrategy::FixedTimesteps(batch));
        app.update();
    };
    let wall = started.elapsed();
    progress.finish();

    let world = app.world_mut();
    refresh_entities(world);
    let mut stop_reason = stop_reason;
    if let Err(e) = world.resource_mut::<Recorder>().flush() {
        stop_reason = StopReason::WriteError {
            message: e.to_string(),
        };
    }
    let session_ticks = world.resource::<Session>().tick;
    let engine = world.resource::<Lattice>().engine();
    // The manifest counts what the arrays surely hold (after a write error,
    // what the last good flush left) and, but after a blow-up (whose time
    // and steps it names), the steps and time of the last of those samples:
    // where `--resume` goes on from.
    let flushed = world.resource::<Recorder>().last_flushed();
    manifest.samples = flushed.map_or(0, |f| f.samples);
    (manifest.steps, manifest.model_time) = match (&stop_reason, flushed) {
        (StopReason::BlowUp { .. }, _) | (_, None) => {
            (engine.steps(), session_ticks as f64 / ticks_per_unit)
        }
        (_, Some(f)) => (f.steps, f.tick as f64 / ticks_per_unit),
    };
    // A resumed run's wall time adds to the time before.
    manifest.wall_time_s += wall.as_secs_f64();
    manifest.stop = stop_reason;
    write_manifest(&request.out, &manifest).map_err(AppError::Output)?;
    Ok(manifest)
}
