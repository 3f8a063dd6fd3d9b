//! Viewer state without a window: live parameter edits, save and load.

use eifield::sim::{ActiveScene, SimStatus};
use eifield::viewer::controls::{ControlStatus, ControlsPlugin, SimCommand, snapshot_scene};
use eifield_model::scene::Heterogeneity;
use eifield_model::{Engine, EngineOptions, FieldScene};

use crate::common::*;

#[test]
fn a_parameter_edited_in_the_ui_state_reaches_the_next_step() {
    // Uniform drives, so that editing the nominal h_ex changes every cell's drive.
    let mut scene = load("seed_notebook.ron");
    scene.drive.heterogeneity = Heterogeneity::None;
    let rate = scene.run.sample_rate;
    let mut app = app_with(scene.clone());
    for _ in 0..10 {
        app.update();
    }
    // What the panel does: edit the active scene.
    let mut edited = scene.clone();
    edited.model.c_ee = 7.5;
    edited.drive.h_ex = -6.0;
    app.world_mut().resource_mut::<ActiveScene>().0 = edited.clone();
    app.update();
    // The same, written out on an engine: ten ticks of the original scene,
    // then one tick with the edited parameters from that state.
    let mut engine = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    for n in 1..=10 {
        engine.advance_to(n as f64 / rate).unwrap();
    }
    let mut after = Engine::from_scene(&edited, EngineOptions::default()).unwrap();
    (after.e, after.i, after.t) = (engine.e.clone(), engine.i.clone(), engine.t);
    after.advance_to(11.0 / rate).unwrap();
    assert_eq!(engine_state(&app), (after.e.clone(), after.i.clone()));
    // And the edit made a difference.
    engine.advance_to(11.0 / rate).unwrap();
    assert_ne!(after.e, engine.e, "the edit did not change the next step");
}

#[test]
fn a_saved_scene_reloads_to_the_same_parameters_stimuli_and_state() {
    let mut scene = load("seed_notebook.ron");
    scene.coupling.frac_ee = 0.3;
    let mut app = app_with(scene);
    app.add_plugins(ControlsPlugin);
    for _ in 0..137 {
        app.update();
    }
    let dir = temp_out("save");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("saved.ron");
    app.world_mut().write_message(SimCommand::Save {
        path: path.clone(),
        overwrite: false,
    });
    app.update();
    let saved = FieldScene::load(&path).unwrap();
    let (snapshot, note) = snapshot_scene(app.world_mut()).unwrap();
    assert_eq!(note, None);
    let (e_now, i_now) = engine_state(&app);
    // Same parameters and stimuli as the running scene.
    let active = app.world().resource::<ActiveScene>().0.clone();
    assert_eq!(saved.model, active.model);
    assert_eq!(saved.coupling, active.coupling);
    assert_eq!(saved.effective_stimuli(), active.effective_stimuli());
    assert_eq!(saved.cell_drives(), active.cell_drives());
    // Loading it gives the state at the moment of saving.
    let mut reloaded = app_with(saved.clone());
    let (e, i) = state(&mut reloaded);
    assert_eq!((e, i), (e_now.clone(), i_now.clone()));
    // The file holds exactly the snapshot (up to the save tick).
    assert_eq!(saved.model, snapshot.model);

    // Saving again without overwrite is refused and leaves the file alone.
    let before = std::fs::read(&path).unwrap();
    app.update();
    app.world_mut().write_message(SimCommand::Save {
        path: path.clone(),
        overwrite: false,
    });
    app.update();
    assert!(app.world().resource::<ControlStatus>().error.is_some());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_scene_that_fails_to_load_keeps_the_current_one_running() {
    let mut app = app_with(load("seed_notebook.ron"));
    app.add_plugins(ControlsPlugin);
    let dir = temp_out("badload");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.ron");
    std::fs::write(&bad, "(grid: (rows: 0))").unwrap();
    app.world_mut().write_message(SimCommand::Load(bad));
    app.update();
    let status = app.world().resource::<ControlStatus>().clone();
    assert!(
        status
            .error
            .as_deref()
            .is_some_and(|e| e.contains("grid.rows")),
        "{status:?}"
    );
    assert_eq!(
        app.world().resource::<ActiveScene>().0.name,
        "Seed notebook"
    );
    let ticks = app.world().resource::<eifield::sim::SimClock>().ticks;
    app.update();
    assert_eq!(
        app.world().resource::<eifield::sim::SimClock>().ticks,
        ticks + 1
    );
}

#[test]
fn after_a_blow_up_there_is_one_state_and_a_saved_scene_loads() {
    let mut scene = load("seed_notebook.ron");
    // A rate this large makes RK4 at dt = 0.005 explode within a few ticks.
    scene.model.tau_ex = 1e6;
    let mut app = app_with(scene);
    app.add_plugins(ControlsPlugin);
    for _ in 0..20 {
        app.update();
    }
    let SimStatus::BlownUp(blow_up) = app.world().resource::<SimStatus>().clone() else {
        panic!("the scene did not blow up");
    };
    // The entities show the engine's (non-finite) state: one state.
    let (e, i) = engine_state(&app);
    assert_eq!(
        state(&mut app)
            .0
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        e.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert!(e.iter().chain(&i).any(|v| !v.is_finite()));
    let dir = temp_out("blowup");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("after.ron");
    app.world_mut().write_message(SimCommand::Save {
        path: path.clone(),
        overwrite: false,
    });
    app.update();
    let status = app.world().resource::<ControlStatus>().clone();
    let info = status
        .info
        .unwrap_or_else(|| panic!("not saved: {:?}", status.error));
    assert!(
        info.contains("not finite"),
        "the message says the state was not kept: {info}"
    );
    // The saved scene loads, with the parameters that blew up and the initial state.
    let saved = FieldScene::load(&path).unwrap();
    assert_eq!(saved.model.tau_ex, 1e6);
    assert_eq!(saved.initial, load("seed_notebook.ron").initial);
    assert!(blow_up.time > 0.0);
}

#[test]
fn an_edit_made_as_the_scene_loads_reaches_the_first_step() {
    use bevy::time::TimeUpdateStrategy;
    use eifield::commands::run::headless_app;
    use eifield::sim::{EntityMirror, SimSettings, load_scene};

    let mut scene = load("seed_notebook.ron");
    scene.drive.heterogeneity = Heterogeneity::None;
    let rate = scene.run.sample_rate;
    let mut app = headless_app();
    app.insert_resource(EntityMirror::EveryTick);
    let settings = SimSettings {
        ticks_per_unit: rate,
        engine: EngineOptions::default(),
        backend: CPU,
    };
    load_scene(app.world_mut(), scene.clone(), settings).unwrap();
    // Edited before anything ran: the engine was built from the scene as
    // loaded, and must not take the edited one for it.
    let mut edited = scene.clone();
    edited.drive.h_ex = -6.0;
    app.world_mut().resource_mut::<ActiveScene>().0 = edited.clone();
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(1));
    app.update(); // startup; no tick yet
    app.update();
    let start = Engine::from_scene(&scene, EngineOptions::default()).unwrap();
    let mut after = Engine::from_scene(&edited, EngineOptions::default()).unwrap();
    (after.e, after.i) = (start.e.clone(), start.i.clone());
    after.advance_to(1.0 / rate).unwrap();
    assert_eq!(engine_state(&app), (after.e.clone(), after.i.clone()));
    let mut unedited = start;
    unedited.advance_to(1.0 / rate).unwrap();
    assert_ne!(
        after.e, unedited.e,
        "the edit did not change the first step"
    );
}
