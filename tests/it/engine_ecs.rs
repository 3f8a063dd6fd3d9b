//! The simulation as ECS systems: reference accuracy, messages, stencil, clock.

use bevy::prelude::*;
use eifield::sim::stimulus::Perturb;
use eifield::sim::{Excitatory, GridPosition, Lattice, Neighbours, SimClock};
use eifield_model::noise::PinkNoise;
use eifield_model::scene::{IntegratorSpec, Noise, Stimulus};
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene};

use crate::common::*;

/// Steps the app one tick per update for the whole run and collects E and I.
fn run_ecs(scene: FieldScene) -> (Vec<f64>, Vec<f64>) {
    let samples = scene.run.samples();
    let mut app = app_with(scene);
    let (mut es, mut is) = state(&mut app);
    for n in 1..samples {
        app.update();
        assert_eq!(app.world().resource::<SimClock>().ticks, n);
        let (e, i) = state(&mut app);
        es.extend(e);
        is.extend(i);
    }
    (es, is)
}

#[test]
fn seed_scene_matches_the_reference_solution() {
    let dir = reference_dir();
    let (shape, ref_e) = read_npy(&dir.join("E.npy"));
    let (_, ref_i) = read_npy(&dir.join("I.npy"));
    let (_, ref_t) = read_npy(&dir.join("t.npy"));
    let scene = load("seed_notebook.ron");
    assert_eq!(shape, vec![scene.run.samples(), 49]);
    assert_eq!(ref_t.len() as u64, scene.run.samples());

    let (e, i) = run_ecs(scene.clone());
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("RK4 dt = 0.005: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(
        de <= 1e-4 && di <= 1e-4,
        "default integrator: {de:e}, {di:e}"
    );

    let mut fine = scene;
    fine.integrator = IntegratorSpec::Rk4 { dt: 0.001 };
    let (e, i) = run_ecs(fine);
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("RK4 dt = 0.001: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(de <= 1e-6 && di <= 1e-6, "dt = 0.001: {de:e}, {di:e}");
}

#[test]
fn perturb_changes_the_drive_of_only_its_target() {
    let mut scene = load("seed_notebook.ron");
    scene.stimuli = Some(vec![]);
    let mut app = app_with(scene.clone());
    app.update();
    let before = felt_stimulus(&app);
    assert!(before.iter().all(|&s| s == 0.0), "no stimulus yet");
    app.world_mut().write_message(Perturb {
        row: 2,
        col: 5,
        amount: 4.0,
        duration: 1.0,
    });
    app.update();
    let after = felt_stimulus(&app);
    let target = 2 * 7 + 5;
    assert_eq!(after.len(), 49);
    for (k, &felt) in after.iter().enumerate() {
        if k == target {
            assert!(
                (felt - 4.0).abs() < 1e-12,
                "the target felt {felt} instead of the kick of 4"
            );
        } else {
            assert_eq!(felt, 0.0, "cell {k} felt the kick");
        }
    }
    // The kick ends after its duration (100 ticks of 0.01).
    for _ in 0..100 {
        app.update();
    }
    assert_eq!(felt_stimulus(&app), before);

    // And it raises the target's E compared with an unperturbed twin.
    let mut twin = app_with(scene);
    let mut kicked = app_with(load("seed_notebook.ron"));
    kicked
        .world_mut()
        .resource_mut::<Lattice>()
        .engine_mut()
        .inputs_mut()
        .pulses
        .clear();
    kicked.world_mut().write_message(Perturb {
        row: 2,
        col: 5,
        amount: 4.0,
        duration: 1.0,
    });
    for _ in 0..50 {
        twin.update();
        kicked.update();
    }
    let (e_twin, _) = state(&mut twin);
    let (e_kicked, _) = state(&mut kicked);
    assert!(
        e_kicked[target] > e_twin[target] + 0.1,
        "E {} vs {}",
        e_kicked[target],
        e_twin[target]
    );
}

#[test]
fn neighbour_resource_counts_on_non_square_grids() {
    for (boundary, expect_corner, expect_edge) in
        [(Boundary::Open, 2, 3), (Boundary::Periodic, 4, 4)]
    {
        let mut scene = FieldScene::default();
        scene.grid.rows = 4;
        scene.grid.cols = 9;
        scene.grid.boundary = boundary;
        let app = app_with(scene);
        let nb = app.world().resource::<Neighbours>();
        assert_eq!(
            nb.grid().neighbours(0, 0).len(),
            expect_corner,
            "{boundary:?}"
        );
        assert_eq!(
            nb.grid().neighbours(3, 8).len(),
            expect_corner,
            "{boundary:?}"
        );
        assert_eq!(
            nb.grid().neighbours(0, 4).len(),
            expect_edge,
            "{boundary:?}"
        );
        assert_eq!(
            nb.grid().neighbours(2, 0).len(),
            expect_edge,
            "{boundary:?}"
        );
        assert_eq!(nb.grid().neighbours(2, 4).len(), 4, "{boundary:?}");
        let total: usize = (0..4)
            .flat_map(|r| (0..9).map(move |c| (r, c)))
            .map(|(r, c)| nb.grid().neighbours(r, c).len())
            .sum();
        let expected_total = match boundary {
            Boundary::Open => 2 * (4 * 8 + 9 * 3),
            Boundary::Periodic => 4 * 36,
        };
        assert_eq!(total, expected_total, "{boundary:?}");
    }
}

#[test]
fn pausing_virtual_time_stops_the_simulation() {
    let mut scene = load("seed_notebook.ron");
    scene.stimuli = Some(vec![Stimulus::default_for(&scene.grid)]);
    let mut app = app_with(scene);
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        std::time::Duration::from_millis(50),
    ));
    app.update();
    let ticks = app.world().resource::<SimClock>().ticks;
    assert!(ticks >= 4, "ticks {ticks}");
    app.world_mut().resource_mut::<Time<Virtual>>().pause();
    let (e0, _) = state(&mut app);
    for _ in 0..5 {
        app.update();
    }
    assert_eq!(app.world().resource::<SimClock>().ticks, ticks);
    assert_eq!(state(&mut app).0, e0);
    // Double speed: twice the ticks per wall second.
    let mut virt = app.world_mut().resource_mut::<Time<Virtual>>();
    virt.unpause();
    virt.set_relative_speed(2.0);
    app.update();
    app.update();
    let advanced = app.world().resource::<SimClock>().ticks - ticks;
    assert!(
        (18..=22).contains(&advanced),
        "advanced {advanced} ticks in 0.1 s at speed 2"
    );
}

/// The engine of `scene` advanced tick by tick (`ticks_per_unit`) as the
/// app does, through `ticks` ticks.
fn engine_ticks(scene: &FieldScene, ticks_per_unit: f64, ticks: u64) -> Engine {
    let mut engine = Engine::from_scene(scene, EngineOptions::default()).unwrap();
    for n in 1..=ticks {
        engine.advance_to(n as f64 / ticks_per_unit).unwrap();
    }
    engine
}

#[test]
fn a_write_to_an_oscillators_component_reaches_the_integration() {
    let mut scene = load("seed_notebook.ron");
    scene.stimuli = Some(vec![]);
    let mut app = app_with(scene.clone());
    for _ in 0..5 {
        app.update();
    }
    // A system (here: the test) sets E of one cell.
    let k = scene.grid.index(4, 2);
    let world = app.world_mut();
    let mut cells = world.query::<(&GridPosition, &mut Excitatory)>();
    for (pos, mut e) in cells.iter_mut(world) {
        if pos.cell() == k {
            e.0 = 3.0;
        }
    }
    app.update();
    // The same write made to an engine directly, then one tick.
    let rate = scene.run.sample_rate;
    let mut engine = engine_ticks(&scene, rate, 5);
    engine.e[k] = 3.0;
    engine.advance_to(6.0 / rate).unwrap();
    assert_eq!(engine_state(&app), (engine.e.clone(), engine.i.clone()));
    // The entities mirror the state, and the write was not undone.
    assert_eq!(state(&mut app), (engine.e, engine.i));
    assert!(
        state(&mut app).0[k] != 3.0,
        "the tick integrated from the written value"
    );
}

#[test]
fn the_integration_uses_the_neighbour_resource() {
    let mut scene = load("seed_notebook.ron");
    scene.grid.boundary = Boundary::Open;
    let rate = scene.run.sample_rate;
    let mut app = app_with(scene.clone());
    app.world_mut()
        .resource_mut::<Neighbours>()
        .set_boundary(Boundary::Periodic);
    for _ in 0..200 {
        app.update();
    }
    let mut periodic = scene.clone();
    periodic.grid.boundary = Boundary::Periodic;
    let wrapped = engine_ticks(&periodic, rate, 200);
    let open = engine_ticks(&scene, rate, 200);
    assert_eq!(engine_state(&app), (wrapped.e.clone(), wrapped.i.clone()));
    assert_ne!(wrapped.e, open.e, "the boundary matters on this lattice");
}

/// The noise a scene's engine draws, for an independent check.
fn noise_of(scene: &FieldScene) -> (f64, f64, PinkNoise) {
    let Noise::Pink {
        sigma,
        seed,
        sample_rate,
    } = scene.noise
    else {
        panic!("a noisy scene")
    };
    let expected = (scene.run.duration * sample_rate).ceil() as u64 + 1;
    let noise = PinkNoise::new(sigma, seed, sample_rate, scene.grid.len(), expected);
    (sigma, sample_rate, noise)
}

#[test]
fn pink_noise_across_many_blocks_through_viewer_sized_ticks() {
    // Noise blocks of 64 samples at 70 per unit (0.91 units); the viewer ticks
    // 100 times per unit, so noise edges fall inside ticks, and runs far beyond
    // the scene's duration: 2000 ticks cross 21 blocks.
    let scene = FieldScene::from_ron_str(
        "(grid: (rows: 7, cols: 7), stimuli: [], initial: Zeros, \
         noise: Pink(sigma: 0.3, seed: 5, sample_rate: 70.0), run: (duration: 0.5, sample_rate: 100.0))",
        "noisy",
    )
    .unwrap();
    let (sigma, noise_rate, mut noise) = noise_of(&scene);
    assert_eq!(noise.block_len(), 64);
    let mut app = app_with(scene);
    for tick in 1..=2000u64 {
        app.update();
        // The drive the lattice felt over the tick's last segment is σ·p of
        // the noise sample in effect just before the tick's end.
        let t = tick as f64 / 100.0;
        let j = ((t - 1e-9) * noise_rate).floor() as u64;
        let p = noise.sample(j);
        for (k, felt) in felt_stimulus(&app).into_iter().enumerate() {
            assert!(
                (felt - sigma * p[k]).abs() < 1e-12,
                "tick {tick}, cell {k}: felt {felt}, σ·p = {}",
                sigma * p[k]
            );
        }
    }
    assert_eq!(app.world().resource::<SimClock>().ticks, 2000);
}

#[test]
fn a_noisy_scene_that_crossed_a_block_inside_a_tick_runs_headless() {
    use eifield::commands::run::{self, RunRequest, StopReason};
    use std::sync::{Arc, atomic::AtomicBool};
    // The scene that used to stop at the first noise block boundary (256²,
    // noise blocks of 256 samples: the boundary at t = 8.53 falls inside a
    // tick), and a 512² lattice whose blocks are 64 samples (2.1 units), with
    // a long step so that it integrates quickly.
    for (tag, text) in [
        (
            "256",
            "(grid: (rows: 256, cols: 256), initial: Zeros, noise: Pink(sigma: 0.3, seed: 1, sample_rate: 30.0), \
             run: (duration: 10.0, sample_rate: 10.0))",
        ),
        (
            "512",
            "(grid: (rows: 512, cols: 512), initial: Zeros, noise: Pink(sigma: 0.3, seed: 1, sample_rate: 30.0), \
             integrator: Rk4(dt: 0.05), run: (duration: 10.0, sample_rate: 10.0))",
        ),
    ] {
        let dir = temp_out(&format!("noise{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let scene_file = dir.join("scene.in.ron");
        std::fs::write(&scene_file, text).unwrap();
        let out = dir.join("out");
        let manifest = run::run(
            &RunRequest {
                scene: scene_file,
                out: out.clone(),
                force: false,
                quiet: true,
                threads: Some(2),
                continue_from: None,
                resume: false,
                backend: CPU,
                output: Default::default(),
            },
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        assert_eq!(manifest.stop, StopReason::Completed, "{tag}");
        assert_eq!(manifest.samples, 101, "{tag}");
        let (shape, e) = read_npy(&out.join("E.npy"));
        assert_eq!(shape[0], 101);
        assert!(e.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn the_shipped_scenes_load_and_run_a_short_while() {
    for builtin in eifield_model::scene::BUILTIN_SCENES {
        let mut scene = FieldScene::from_ron_str(builtin.text, builtin.name).unwrap();
        // The file in scenes/ is what is embedded.
        assert_eq!(
            scene,
            load(&format!("{}.ron", builtin.name)),
            "{}",
            builtin.name
        );
        scene.run.duration = 0.5;
        let ticks = scene.run.samples() - 1;
        let mut app = app_with(scene);
        for _ in 0..ticks {
            app.update();
        }
        assert_eq!(
            app.world().resource::<SimClock>().ticks,
            ticks,
            "{}",
            builtin.name
        );
        let (e, i) = engine_state(&app);
        assert!(
            e.iter().chain(&i).all(|v| v.is_finite()),
            "{}",
            builtin.name
        );
    }
}
