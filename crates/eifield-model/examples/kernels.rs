//! Times RK4 steps of one lattice for each coupling kernel, on all threads,
//! alternating the kernels round by round so that a noisy machine affects
//! all alike:
//! `cargo run --release -p eifield-model --example kernels -- SIDE [ROUNDS]`.
//! The README's table of cell-steps/s per kernel comes from it.

use std::sync::Arc;
use std::time::Instant;

use eifield_model::coupling::{Coupler, CouplingMatrix};
use eifield_model::grid::{Boundary, Grid};
use eifield_model::rhs::Coeffs;
use eifield_model::scene::{Coupling, Kernel, MatrixFile, Profile};
use eifield_model::stepper::{Method, Stepper};

/// Seconds each measurement aims for.
const SECONDS: f64 = 0.5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |k: usize, default: Option<usize>| -> usize {
        match args.get(k) {
            Some(text) => text.parse().unwrap_or_else(|_| {
                eprintln!("argument {}: expected a whole number, got {text:?}", k + 1);
                std::process::exit(2)
            }),
            None => default.unwrap_or_else(|| {
                eprintln!("usage: kernels SIDE [ROUNDS]");
                std::process::exit(2)
            }),
        }
    };
    let side = number(0, None).max(1);
    let rounds = number(1, Some(3)).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let grid = Grid::new(side, side, Boundary::Open);
    let n = grid.len();
    let coeffs = Coeffs::from_scene(&eifield_model::FieldScene::default());
    let (drive, h_in) = (vec![-2.0; n], vec![-3.0; n]);
    let disk = |radius, profile| Kernel::Disk { radius, profile };
    // The 4-neighbour stencil with its self weight, as a general matrix.
    let nearest_matrix = {
        let mut entries = Vec::with_capacity(5 * n);
        for i in 0..n {
            let (r, c) = grid.position(i);
            entries.push((i, i, coeffs.self_weight));
            for j in grid.neighbours(r, c) {
                entries.push((j, i, coeffs.frac_ee));
            }
        }
        Arc::new(CouplingMatrix::from_entries(n, entries))
    };
    let file = MatrixFile::with_matrix("nearest.npz", nearest_matrix);
    let kernels: Vec<(&str, Kernel)> = vec![
        ("Nearest", Kernel::Nearest),
        ("Moore(diagonal: 0.5)", Kernel::Moore { diagonal: 0.5 }),
        ("Disk(1.5, Flat)", disk(1.5, Profile::Flat)),
        (
            "Disk(3, Gaussian(1.5))",
            disk(3.0, Profile::Gaussian { sigma: 1.5 }),
        ),
        (
            "Disk(4, MexicanHat(1, 2.5, 0.3))",
            disk(
                4.0,
                Profile::MexicanHat {
                    sigma_center: 1.0,
                    sigma_surround: 2.5,
                    surround: 0.3,
                },
            ),
        ),
        (
            "Disk(8, Gaussian(3))",
            disk(8.0, Profile::Gaussian { sigma: 3.0 }),
        ),
        (
            "Matrix (the 4-neighbour stencil)",
            Kernel::Matrix {
                ee: file.clone(),
                ei: file,
            },
        ),
    ];
    let couplers: Vec<Coupler> = kernels
        .iter()
        .map(|(_, kernel)| {
            let coupling = Coupling {
                kernel: kernel.clone(),
                ..Coupling::default()
            };
            Coupler::build(&coupling, grid).expect("a valid kernel")
        })
        .collect();
    let mut best = vec![0.0f64; kernels.len()];
    for _ in 0..rounds {
        for (k, coupler) in couplers.iter().enumerate() {
            let mut stepper = Stepper::new(Method::Rk4, coupler, threads);
            let (mut e, mut i) = (vec![-1.0; n], vec![0.1; n]);
            // One step to learn the speed, then about SECONDS of steps.
            let start = Instant::now();
            stepper.step(coupler, &coeffs, &drive, &h_in, &mut e, &mut i, 0.005);
            let one = start.elapsed().as_secs_f64().max(1e-9);
            let steps = (SECONDS / one).ceil().clamp(1.0, 1e6) as usize;
            let start = Instant::now();
            stepper.workers().run(|| {
                for _ in 0..steps {
                    stepper.step(coupler, &coeffs, &drive, &h_in, &mut e, &mut i, 0.005);
                }
            });
            let rate = (n * steps) as f64 / start.elapsed().as_secs_f64();
            best[k] = best[k].max(rate);
        }
    }
    println!("{side} × {side}, RK4, {threads} threads, best of {rounds} rounds, cell-steps/s:");
    for ((name, _), rate) in kernels.iter().zip(best) {
        println!("{name:>34} {rate:>12.3e}");
    }
}
