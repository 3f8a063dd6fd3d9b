//! What a scene file holds at any lattice size: seeded draws stay seeds (a
//! resolved 1024 × 1024 scene is a few KB and reruns to the same bits),
//! per-cell arrays live in `.npy` files beside the scene, and older scenes
//! with inline lists still load.

use std::path::PathBuf;

use eifield_model::scene::{CellArray, Heterogeneity, Initial};
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene, Grid};

/// A fresh folder for one test.
fn folder(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("eifield-scene-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// E and I after two steps (one thread, so the bits are the engine's).
fn two_steps(scene: &FieldScene) -> (Vec<f64>, Vec<f64>) {
    let mut engine = Engine::from_scene(
        scene,
        EngineOptions {
            threads: 1,
            simd: None,
        },
    )
    .expect("engine");
    engine.advance_to(2.0 * scene.integrator.dt()).expect("run");
    (engine.e, engine.i)
}

#[test]
fn a_resolved_scene_of_a_million_cells_is_small_and_reruns_to_the_same_bits() {
    let scene = FieldScene {
        grid: Grid::new(1024, 1024, Boundary::Open),
        initial: Initial::Random {
            sigma: 0.1,
            seed: 5,
        },
        ..FieldScene::default()
    };
    assert!(matches!(
        scene.drive.heterogeneity,
        Heterogeneity::Random { .. }
    ));
    scene.validate().unwrap();
    let text = scene.resolved().to_ron_string();
    println!("resolved scene at 1024²: {} bytes", text.len());
    assert!(text.len() < 16 * 1024, "{} bytes", text.len());
    let again = FieldScene::from_ron_str(&text, "resolved.ron").unwrap();
    assert_eq!(again, scene.resolved());
    // The pinned generators give the same drives and state, so the same bits.
    assert_eq!(two_steps(&again), two_steps(&scene));
    // And the drives are the seeded draws: not all equal.
    let (h_ex, _) = again.cell_drives();
    assert!(h_ex.iter().any(|&h| h != h_ex[0]));
}

#[test]
fn per_cell_arrays_live_beside_the_scene_and_inline_lists_still_load() {
    let dir = folder("beside");
    let mut scene = FieldScene {
        grid: Grid::new(30, 40, Boundary::Periodic),
        ..FieldScene::default()
    };
    let n = scene.grid.len();
    let ramp = |a: f64, b: f64| -> CellArray {
        (0..n)
            .map(|k| a + (b - a) * k as f64 / n as f64)
            .collect::<Vec<_>>()
            .into()
    };
    scene.drive.heterogeneity = Heterogeneity::Explicit {
        h_ex: ramp(-6.6, -6.0),
        h_in: ramp(-4.2, -3.8),
    };
    scene.initial = Initial::Explicit {
        ex: ramp(-0.5, 0.5),
        inh: ramp(0.3, -0.3),
    };
    scene.validate().unwrap();
    let path = dir.join("my.ron");
    scene.save_with_arrays(&path, false).unwrap();
    for name in [
        "my.drive_h_ex.npy",
        "my.drive_h_in.npy",
        "my.initial_E.npy",
        "my.initial_I.npy",
    ] {
        assert!(dir.join(name).is_file(), "{name}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"my.initial_E.npy\""), "{text}");
    assert!(text.len() < 4096, "{} bytes", text.len());
    let loaded = FieldScene::load(&path).unwrap();
    assert_eq!(loaded, scene);
    assert_eq!(two_steps(&loaded), two_steps(&scene));
    // Nothing is replaced unless asked.
    let error = scene.save_with_arrays(&path, false).unwrap_err();
    assert!(error.contains("exists"), "{error}");
    scene.save_with_arrays(&path, true).unwrap();
    // The older form, every value inline, loads to the same scene.
    let inline = scene.with_arrays_inline().to_ron_string();
    assert!(inline.len() > 4 * n);
    assert_eq!(FieldScene::from_ron_str(&inline, "old.ron").unwrap(), scene);
}

#[test]
fn a_missing_or_wrong_array_file_is_an_error_that_names_the_field() {
    let dir = folder("errors");
    let mut scene = FieldScene {
        grid: Grid::new(6, 5, Boundary::Open),
        ..FieldScene::default()
    };
    scene.initial = Initial::Explicit {
        ex: vec![0.1; 30].into(),
        inh: vec![0.2; 30].into(),
    };
    let path = dir.join("s.ron");
    scene.save_with_arrays(&path, false).unwrap();
    // Another lattice's array.
    eifield_model::npy::write_array(&dir.join("s.initial_I.npy"), &[7], &[0.0; 7]).unwrap();
    let error = FieldScene::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("`initial.inh`") && error.contains("holds 7 values"),
        "{error}"
    );
    std::fs::remove_file(dir.join("s.initial_I.npy")).unwrap();
    let error = FieldScene::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("`initial.inh`") && error.contains("s.initial_I.npy"),
        "{error}"
    );
    // Text that names files, parsed without its folder, runs nowhere.
    let text = std::fs::read_to_string(&path).unwrap();
    let unread = FieldScene::from_ron_str(&text, "text").unwrap();
    let error = Engine::from_scene(&unread, EngineOptions::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("`initial.ex`") && error.contains("not read"),
        "{error}"
    );
}
