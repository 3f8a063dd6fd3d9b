//! `eifield analyze`: measures how far the activity of a recorded run spread
//! from its stimulated cells. It runs a control (the same resolved scene with
//! every stimulus removed), then writes activation maps, the induced cells, a
//! summary with the extent of induction and the wave speed, and figures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eifield_model::analysis::{self, Spread, Summary};
use eifield_model::coupling::Coupler;
use eifield_model::npy::write_array;

use super::AppError;
use super::plot::{
    self, DEFAULT_FIGURE_SIZE, RunData, activation_map, distance_time, kymograph, save_png,
};
use super::run::{self as headless, RunRequest, StopReason};
use crate::sim::backend::{BackendChoice, BackendRequest, PrecisionChoice};

/// The files the analysis writes (besides the control run's folder).
pub const ANALYSIS_FILES: [&str; 7] = [
    "first_activation.npy",
    "activation_count.npy",
    "induced.npy",
    "summary.json",
    "activation_map.png",
    "distance_time.png",
    "kymograph.png",
];
/// Isochrones drawn per activation map (the step is the time span over this).
const ISOCHRONES: f64 = 10.0;

/// What to analyse and where to write it.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    /// A folder written by `eifield run`.
    pub run_dir: PathBuf,
    /// Where to write (default: `RUN_DIR/analysis`).
    pub out: Option<PathBuf>,
    /// The threshold an activation crosses upward.
    pub threshold: f64,
    /// Replace an earlier analysis.
    pub force: bool,
    /// No progress bar for the control run.
    pub quiet: bool,
    /// Engine threads of the control run (`None`: all cores).
    pub threads: Option<usize>,
}

/// Analyses a run (see the module docs); returns the summary and the folder written.
pub fn analyze(
    request: &AnalyzeRequest,
    stop: Arc<AtomicBool>,
) -> Result<(Summary, PathBuf), AppError> {
    let threshold = request.threshold;
    if !threshold.is_finite() {
        return Err(AppError::Input(format!(
            "--threshold must be a finite number (got {threshold})"
        )));
    }
    let run = RunData::load(&request.run_dir).map_err(AppError::Input)?;
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| request.run_dir.join("analysis"));
    if !request.force
        && let Some(existing) = ANALYSIS_FILES
            .iter()
            .map(|f| out.join(f))
            .chain([out.join("control")])
            .find(|p| p.exists())
    {
        return Err(AppError::Input(format!(
            "{} exists; pass --force to replace the analysis",
            existing.display()
        )));
    }
    std::fs::create_dir_all(&out)
        .map_err(|e| AppError::Input(format!("cannot create {}: {e}", out.display())))?;

    // The control: the same resolved scene, every stimulus removed.
    let mut control_scene = run.scene.clone();
    control_scene.stimuli = Some(Vec::new());
    let control_dir = out.join("control");
    let manifest = headless::run_scene(
        control_scene,
        &format!(
            "{} without stimuli",
            request.run_dir.join("scene.ron").display()
        ),
        &RunRequest {
            scene: PathBuf::new(),
            out: control_dir.clone(),
            force: request.force,
            quiet: request.quiet,
            threads: request.threads,
            continue_from: None,
            resume: false,
            backend: backend_of_run(&request.run_dir),
            output: Default::default(),
        },
        stop,
    )?;
    if manifest.stop != StopReason::Completed {
        return Err(AppError::Output(format!(
            "the control run did not complete ({:?}); nothing was analysed",
            manifest.stop
        )));
    }
    let control = RunData::load(&control_dir).map_err(AppError::Output)?;

    let coupler = Coupler::build(&run.scene.coupling, run.scene.grid)
        .map_err(|e| AppError::Input(e.to_string()))?;
    let stimulated = run.scene.stimulated_cells();
    let spread = analysis::spread(
        &coupler,
        &stimulated,
        (&run.e, &run.t),
        (&control.e, &control.t),
        threshold,
    );
    let summary = Summary::of(&spread, threshold);
    write_results(&out, &run, &stimulated, &spread, &summary)?;
    Ok((summary, out))
}

fn write_results(
    out: &Path,
    run: &RunData,
    stimulated: &[usize],
    spread: &Spread,
    summary: &Summary,
) -> Result<(), AppError> {
    let grid = run.scene.grid;
    let shape = [grid.rows, grid.cols];
    let failed = |e: String| AppError::Output(e);
    write_array(&out.join(ANALYSIS_FILES[0]), &shape, &spread.driven.first)
        .map_err(|e| failed(e.to_string()))?;
    write_array(&out.join(ANALYSIS_FILES[1]), &shape, &spread.driven.count)
        .map_err(|e| failed(e.to_string()))?;
    write_array(&out.join(ANALYSIS_FILES[2]), &shape, &spread.induced)
        .map_err(|e| failed(e.to_string()))?;
    let text = serde_json::to_string_pretty(summary).map_err(|e| failed(e.to_string()))?;
    let path = out.join(ANALYSIS_FILES[3]);
    std::fs::write(&path, text + "\n").map_err(|e| failed(format!("{}: {e}", path.display())))?;

    plot::register_font();
    let (t0, t1) = run.t_range();
    let step = (t1 - t0) / ISOCHRONES;
    save_png(&out.join(ANALYSIS_FILES[4]), DEFAULT_FIGURE_SIZE, |root| {
        activation_map(root, &grid, &spread.driven.first, stimulated, step)
    })
    .map_err(failed)?;
    let title = match spread.fit {
        Some(f) => format!(
            "Distance against first activation: {:.3} cells per unit (r² = {:.3}, {} cells)",
            f.speed, f.r2, f.cells
        ),
        None => format!(
            "Distance against first activation: no speed ({} cells qualify, {} needed)",
            spread.points.len(),
            analysis::SPEED_MIN_CELLS
        ),
    };
    save_png(&out.join(ANALYSIS_FILES[5]), DEFAULT_FIGURE_SIZE, |root| {
        distance_time(
            root,
            &spread.points,
            spread.fit.map(|f| (f.speed, f.intercept)),
            &title,
        )
    })
    .map_err(failed)?;
    // Along the row through the first stimulated cell (the middle row without one).
    let row = stimulated
        .first()
        .map_or(grid.rows / 2, |&k| grid.position(k).0);
    let line = analysis::line_cells((row, 0), (row, grid.cols - 1));
    save_png(&out.join(ANALYSIS_FILES[6]), DEFAULT_FIGURE_SIZE, |root| {
        kymograph(root, run, &line)
    })
    .map_err(failed)?;
    Ok(())
}

/// The engine a recorded run used, from its manifest, so that its control
/// runs on the same one (`auto` when the manifest does not say).
fn backend_of_run(run_dir: &Path) -> BackendRequest {
    let manifest: Option<serde_json::Value> =
        std::fs::read_to_string(run_dir.join("manifest.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
    let field = |key: &str| {
        manifest
            .as_ref()
            .and_then(|m| m[key].as_str().map(str::to_owned))
    };
    BackendRequest {
        backend: match field("backend").as_deref() {
            Some("gpu") => BackendChoice::Gpu,
            Some("cpu") => BackendChoice::Cpu,
            _ => BackendChoice::Auto,
        },
        precision: match field("precision").as_deref() {
            Some("f32") => Some(PrecisionChoice::F32),
            Some("f64") => Some(PrecisionChoice::F64),
            _ => None,
        },
    }
}
