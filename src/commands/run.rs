//! Headless runs: a scene integrated as fast as the CPU allows through the same
//! ECS simulation as the viewer (with `MinimalPlugins`), recorded to `.npy`
//! files with a manifest, a progress bar and clean stops on Ctrl-C, SIGTERM or
//! a numerical blow-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use eifield_model::scene::{Heterogeneity, Initial, Noise};
use eifield_model::{Engine, EngineOptions, FieldScene};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::record::{RecordPlugin, Recorder};
use crate::sim::{SimClock, SimPlugin, SimStatus, install_engine};
use crate::stimulus::StimulusPlugin;

/// Jobs longer than this show a progress bar.
const PROGRESS_DELAY: Duration = Duration::from_secs(1);

/// A progress bar on stderr that appears only once a job has run for
/// [`PROGRESS_DELAY`] (and never when `quiet`).
pub struct DelayedProgress {
    bar: ProgressBar,
    started: Instant,
    quiet: bool,
}

impl DelayedProgress {
    /// A hidden bar of `len` steps drawn with an indicatif `template`.
    pub fn new(len: u64, template: &str, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        bar.set_style(ProgressStyle::with_template(template).expect("valid progress template"));
        Self {
            bar,
            started: Instant::now(),
            quiet,
        }
    }

    /// Moves the bar to `position` with `message`, showing it once the delay has passed.
    pub fn update(&self, position: u64, message: String) {
        if !self.quiet && self.bar.is_hidden() && self.started.elapsed() >= PROGRESS_DELAY {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
/// Cell-ticks integrated per app update (bounds the work between checks for Ctrl-C).
const CELL_TICKS_PER_UPDATE: usize = 1 << 16;

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The scene file.
    pub scene: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Write into an existing folder, replacing its run files.
    pub force: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Engine threads (`None`: all cores).
    pub threads: Option<usize>,
}

/// A failure that stops the run; `code` is the process exit code.
#[derive(Debug)]
pub struct RunError {
    /// 2 for bad input, 1 otherwise.
    pub code: u8,
    /// What went wrong, for the user.
    pub message: String,
}

impl RunError {
    fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
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
    /// Scene file as given.
    pub scene_file: String,
    /// `[rows, cols]`.
    pub grid: [usize; 2],
    /// Seeds of the random parts of the scene.
    pub seeds: Seeds,
    /// Integration method.
    pub method: String,
    /// Largest step.
    pub dt: f64,
    /// Engine threads.
    pub threads: usize,
    /// SIMD kernel.
    pub simd: &'static str,
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

/// The files a run writes into its folder.
pub const RUN_FILES: [&str; 5] = ["E.npy", "I.npy", "t.npy", "scene.ron", "manifest.json"];

/// Creates the output folder, refusing an existing one unless `force`.
fn prepare_out_dir(out: &Path, force: bool) -> Result<(), RunError> {
    if out.exists() {
        if !force {
            return Err(RunError::input(format!(
                "output folder {} already exists; choose another --out, or pass --force to replace its run files ({})",
                out.display(),
                RUN_FILES.join(", ")
            )));
        }
        if !out.is_dir() {
            return Err(RunError::input(format!(
                "--out {} exists and is not a folder",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| {
        RunError::input(format!(
            "cannot create output folder {}: {e}",
            out.display()
        ))
    })
}

fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), String> {
    let text = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    let path = out.join("manifest.json");
    std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// The headless app: the simulation, stimulus and recording plugins on
/// `MinimalPlugins`, advanced a fixed number of ticks per update.
pub fn headless_app() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, SimPlugin, StimulusPlugin, RecordPlugin));
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
pub fn run(request: &RunRequest, stop: Arc<AtomicBool>) -> Result<Manifest, RunError> {
    let scene = FieldScene::load(&request.scene).map_err(|e| RunError::input(e.to_string()))?;
    let created = !request.out.exists();
    prepare_out_dir(&request.out, request.force)?;
    let threads = request
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let engine = match Engine::from_scene(
        &scene,
        EngineOptions {
            threads,
            simd: None,
        },
    ) {
        Ok(engine) => engine,
        Err(e) => {
            if created {
                // Leave nothing behind for a run that never started.
                let _ = std::fs::remove_dir(&request.out);
            }
            return Err(RunError::input(format!("{}: {e}", request.scene.display())));
        }
    };
    let cells = scene.grid.len();
    let samples_requested = scene.run.samples();
    let mut recorder = Recorder::create(
        &request.out,
        cells,
        1,
        scene.run.sample_rate,
        samples_requested,
    )
    .map_err(|e| RunError::input(format!("cannot write the output: {e}")))?;
    let resolved = scene.resolved();
    let scene_path = request.out.join("scene.ron");
    std::fs::write(&scene_path, resolved.to_ron_string())
        .map_err(|e| RunError::input(format!("cannot write {}: {e}", scene_path.display())))?;

    let mut manifest = Manifest {
        program: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        scene_name: scene.name.clone(),
        scene_file: request.scene.display().to_string(),
        grid: [scene.grid.rows, scene.grid.cols],
        seeds: Seeds::of(&scene),
        method: format!("{:?}", engine.method()),
        dt: engine.dt,
        threads: engine.threads(),
        simd: engine.simd().name(),
        steps: 0,
        samples: 0,
        samples_requested,
        model_time: 0.0,
        wall_time_s: 0.0,
        stop: StopReason::Running,
    };
    write_manifest(&request.out, &manifest).map_err(RunError::input)?;

    let mut app = headless_app();
    install_engine(app.world_mut(), resolved, engine, scene.run.sample_rate);
    if let Err(e) = recorder.flush() {
        return Err(RunError::input(format!("cannot write the output: {e}")));
    }
    app.insert_resource(recorder);

    let total_ticks = samples_requested - 1;
    let ticks_per_update = (CELL_TICKS_PER_UPDATE / cells.max(1)).max(1) as u64;
    let progress = DelayedProgress::new(
        total_ticks,
        "{spinner} [{elapsed_precise}] {wide_bar} t = {msg} ({percent}%, eta {eta})",
        request.quiet,
    );
    let started = Instant::now();
    app.update(); // Startup: records sample 0, integrates nothing.
    let stop_reason = loop {
        let clock = *app.world().resource::<SimClock>();
        if let SimStatus::BlownUp(b) = app.world().resource::<SimStatus>() {
            break StopReason::BlowUp {
                time: b.time,
                row: b.row,
                col: b.col,
                variable: b.variable.to_owned(),
                message: b.to_string(),
            };
        }
        if let Some(message) = app.world().resource::<Recorder>().error.clone() {
            break StopReason::WriteError { message };
        }
        if clock.ticks >= total_ticks {
            break StopReason::Completed;
        }
        if stop.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        progress.update(
            clock.ticks,
            format!("{:.2} / {}", clock.time(), scene.run.duration),
        );
        let batch = ticks_per_update.min(total_ticks - clock.ticks) as u32;
        app.insert_resource(TimeUpdateStrategy::FixedTimesteps(batch));
        app.update();
    };
    let wall = started.elapsed();
    progress.finish();

    let world = app.world_mut();
    let mut stop_reason = stop_reason;
    if let Err(e) = world.resource_mut::<Recorder>().flush() {
        stop_reason = StopReason::WriteError {
            message: e.to_string(),
        };
    }
    let clock = *world.resource::<SimClock>();
    let engine = &world.resource::<crate::sim::Lattice>().0;
    manifest.steps = engine.steps;
    manifest.samples = world.resource::<Recorder>().samples();
    manifest.model_time = clock.time();
    manifest.wall_time_s = wall.as_secs_f64();
    manifest.stop = stop_reason;
    write_manifest(&request.out, &manifest).map_err(|message| RunError { code: 1, message })?;
    Ok(manifest)
}
