//! `eifield sweep`: runs the points of a sweep file on this machine (all of
//! them on `--jobs` workers, or one with `--index` for a Slurm job array),
//! one row per point in `OUT/points/`, and gathers the rows into
//! `OUT/points.csv` (also `--collect OUT`). Finished points are skipped, so
//! an interrupted sweep resumes where it stopped.
//!
//! On the GPU the points run in batches: the scenes of a batch's points
//! and their controls integrate together ([`eifield_gpu::GpuEnsemble`]),
//! and their rows are written when the batch ends.
//!
//! `OUT/sweep.ron` is a copy of the sweep that names `OUT/base.ron`, the base
//! scene as it was loaded, so the folder describes itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use eifield_gpu::run::auto_considers_gpu;
use eifield_gpu::{ContextRequest, GpuContext};
use eifield_model::FieldScene;
use eifield_model::scene::OutputFormat;
use eifield_model::sweep::{
    PointRow, RunArrays, Sweep, csv_header, csv_line, run_point_with, run_points_with,
    run_to_arrays,
};

use crate::sim::backend::BackendChoice;

use super::AppError;
use super::progress::DelayedProgress;

/// What to keep of each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Keep {
    /// The table's row only.
    Summary,
    /// Also the point's run folder (`OUT/runs/NNNNNN/`).
    Runs,
}

/// A sweep to run (or to collect).
#[derive(Debug, Clone)]
pub struct SweepRequest {
    /// The sweep file.
    pub spec: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Points run at once.
    pub jobs: usize,
    /// What to keep of each point.
    pub keep: Keep,
    /// Run only this point.
    pub index: Option<u64>,
    /// The engine's precision, overriding the sweep file's.
    pub precision: Option<eifield_model::Precision>,
    /// Which engine runs the points (`auto`: the GPU for the points whose
    /// lattice `eifield run --backend auto` would put there).
    pub backend: BackendChoice,
    /// Points per GPU batch (`None`: as many as the device and this
    /// machine's memory hold; 1: one lattice at a time).
    pub batch: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Points of the sweep.
    pub points: u64,
    /// Points run now.
    pub ran: u64,
    /// Points found finished and skipped.
    pub skipped: u64,
    /// Points still missing from the table.
    pub missing: u64,
    /// Whether the sweep was interrupted.
    pub interrupted: bool,
    /// Wall time.
    pub wall_time_s: f64,
}

fn point_file(out: &Path, index: u64) -> PathBuf {
    out.join("points").join(format!("{index:06}.json"))
}

fn input(e: impl std::fmt::Display) -> AppError {
    AppError::Input(e.to_string())
}

fn output(e: impl std::fmt::Display) -> AppError {
    AppError::Output(e.to_string())
}

/// Writes `text` to `path` through a temporary file, so that a reader (or a
/// resumed sweep) never sees half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Sets up `out` for `sweep`: a new folder, or one holding the same sweep.
fn prepare(sweep: &Sweep, out: &Path) -> Result<(), AppError> {
    let mut spec = sweep.spec.clone();
    spec.base = "base.ron".into();
    let spec_text = spec.to_ron_string();
    let spec_path = out.join("sweep.ron");
    if spec_path.exists() {
        let earlier = Sweep::load(&spec_path).map_err(input)?;
        if earlier.spec != spec || earlier.base != sweep.base {
            return Err(AppError::Input(format!(
                "{} holds another sweep ({}); choose another --out",
                out.display(),
                spec_path.display()
            )));
        }
    } else if out.exists() && std::fs::read_dir(out).map_err(input)?.next().is_some() {
        return Err(AppError::Input(format!(
            "{} exists and holds no sweep; choose another --out",
            out.display()
        )));
    }
    std::fs::create_dir_all(out.join("points"))
        .map_err(|e| AppError::Input(format!("cannot create {}: {e}", out.display())))?;
    if !spec_path.exists() {
        // The base's per-cell arrays go into the folder beside base.ron.
        let mut base = sweep.base.clone();
        base.store_cell_arrays(out, "base.").map_err(output)?;
        std::fs::write(out.join("base.ron"), base.to_ron_string()).map_err(output)?;
        write_atomically(&spec_path, &spec_text).map_err(output)?;
    }
    Ok(())
}

/// Writes a point's run folder.
fn write_run(
    dir: &Path,
    scene: &FieldScene,
    run: &eifield_model::sweep::RunArrays,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut resolved = scene.resolved();
    eifield_model::coupling::store_matrices(&mut resolved.coupling.kernel, dir)?;
    resolved.store_cell_arrays(dir, "")?;
    // In the scene's format; an f32 run's arrays are float32, as `eifield run`
    // writes them.
    let (rows, cols) = (scene.grid.rows, scene.grid.cols);
    let layout = eifield_store::Layout::full(rows, cols, run.precision);
    let err = |e: eifield_store::StoreError| e.to_string();
    let mut sink: Box<dyn eifield_store::SampleSink> = match scene.run.format {
        OutputFormat::Npy => Box::new(eifield_store::NpySink::create(dir, layout).map_err(err)?),
        OutputFormat::Zarr => Box::new(
            eifield_store::ZarrSink::create(
                dir,
                layout,
                &resolved.to_ron_string(),
                eifield_store::zarr::ZarrOptions::for_layout(layout),
            )
            .map_err(err)?,
        ),
    };
    let cells = rows * cols;
    for (k, &t) in run.t.iter().enumerate() {
        let sample = k * cells..(k + 1) * cells;
        sink.append(&run.e[sample.clone()], &run.i[sample], t)
            .map_err(err)?;
    }
    sink.flush(true).map_err(err)?;
    std::fs::write(dir.join("scene.ron"), resolved.to_ron_string()).map_err(|e| e.to_string())
}

/// Runs a sweep (see the module docs). `stop` is polled between points.
pub fn sweep(request: &SweepRequest, stop: Arc<AtomicBool>) -> Result<SweepOutcome, AppError> {
    let started = std::time::Instant::now();
    let mut sweep = Sweep::load(&request.spec).map_err(input)?;
    if let Some(precision) = request.precision {
        sweep.spec.precision = precision;
    }
    if let Some(index) = request.index {
        sweep
            .point_scene(index)
            .map_err(|e| AppError::Input(format!("--index {index}: {e}")))?;
    }
    prepare(&sweep, &request.out)?;
    let out = &request.out;
    let indices: Vec<u64> = match request.index {
        Some(index) => vec![index],
        None => (0..sweep.points()).collect(),
    };
    let pending: Vec<u64> = indices
        .iter()
        .copied()
        .filter(|&k| !point_file(out, k).exists())
        .collect();
    let skipped = (indices.len() - pending.len()) as u64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = request.jobs.clamp(1, pending.len().max(1));
    let threads = (cores / jobs).max(1);
    let precision = sweep.spec.precision;
    let gpu: Option<GpuContext> = match request.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => Some(
            GpuContext::open(ContextRequest {
                precision: Some(precision),
                allow_software: true,
            })
            .map_err(|e| AppError::Input(format!("--backend gpu: {e}")))?,
        ),
        BackendChoice::Auto => eifield_gpu::run::auto_context(&sweep.base, Some(precision)),
    };
    let everything_on_gpu = request.backend == BackendChoice::Gpu;
    // Each scene of a point (and its control) on the GPU where asked, else on the CPU.
    let runner = |scene: &FieldScene| match &gpu {
        Some(ctx) if everything_on_gpu || auto_considers_gpu(scene) => (
            "gpu",
            eifield_gpu::run::run_to_arrays(ctx, scene, Some(precision)),
        ),
        _ => ("cpu", run_to_arrays(scene, threads, precision)),
    };
    let progress = DelayedProgress::new(
        pending.len() as u64,
        "{spinner} [{elapsed_precise}] {wide_bar} point {pos}/{len} ({per_sec}, eta {eta})",
        request.quiet,
    );
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failure: Mutex<Option<AppError>> = Mutex::new(None);
    let batched = gpu.as_ref().filter(|_| request.batch != Some(1));
    if let Some(ctx) = batched {
        let (points, members) =
            eifield_gpu::run::sweep_batch(ctx, &sweep.base, precision, request.batch);
        for chunk in pending.chunks(points) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let before = done.load(Ordering::SeqCst);
            let runner = |scenes: &[FieldScene]| {
                run_batch(
                    ctx,
                    scenes,
                    (precision, members),
                    everything_on_gpu,
                    &|fraction| {
                        let finished = before as f64 + fraction * chunk.len() as f64;
                        progress.update(finished as u64, String::new());
                        !stop.load(Ordering::SeqCst)
                    },
                )
            };
            let outcomes = run_points_with(&sweep, chunk, &runner).map_err(|e| {
                AppError::Output(format!(
                    "points {}…{}: {e}",
                    chunk[0],
                    chunk[chunk.len() - 1]
                ))
            })?;
            if stop.load(Ordering::SeqCst) {
                // Points stopped midway are run again on resuming.
                break;
            }
            for (&index, outcome) in chunk.iter().zip(outcomes) {
                keep_point(request, index, outcome)?;
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress.update(finished, String::new());
            }
        }
    } else {
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    loop {
                        if stop.load(Ordering::SeqCst)
                            || failure.lock().expect("not poisoned").is_some()
                        {
                            return;
                        }
                        let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                        let Some(&index) = pending.get(n) else {
                            return;
                        };
                        let result = run_point_with(&sweep, index, &runner)
                            .map_err(|e| AppError::Output(format!("point {index}: {e}")))
                            .and_then(|outcome| keep_point(request, index, outcome));
                        match result {
                            Ok(()) => {
                                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                                progress.update(finished, String::new());
                            }
                            Err(e) => {
                                *failure.lock().expect("not poisoned") = Some(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
    }
    progress.finish();
    if let Some(e) = failure.into_inner().expect("not poisoned") {
        return Err(e);
    }
    let ran = done.load(Ordering::SeqCst);
    let interrupted = stop.load(Ordering::SeqCst) && ran < pending.len() as u64;
    let missing = if request.index.is_some() {
        0
    } else {
        collect_rows(&sweep, out)?
    };
    Ok(SweepOutcome {
        points: sweep.points(),
        ran,
        skipped,
        missing,
        interrupted,
        wall_time_s: started.elapsed().as_secs_f64(),
    })
}

/// Writes a point's row (and, with `--keep runs`, its run folder).
fn keep_point(
    request: &SweepRequest,
    index: u64,
    (row, scene, run): (PointRow, FieldScene, RunArrays),
) -> Result<(), AppError> {
    let out = &request.out;
    if request.keep == Keep::Runs {
        write_run(&out.join("runs").join(format!("{index:06}")), &scene, &run)
            .map_err(|e| AppError::Output(format!("point {index}: {e}")))?;
    }
    let text = serde_json::to_string(&row).map_err(output)?;
    write_atomically(&point_file(out, index), &(text + "\n")).map_err(output)
}

/// Runs the scenes of a batch of points: on the GPU in batches of
/// `members` lattices those that go there (all, or under `auto` the large
/// ones), the others one at a time on the CPU with every core. `watch`
/// hears the fraction done and stops the batch by returning false.
fn run_batch(
    ctx: &GpuContext,
    scenes: &[FieldScene],
    (precision, members): (eifield_model::Precision, usize),
    everything_on_gpu: bool,
    watch: &(dyn Fn(f64) -> bool + Sync),
) -> Vec<(&'static str, Result<RunArrays, String>)> {
    let on_gpu: Vec<bool> = scenes
        .iter()
        .map(|s| everything_on_gpu || auto_considers_gpu(s))
        .collect();
    let gpu_scenes: Vec<FieldScene> = scenes
        .iter()
        .zip(&on_gpu)
        .filter(|(_, g)| **g)
        .map(|(s, _)| s.clone())
        .collect();
    let mut watch = |fraction: f64| watch(fraction);
    let mut gpu_runs = eifield_gpu::run::run_batch_to_arrays_watched(
        ctx,
        &gpu_scenes,
        Some(precision),
        members,
        &mut watch,
    )
    .into_iter();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    scenes
        .iter()
        .zip(on_gpu)
        .map(|(scene, gpu)| {
            if gpu {
                let run = gpu_runs.next().unwrap_or_else(|| Err("not run".into()));
                ("gpu", run)
            } else {
                ("cpu", run_to_arrays(scene, cores, precision))
            }
        })
        .collect()
}

/// Gathers the rows of `out` into `out/points.csv`; returns how many points
/// are still missing (the table then holds the others).
pub fn collect(out: &Path) -> Result<(u64, u64), AppError> {
    let spec = out.join("sweep.ron");
    if !spec.exists() {
        return Err(AppError::Input(format!(
            "{} holds no sweep (no sweep.ron); give the --out folder of `eifield sweep`",
            out.display()
        )));
    }
    let sweep = Sweep::load(&spec).map_err(input)?;
    let missing = collect_rows(&sweep, out)?;
    Ok((sweep.points(), missing))
}

fn collect_rows(sweep: &Sweep, out: &Path) -> Result<u64, AppError> {
    let mut lines = vec![csv_header(sweep)];
    let mut missing = 0;
    for index in 0..sweep.points() {
        let path = point_file(out, index);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let row: PointRow = serde_json::from_str(&text)
                    .map_err(|e| AppError::Input(format!("{}: {e}", path.display())))?;
                lines.push(csv_line(&row));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing += 1,
            Err(e) => return Err(AppError::Input(format!("{}: {e}", path.display()))),
        }
    }
    write_atomically(&out.join("points.csv"), &(lines.join("\n") + "\n")).map_err(output)?;
    Ok(missing)
}
