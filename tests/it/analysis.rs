//! `eifield analyze` and `run --analyze` end to end: the files, the spread
//! measured on the seed scene (induction stays local) and the waves scene (a
//! wave with a speed), kymographs, and bad input.

use std::path::Path;

use crate::common::*;

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("analysis/summary.json")).unwrap())
        .unwrap()
}

/// The data bytes and shape of an `.npy` file (any dtype).
fn npy_bytes(path: &Path) -> (Vec<u64>, String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    let descr = format!("{:?}", npy.dtype());
    let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    (shape, descr, bytes[header_len..].to_vec())
}

fn run_and_analyze(scene: &str, tag: &str) -> std::path::PathBuf {
    let dir = temp_out(tag);
    let result = eifield(&[
        "run",
        scene,
        "--out",
        dir.to_str().unwrap(),
        "--analyze",
        "--quiet",
    ]);
    let log = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{log}");
    assert!(log.contains("analysis: extent"), "{log}");
    dir
}

#[test]
fn induction_stays_local_in_the_notebooks_regime() {
    let dir = run_and_analyze("seed_notebook", "an-seed");
    let s = summary(&dir);
    eprintln!("seed scene: {s}");
    let extent = s["extent"].as_f64().unwrap();
    assert!(extent > 0.0 && extent <= 2.5, "extent {extent}");
    assert!(
        s["activations_control"].as_i64().unwrap() > 0,
        "corner cells fire on their own"
    );
    for name in [
        "first_activation.npy",
        "activation_count.npy",
        "induced.npy",
    ] {
        assert_eq!(
            npy_bytes(&dir.join("analysis").join(name)).0,
            [7, 7],
            "{name}"
        );
    }
    let (_, descr, induced) = npy_bytes(&dir.join("analysis/induced.npy"));
    assert!(descr.contains("Bool") || descr.contains("b1"), "{descr}");
    // At least one cell next to the stimulus (3, 3) is induced.
    let next = [(2, 3), (4, 3), (3, 2), (3, 4)];
    assert!(
        next.iter().any(|&(r, c)| induced[r * 7 + c] == 1),
        "{induced:?}"
    );
    let (_, descr, _) = npy_bytes(&dir.join("analysis/activation_count.npy"));
    assert!(descr.contains("i8") || descr.contains("Int"), "{descr}");
    for figure in ["activation_map.png", "distance_time.png", "kymograph.png"] {
        let image = image::open(dir.join("analysis").join(figure)).unwrap();
        assert_eq!((image.width(), image.height()), (1200, 800), "{figure}");
    }
    // The control run is a run folder of its own, without stimuli.
    let control = eifield_model::FieldScene::load(&dir.join("analysis/control/scene.ron")).unwrap();
    assert_eq!(control.stimuli, Some(vec![]));
}

#[test]
fn a_wave_spreads_over_the_lattice_with_a_measured_speed() {
    let dir = run_and_analyze("waves", "an-waves");
    let s = summary(&dir);
    eprintln!("waves scene: {s}");
    let speed = s["speed"].as_f64().expect("a speed");
    assert!(speed > 0.5 && speed < 10.0, "speed {speed}");
    assert!(s["r2"].as_f64().unwrap() > 0.9);
    assert!(s["cells_induced"].as_u64().unwrap() > 64 * 64 * 9 / 10);
    assert!(s["cells_used"].as_u64().unwrap() >= 5);
}

#[test]
fn analysis_refuses_bad_folders_and_keeps_earlier_results() {
    let dir = temp_out("an-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let result = eifield(&["analyze", dir.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("scene.ron"));

    let run = temp_out("an-again");
    let ok = eifield(&["run", "snic", "--out", run.to_str().unwrap(), "--quiet"]);
    assert!(ok.status.success());
    let first = eifield(&["analyze", run.to_str().unwrap(), "--quiet"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = std::fs::read(run.join("analysis/summary.json")).unwrap();
    let again = eifield(&["analyze", run.to_str().unwrap(), "--threshold", "0.5"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read(run.join("analysis/summary.json")).unwrap(),
        before
    );
    let forced = eifield(&[
        "analyze",
        run.to_str().unwrap(),
        "--threshold",
        "0.5",
        "--force",
        "--quiet",
    ]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(summary(&run)["threshold"], 0.5);

    // Mismatched shapes: E.npy of another lattice.
    let other = temp_out("an-other");
    assert!(
        eifield(&["run", "waves", "--out", other.to_str().unwrap(), "--quiet"])
            .status
            .success()
    );
    std::fs::copy(other.join("E.npy"), run.join("E.npy")).unwrap();
    let result = eifield(&["analyze", run.to_str().unwrap(), "--force"]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("shape"));
}

#[test]
fn plot_draws_a_kymograph_along_any_line() {
    let run = temp_out("kymo");
    assert!(
        eifield(&[
            "run",
            "seed_notebook",
            "--out",
            run.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    let result = eifield(&["plot", run.to_str().unwrap(), "--kymograph", "0,0:6,6"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let image = image::open(run.join("figures/kymograph.png"))
        .unwrap()
        .to_rgb8();
    let colours: std::collections::HashSet<_> = image.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 50, "the kymograph looks empty");
    let bad = eifield(&[
        "plot",
        run.to_str().unwrap(),
        "--force",
        "--kymograph",
        "0,0:9,9",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outside"));
}

#[test]
fn the_live_activation_map_agrees_with_the_analysis_of_the_same_ticks() {
    use bevy::prelude::*;
    use bevy::time::TimeUpdateStrategy;
    use eifield::sim::probes::{ActivationTimes, ProbesPlugin};
    use eifield::sim::{SimClock, SimSettings, load_scene};

    let scene = load("seed_notebook.ron");
    let mut app = eifield::commands::run::headless_app();
    app.add_plugins(ProbesPlugin);
    load_scene(
        app.world_mut(),
        scene.clone(),
        SimSettings {
            ticks_per_unit: 100.0,
            engine: eifield_model::EngineOptions::default(),
            backend: CPU,
        },
    )
    .unwrap();
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(1));
    app.update();
    let (mut e, mut t) = (engine_state(&app).0, vec![0.0]);
    for _ in 0..1500 {
        app.update();
        e.extend(engine_state(&app).0);
        t.push(app.world().resource::<SimClock>().time());
    }
    let live = app.world().resource::<ActivationTimes>().first.clone();
    let offline = eifield_model::analysis::activations(&e, &t, 49, 1.0).first;
    assert!(live.iter().any(|f| f.is_finite()), "something activated");
    for (k, (a, b)) in live.iter().zip(&offline).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a - b).abs() < 1e-12,
            "cell {k}: live {a}, offline {b}"
        );
    }
}
