//! The GPU engine against the CPU engine, on whatever adapter this machine
//! has (Mesa's software Vulkan in CI): the same segments and steps, f64
//! states within 1e-10 after 1000 steps, identical bits from run to run,
//! f32 close, blow-ups reported at the CPU's cell and time.

use eifield_gpu::{ContextRequest, GpuContext, GpuEngine, Precision};
use eifield_model::scene::{Initial, IntegratorSpec, Noise, Stimulus};
use eifield_model::stimulus::Perturbation;
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene, Grid};

/// A device with f64 shaders; software adapters count (CI has no GPU).
fn context() -> GpuContext {
    GpuContext::open(ContextRequest {
        precision: Some(Precision::F64),
        allow_software: true,
    })
    .unwrap_or_else(|e| panic!("these tests need a Vulkan adapter with f64 shaders: {e}"))
}

/// A scene with two pulse trains (one near a corner, so the open edge
/// matters) and coupling in both populations, from E = I = 0.
fn scene(rows: usize, cols: usize, boundary: Boundary, integrator: IntegratorSpec) -> FieldScene {
    let mut scene = FieldScene {
        grid: Grid::new(rows, cols, boundary),
        initial: Initial::Zeros,
        stimuli: Some(vec![
            Stimulus::PulseTrain {
                row: rows / 2,
                col: cols / 2,
                freq: 0.3,
                width: 1.3,
                amp: 6.0,
                onset: 0.0,
                count: None,
            },
            Stimulus::PulseTrain {
                row: 0,
                col: 1.min(cols - 1),
                freq: 0.7,
                width: 0.4,
                amp: 4.0,
                onset: 0.25,
                count: Some(3),
            },
        ]),
        integrator,
        ..FieldScene::default()
    };
    scene.coupling.frac_ei = 0.1;
    scene.model.c4 = 0.5;
    scene.run.duration = 20.0;
    scene.validate().expect("the test scene is valid");
    scene
}

/// A perturbation of a cell away from the stimuli, added to both engines.
fn kick(cols: usize) -> Perturbation {
    Perturbation {
        cell: cols + cols / 3,
        amount: 3.0,
        start: 1.234,
        end: 2.5,
    }
}

fn cpu_engine(scene: &FieldScene) -> Engine {
    Engine::from_scene(scene, EngineOptions::default()).expect("CPU engine")
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs both engines to `t_end` with the kick and returns the largest
/// difference of E and of I, after checking that they took the same steps.
fn compare(ctx: &GpuContext, scene: &FieldScene, t_end: f64) -> (f64, f64, u64) {
    let mut cpu = cpu_engine(scene);
    let mut gpu = GpuEngine::from_scene(ctx, scene, Precision::F64).expect("GPU engine");
    let kick = kick(scene.grid.cols);
    cpu.inputs.perturbations.push(kick.clone());
    gpu.inputs.perturbations.push(kick);
    cpu.advance_to(t_end).expect("CPU run");
    gpu.advance_to(t_end).expect("GPU run");
    assert_eq!(gpu.steps, cpu.steps, "both engines take the same steps");
    let (e, i) = gpu.read_state().expect("read back");
    (
        max_difference(&e, &cpu.e),
        max_difference(&i, &cpu.i),
        cpu.steps,
    )
}

#[test]
fn f64_matches_the_cpu_engine_after_1000_rk4_steps_on_every_lattice_shape() {
    let ctx = context();
    println!("adapter: {:?}", ctx.adapter);
    for (rows, cols, boundary) in [
        (20, 20, Boundary::Open),
        (20, 20, Boundary::Periodic),
        (13, 29, Boundary::Open),
        (31, 17, Boundary::Periodic),
        (7, 7, Boundary::Periodic),
        (50, 3, Boundary::Open),
    ] {
        let scene = scene(rows, cols, boundary, IntegratorSpec::Rk4 { dt: 0.01 });
        let (de, di, steps) = compare(&ctx, &scene, 10.0);
        println!("{rows}x{cols} {boundary:?}: {steps} steps, max |dE| {de:e}, max |dI| {di:e}");
        assert!(steps >= 1000, "{steps} steps");
        assert!(
            de <= 1e-10 && di <= 1e-10,
            "{rows}x{cols} {boundary:?}: |dE| {de:e}, |dI| {di:e}"
        );
    }
}

#[test]
fn f64_stencil_kernels_match_the_cpu_engine_after_1000_rk4_steps() {
    use eifield_model::scene::{Kernel, Profile};
    let ctx = context();
    let disk = |radius, profile| Kernel::Disk { radius, profile };
    let kernels = [
        (Kernel::Moore { diagonal: 0.5 }, None),
        (disk(2.0, Profile::Flat), None),
        (
            disk(3.0, Profile::Gaussian { sigma: 1.5 }),
            Some(Kernel::Nearest),
        ),
        (
            disk(
                4.0,
                // (With surround 0.25 and sigma_center 1.2 this field
                // amplifies roundings about tenfold per unit of time: after
                // 1000 steps the CPU engine's own portable and AVX2 kernels
                // differ by 4e-8, and the GPU by 1e-7.)
                Profile::MexicanHat {
                    sigma_center: 1.5,
                    sigma_surround: 3.0,
                    surround: 0.1,
                },
            ),
            Some(Kernel::Moore { diagonal: 0.3 }),
        ),
    ];
    for (kernel, kernel_ei) in kernels {
        for (rows, cols, boundary) in [(21, 19, Boundary::Open), (17, 23, Boundary::Periodic)] {
            let mut scene = scene(rows, cols, boundary, IntegratorSpec::Rk4 { dt: 0.01 });
            scene.coupling.kernel = kernel.clone();
            scene.coupling.kernel_ei = kernel_ei.clone();
            let (de, di, steps) = compare(&ctx, &scene, 10.0);
            println!(
                "{kernel:?} / {kernel_ei:?} {rows}x{cols} {boundary:?}: {steps} steps, \
                 max |dE| {de:e}, max |dI| {di:e}"
            );
            assert!(steps >= 1000, "{steps} steps");
            assert!(
                de <= 1e-10 && di <= 1e-10,
                "{kernel:?} {rows}x{cols} {boundary:?}: |dE| {de:e}, |dI| {di:e}"
            );
        }
    }
}

/// Stencils whose halo does not fit the fused kernel's tile (RK4 beyond
/// reach 7) run one dispatch per stage and still match the CPU engine; one
/// dispatch per stage where the fused kernel would do gives its bits.
#[test]
fn wide_stencils_run_one_dispatch_per_stage_with_the_fused_kernels_bits() {
    use eifield_model::scene::{Kernel, Profile};
    let ctx = context();
    // (100 steps: software Vulkan takes a while on hundreds of taps. The
    // widest, on a lattice narrower than the stencil, wraps several times.)
    for (radius, side, boundary) in [(9.0, 27, Boundary::Open), (16.0, 21, Boundary::Periodic)] {
        let t_end = 1.0;
        let mut wide = scene(side, side + 2, boundary, IntegratorSpec::Rk4 { dt: 0.01 });
        wide.coupling.kernel = Kernel::Disk {
            radius,
            profile: Profile::Gaussian {
                sigma: radius / 3.0,
            },
        };
        let gpu = GpuEngine::from_scene(&ctx, &wide, Precision::F64).expect("GPU engine");
        assert!(
            gpu.per_stage(),
            "radius {radius} runs one dispatch per stage"
        );
        let started = std::time::Instant::now();
        let (de, di, steps) = compare(&ctx, &wide, t_end);
        println!(
            "radius {radius} {boundary:?}: {steps} steps, max |dE| {de:e}, max |dI| {di:e} \
             ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        assert!(steps as f64 >= t_end * 100.0, "{steps} steps");
        assert!(de <= 1e-10 && di <= 1e-10, "radius {radius}: {de:e} {di:e}");
    }

    for (integrator, kernel) in [
        (
            IntegratorSpec::Rk4 { dt: 0.01 },
            Kernel::Disk {
                radius: 3.0,
                profile: Profile::Flat,
            },
        ),
        (IntegratorSpec::Heun { dt: 0.01 }, Kernel::Nearest),
    ] {
        let mut scene = scene(23, 26, Boundary::Periodic, integrator);
        scene.coupling.kernel = kernel;
        let run = |per_stage: bool| {
            let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
            gpu.set_always_per_stage(per_stage);
            assert_eq!(gpu.per_stage(), per_stage);
            gpu.inputs.perturbations.push(kick(scene.grid.cols));
            gpu.advance_to(3.0).expect("GPU run");
            gpu.read_state().expect("read back")
        };
        let (fused, staged) = (run(false), run(true));
        assert!(fused.0.iter().any(|&e| e != 0.0));
        assert_eq!(
            fused, staged,
            "{:?}: per stage = fused, bit for bit",
            scene.integrator
        );
    }
}

#[test]
fn matrices_are_refused_on_the_gpu_by_name() {
    use eifield_model::scene::{Kernel, MatrixFile};
    let ctx = context();
    let mut matrix = scene(4, 5, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    let m = std::sync::Arc::new(eifield_model::coupling::CouplingMatrix::from_dense(
        20,
        &[0.1; 400],
    ));
    matrix.coupling.kernel = Kernel::Matrix {
        ee: MatrixFile::with_matrix("ee.npz", m.clone()),
        ei: MatrixFile::with_matrix("ei.npz", m),
    };
    let error = GpuEngine::from_scene(&ctx, &matrix, Precision::F64)
        .err()
        .expect("matrices run on the CPU only")
        .to_string();
    assert!(
        error.contains("coupling.kernel") && error.contains("--backend cpu"),
        "{error}"
    );
}

/// One step from a random state: the arithmetic itself agrees to a few
/// roundings. (Over many steps the excitable dynamics amplify such
/// differences: from this random start, 1000 steps on a 50 × 3 lattice
/// grew them to about 1e-10.)
#[test]
fn one_step_from_a_random_state_agrees_to_a_few_roundings() {
    let ctx = context();
    for boundary in [Boundary::Open, Boundary::Periodic] {
        let mut scene = scene(26, 37, boundary, IntegratorSpec::Rk4 { dt: 0.01 });
        scene.initial = Initial::Random {
            sigma: 0.5,
            seed: 7,
        };
        let (de, di, steps) = compare(&ctx, &scene, 0.01);
        println!("{boundary:?}, one step: max |dE| {de:e}, max |dI| {di:e}");
        assert_eq!(steps, 1);
        assert!(de <= 1e-15 && di <= 1e-15, "{boundary:?}: {de:e} {di:e}");
    }
}

#[test]
fn heun_and_euler_match_the_cpu_engine() {
    let ctx = context();
    for integrator in [
        IntegratorSpec::Heun { dt: 0.005 },
        IntegratorSpec::Euler { dt: 0.002 },
    ] {
        let scene = scene(19, 23, Boundary::Periodic, integrator);
        let (de, di, steps) = compare(&ctx, &scene, 4.0);
        println!("{integrator:?}: {steps} steps, max |dE| {de:e}, max |dI| {di:e}");
        assert!(de <= 1e-10 && di <= 1e-10, "{integrator:?}: {de:e} {di:e}");
    }
}

#[test]
fn pink_noise_is_the_cpu_engine_series() {
    let ctx = context();
    let mut scene = scene(16, 12, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    scene.noise = Noise::Pink {
        sigma: 0.3,
        seed: 11,
        sample_rate: 20.0,
    };
    let (de, di, steps) = compare(&ctx, &scene, 3.0);
    println!("noise: {steps} steps, max |dE| {de:e}, max |dI| {di:e}");
    assert!(de <= 1e-10 && di <= 1e-10, "{de:e} {di:e}");
}

#[test]
fn two_runs_give_the_same_bits() {
    let ctx = context();
    let scene = scene(27, 21, Boundary::Periodic, IntegratorSpec::Rk4 { dt: 0.01 });
    let run = || {
        let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
        gpu.inputs.perturbations.push(kick(scene.grid.cols));
        gpu.advance_to(5.0).expect("run");
        gpu.read_state().expect("read back")
    };
    let (e1, i1) = run();
    let (e2, i2) = run();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&e1), bits(&e2));
    assert_eq!(bits(&i1), bits(&i2));
}

#[test]
fn f32_stays_close_to_the_cpu_engine() {
    let ctx = context();
    let scene = scene(20, 20, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    let mut cpu = cpu_engine(&scene);
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F32).expect("GPU engine");
    cpu.advance_to(3.0).expect("CPU run");
    gpu.advance_to(3.0).expect("GPU run");
    let (e, i) = gpu.read_state().expect("read back");
    let (de, di) = (max_difference(&e, &cpu.e), max_difference(&i, &cpu.i));
    println!("f32 after 3 units: max |dE| {de:e}, max |dI| {di:e}");
    assert!(de <= 1e-3 && di <= 1e-3, "{de:e} {di:e}");
    // And it is really single precision, not f64 under another name.
    assert!(de > 0.0 || di > 0.0);
}

#[test]
fn a_non_finite_state_stops_the_run_at_the_cpu_engines_cell_and_time() {
    let ctx = context();
    let scene = scene(12, 10, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    let mut cpu = cpu_engine(&scene);
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
    cpu.advance_to(0.5).expect("CPU run");
    gpu.advance_to(0.5).expect("GPU run");
    let k = 5 * 10 + 4;
    cpu.e[k] = f64::NAN;
    let (e, i) = gpu.read_cells(&[k]).expect("read back");
    gpu.write_cells(&[(k, f64::NAN, i[0])]);
    assert!(e[0].is_finite());
    let cpu_error = cpu.advance_to(0.53).expect_err("the CPU run blows up");
    let gpu_error = match gpu.advance_to(0.53) {
        Err(eifield_gpu::AdvanceError::BlowUp(b)) => b,
        other => panic!("expected a blow-up, got {other:?}"),
    };
    assert_eq!(
        (gpu_error.row, gpu_error.col, gpu_error.variable),
        (cpu_error.row, cpu_error.col, cpu_error.variable)
    );
    assert_eq!(gpu_error.time, cpu_error.time);
    assert!(gpu_error.value.is_nan());
    println!("{gpu_error}");
}

/// Live edits as the viewer makes them (constants, drives, stimuli, noise,
/// integrator, boundary, written cells), applied to both engines mid-run.
#[test]
fn live_edits_keep_the_engines_together() {
    let ctx = context();
    let scene = scene(18, 22, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    let mut cpu = cpu_engine(&scene);
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
    cpu.advance_to(1.5).expect("CPU run");
    gpu.advance_to(1.5).expect("GPU run");

    let mut edited = scene.clone();
    edited.coupling.frac_ee = 0.35;
    edited.model.tau_in = 1.2;
    edited.drive.h_ex = -6.1;
    edited.stimuli = Some(vec![Stimulus::PulseTrain {
        row: 3,
        col: 17,
        freq: 0.5,
        width: 0.6,
        amp: 7.0,
        onset: 1.5,
        count: None,
    }]);
    edited.noise = Noise::Pink {
        sigma: 0.2,
        seed: 5,
        sample_rate: 10.0,
    };
    edited.integrator = IntegratorSpec::Heun { dt: 0.004 };
    edited.validate().expect("valid edit");
    let coeffs = eifield_model::rhs::Coeffs::from_scene(&edited);
    let (h_ex, h_in) = edited.cell_drives();
    cpu.coeffs = coeffs;
    cpu.h_ex = h_ex.clone();
    cpu.h_in = h_in.clone().into();
    cpu.set_stimuli(&edited);
    cpu.set_noise(&edited, 1.5);
    cpu.set_integrator(&edited.integrator);
    gpu.coeffs = coeffs;
    gpu.set_drives(h_ex, h_in);
    gpu.set_stimuli(&edited);
    gpu.set_noise(&edited, 1.5);
    gpu.set_integrator(&edited.integrator);
    let periodic = Grid::new(18, 22, Boundary::Periodic);
    assert!(cpu.set_stencil(periodic) && gpu.set_stencil(periodic));
    let k = 7 * 22 + 9;
    cpu.e[k] = 2.5;
    cpu.i[k] = -0.5;
    gpu.write_cells(&[(k, 2.5, -0.5)]);

    cpu.advance_to(3.0).expect("CPU run");
    gpu.advance_to(3.0).expect("GPU run");
    assert_eq!(gpu.steps, cpu.steps);
    let (e, i) = gpu.read_state().expect("read back");
    let (de, di) = (max_difference(&e, &cpu.e), max_difference(&i, &cpu.i));
    println!("after the edits: max |dE| {de:e}, max |dI| {di:e}");
    assert!(de <= 1e-10 && di <= 1e-10, "{de:e} {di:e}");
}

#[test]
fn the_tile_side_changes_nothing_but_speed() {
    let ctx = context();
    let scene = scene(53, 71, Boundary::Periodic, IntegratorSpec::Rk4 { dt: 0.01 });
    let run = |tile: usize| {
        let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
        assert!(gpu.set_tile(tile));
        gpu.advance_to(2.0).expect("run");
        let (e, i) = gpu.read_state().expect("read back");
        (
            e.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            i.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        )
    };
    let reference = run(eifield_gpu::shader::DEFAULT_TILE);
    for tile in eifield_gpu::shader::TILES {
        assert!(run(tile) == reference, "tile {tile} gives other bits");
    }
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
    assert!(
        !gpu.set_tile(40),
        "a tile that is not a multiple of 16 is refused"
    );
}

/// Polls a collection that never waits until it has arrived.
fn collect<T>(mut take: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = take() {
            return value;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "a readback did not arrive within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Tick by tick without waiting, as the viewer runs: the watched cells'
/// samples and the activation times come back later and equal what
/// waiting readbacks and the CPU's activation rule give.
#[test]
fn watched_cells_and_activations_follow_every_tick_without_waiting() {
    let ctx = context();
    let scene = scene(16, 19, Boundary::Periodic, IntegratorSpec::Rk4 { dt: 0.01 });
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
    let cells = [0, 7, 16 * 19 - 1, 8 * 19 + 9, 7];
    let mut watch = eifield_gpu::CellWatch::new(&gpu, &cells, 8);
    let threshold = 0.5;
    let mut tracker = eifield_gpu::ActivationTracker::new(&gpu, threshold);
    let mut cpu = cpu_engine(&scene);
    // The CPU engine's activation map, kept by hand with the same rule.
    let mut first = vec![f64::NAN; scene.grid.len()];
    let mut before = cpu.e.clone();
    let mut pending = Vec::new();
    let mut expected = Vec::new();
    let ticks_per_unit = 25.0;
    for tick in 1..=80 {
        let t = f64::from(tick) / ticks_per_unit;
        gpu.advance_unchecked(t);
        tracker.observe(&gpu);
        if watch.is_full() {
            pending.push(watch.take().expect("a full watch has ticks"));
        }
        assert!(watch.record(&gpu));
        let t0 = cpu.t;
        cpu.advance_to(t).expect("CPU run");
        for (k, f) in first.iter_mut().enumerate() {
            let (a, b) = (before[k], cpu.e[k]);
            if f.is_nan() && a < threshold && threshold <= b {
                *f = t0 + (threshold - a) / (b - a) * (cpu.t - t0);
            }
        }
        before.copy_from_slice(&cpu.e);
        expected.push((
            cpu.t,
            cells.map(|k| cpu.e[k]).to_vec(),
            cells.map(|k| cpu.i[k]).to_vec(),
        ));
    }
    pending.push(watch.take().expect("ticks since the last take"));
    assert!(watch.take().is_none(), "a take empties the watch");
    let mut ticks = Vec::new();
    for mut p in pending {
        assert_eq!(p.cells(), &cells);
        ticks.extend(collect(|| p.try_take()).expect("watched samples"));
    }
    assert_eq!(ticks.len(), 80);
    let mut worst = 0.0f64;
    for (tick, (t, e, i)) in ticks.iter().zip(&expected) {
        assert_eq!(tick.t, *t);
        worst = worst
            .max(max_difference(&tick.e, e))
            .max(max_difference(&tick.i, i));
    }
    assert!(
        worst <= 1e-12,
        "watched samples differ from the CPU by {worst:e}"
    );
    let mut read = tracker.read_async();
    let bytes = collect(|| read.try_take()).expect("activation times");
    let times = tracker.decode(&bytes[0]);
    let activated = first.iter().filter(|f| f.is_finite()).count();
    assert!(
        activated > 10,
        "the test needs activations ({activated} cells)"
    );
    for (k, (g, c)) in times.iter().zip(&first).enumerate() {
        assert_eq!(g.is_nan(), c.is_nan(), "cell {k}: GPU {g}, CPU {c}");
        if c.is_finite() {
            assert!((g - c).abs() <= 1e-9, "cell {k}: GPU {g}, CPU {c}");
        }
    }
    println!(
        "{} ticks watched (largest difference {worst:e}); {activated} cells activated",
        ticks.len()
    );
}

/// Without waiting, a blow-up is found later, stamped with the time of the
/// state that was checked, at the CPU engine's cell.
#[test]
fn a_check_collected_later_names_the_state_it_checked() {
    let ctx = context();
    let scene = scene(9, 11, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 });
    let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
    let mut cpu = cpu_engine(&scene);
    gpu.advance_unchecked(0.2);
    cpu.advance_to(0.2).expect("CPU run");
    let mut fine = gpu.check_finite_async();
    let k = 4 * 11 + 3;
    gpu.write_cells(&[(k, cpu.e[k], f64::INFINITY)]);
    cpu.i[k] = f64::INFINITY;
    gpu.advance_unchecked(0.21);
    let mut bad = gpu.check_finite_async();
    gpu.advance_unchecked(0.3);
    let cpu_error = cpu.advance_to(0.21).expect_err("the CPU run blows up");
    assert!(collect(|| fine.try_finish(&gpu)).is_ok());
    match collect(|| bad.try_finish(&gpu)) {
        Err(eifield_gpu::AdvanceError::BlowUp(b)) => {
            assert_eq!(b.time, 0.21);
            assert_eq!(
                (b.row, b.col, b.variable),
                (cpu_error.row, cpu_error.col, cpu_error.variable)
            );
        }
        other => panic!("expected a blow-up, got {other:?}"),
    }
}

/// `Initial: Rest` relaxed on the GPU in f64 is the CPU engine's rest state.
#[test]
fn the_rest_state_is_found_on_the_gpu_as_on_the_cpu() {
    let ctx = context();
    let waves = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenes/waves.ron");
    for (rows, cols, boundary, integrator) in [
        (14, 17, Boundary::Open, IntegratorSpec::Rk4 { dt: 0.01 }),
        (
            9,
            12,
            Boundary::Periodic,
            IntegratorSpec::Heun { dt: 0.005 },
        ),
    ] {
        let mut scene = FieldScene::load(std::path::Path::new(waves)).expect("the waves scene");
        scene.grid = Grid::new(rows, cols, boundary);
        scene.integrator = integrator;
        scene.stimuli = None;
        assert_eq!(scene.initial, Initial::Rest);
        // The drives vary from cell to cell: the rest state is not uniform.
        scene.validate().expect("valid");
        let cpu = cpu_engine(&scene);
        // Lattices this small relax on the CPU unless asked.
        let mut gpu = GpuEngine::from_scene(&ctx, &scene, Precision::F64).expect("GPU engine");
        let (e, i) = gpu.read_state().expect("read back");
        assert_eq!((&e, &i), (&cpu.e, &cpu.i));
        gpu.relax_to_rest().expect("relaxed on the GPU");
        let (e, i) = gpu.read_state().expect("read back");
        let (de, di) = (max_difference(&e, &cpu.e), max_difference(&i, &cpu.i));
        assert!(de <= 1e-12 && di <= 1e-12, "{rows} × {cols}: {de:e} {di:e}");
        assert!(
            max_difference(&e, &vec![0.0; e.len()]) > 0.01,
            "not the zero state"
        );
        let spread = max_difference(&e, &vec![e[0]; e.len()]);
        assert!(spread > 1e-6, "not uniform: {spread:e}");
        assert_eq!(gpu.steps, 0, "relaxing is no step of the run");
        println!("{rows} × {cols} {boundary:?}: rest state within {de:e} (E), {di:e} (I)");
    }
}
