//! Times the CPU engine on `eifield bench`'s problem (the NumPy peer's:
//! uniform drives, a held stimulus at the centre, E = −1 and I = 0.1, open
//! boundary, RK4 with dt 0.005) through the engine's public API only, so
//! that the same file builds against older versions of the crate:
//! `cargo run --release -p eifield-model --example engine_speed -- SIDE SECONDS THREADS [f32]`
//! (`f32`: the single-precision engine; f64 without it).
//! Prints one line, `side=… threads=… cell_steps_per_s=…`; used by
//! `bench/against_commit.sh` to compare two versions in one run.

use std::time::Instant;

use eifield_model::scene::{Heterogeneity, Initial, IntegratorSpec};
use eifield_model::{Engine, EngineOptions, FieldScene, Grid, Real};

/// The step (as `eifield bench` and the NumPy peer).
const DT: f64 = 0.005;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (side, seconds, threads, single) = match (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<f64>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3).map(String::as_str),
    ) {
        (Some(side), Some(seconds), Some(threads), precision @ (None | Some("f64" | "f32")))
            if side > 0 && seconds > 0.0 && threads > 0 =>
        {
            (side, seconds, threads, precision == Some("f32"))
        }
        _ => {
            eprintln!(
                "usage: engine_speed SIDE SECONDS THREADS [f32|f64] (whole numbers of cells and \
                 threads, seconds > 0)"
            );
            std::process::exit(2)
        }
    };
    let (threads, steps, rate) = if single {
        measure::<f32>(side, seconds, threads)
    } else {
        measure::<f64>(side, seconds, threads)
    };
    println!("side={side} threads={threads} steps={steps} cell_steps_per_s={rate:.6e}");
}

/// Runs the benchmark problem in precision `T`: (threads used, steps, cell-steps/s).
fn measure<T: Real>(side: usize, seconds: f64, threads: usize) -> (usize, u64, f64) {
    let mut scene = FieldScene {
        grid: Grid::new(side, side, eifield_model::Boundary::Open),
        ..FieldScene::default()
    };
    let n = side * side;
    let mut h_ex = vec![scene.drive.h_ex; n];
    h_ex[(side / 2) * side + side / 2] += 6.0;
    scene.drive.heterogeneity = Heterogeneity::Explicit {
        h_ex: h_ex.into(),
        h_in: vec![scene.drive.h_in; n].into(),
    };
    scene.initial = Initial::Explicit {
        ex: vec![-1.0; n].into(),
        inh: vec![0.1; n].into(),
    };
    scene.stimuli = Some(vec![]);
    scene.integrator = IntegratorSpec::Rk4 { dt: DT };
    let run = |steps: u64| -> (usize, f64) {
        let options = EngineOptions {
            threads,
            simd: None,
        };
        let mut engine = Engine::<T>::build(&scene, options).expect("the benchmark scene is valid");
        let start = Instant::now();
        engine
            .advance_to(steps as f64 * DT)
            .expect("the benchmark stays finite");
        let rate = n as f64 * engine.steps as f64 / start.elapsed().as_secs_f64();
        (engine.threads(), rate)
    };
    // A short run to size the measured one.
    let (_, probe) = run((200_000 / n).max(2) as u64);
    let steps = ((probe * seconds) / n as f64).ceil().max(2.0) as u64;
    let (threads, rate) = run(steps);
    (threads, steps, rate)
}
