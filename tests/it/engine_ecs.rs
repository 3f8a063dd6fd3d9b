//! The simulation as ECS systems: reference accuracy, messages, stencil, clock.

use bevy::prelude::*;
use eifield::sim::{Neighbours, SimClock};
use eifield::stimulus::{Drive, Perturb};
use eifield_model::scene::{IntegratorSpec, Stimulus};
use eifield_model::{Boundary, FieldScene};

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
    let before = app.world().resource::<Drive>().0.clone();
    app.world_mut().write_message(Perturb {
        row: 2,
        col: 5,
        amount: 4.0,
        duration: 1.0,
    });
    app.update();
    let after = app.world().resource::<Drive>().0.clone();
    let target = 2 * 7 + 5;
    for k in 0..49 {
        if k == target {
            assert!(
                (after[k] - before[k] - 4.0).abs() < 1e-12,
                "target drive {} -> {}",
                before[k],
                after[k]
            );
        } else {
            assert_eq!(after[k], before[k], "cell {k} changed");
        }
    }
    // The kick ends after its duration (100 ticks of 0.01).
    for _ in 0..100 {
        app.update();
    }
    assert_eq!(app.world().resource::<Drive>().0, before);

    // And it raises the target's E compared with an unperturbed twin.
    let mut twin = app_with(scene);
    let mut kicked = app_with(load("seed_notebook.ron"));
    kicked
        .world_mut()
        .resource_mut::<eifield::sim::Lattice>()
        .0
        .inputs
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
        assert_eq!(nb.of(0, 0).len(), expect_corner, "{boundary:?}");
        assert_eq!(nb.of(3, 8).len(), expect_corner, "{boundary:?}");
        assert_eq!(nb.of(0, 4).len(), expect_edge, "{boundary:?}");
        assert_eq!(nb.of(2, 0).len(), expect_edge, "{boundary:?}");
        assert_eq!(nb.of(2, 4).len(), 4, "{boundary:?}");
        let total: usize = (0..4)
            .flat_map(|r| (0..9).map(move |c| (r, c)))
            .map(|(r, c)| nb.of(r, c).len())
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
