//! `eifield analyze`: measures how far the activity of a recorded run spread
//! from its stimulated cells. It runs a control (the same resolved scene with
//! every stimulus removed), then writes activation maps, the induced cells, a
//! summary with the extent of induction and the wave speed, and figures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eifield_model::analysis::{self, Spread};
use eifield_model::npy::write_array;
use eifield_model::scene::Stimulus;
use serde::Serialize;

use super::AppError;
use super::plot::{
    self, DEFAULT_FIGURE_SIZE, RunData, activation_map, distance_time, kymograph, save_png,
};
use super::run::{self as headless, RunRequest, StopReason};

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

/// `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The threshold used.
    pub threshold: f64,
    /// The extent of induction in cells (null without stimulated cells).
    pub extent: Option<f64>,
    /// Wave speed in cells per unit of model time (null if fewer than 5 cells qualify).
    pub speed: Option<f64>,
    /// Distance at t = 0 of the fit.
    pub intercept: Option<f64>,
    /// r² of the fit.
    pub r2: Option<f64>,
    /// Cells the speed was fitted to.
    pub cells_used: usize,
    /// Activations in the driven run.
    pub activations_driven: i64,
    /// Activations in the control run.
    pub activations_control: i64,
    /// Cells induced.
    pub cells_induced: usize,
}

impl Summary {
    fn of(spread: &Spread, threshold: f64) -> Self {
        Self {
            threshold,
            extent: spread.extent,
            speed: spread.fit.map(|f| f.speed),
            intercept: spread.fit.map(|f| f.intercept),
            r2: spread.fit.map(|f| f.r2),
            cells_used: spread.fit.map_or(0, |f| f.cells),
            activations_driven: spread.driven.total(),
            activations_control: spread.control.total(),
            cells_induced: spread.induced.iter().filter(|&&i| i).count(),
        }
    }
}

/// The stimulated cells of a scene (row-major indices, each once).
fn stimulated_cells(run: &RunData) -> Vec<usize> {
    let grid = run.scene.grid;
    let mut cells: Vec<usize> = run
        .scene
        .effective_stimuli()
        .iter()
        .map(|s| {
            let Stimulus::PulseTrain { row, col, .. } = *s;
            grid.index(row, col)
        })
        .collect();
    cells.sort_unstable();
    cells.dedup();
    cells
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

    let grid = run.scene.grid;
    let stimulated = stimulated_cells(&run);
    let spread = analysis::spread(
        &grid,
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
