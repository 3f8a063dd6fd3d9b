//! The command line: `eifield [view] [scene]`, `eifield run <scene> --out <dir>`,
//! `eifield render <scene> --out <video.mp4>`, `eifield plot <run dir>`,
//! `eifield bench` and `eifield scenes`. A scene is a RON file or the name of
//! a built-in scene.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use eifield_model::analysis::DEFAULT_THRESHOLD;
use eifield_model::scene::{
    BUILTIN_SCENES, ColorMapName, DEFAULT_SCENE, NamedChoice, OutputFormat, SceneSource, ViewField,
    ViewMode,
};

use super::analyze::{self, AnalyzeRequest};
use super::bench::{self, TimedScene};
use super::plot::{self as figures, FigureOptions};
use super::render::{self, RenderRequest, RenderStop};
use super::run::{self as headless, OutputRequest, RunRequest, StopReason};
use super::sweep;
use super::{AppError, EXIT_FAILURE, EXIT_INTERRUPTED};
use crate::capture::recording::DEFAULT_CAPTURE_DIR;
use crate::sim::backend::{BackendChoice, BackendRequest, PrecisionChoice};

/// Simulate a lattice of coupled excitatory–inhibitory oscillators.
#[derive(Parser, Debug)]
#[command(name = "eifield", version, about)]
pub struct Cli {
    /// What to do (default: open the viewer on the built-in `waves` scene).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The scene `eifield bench` times by default.
pub const DEFAULT_BENCH_SCENE: &str = "seed_notebook";

/// A clap parser for the names of a [`NamedChoice`] (listed in `--help`).
fn named<T: NamedChoice + Send + Sync + Clone>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::names())
        .try_map(|name| T::from_name(&name).ok_or_else(|| format!("unknown value {name}")))
}

/// A thread count: at least 1.
fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("must be a whole number ≥ 1 (got {text})")),
    }
}

/// `--backend` and `--precision`, shared by the commands that integrate.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BackendArgs {
    /// Which engine integrates: `cpu`, `gpu` (any adapter, a software one too) or `auto` (the
    /// GPU for lattices of at least 65 536 cells when a hardware GPU has what the precision
    /// needs, else the CPU).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Precision of the engine: f32 is for exploration, f64 to check a result (default: f64
    /// on the CPU; on the GPU f64 where it has f64 shaders, else f32).
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionChoice>,
}

impl BackendArgs {
    /// The request these arguments make.
    pub fn request(self) -> BackendRequest {
        BackendRequest {
            backend: self.backend,
            precision: self.precision,
        }
    }
}

/// What a headless run records, in which files.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// `npy`: E.npy, I.npy, t.npy; `zarr`: OUT/run.zarr, a chunked, compressed Zarr store
    /// that xarray opens (default: the scene's `run.format`, else npy).
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub format: Option<FormatChoice>,
    /// The element type of the recorded E and I (default: the engine's precision); the
    /// engine integrates in its own.
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub dtype: Option<PrecisionChoice>,
    /// Record every N-th row and column only (with --format zarr), for large lattices.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "resume")]
    pub stride: Option<u32>,
}

/// The `--format` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatChoice {
    /// NumPy arrays.
    Npy,
    /// A Zarr version 3 store.
    Zarr,
}

impl OutputArgs {
    /// The request these arguments make.
    pub fn request(self) -> OutputRequest {
        OutputRequest {
            format: self.format.map(|f| match f {
                FormatChoice::Npy => OutputFormat::Npy,
                FormatChoice::Zarr => OutputFormat::Zarr,
            }),
            dtype: self.dtype.map(Into::into),
            stride: self.stride.map(|n| n as usize),
        }
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the interactive 3D viewer on a scene.
    View {
        /// The scene: a RON file, or a built-in scene's name (see `eifield scenes`).
        #[arg(default_value = DEFAULT_SCENE)]
        scene: PathBuf,
        /// Drive the viewer from a script file (for automated checks).
        #[arg(long)]
        script: Option<PathBuf>,
        /// Folder for recordings (F9) and screenshots (F12).
        #[arg(long, default_value = DEFAULT_CAPTURE_DIR)]
        captures: PathBuf,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Integrate a scene headless and write E.npy, I.npy, t.npy, scene.ron and manifest.json.
    Run {
        /// The scene: a RON file, or a built-in scene's name (see `eifield scenes`).
        scene: PathBuf,
        /// Output folder; must not exist unless --force is given.
        #[arg(long)]
        out: PathBuf,
        /// Write into an existing folder, replacing its run files.
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Engine threads (default: all cores).
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Also draw the run's figures (PNG) into OUT/figures/.
        #[arg(long)]
        figures: bool,
        /// Also analyse the run's spread into OUT/analysis/ (see `eifield analyze`).
        #[arg(long)]
        analyze: bool,
        /// Start from the last sample of an earlier run of the same grid (its folder);
        /// the resolved scene records that state as its initial state.
        #[arg(long, value_name = "DIR")]
        continue_from: Option<PathBuf>,
        /// Go on with a killed or interrupted run of the same scene in --out from its last
        /// flushed sample, with the same bits as a run that was never stopped.
        #[arg(long, conflicts_with_all = ["force", "continue_from"])]
        resume: bool,
        /// The threshold of E an activation crosses upward (with --analyze).
        #[arg(long, default_value_t = DEFAULT_THRESHOLD, allow_negative_numbers = true)]
        threshold: f64,
        #[command(flatten)]
        figure_args: FigureArgs,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Measure the spread of a recorded run: activation maps, induced cells (against a
    /// control run without stimuli), the extent of induction, the wave speed and figures.
    Analyze {
        /// A folder written by `eifield run`.
        run_dir: PathBuf,
        /// The threshold of E an activation crosses upward.
        #[arg(long, default_value_t = DEFAULT_THRESHOLD, allow_negative_numbers = true)]
        threshold: f64,
        /// Where to write (default: RUN_DIR/analysis).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an earlier analysis.
        #[arg(long)]
        force: bool,
        /// No progress bar for the control run.
        #[arg(long, short)]
        quiet: bool,
        /// Engine threads of the control run (default: all cores).
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
    },
    /// Render a scene offscreen (no window needed) into an MP4 video.
    Render(RenderArgs),
    /// Draw the figures of a recorded run (traces, raster, stimulated cell) into RUN_DIR/figures/.
    Plot {
        /// A folder written by `eifield run`.
        run_dir: PathBuf,
        /// Replace existing figure files.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        figure_args: FigureArgs,
    },
    /// Measure integration throughput (cell-steps/s) at 1 thread and all threads.
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Lattice sides to measure.
        #[arg(long, value_delimiter = ',', default_values_t = bench::SIDES)]
        sides: Vec<usize>,
        /// Also print each measurement as a JSON line.
        #[arg(long)]
        json: bool,
        /// A scene whose whole run is timed through the engine (a file or a built-in name).
        #[arg(long, default_value = DEFAULT_BENCH_SCENE)]
        scene: PathBuf,
        /// `cpu`: the CPU engine; `gpu`: the GPU engine in both precisions (the CPU engine
        /// measured beside it); `auto`: the GPU too when a hardware GPU exists.
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendChoice,
        /// Measure only this precision (default: both, f64 and f32, on every engine).
        #[arg(long, value_enum)]
        precision: Option<PrecisionChoice>,
        /// Lattice sides measured on the GPU (those that do not fit its memory are reported).
        #[arg(long, value_delimiter = ',', default_values_t = bench::GPU_SIDES)]
        gpu_sides: Vec<usize>,
        /// Sides of the GPU engine's workgroup tile to measure (32, 48 or 64; results do not
        /// depend on it).
        #[arg(long, value_delimiter = ',', default_values_t = [eifield_gpu::shader::DEFAULT_TILE])]
        gpu_tiles: Vec<usize>,
    },
    /// List the built-in scenes: one line each, its name (which loads it) and what it shows.
    Scenes,
    /// Run a parameter sweep: every point of a sweep file (or one, with --index), each against
    /// its control, into a table (OUT/points.csv) of the extent of induction, the wave speed and
    /// the activation counts. Finished points are skipped, so an interrupted sweep resumes.
    Sweep {
        /// The sweep file (RON): a base scene and axes of parameter values.
        #[arg(required_unless_present = "collect")]
        spec: Option<PathBuf>,
        /// The output folder (a new one, or one holding the same sweep).
        #[arg(long, required_unless_present = "collect")]
        out: Option<PathBuf>,
        /// Points run at once (default: all cores, each point on one engine thread).
        #[arg(long, value_parser = parse_threads)]
        jobs: Option<usize>,
        /// What to keep of each point: its row of the table, or also its run folder.
        #[arg(long, value_enum, default_value = "summary")]
        keep: sweep::Keep,
        /// Run only point N (numbered with the last axis varying fastest), e.g. one task of a
        /// Slurm job array; `--collect` gathers the rows.
        #[arg(long, value_name = "N")]
        index: Option<u64>,
        /// Gather the rows written in a sweep's folder into DIR/points.csv.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["spec", "out", "index", "jobs"])]
        collect: Option<PathBuf>,
        /// The engine's precision, overriding the sweep file's `precision` (f64 by default; f32
        /// for exploration, recorded in OUT/sweep.ron).
        #[arg(long, value_enum, conflicts_with = "collect")]
        precision: Option<PrecisionChoice>,
        /// Which engine runs the points: `cpu`, `gpu` (a software adapter too), or `auto` (the
        /// GPU for lattices `eifield run --backend auto` puts there).
        #[arg(long, value_enum, default_value = "cpu", conflicts_with = "collect")]
        backend: BackendChoice,
        /// Points per batch on the GPU: their scenes and controls integrate together (default:
        /// as many as the GPU and this machine's memory hold; 1: one lattice at a time).
        #[arg(long, value_name = "N", value_parser = parse_threads, conflicts_with = "collect")]
        batch: Option<usize>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// `eifield render`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// The scene: a RON file, or a built-in scene's name (see `eifield scenes`).
    pub scene: PathBuf,
    /// The video file (.mp4), or with --still the picture (.png); must not exist unless --force is given.
    #[arg(long, required_unless_present = "discard")]
    pub out: Option<PathBuf>,
    /// Write one frame as a PNG instead of a video: the state at --at, else
    /// at the scene's `view.thumbnail_time`, else at the end of its run.
    #[arg(long, conflicts_with = "discard")]
    pub still: bool,
    /// The model time of the --still frame (rounded to a whole number of --time-per-frame).
    #[arg(long, requires = "still")]
    pub at: Option<f64>,
    /// Leave out the overlay (the scene's name, the model time and the colour bar).
    #[arg(long)]
    pub no_overlay: bool,
    /// Render and read back every frame but write no video (measures rendering speed).
    #[arg(long, conflicts_with = "out")]
    pub discard: bool,
    /// Replace an existing video file.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// 3D surface or flat heat map (default: the scene's view, else surface).
    #[arg(long, value_parser = named::<ViewMode>())]
    pub view: Option<ViewMode>,
    /// Which population to show (default: the scene's view, else E).
    #[arg(long, value_parser = named::<ViewField>())]
    pub field: Option<ViewField>,
    /// Colour map (default: the scene's view, else viridis).
    #[arg(long, value_parser = named::<ColorMapName>())]
    pub colormap: Option<ColorMapName>,
    /// Height per unit of the field, in cell spacings (surface view).
    #[arg(long)]
    pub height_scale: Option<f64>,
    /// Camera yaw in degrees (surface view).
    #[arg(long, allow_negative_numbers = true)]
    pub yaw: Option<f64>,
    /// Camera elevation in degrees, 1 to 90 (surface view).
    #[arg(long)]
    pub pitch: Option<f64>,
    /// Camera distance as a fraction of the distance that frames the lattice.
    #[arg(long)]
    pub zoom: Option<f64>,
    /// Frame size in pixels, WIDTHxHEIGHT [default: 1280x720].
    #[arg(long, value_parser = render::parse_size)]
    pub size: Option<(u32, u32)>,
    /// Frames per second of playback (default: the scene's view, else 30).
    #[arg(long)]
    pub fps: Option<u32>,
    /// Model time per frame (default: the scene's view, else 0.05).
    #[arg(long)]
    pub time_per_frame: Option<f64>,
    /// Seconds of video (default: the scene's run duration divided by the model time per second of video).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Engine threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

impl RenderArgs {
    /// The render request these arguments make.
    pub fn request(self) -> RenderRequest {
        RenderRequest {
            scene: self.scene,
            out: self.out,
            discard: self.discard,
            force: self.force,
            quiet: self.quiet,
            view: self.view,
            field: self.field,
            colormap: self.colormap,
            height_scale: self.height_scale,
            yaw: self.yaw,
            pitch: self.pitch,
            zoom: self.zoom,
            size: self.size,
            fps: self.fps,
            time_per_frame: self.time_per_frame,
            duration: self.duration,
            threads: self.threads,
            backend: self.backend.request(),
            overlay: !self.no_overlay,
            still: self.still.then_some(self.at),
        }
    }
}

/// Options of the figures.
#[derive(clap::Args, Debug, Clone)]
pub struct FigureArgs {
    /// Size of each figure in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "1200x800", value_parser = render::parse_size)]
    pub figure_size: (u32, u32),
    /// Cells whose traces are drawn, as `row,col;row,col;…` (default: all
    /// cells of a small lattice, a row through the stimulus on a big one).
    #[arg(long, value_parser = figures::parse_cell_list)]
    pub cells: Option<figures::CellList>,
    /// Also draw a kymograph: E along the straight line of cells ROW,COL:ROW,COL against time.
    #[arg(long, value_parser = figures::parse_line)]
    pub kymograph: Option<figures::CellLine>,
}

impl FigureArgs {
    fn options(&self, force: bool) -> FigureOptions {
        FigureOptions {
            size: self.figure_size,
            cells: self.cells.clone().map(|c| c.0),
            force,
            kymograph: self.kymograph,
        }
    }
}

/// Parses the arguments and runs the command; a failure is printed with its
/// exit code (0 completed, 1 blow-up or write failure, 2 bad input, 130 interrupted).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::View {
        scene: PathBuf::from(DEFAULT_SCENE),
        script: None,
        captures: PathBuf::from(DEFAULT_CAPTURE_DIR),
        backend: BackendArgs {
            backend: BackendChoice::Auto,
            precision: None,
        },
    });
    if !matches!(command, Command::View { .. }) {
        quiet_display_probe();
    }
    match run_command(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Commands without a window look for a GPU without a display. Where no
/// display is configured, the Wayland library that Vulkan drivers load while
/// they list adapters says "error: XDG_RUNTIME_DIR is invalid or not set in
/// the environment." on stderr, though nothing is wrong; pointed at a
/// runtime folder that cannot exist, it finds no display quietly.
fn quiet_display_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        // SAFETY: called at the start of `main`, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", "/dev/null/no-display") };
    }
}

fn run_command(command: Command) -> Result<ExitCode, AppError> {
    match command {
        Command::View {
            scene,
            script,
            captures,
            backend,
        } => crate::commands::view::run_viewer(
            &scene,
            script.as_deref(),
            &captures,
            backend.request(),
        ),
        Command::Run {
            scene,
            out,
            force,
            quiet,
            threads,
            figures,
            analyze,
            threshold,
            figure_args,
            continue_from,
            resume,
            backend,
            output,
        } => {
            let request = RunRequest {
                scene,
                out,
                force,
                quiet,
                threads,
                continue_from,
                resume,
                backend: backend.request(),
                output: output.request(),
            };
            let stop = stop_flag();
            let code = run_simulation(&request, stop.clone())?;
            if code == ExitCode::SUCCESS && figures {
                plot(&request.out, &figure_args.options(force))?;
            }
            if code == ExitCode::SUCCESS && analyze {
                analyze_run(
                    &AnalyzeRequest {
                        run_dir: request.out.clone(),
                        out: None,
                        threshold,
                        force,
                        quiet,
                        threads,
                    },
                    stop,
                )?;
            }
            Ok(code)
        }
        Command::Analyze {
            run_dir,
            threshold,
            out,
            force,
            quiet,
            threads,
        } => {
            analyze_run(
                &AnalyzeRequest {
                    run_dir,
                    out,
                    threshold,
                    force,
                    quiet,
                    threads,
                },
                stop_flag(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render(args) => render_video(args.request()),
        Command::Plot {
            run_dir,
            force,
            figure_args,
        } => plot(&run_dir, &figure_args.options(force)).map(|()| ExitCode::SUCCESS),
        Command::Bench {
            seconds,
            sides,
            json,
            scene,
            backend,
            precision,
            gpu_sides,
            gpu_tiles,
        } => {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
                return Err(AppError::Input(format!(
                    "--seconds must be a number of seconds between 0 and 3600 (got {seconds})"
                )));
            }
            if let Some(&side) = sides
                .iter()
                .chain(&gpu_sides)
                .find(|&&s| s == 0 || s > bench::MAX_SIDE)
            {
                return Err(AppError::Input(format!(
                    "--sides and --gpu-sides must be between 1 and {} (got {side})",
                    bench::MAX_SIDE
                )));
            }
            if let Some(tile) = gpu_tiles
                .iter()
                .find(|t| !eifield_gpu::shader::TILES.contains(t))
            {
                return Err(AppError::Input(format!(
                    "--gpu-tiles must each be one of {:?} (got {tile})",
                    eifield_gpu::shader::TILES
                )));
            }
            let source = SceneSource::resolve(&scene);
            let timed = TimedScene {
                label: source.to_string(),
                scene: source.load()?,
            };
            match bench::run(&bench::BenchPlan {
                seconds_per_case: seconds,
                sides: &sides,
                json,
                timed_scene: Some(&timed),
                backend,
                precision,
                gpu_sides: &gpu_sides,
                gpu_tiles: &gpu_tiles,
            }) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                // The reader went away (`eifield bench | head`): nothing to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Err(e) => Err(AppError::Output(format!(
                    "cannot write the benchmark's results: {e}"
                ))),
            }
        }
        Command::Sweep {
            spec,
            out,
            jobs,
            keep,
            index,
            collect,
            precision,
            backend,
            batch,
            quiet,
        } => run_sweep(
            spec,
            out,
            jobs,
            keep,
            index,
            collect,
            (backend, precision, batch),
            quiet,
        ),
        Command::Scenes => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for scene in BUILTIN_SCENES {
                if let Err(e) = writeln!(out, "{:<16}{}", scene.name, scene.description) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break;
                    }
                    return Err(AppError::Output(e.to_string()));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A flag set by Ctrl-C or SIGTERM.
#[allow(clippy::too_many_arguments)]
fn run_sweep(
    spec: Option<PathBuf>,
    out: Option<PathBuf>,
    jobs: Option<usize>,
    keep: sweep::Keep,
    index: Option<u64>,
    collect: Option<PathBuf>,
    (backend, precision, batch): (BackendChoice, Option<PrecisionChoice>, Option<usize>),
    quiet: bool,
) -> Result<ExitCode, AppError> {
    if let Some(dir) = collect {
        let (points, missing) = sweep::collect(&dir)?;
        eprintln!(
            "{} of {points} points -> {}",
            points - missing,
            dir.join("points.csv").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(spec), Some(out)) = (spec, out) else {
        return Err(AppError::Input(
            "give a sweep file and --out (or --collect DIR)".into(),
        ));
    };
    let request = sweep::SweepRequest {
        spec,
        out,
        jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        keep,
        index,
        precision: precision.map(Into::into),
        backend,
        batch,
        quiet,
    };
    let outcome = sweep::sweep(&request, stop_flag())?;
    let table = if index.is_some() {
        "run `eifield sweep --collect` for the table".to_owned()
    } else {
        format!("{}", request.out.join("points.csv").display())
    };
    let text = format!(
        "{} points: {} run, {} already done, {} missing, in {:.2} s -> {table}",
        outcome.points, outcome.ran, outcome.skipped, outcome.missing, outcome.wall_time_s
    );
    if outcome.interrupted {
        eprintln!("interrupted: {text}; run the same command again to resume");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if !quiet {
        eprintln!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!(
            "warning: cannot catch Ctrl-C ({e}); an interrupted job keeps only what it flushed"
        );
    }
    stop
}

fn analyze_run(request: &AnalyzeRequest, stop: Arc<AtomicBool>) -> Result<(), AppError> {
    let (summary, out) = analyze::analyze(request, stop)?;
    let speed = summary.speed.map_or_else(
        || "no speed (fewer than 5 cells qualify)".to_owned(),
        |v| {
            format!(
                "speed {v:.4} cells per unit (r² = {:.3}, {} cells)",
                summary.r2.unwrap_or(f64::NAN),
                summary.cells_used
            )
        },
    );
    let extent = summary.extent.map_or_else(
        || "no stimulated cell".to_owned(),
        |e| format!("extent {e:.3} cells"),
    );
    eprintln!(
        "analysis: {extent}, {} cells induced, {speed}; {} activations driven, {} in the control -> {}",
        summary.cells_induced,
        summary.activations_driven,
        summary.activations_control,
        out.display()
    );
    Ok(())
}

fn plot(run_dir: &std::path::Path, options: &FigureOptions) -> Result<(), AppError> {
    let paths = figures::write_figures(run_dir, options).map_err(AppError::Input)?;
    for path in paths {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn render_video(request: RenderRequest) -> Result<ExitCode, AppError> {
    let summary = render::render(&request, stop_flag())?;
    let destination = summary
        .output
        .as_ref()
        .map_or_else(|| "(discarded)".into(), |o| o.path().display().to_string());
    let text = if request.still.is_some() {
        format!(
            "a still of {}x{} at t = {} in {:.2} s -> {destination}",
            summary.size.0, summary.size.1, summary.last_frame_time, summary.wall_time_s,
        )
    } else {
        format!(
            "{} frames of {}x{} ({:.2} s at {} fps, {} model time per frame, t = 0 … {}) in {:.2} s ({:.1} frames/s) -> {}",
            summary.frames,
            summary.size.0,
            summary.size.1,
            summary.frames as f64 / summary.fps as f64,
            summary.fps,
            summary.time_per_frame,
            summary.frames.saturating_sub(1) as f64 * summary.time_per_frame,
            summary.wall_time_s,
            summary.frames as f64 / summary.wall_time_s.max(1e-9),
            destination
        )
    };
    match summary.stopped {
        None => {
            if !request.quiet {
                eprintln!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(RenderStop::Interrupted) => {
            eprintln!(
                "interrupted after {} of {} frames: {text}",
                summary.frames, summary.frames_requested
            );
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Some(RenderStop::BlowUp(reason)) => Err(AppError::BlowUp(format!(
            "{reason}; the frames before it were kept: {text}"
        ))),
    }
}

fn run_simulation(request: &RunRequest, stop: Arc<AtomicBool>) -> Result<ExitCode, AppError> {
    let manifest = headless::run(request, stop)?;
    let summary = format!(
        "{} samples of {} cells, t = {} in {:.3} s ({} steps) -> {}",
        manifest.samples,
        manifest.grid[0] * manifest.grid[1],
        manifest.model_time,
        manifest.wall_time_s,
        manifest.steps,
        request.out.display()
    );
    match &manifest.stop {
        StopReason::Completed => {
            if !request.quiet {
                eprintln!("{summary}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StopReason::Interrupted => {
            eprintln!("interrupted: {summary}");
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        StopReason::BlowUp { message, .. } => Err(AppError::BlowUp(format!(
            "{message}; the samples before it were kept: {summary}"
        ))),
        StopReason::WriteError { message } => Err(AppError::Output(format!(
            "writing the output failed: {message}"
        ))),
        StopReason::GpuFailure { message } => Err(AppError::Output(format!(
            "{message}; the samples before it were kept: {summary}"
        ))),
        StopReason::Running => Ok(ExitCode::from(EXIT_FAILURE)),
    }
}
