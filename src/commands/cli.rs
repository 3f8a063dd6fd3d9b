//! The command line: `eifield [view] [scene.ron]`, `eifield run <scene.ron> --out <dir>`,
//! `eifield render <scene.ron> --out <video.mp4>`, `eifield plot <run dir>` and `eifield bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand, ValueEnum};
use eifield_model::scene::{ColorMapName, ViewField, ViewMode};

use crate::figures::{self, FigureOptions};
use crate::headless::{self, RunRequest, StopReason};
use crate::render::{self, RenderRequest, RenderStop};

/// Exit code of a run stopped by Ctrl-C or SIGTERM.
const EXIT_INTERRUPTED: u8 = 130;

/// Simulate a lattice of coupled excitatory–inhibitory oscillators.
#[derive(Parser, Debug)]
#[command(name = "eifield", version, about)]
pub struct Cli {
    /// What to do (default: open the viewer on scenes/waves.ron).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The scene the viewer opens when no command is given.
pub const DEFAULT_VIEW_SCENE: &str = "scenes/waves.ron";

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the interactive 3D viewer on a scene.
    View {
        /// The scene file (RON).
        #[arg(default_value = DEFAULT_VIEW_SCENE)]
        scene: PathBuf,
        /// Drive the viewer from a script file (for automated checks).
        #[arg(long)]
        script: Option<PathBuf>,
        /// Folder for recordings (F9) and screenshots (F12).
        #[arg(long, default_value = crate::screen_capture::DEFAULT_CAPTURE_DIR)]
        captures: PathBuf,
    },
    /// Integrate a scene headless and write E.npy, I.npy, t.npy, scene.ron and manifest.json.
    Run {
        /// The scene file (RON).
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
        #[arg(long)]
        threads: Option<usize>,
        /// Also draw the run's figures (PNG) into OUT/figures/.
        #[arg(long)]
        figures: bool,
        #[command(flatten)]
        figure_args: FigureArgs,
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
        #[arg(long, value_delimiter = ',', default_values_t = crate::bench::SIDES)]
        sides: Vec<usize>,
        /// Also print each measurement as a JSON line.
        #[arg(long)]
        json: bool,
        /// A scene whose whole run is timed through the engine.
        #[arg(long, default_value = "scenes/seed_notebook.ron")]
        scene: PathBuf,
    },
}

/// `eifield render`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// The scene file (RON).
    pub scene: PathBuf,
    /// The video file (.mp4); must not exist unless --force is given.
    #[arg(long, required_unless_present = "discard")]
    pub out: Option<PathBuf>,
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
    #[arg(long)]
    pub view: Option<ViewArg>,
    /// Which population to show (default: the scene's view, else E).
    #[arg(long)]
    pub field: Option<FieldArg>,
    /// Colour map (default: the scene's view, else viridis).
    #[arg(long)]
    pub colormap: Option<ColorMapArg>,
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
    #[arg(long)]
    pub threads: Option<usize>,
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
            view: self.view.map(|v| match v {
                ViewArg::Surface => ViewMode::Surface,
                ViewArg::Heatmap => ViewMode::Heatmap,
            }),
            field: self.field.map(|f| match f {
                FieldArg::E => ViewField::E,
                FieldArg::I => ViewField::I,
            }),
            colormap: self.colormap.map(|c| match c {
                ColorMapArg::Viridis => ColorMapName::Viridis,
                ColorMapArg::Hot => ColorMapName::Hot,
                ColorMapArg::BlueWhiteRed => ColorMapName::BlueWhiteRed,
            }),
            height_scale: self.height_scale,
            yaw: self.yaw,
            pitch: self.pitch,
            zoom: self.zoom,
            size: self.size,
            fps: self.fps,
            time_per_frame: self.time_per_frame,
            duration: self.duration,
            threads: self.threads,
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
}

impl FigureArgs {
    fn options(&self, force: bool) -> FigureOptions {
        FigureOptions {
            size: self.figure_size,
            cells: self.cells.clone().map(|c| c.0),
            force,
        }
    }
}

/// `--view`.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ViewArg {
    /// 3D height/colour surface.
    Surface,
    /// Flat top-down heat map.
    Heatmap,
}

/// `--field`.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum FieldArg {
    /// Excitatory activity.
    E,
    /// Inhibitory activity.
    I,
}

/// `--colormap`.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ColorMapArg {
    /// Viridis.
    Viridis,
    /// Black-red-yellow-white.
    Hot,
    /// Diverging blue-white-red.
    BlueWhiteRed,
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::View {
        scene: PathBuf::from(DEFAULT_VIEW_SCENE),
        script: None,
        captures: PathBuf::from(crate::screen_capture::DEFAULT_CAPTURE_DIR),
    });
    match command {
        Command::View {
            scene,
            script,
            captures,
        } => crate::viewer::run_viewer(&scene, script.as_deref(), &captures),
        Command::Run {
            scene,
            out,
            force,
            quiet,
            threads,
            figures,
            figure_args,
        } => run(
            RunRequest {
                scene,
                out,
                force,
                quiet,
                threads,
            },
            figures.then(|| figure_args.options(force)),
        ),
        Command::Render(args) => render_video(args.request()),
        Command::Plot {
            run_dir,
            force,
            figure_args,
        } => plot(&run_dir, &figure_args.options(force)),
        Command::Bench {
            seconds,
            sides,
            json,
            scene,
        } => {
            match crate::bench::run(seconds, &sides, json, Some(&scene)) {
                Ok(()) => ExitCode::SUCCESS,
                // The reader went away (`eifield bench | head`): nothing to report.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the benchmark's results: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A flag set by Ctrl-C or SIGTERM.
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

fn plot(run_dir: &std::path::Path, options: &FigureOptions) -> ExitCode {
    match figures::write_figures(run_dir, options) {
        Ok(paths) => {
            for path in paths {
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn render_video(request: RenderRequest) -> ExitCode {
    match render::render(&request, stop_flag()) {
        Ok(summary) => {
            let text = format!(
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
                summary
                    .output
                    .as_ref()
                    .map_or_else(|| "(discarded)".into(), |o| o.path().display().to_string())
            );
            match summary.stopped {
                None => {
                    if !request.quiet {
                        eprintln!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Some(RenderStop::Interrupted) => {
                    eprintln!(
                        "interrupted after {} of {} frames: {text}",
                        summary.frames, summary.frames_requested
                    );
                    ExitCode::from(EXIT_INTERRUPTED)
                }
                Some(RenderStop::BlowUp(reason)) => {
                    eprintln!("error: {reason}; the frames before it were kept: {text}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn run(request: RunRequest, figures: Option<FigureOptions>) -> ExitCode {
    let stop = stop_flag();
    let code = run_simulation(&request, stop);
    if code == ExitCode::SUCCESS
        && let Some(options) = figures
    {
        return plot(&request.out, &options);
    }
    code
}

fn run_simulation(request: &RunRequest, stop: Arc<AtomicBool>) -> ExitCode {
    match headless::run(request, stop) {
        Ok(manifest) => {
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
                    ExitCode::SUCCESS
                }
                StopReason::Interrupted => {
                    eprintln!("interrupted: {summary}");
                    ExitCode::from(EXIT_INTERRUPTED)
                }
                StopReason::BlowUp { message, .. } => {
                    eprintln!("error: {message}; the samples before it were kept: {summary}");
                    ExitCode::FAILURE
                }
                StopReason::WriteError { message } => {
                    eprintln!("error: writing the output failed: {message}");
                    ExitCode::FAILURE
                }
                StopReason::Running => unreachable!("a finished run has a stop reason"),
            }
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
