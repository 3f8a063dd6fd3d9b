//! Engine-level checks against the reference solution and known solutions.

use std::path::PathBuf;

use eifield_model::scene::{Initial, IntegratorSpec, Stimulus};
use eifield_model::stepper::Method;
use eifield_model::{Engine, EngineOptions, FieldScene};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference_dir() -> PathBuf {
    std::env::var_os("EIFIELD_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/reference/seed_default"))
}

fn read_npy(path: PathBuf) -> (Vec<u64>, Vec<f64>) {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f64>().unwrap())
}

fn seed_scene() -> FieldScene {
    FieldScene::load(&repo_root().join("scenes/seed_notebook.ron")).unwrap()
}

/// Runs the scene, sampling at its rate, and returns E samples flattened.
fn run_samples(scene: &FieldScene, threads: usize) -> (Vec<f64>, Vec<f64>) {
    let mut engine = Engine::from_scene(
        scene,
        EngineOptions {
            threads,
            simd: None,
        },
    )
    .unwrap();
    let samples = scene.run.samples();
    let (mut es, mut is) = (engine.e.clone(), engine.i.clone());
    for n in 1..samples {
        engine.advance_to(n as f64 / scene.run.sample_rate).unwrap();
        es.extend_from_slice(&engine.e);
        is.extend_from_slice(&engine.i);
    }
    (es, is)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn seed_scene_matches_reference() {
    let dir = reference_dir();
    let (shape, ref_e) = read_npy(dir.join("E.npy"));
    let (_, ref_i) = read_npy(dir.join("I.npy"));
    assert_eq!(shape, vec![2001, 49]);
    let scene = seed_scene();
    let (e, i) = run_samples(&scene, 1);
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("default dt: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(de <= 1e-4 && di <= 1e-4);

    let mut fine = scene.clone();
    fine.integrator = IntegratorSpec::Rk4 { dt: 0.001 };
    let (e, i) = run_samples(&fine, 1);
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
    let one = run_samples(&scene, 1);
    let many = run_samples(&scene, 3);
    assert!(one == many, "thread count changed the results");
    // Sixteen threads split the rows into smaller tasks.
    let lots = run_samples(&scene, 16);
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
