//! Batches of lattices on the GPU against the same scenes run one at a
//! time, on whatever adapter this machine has (Mesa's software Vulkan in
//! CI): each member with its own parameters, drives, pulse trains (so its
//! own step boundaries), noise seed, boundary and initial state gives the
//! single-lattice GPU run's samples within 1e-12 and the CPU engine's
//! within 1e-9 in f64; f32 members give the single f32 run's bits.

use eifield_gpu::run::{run_batch_to_arrays, run_to_arrays};
use eifield_gpu::{ContextRequest, GpuContext, GpuEnsemble, Precision};
use eifield_model::scene::{Initial, IntegratorSpec, Kernel, MatrixFile, Noise, Profile, Stimulus};
use eifield_model::sweep::RunArrays;
use eifield_model::{Boundary, FieldScene, Grid};

/// A device with f64 shaders; software adapters count (CI has no GPU).
fn context() -> GpuContext {
    GpuContext::open(ContextRequest {
        precision: Some(Precision::F64),
        allow_software: true,
    })
    .unwrap_or_else(|e| panic!("these tests need a Vulkan adapter with f64 shaders: {e}"))
}

/// A 20 × 24 scene driven by a pulse train of frequency `freq` into
/// (row, col), run for 6 units sampled 10 times a unit.
fn scene(freq: f64, row: usize, col: usize) -> FieldScene {
    let mut scene = FieldScene {
        grid: Grid::new(20, 24, Boundary::Open),
        initial: Initial::Zeros,
        stimuli: Some(vec![Stimulus::PulseTrain {
            row,
            col,
            freq,
            width: 0.7,
            amp: 6.0,
            onset: 0.1,
            count: None,
        }]),
        integrator: IntegratorSpec::Rk4 { dt: 0.01 },
        ..FieldScene::default()
    };
    scene.coupling.frac_ei = 0.1;
    scene.model.c4 = 0.5;
    scene.run.duration = 6.0;
    scene.run.sample_rate = 10.0;
    scene
}

/// Members that differ in everything a batch lets them differ in.
fn members() -> Vec<FieldScene> {
    let mut a = scene(0.3, 10, 12);
    a.drive.h_ex = -6.1;
    let mut b = scene(0.55, 3, 4);
    b.coupling.frac_ee = 0.4;
    b.model.c_ee = 6.0;
    b.grid.boundary = Boundary::Periodic;
    let mut c = scene(0.9, 18, 1);
    c.noise = Noise::Pink {
        sigma: 0.3,
        seed: 7,
        sample_rate: 40.0,
    };
    c.model.tau_in = 2.0;
    let mut d = scene(0.3, 10, 12);
    d.initial = Initial::Rest;
    d.drive.h_ex = -6.5;
    d.stimuli = Some(Vec::new());
    d.run.sample_rate = 4.0;
    d.run.duration = 4.0;
    let scenes = vec![a, b, c, d];
    for s in &scenes {
        s.validate().expect("the test scene is valid");
    }
    scenes
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn same_run(batch: &RunArrays, alone: &RunArrays, tolerance: f64, what: &str) {
    assert_eq!(batch.t, alone.t, "{what}: sample times");
    assert_eq!(batch.steps, alone.steps, "{what}: steps");
    assert_eq!(batch.precision, alone.precision, "{what}: precision");
    assert_eq!(
        batch.blow_up.is_some(),
        alone.blow_up.is_some(),
        "{what}: blow-up"
    );
    let (de, di) = (
        max_difference(&batch.e, &alone.e),
        max_difference(&batch.i, &alone.i),
    );
    println!("{what}: largest differences E {de:.1e}, I {di:.1e}");
    assert!(de <= tolerance && di <= tolerance, "{what}: {de} {di}");
}

#[test]
fn each_member_of_a_batch_gives_its_run_alone_in_f64() {
    let ctx = context();
    let scenes = members();
    let batch = run_batch_to_arrays(&ctx, &scenes, Some(Precision::F64), 64);
    for (k, (scene, run)) in scenes.iter().zip(&batch).enumerate() {
        let run = run.as_ref().expect("the batch runs");
        assert_eq!(run.backend, "gpu");
        let alone = run_to_arrays(&ctx, scene, Some(Precision::F64)).expect("GPU run");
        same_run(
            run,
            &alone,
            1e-12,
            &format!("member {k} against the GPU alone"),
        );
        let cpu = eifield_model::sweep::run_to_arrays(scene, 1, Precision::F64).expect("CPU run");
        same_run(run, &cpu, 1e-9, &format!("member {k} against the CPU"));
        // The driven members fire; the last stays at rest.
        assert_eq!(run.e.iter().any(|&e| e > 0.5), k < 3, "member {k}");
    }
}

#[test]
fn f32_members_give_the_single_f32_runs_bits_in_batches_of_any_size() {
    let ctx = context();
    let scenes = members();
    let whole = run_batch_to_arrays(&ctx, &scenes, Some(Precision::F32), 64);
    let pairs = run_batch_to_arrays(&ctx, &scenes, Some(Precision::F32), 2);
    for (k, scene) in scenes.iter().enumerate() {
        let alone = run_to_arrays(&ctx, scene, Some(Precision::F32)).expect("GPU run");
        let whole = whole[k].as_ref().expect("the batch runs");
        same_run(whole, &alone, 0.0, &format!("f32 member {k}"));
        same_run(
            pairs[k].as_ref().expect("the batch runs"),
            &alone,
            0.0,
            &format!("f32 member {k} in batches of 2"),
        );
        assert_eq!(whole.precision, Precision::F32);
    }
}

#[test]
fn wide_stencils_batch_one_dispatch_per_stage() {
    let ctx = context();
    let mut scenes: Vec<FieldScene> = members().into_iter().take(3).collect();
    for (k, s) in scenes.iter_mut().enumerate() {
        // Reach 8: too wide for the fused kernel.
        s.coupling.kernel = Kernel::Disk {
            radius: 8.0,
            profile: Profile::Gaussian {
                sigma: 2.0 + k as f64 * 0.0,
            },
        };
        s.coupling.frac_ee = 0.3;
        s.run.duration = 2.0;
        s.validate().expect("valid");
    }
    let batch = run_batch_to_arrays(&ctx, &scenes, Some(Precision::F64), 64);
    each_gives_its_run_alone(&ctx, &scenes, &batch, "wide member");
}

/// Each scene's batched run against its run alone on the GPU (f64, within
/// 1e-12).
fn each_gives_its_run_alone(
    ctx: &GpuContext,
    scenes: &[FieldScene],
    batch: &[Result<RunArrays, String>],
    what: &str,
) {
    for (k, scene) in scenes.iter().enumerate() {
        let alone = run_to_arrays(ctx, scene, Some(Precision::F64)).expect("GPU run");
        let run = batch[k].as_ref().expect("the batch runs");
        same_run(run, &alone, 1e-12, &format!("{what} {k}"));
    }
}

#[test]
fn scenes_that_cannot_share_a_batch_run_in_groups_and_failures_stay_alone() {
    let ctx = context();
    let mut scenes = members();
    // Another grid, another method, and a member that blows up.
    let mut small = scene(0.4, 2, 3);
    small.grid = Grid::new(9, 7, Boundary::Open);
    small.stimuli = Some(vec![Stimulus::PulseTrain {
        row: 2,
        col: 3,
        freq: 0.4,
        width: 0.7,
        amp: 6.0,
        onset: 0.1,
        count: None,
    }]);
    let mut heun = scene(0.5, 5, 5);
    heun.integrator = IntegratorSpec::Heun { dt: 0.02 };
    let mut unstable = scene(0.3, 10, 12);
    unstable.model.tau_ex = 2000.0;
    let mut matrix = scene(0.3, 10, 12);
    let cells = matrix.grid.len();
    let m = std::sync::Arc::new(eifield_model::coupling::CouplingMatrix::from_dense(
        cells,
        &vec![0.001; cells * cells],
    ));
    matrix.coupling.kernel = Kernel::Matrix {
        ee: MatrixFile::with_matrix("ee.npz", m.clone()),
        ei: MatrixFile::with_matrix("ei.npz", m),
    };
    scenes.extend([small, heun, unstable]);
    for s in &scenes {
        s.validate().expect("valid");
    }
    let batch = run_batch_to_arrays(&ctx, &scenes, Some(Precision::F64), 3);
    each_gives_its_run_alone(&ctx, &scenes, &batch, "scene");
    let blown = batch.last().unwrap().as_ref().unwrap();
    let alone_blown = run_to_arrays(&ctx, scenes.last().unwrap(), Some(Precision::F64)).unwrap();
    let (b, a) = (
        blown.blow_up.as_ref().unwrap(),
        alone_blown.blow_up.as_ref().unwrap(),
    );
    assert_eq!(
        (b.time, b.row, b.col, b.variable),
        (a.time, a.row, a.col, a.variable)
    );
    assert!(blown.t.len() < 61, "the unstable member stops early");
    // A coupling the GPU does not run fails alone, by name.
    let mut with_matrix = members();
    with_matrix.push(matrix);
    let results = run_batch_to_arrays(&ctx, &with_matrix, Some(Precision::F64), 64);
    let error = results.last().unwrap().as_ref().err().expect("refused");
    assert!(error.contains("coupling.kernel"), "{error}");
    assert!(results[..4].iter().all(Result::is_ok));
}

#[test]
fn a_batch_refuses_scenes_of_different_grids_by_saying_what_differs() {
    let ctx = context();
    let a = scene(0.3, 1, 1);
    let mut b = scene(0.3, 1, 1);
    b.grid = Grid::new(21, 24, Boundary::Open);
    let zeros = |s: &FieldScene| (vec![0.0; s.grid.len()], vec![0.0; s.grid.len()]);
    let error = GpuEnsemble::with_states(&ctx, &[&a, &b], &[zeros(&a), zeros(&b)], Precision::F64)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("grid"), "{error}");
}
