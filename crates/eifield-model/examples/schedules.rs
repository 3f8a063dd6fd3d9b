//! Times the stepper on one lattice for each schedule, SIMD level and thread
//! count, alternating them so that a noisy machine affects all alike:
//! `cargo run --release -p eifield-model --example schedules -- SIDE [THREADS] [ROUNDS]`.
//! Used to choose the schedule threshold and the block sizes.

use std::time::Instant;

use eifield_model::coupling::Coupler;
use eifield_model::grid::{Boundary, Grid};
use eifield_model::rhs::{Coeffs, SimdLevel};
use eifield_model::stepper::{Method, Schedule, Stepper};

/// Seconds each measurement aims for.
const SECONDS: f64 = 0.3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |k: usize, default: Option<usize>| -> usize {
        match args.get(k) {
            Some(text) => text.parse().unwrap_or_else(|_| {
                eprintln!("argument {}: expected a whole number, got {text:?}", k + 1);
                std::process::exit(2)
            }),
            None => default.unwrap_or_else(|| {
                eprintln!("usage: schedules SIDE [THREADS] [ROUNDS]");
                std::process::exit(2)
            }),
        }
    };
    let side = number(0, None).max(1);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = number(1, Some(all)).max(1);
    let rounds = number(2, Some(3)).max(1);
    let grid = Grid::new(side, side, Boundary::Open);
    let coupler = Coupler::nearest(grid);
    let n = grid.len();
    let coeffs = Coeffs::from_scene(&eifield_model::FieldScene::default());
    let (drive, h_in) = (vec![-2.0; n], vec![-3.0; n]);
    let mut cases = Vec::new();
    for simd in SimdLevel::available() {
        cases.push((Schedule::Staged, 1, simd));
        cases.push((Schedule::Pipelined, 1, simd));
        if threads > 1 {
            cases.push((Schedule::Pipelined, threads, simd));
        }
    }
    let mut best = vec![0.0f64; cases.len()];
    for _ in 0..rounds {
        for (case, &(schedule, threads, simd)) in cases.iter().enumerate() {
            let mut stepper =
                Stepper::with_schedule(Method::Rk4, &coupler, threads, simd, schedule);
            let (mut e, mut i) = (vec![-1.0; n], vec![0.1; n]);
            let steps = ((4e7 * SECONDS) / n as f64).ceil().max(1.0) as usize;
            let start = Instant::now();
            stepper.workers().run(|| {
                for _ in 0..steps {
                    stepper.step(&coupler, &coeffs, &drive, &h_in, &mut e, &mut i, 0.005);
                }
            });
            let rate = (n * steps) as f64 / start.elapsed().as_secs_f64();
            best[case] = best[case].max(rate);
        }
    }
    println!("{side} × {side}, best of {rounds} rounds, cell-steps/s:");
    for ((schedule, threads, simd), rate) in cases.iter().zip(best) {
        println!(
            "{:>10} {:>8} {threads:>2} threads {rate:>12.4e}",
            schedule.name(),
            simd.name()
        );
    }
}
