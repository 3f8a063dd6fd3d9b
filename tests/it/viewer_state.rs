//! Viewer state without a window: live parameter edits, save and load.

use eifield::control::{ControlPlugin, SimCommand, snapshot_scene};
use eifield::sim::{ActiveScene, Lattice};
use eifield_model::FieldScene;

use crate::common::*;

#[test]
fn a_parameter_edited_in_the_ui_state_reaches_the_next_step() {
    let scene = load("seed_notebook.ron");
    let mut edited_app = app_with(scene.clone());
    let mut plain_app = app_with(scene);
    for _ in 0..10 {
        edited_app.update();
        plain_app.update();
    }
    assert_eq!(state(&mut edited_app), state(&mut plain_app));
    // What the panel does: edit the active scene.
    edited_app
        .world_mut()
        .resource_mut::<ActiveScene>()
        .0
        .model
        .c_ee = 7.5;
    edited_app
        .world_mut()
        .resource_mut::<ActiveScene>()
        .0
        .drive
        .h_ex = -6.0;
    edited_app.update();
    plain_app.update();
    let engine = &edited_app.world().resource::<Lattice>().0;
    assert_eq!(engine.coeffs.c_ee, 7.5);
    // Explicit drives are absolute; the panel shifts them with the nominal value,
    // but an untouched explicit array stays as it is.
    let (e_edit, _) = state(&mut edited_app);
    let (e_plain, _) = state(&mut plain_app);
    assert_ne!(e_edit, e_plain, "the edit did not change the next step");
    // Exactly one tick later the difference is only from that step.
    assert!(max_abs_diff(&e_edit, &e_plain) < 0.1);
}

#[test]
fn a_saved_scene_reloads_to_the_same_parameters_stimuli_and_state() {
    let mut scene = load("seed_notebook.ron");
    scene.coupling.frac_ee = 0.3;
    let mut app = app_with(scene);
    app.add_plugins(ControlPlugin);
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
    let snapshot = snapshot_scene(app.world_mut()).unwrap();
    let (e_now, i_now) = {
        let engine = &app.world().resource::<Lattice>().0;
        (engine.e.clone(), engine.i.clone())
    };
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
    assert!(
        app.world()
            .resource::<eifield::control::ControlStatus>()
            .error
            .is_some()
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_scene_that_fails_to_load_keeps_the_current_one_running() {
    let mut app = app_with(load("seed_notebook.ron"));
    app.add_plugins(ControlPlugin);
    let dir = temp_out("badload");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.ron");
    std::fs::write(&bad, "(grid: (rows: 0))").unwrap();
    app.world_mut().write_message(SimCommand::Load(bad));
    app.update();
    let status = app
        .world()
        .resource::<eifield::control::ControlStatus>()
        .clone();
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
