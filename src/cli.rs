//! The command line: `eifield [view] [scene.ron]`, `eifield run <scene.ron> --out <dir>` and `eifield bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use crate::headless::{self, RunRequest, StopReason};

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

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::View {
        scene: PathBuf::from(DEFAULT_VIEW_SCENE),
        script: None,
    });
    match command {
        Command::View { scene, script } => crate::viewer::run_viewer(&scene, script.as_deref()),
        Command::Run {
            scene,
            out,
            force,
            quiet,
            threads,
        } => run(RunRequest {
            scene,
            out,
            force,
            quiet,
            threads,
        }),
        Command::Bench {
            seconds,
            sides,
            json,
            scene,
        } => {
            crate::bench::run(seconds, &sides, json, Some(&scene));
            ExitCode::SUCCESS
        }
    }
}

fn run(request: RunRequest) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!(
            "warning: cannot catch Ctrl-C ({e}); an interrupted run keeps only its last flushed samples"
        );
    }
    match headless::run(&request, stop) {
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
