//! Engine-level checks against the reference solution and known solutions.

mod common;

use eifield_model::noise::PinkNoise;
use eifield_model::scene::{
    Coupling, Heterogeneity, Initial, IntegratorSpec, ModelParams, Noise, Stimulus,
};
use eifield_model::stepper::Method;
use eifield_model::stimulus::Perturbation;
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene};

use common::{max_abs_diff, read_npy, reference_dir, run_samples, seed_scene};

#[test]
fn seed_scene_matches_reference() {
    let dir = reference_dir();
    let (shape, ref_e) = read_npy(dir.join("E.npy"));
    let (_, ref_i) = read_npy(dir.join("I.npy"));
    assert_eq!(shape, vec![2001, 49]);
    let scene = seed_scene();
    let (e, i) = run_samples::<f64>(&scene, 1);
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("default dt: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(de <= 1e-4 && di <= 1e-4);

    let mut fine = scene.clone();
    fine.integrator = IntegratorSpec::Rk4 { dt: 0.001 };
    let (e, i) = run_samples::<f64>(&fine, 1);
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("dt = 1e-3: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(de <= 1e-6 && di <= 1e-6);
}

/// Error at t = T of a smooth run (no pulses) against a fine-step solution.
fn final_error(method: Method, dt: f64, truth: &[f64]) -> f64 {
    let scene = smooth_scene(method, dt);
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    engine.advance_to(scene.run.duration).unwrap();
    max_abs_diff(&engine.e, truth)
}

fn smooth_scene(method: Method, dt: f64) -> FieldScene {
    let mut scene = seed_scene();
    scene.stimuli = Some(vec![]);
    // A non-trivial smooth trajectory: start away from rest.
    scene.initial = Initial::Random {
        sigma: 1.0,
        seed: 4,
    };
    scene.run.duration = 2.0;
    scene.integrator = match method {
        Method::Rk4 => IntegratorSpec::Rk4 { dt },
        Method::Heun => IntegratorSpec::Heun { dt },
        Method::Euler => IntegratorSpec::Euler { dt },
    };
    scene
}

#[test]
fn measured_convergence_orders() {
    let truth = {
        let scene = smooth_scene(Method::Rk4, 1e-4);
        let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
        engine.advance_to(scene.run.duration).unwrap();
        engine.e
    };
    for (method, dts) in [
        (Method::Rk4, [0.04, 0.02, 0.01]),
        (Method::Heun, [0.01, 0.005, 0.0025]),
        (Method::Euler, [0.004, 0.002, 0.001]),
    ] {
        let errs: Vec<f64> = dts
            .iter()
            .map(|&dt| final_error(method, dt, &truth))
            .collect();
        let order = ((errs[0] / errs[2]).log2()) / 2.0;
        eprintln!("{method:?}: errors {errs:?}, order {order:.3}");
        let expected = method.order() as f64;
        assert!((order - expected).abs() <= 0.3, "{method:?} order {order}");
    }
}

#[test]
fn uncoupled_cell_relaxes_to_its_steady_state_root() {
    let mut scene = FieldScene::from_ron_str(
        // At the default drive a lone cell oscillates; at h_ex = -8 it has a stable rest.
        "(grid: (rows: 1, cols: 1), drive: (h_ex: -8.0, heterogeneity: None), stimuli: [], run: (duration: 200.0))",
        "test",
    )
    .unwrap();
    scene.initial = Initial::Zeros;
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    engine.advance_to(scene.run.duration).unwrap();
    let (e, i) = (engine.e[0], engine.i[0]);
    let m = scene.model;
    let (h_ex, h_in) = (scene.drive.h_ex, scene.drive.h_in);
    // I*(E) solves I + c4·tanh(I) = h_in + c_ei·tanh(E); bisection (monotone in I).
    let i_of = |e: f64| {
        let target = h_in + m.c_ei * e.tanh();
        let (mut lo, mut hi) = (-100.0, 100.0);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid + m.c4 * f64::tanh(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let g = |e: f64| h_ex - e - m.c2 * i_of(e).tanh() + m.c_ee * e.tanh();
    // Bracket the root nearest the final state and bisect.
    let (mut lo, mut hi) = (e - 0.5, e + 0.5);
    assert!(g(lo) * g(hi) < 0.0, "no sign change around the final state");
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(lo) * g(mid) <= 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let root = 0.5 * (lo + hi);
    eprintln!(
        "final E = {e}, root = {root}; final I = {i}, I* = {}",
        i_of(root)
    );
    assert!((e - root).abs() < 1e-9);
    assert!((i - i_of(root)).abs() < 1e-9);
}

#[test]
fn rest_initial_state_is_stationary() {
    let mut scene = FieldScene::from_ron_str(
        "(grid: (rows: 12, cols: 9), coupling: (frac_ee: 0.8), drive: (h_ex: -6.0), initial: Rest)",
        "test",
    )
    .unwrap();
    scene.initial = Initial::Rest;
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    engine.inputs.pulses.clear();
    let (de, di) = engine.derivatives();
    let worst = de.iter().chain(&di).fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(worst < 1e-10, "max derivative at rest {worst}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut scene = FieldScene::from_ron_str(
        "(grid: (rows: 96, cols: 200, boundary: Periodic), coupling: (frac_ee: 0.8), drive: (h_ex: -6.0), run: (duration: 3.0, sample_rate: 10.0))",
        "test",
    )
    .unwrap();
    scene.stimuli = Some(vec![Stimulus::PulseTrain {
        row: 5,
        col: 7,
        freq: 1.0,
        width: 0.3,
        amp: 6.0,
        onset: 0.0,
        count: None,
    }]);
    let one = run_samples::<f64>(&scene, 1);
    let many = run_samples::<f64>(&scene, 3);
    assert!(one == many, "thread count changed the results");
    // Sixteen threads split the rows into smaller tasks.
    let lots = run_samples::<f64>(&scene, 16);
    assert!(one == lots, "sixteen threads changed the results");
}

#[test]
fn rest_is_refused_where_cells_oscillate_on_their_own() {
    // In the notebook's regime the corner cells fire spontaneously.
    let mut scene = seed_scene();
    scene.initial = Initial::Rest;
    let err = Engine::from_scene(&scene, EngineOptions::default())
        .err()
        .expect("no rest state");
    assert!(err.to_string().contains("`initial`"), "{err}");
}

/// The model's right-hand side written out from DESIGN §1 with `f64::tanh`,
/// independently of the engine's kernels: `drive` is the total excitatory drive.
#[allow(clippy::too_many_arguments)]
fn definition_rhs(
    scene: &FieldScene,
    e: &[f64],
    i: &[f64],
    drive: &[f64],
    h_in: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let g = scene.grid;
    let m = &scene.model;
    let c = &scene.coupling;
    let periodic = g.boundary == Boundary::Periodic;
    let at = |r: isize, col: isize| -> f64 {
        let (rows, cols) = (g.rows as isize, g.cols as isize);
        if periodic {
            e[(r.rem_euclid(rows) * cols + col.rem_euclid(cols)) as usize]
        } else if (0..rows).contains(&r) && (0..cols).contains(&col) {
            e[(r * cols + col) as usize]
        } else {
            0.0
        }
    };
    let (mut de, mut di) = (vec![0.0; g.len()], vec![0.0; g.len()]);
    for r in 0..g.rows as isize {
        for col in 0..g.cols as isize {
            let k = (r * g.cols as isize + col) as usize;
            let nb = at(r - 1, col) + at(r + 1, col) + at(r, col - 1) + at(r, col + 1);
            let u = c.self_weight * e[k] + c.frac_ee * nb;
            let v = c.self_weight * e[k] + c.frac_ei * nb;
            de[k] = (drive[k] - e[k] - m.c2 * i[k].tanh() + m.c_ee * u.tanh()) * m.tau_ex;
            di[k] = (h_in[k] - i[k] - m.c4 * i[k].tanh() + m.c_ei * v.tanh()) * m.tau_in;
        }
    }
    (de, di)
}

/// `n` reproducible values in `[lo, hi)`.
fn spread(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// A scene where every model parameter differs from its default (and from 1
/// and 0), with explicit drives and state.
fn scene_with_every_parameter(seed: u64, boundary: Boundary) -> FieldScene {
    let p = spread(9, seed, 0.3, 2.5);
    let grid = eifield_model::Grid::new(5, 4, boundary);
    let n = grid.len();
    let mut scene = FieldScene {
        grid,
        ..FieldScene::default()
    };
    scene.model = ModelParams {
        tau_ex: p[0],
        tau_in: p[1],
        c2: 4.0 * p[2],
        c4: p[3],
        c_ee: 3.0 * p[4],
        c_ei: 5.0 * p[5],
    };
    scene.coupling = Coupling {
        frac_ee: 0.2 * p[6],
        frac_ei: 0.15 * p[7],
        self_weight: p[8],
        ..Coupling::default()
    };
    scene.drive.heterogeneity = Heterogeneity::Explicit {
        h_ex: spread(n, seed + 1, -7.0, -4.0).into(),
        h_in: spread(n, seed + 2, -5.0, -2.0).into(),
    };
    scene.initial = Initial::Explicit {
        ex: spread(n, seed + 3, -2.0, 3.0).into(),
        inh: spread(n, seed + 4, -2.0, 3.0).into(),
    };
    scene.stimuli = Some(vec![Stimulus::PulseTrain {
        row: 2,
        col: 1,
        freq: 0.4,
        width: 1.0,
        amp: 2.5,
        onset: 0.0,
        count: None,
    }]);
    scene.validate().unwrap();
    scene
}

#[test]
fn every_model_parameter_reaches_the_derivatives_as_defined() {
    for seed in 1..=6 {
        for boundary in [Boundary::Open, Boundary::Periodic] {
            let scene = scene_with_every_parameter(seed, boundary);
            let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
            // Inside the first pulse (t = T/2 + 0.5) the stimulated cell's drive is raised.
            engine.advance_to(0.5 / 0.4 + 0.5).unwrap();
            let (de, di) = engine.derivatives();
            let drive = engine.drive().to_vec();
            let k = scene.grid.index(2, 1);
            assert_eq!(drive[k] - engine.h_ex[k], 2.5, "pulse in the drive");
            let (want_de, want_di) =
                definition_rhs(&scene, &engine.e, &engine.i, &drive, &engine.h_in.to_vec());
            for (got, want) in de.iter().zip(&want_de).chain(di.iter().zip(&want_di)) {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "seed {seed} {boundary:?}: {got} against the definition's {want}"
                );
            }
        }
    }
}

/// Forward Euler of one segment with a constant drive, written out from the
/// definition: `n` equal steps.
fn euler_segment(
    scene: &FieldScene,
    e: &mut [f64],
    i: &mut [f64],
    drive: &[f64],
    h_in: &[f64],
    span: f64,
    n: usize,
) {
    let h = span / n as f64;
    for _ in 0..n {
        let (de, di) = definition_rhs(scene, e, i, drive, h_in);
        for k in 0..e.len() {
            e[k] += h * de[k];
            i[k] += h * di[k];
        }
    }
}

/// Steps of at most `dt` that fill `span` (as the engine splits a segment).
fn steps_in(span: f64, dt: f64) -> usize {
    (span / dt - 1e-9).ceil().max(1.0) as usize
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    let d = max_abs_diff(got, want);
    assert!(d <= tol, "{what}: max |difference| {d:e} (limit {tol:e})");
}

#[test]
fn pink_noise_reaches_the_drive_held_per_sample_with_steps_on_its_edges() {
    let (sigma, seed, rate) = (0.7, 3, 10.0);
    let mut scene = scene_with_every_parameter(7, Boundary::Open);
    scene.stimuli = Some(vec![]);
    scene.noise = Noise::Pink {
        sigma,
        seed,
        sample_rate: rate,
    };
    scene.integrator = IntegratorSpec::Euler { dt: 0.03 };
    scene.run.duration = 3.0;
    let n = scene.grid.len();
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    let expected = (scene.run.duration * rate).ceil() as u64 + 1;
    let mut noise = PinkNoise::new(sigma, seed, rate, n, expected);
    // 20 units of time cross several noise blocks (64 samples each here).
    assert_eq!(noise.block_len(), 64);
    let (h_ex, h_in) = scene.cell_drives();
    let (mut e, mut i) = scene.initial_arrays().unwrap();
    let samples = 200;
    for j in 0..samples {
        let p = noise.sample(j).to_vec();
        let drive: Vec<f64> = h_ex.iter().zip(&p).map(|(h, p)| h + sigma * p).collect();
        euler_segment(&scene, &mut e, &mut i, &drive, &h_in, 0.1, 4);
        engine.advance_to((j + 1) as f64 / rate).unwrap();
        for (k, p) in p.iter().enumerate() {
            let felt = engine.drive().get(k) - engine.h_ex[k];
            assert!(
                (felt - sigma * p).abs() <= 1e-12,
                "sample {j}, cell {k}: the engine felt {felt}, σ·p = {}",
                sigma * p
            );
        }
    }
    // Each 0.1 interval is its own segment of ceil(0.1 / 0.03) = 4 steps; a
    // step straddling a noise edge would have given ceil(20 / 0.03) = 667.
    assert_eq!(engine.steps, samples * 4);
    assert_close(&engine.e, &e, 1e-9, "E against the definition");
    assert_close(&engine.i, &i, 1e-9, "I against the definition");
}

#[test]
fn steps_land_on_a_perturbations_start_and_end() {
    let mut scene = scene_with_every_parameter(8, Boundary::Periodic);
    scene.stimuli = Some(vec![]);
    scene.integrator = IntegratorSpec::Euler { dt: 0.1 };
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    let cell = scene.grid.index(3, 2);
    let (start, end, amount) = (0.123, 0.456, 3.0);
    engine.inputs.perturbations.push(Perturbation {
        cell,
        amount,
        start,
        end,
    });
    engine.advance_to(1.0).unwrap();

    let (h_ex, h_in) = scene.cell_drives();
    let (mut e, mut i) = scene.initial_arrays().unwrap();
    let mut kicked = h_ex.clone();
    kicked[cell] += amount;
    let mut steps = 0;
    for (from, to, drive) in [
        (0.0, start, &h_ex),
        (start, end, &kicked),
        (end, 1.0, &h_ex),
    ] {
        let n = steps_in(to - from, 0.1);
        euler_segment(&scene, &mut e, &mut i, drive, &h_in, to - from, n);
        steps += n;
    }
    assert_eq!(engine.steps, steps as u64, "2 + 4 + 6 steps");
    assert_close(&engine.e, &e, 1e-11, "E against the definition");
    assert_close(&engine.i, &i, 1e-11, "I against the definition");
    // The perturbation is over and forgotten.
    assert!(engine.inputs.perturbations.is_empty());
}
