//! `eifield bench`: lattice integration throughput in cell-steps per second,
//! on the same problem as the NumPy peer baseline (`bench/numpy_peer.py`),
//! on the CPU engine and, with `--backend gpu` (or `auto` on a hardware GPU),
//! the GPU engine in both precisions with the state staying on the GPU;
//! plus the full seed-notebook run and the engine's memory per cell.

use std::io::Write;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use eifield_model::rhs::SimdLevel;
use eifield_model::scene::{Heterogeneity, Initial, IntegratorSpec};
use eifield_model::stepper::Schedule;
use eifield_model::{Engine, EngineOptions, FieldScene, Grid, Real};
use serde::Serialize;

use crate::sim::backend::{BackendChoice, PrecisionChoice};
use eifield_gpu::{ContextRequest, GpuContext, GpuEngine, Precision};

/// A scene whose whole run the benchmark times, with the name it was given by.
pub struct TimedScene {
    /// Where it came from (a file or a built-in name).
    pub label: String,
    /// The scene.
    pub scene: FieldScene,
}

/// The lattice sides measured on the CPU.
pub const SIDES: [usize; 4] = [7, 64, 256, 1024];
/// The lattice sides measured on the GPU (those that fit its memory).
pub const GPU_SIDES: [usize; 4] = [1024, 2048, 4096, 8192];
/// The largest side `--sides` and `--gpu-sides` accept.
pub const MAX_SIDE: usize = 8192;
/// The step of the benchmark problem (as the NumPy peer's default).
const BENCH_DT: f64 = 0.005;
/// The held stimulus added to the centre cell's drive (as the NumPy peer).
const HELD_STIMULUS: f64 = 6.0;

/// One throughput measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// `"f64"` or `"f32"`.
    pub precision: &'static str,
    /// Rows (= columns).
    pub side: usize,
    /// Side of the GPU engine's workgroup tile (`None` on the CPU).
    pub tile: Option<usize>,
    /// Engine threads.
    pub threads: usize,
    /// Steps taken.
    pub steps: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// `side² · steps / seconds`.
    pub cell_steps_per_s: f64,
    /// E of the centre cell at the end (to compare with the peer's `centre_E`).
    pub centre_e: f64,
}

/// The NumPy peer's problem: uniform drives, a held stimulus at the centre,
/// E = −1 and I = 0.1 everywhere, open boundary, RK4.
pub fn peer_problem(side: usize) -> FieldScene {
    let mut scene = FieldScene {
        grid: Grid::new(side, side, eifield_model::Boundary::Open),
        ..FieldScene::default()
    };
    let n = side * side;
    let centre = (side / 2) * side + side / 2;
    let mut h_ex = vec![scene.drive.h_ex; n];
    h_ex[centre] += HELD_STIMULUS;
    scene.drive.heterogeneity = Heterogeneity::Explicit {
        h_ex: h_ex.into(),
        h_in: vec![scene.drive.h_in; n].into(),
    };
    scene.initial = Initial::Explicit {
        ex: vec![-1.0; n].into(),
        inh: vec![0.1; n].into(),
    };
    scene.stimuli = Some(vec![]);
    scene.integrator = IntegratorSpec::Rk4 { dt: BENCH_DT };
    scene
}

/// Times `steps` RK4 steps of the peer problem on the CPU engine in the
/// float type `T`.
pub fn measure<T: Real>(
    side: usize,
    threads: usize,
    steps: u64,
    simd: Option<SimdLevel>,
) -> Measurement {
    let scene = peer_problem(side);
    let mut engine = Engine::<T>::build(&scene, EngineOptions { threads, simd })
        .expect("the benchmark scene is valid");
    let start = Instant::now();
    engine
        .advance_to(steps as f64 * BENCH_DT)
        .expect("the benchmark stays finite");
    let seconds = start.elapsed().as_secs_f64();
    let centre = (side / 2) * side + side / 2;
    Measurement {
        backend: "cpu",
        precision: T::NAME,
        side,
        tile: None,
        threads: engine.threads(),
        steps: engine.steps,
        seconds,
        cell_steps_per_s: (side * side) as f64 * engine.steps as f64 / seconds,
        centre_e: engine.e[centre].to_f64(),
    }
}

/// Measures for about `target` seconds after a short calibration run.
pub fn measure_for<T: Real>(
    side: usize,
    threads: usize,
    target: Duration,
    simd: Option<SimdLevel>,
) -> Measurement {
    let probe_steps = (200_000 / (side * side)).max(2) as u64;
    let probe = measure::<T>(side, threads, probe_steps, simd);
    let steps = ((probe.cell_steps_per_s * target.as_secs_f64()) / (side * side) as f64)
        .ceil()
        .max(2.0) as u64;
    measure::<T>(side, threads, steps, simd)
}

/// Times `steps` steps of the peer problem on the GPU (the state stays
/// there; the clock stops when the last step and the non-finite check are done).
pub fn measure_gpu(
    ctx: &GpuContext,
    side: usize,
    precision: Precision,
    tile: usize,
    steps: u64,
) -> Result<Measurement, String> {
    let scene = peer_problem(side);
    let mut engine = GpuEngine::from_scene(ctx, &scene, precision).map_err(|e| e.to_string())?;
    if !engine.set_tile(tile) {
        return Err(format!(
            "tile {tile} is not one of {:?}",
            eifield_gpu::shader::TILES
        ));
    }
    // The first dispatch compiles the pipeline: keep it out of the timing.
    engine.advance_to(BENCH_DT).map_err(|e| e.to_string())?;
    let start_steps = engine.steps;
    let start = Instant::now();
    engine
        .advance_to((steps + 1) as f64 * BENCH_DT)
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let steps = engine.steps - start_steps;
    let centre = (side / 2) * side + side / 2;
    let (e, _) = engine.read_cells(&[centre]).map_err(|e| e.to_string())?;
    Ok(Measurement {
        backend: "gpu",
        precision: precision.name(),
        side,
        tile: Some(tile),
        threads: 0,
        steps,
        seconds,
        cell_steps_per_s: (side * side) as f64 * steps as f64 / seconds,
        centre_e: e[0],
    })
}

/// As [`measure_for`], on the GPU.
pub fn measure_gpu_for(
    ctx: &GpuContext,
    side: usize,
    precision: Precision,
    tile: usize,
    target: Duration,
) -> Result<Measurement, String> {
    let probe = measure_gpu(ctx, side, precision, tile, 20)?;
    let steps = ((probe.cell_steps_per_s * target.as_secs_f64()) / (side * side) as f64)
        .ceil()
        .max(2.0) as u64;
    measure_gpu(ctx, side, precision, tile, steps)
}

/// Model-time integration of a whole scene through the engine alone (no ECS,
/// no recording): returns the seconds spent in `advance_to`, or why the
/// scene cannot be built or integrated.
pub fn scene_integration_seconds(scene: &FieldScene) -> Result<f64, String> {
    let mut engine =
        Engine::from_scene(scene, EngineOptions::default()).map_err(|e| e.to_string())?;
    let samples = scene.run.samples();
    let start = Instant::now();
    for n in 1..samples {
        engine
            .advance_to(n as f64 / scene.run.sample_rate)
            .map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Resident memory of this process in bytes (Linux), if known.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Bytes of resident memory per oscillator entity (E, I, position), measured
/// by spawning `cells` of them into a fresh world.
pub fn entity_bytes_per_cell(cells: usize) -> Option<f64> {
    let state = vec![0.0; cells];
    let before = resident_bytes()?;
    let mut world = World::new();
    crate::sim::spawn_oscillators(&mut world, &state, &state);
    let after = resident_bytes()?;
    drop(world);
    Some((after.saturating_sub(before)) as f64 / cells as f64)
}

/// What `eifield bench` measures.
pub struct BenchPlan<'a> {
    /// Seconds per measurement.
    pub seconds_per_case: f64,
    /// Lattice sides on the CPU.
    pub sides: &'a [usize],
    /// Print JSON lines too.
    pub json: bool,
    /// A scene whose whole run is timed.
    pub timed_scene: Option<&'a TimedScene>,
    /// Which engines.
    pub backend: BackendChoice,
    /// Which precisions (`None`: both).
    pub precision: Option<PrecisionChoice>,
    /// Lattice sides on the GPU.
    pub gpu_sides: &'a [usize],
    /// Workgroup tiles on the GPU.
    pub gpu_tiles: &'a [usize],
}

/// Runs the whole benchmark and prints a table (and JSON lines if `json`);
/// fails only if standard output does (a closed pipe, say).
pub fn run(plan: &BenchPlan<'_>) -> std::io::Result<()> {
    let BenchPlan {
        seconds_per_case,
        sides,
        json,
        timed_scene,
        backend,
        precision,
        gpu_sides,
        gpu_tiles,
    } = *plan;
    let wanted = |p: PrecisionChoice| precision.is_none_or(|q| q == p);
    let mut out = std::io::stdout().lock();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let simd = SimdLevel::detect();
    writeln!(
        out,
        "eifield bench: {} threads available, SIMD kernel {}",
        all,
        simd.name()
    )?;
    writeln!(
        out,
        "{:>7} {:>9} {:>6} {:>5} {:>8} {:>10} {:>9} {:>16}",
        "backend", "precision", "side", "tile", "threads", "steps", "seconds", "cell-steps/s"
    )?;
    let print = |out: &mut std::io::StdoutLock, m: &Measurement| -> std::io::Result<()> {
        writeln!(
            out,
            "{:>7} {:>9} {:>6} {:>5} {:>8} {:>10} {:>9.3} {:>16.4e}",
            m.backend,
            m.precision,
            m.side,
            m.tile.map_or("-".to_string(), |t| t.to_string()),
            m.threads,
            m.steps,
            m.seconds,
            m.cell_steps_per_s
        )?;
        if json {
            writeln!(
                out,
                "json {}",
                serde_json::to_string(m).expect("serialisable")
            )?;
        }
        Ok(())
    };
    let target = Duration::from_secs_f64(seconds_per_case);
    let mut thread_counts = vec![1];
    if all > 1 {
        thread_counts.push(all);
    }
    for &side in sides {
        for &threads in &thread_counts {
            // Small lattices run on one thread whatever is asked: measure once.
            if threads > 1 && Schedule::for_cells(side * side) == Schedule::Staged {
                continue;
            }
            if wanted(PrecisionChoice::F64) {
                print(&mut out, &measure_for::<f64>(side, threads, target, None))?;
            }
            if wanted(PrecisionChoice::F32) {
                print(&mut out, &measure_for::<f32>(side, threads, target, None))?;
            }
        }
    }
    let gpu = match backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu | BackendChoice::Auto => {
            let allow_software = backend == BackendChoice::Gpu;
            match GpuContext::open(ContextRequest {
                precision: None,
                allow_software,
            }) {
                Ok(ctx) => Some(ctx),
                Err(e) => {
                    writeln!(out, "GPU not measured: {e}")?;
                    None
                }
            }
        }
    };
    if let Some(ctx) = gpu {
        writeln!(
            out,
            "GPU: {}{}",
            ctx.adapter.name,
            if ctx.adapter.software {
                " (a software adapter)"
            } else {
                ""
            }
        )?;
        let precisions: Vec<Precision> = [Precision::F64, Precision::F32]
            .into_iter()
            .filter(|&p| ctx.adapter.f64 || p == Precision::F32)
            .filter(|&p| {
                wanted(match p {
                    Precision::F64 => PrecisionChoice::F64,
                    Precision::F32 => PrecisionChoice::F32,
                })
            })
            .collect();
        for &side in gpu_sides {
            for &precision in &precisions {
                for &tile in gpu_tiles {
                    match measure_gpu_for(&ctx, side, precision, tile, target) {
                        Ok(m) => print(&mut out, &m)?,
                        Err(e) => writeln!(
                            out,
                            "{:>7} {:>9} {side:>6}  not measured (tile {tile}): {e}",
                            "gpu",
                            precision.name()
                        )?,
                    }
                }
            }
        }
    }
    if let Some(TimedScene { label, scene }) = timed_scene {
        let best = (0..5)
            .map(|_| scene_integration_seconds(scene))
            .try_fold(f64::INFINITY, |best, s| s.map(|s| best.min(s)));
        match best {
            Ok(best) => writeln!(
                out,
                "{label}: {} × {}, t = {}: integrated in {:.2} ms (engine, best of 5)",
                scene.grid.rows,
                scene.grid.cols,
                scene.run.duration,
                best * 1e3
            )?,
            Err(e) => writeln!(out, "{label}: not timed: {e}")?,
        }
    }
    for side in [64, 1024] {
        let probe = peer_problem(side);
        let options = EngineOptions {
            threads: all,
            simd: None,
        };
        let memory = [
            Engine::<f64>::build(&probe, options).map(|e| (e.bytes_per_cell(), e.schedule())),
            Engine::<f32>::build(&probe, options).map(|e| (e.bytes_per_cell(), e.schedule())),
        ];
        if let [Ok((double, schedule)), Ok((single, _))] = memory {
            writeln!(
                out,
                "engine memory at {side}²: {double} bytes per cell in f64, {single} in f32 \
                 (state, drives, {} schedule scratch)",
                schedule.name()
            )?;
        }
    }
    if let Some(per_entity) = entity_bytes_per_cell(1 << 20) {
        writeln!(
            out,
            "entity overhead: {per_entity:.1} bytes per cell (1024² oscillator entities)"
        )?;
    }
    Ok(())
}
