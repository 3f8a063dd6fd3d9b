//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use eifield::commands::run::headless_app;
use eifield::sim::backend::{BackendChoice, BackendRequest};
use eifield::sim::{
    EntityMirror, Excitatory, GridPosition, Inhibitory, Lattice, SimSettings, load_scene,
};
use eifield_model::{EngineOptions, FieldScene};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn reference_dir() -> PathBuf {
    std::env::var_os("EIFIELD_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/reference/seed_default"))
}

pub fn scene_path(name: &str) -> PathBuf {
    repo_root().join("scenes").join(name)
}

pub fn load(name: &str) -> FieldScene {
    FieldScene::load(&scene_path(name)).unwrap()
}

/// A float64 array, or a float32 one (an f32 run's) widened exactly.
pub fn read_npy(path: &Path) -> (Vec<u64>, Vec<f64>) {
    let (shape, data, _) = read_float_npy(path);
    (shape, data)
}

/// As [`read_npy`], with the element's width in bytes.
pub fn read_float_npy(path: &Path) -> (Vec<u64>, Vec<f64>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    if matches!(npy.dtype(), npyz::DType::Plain(t) if t.to_string() == "<f4") {
        let data = npy.into_vec::<f32>().unwrap();
        (shape, data.into_iter().map(f64::from).collect(), 4)
    } else {
        (shape, npy.into_vec::<f64>().unwrap(), 8)
    }
}

/// A headless app with `scene` loaded, one tick per sample, whose entities
/// mirror the state after every tick.
pub fn app_with(scene: FieldScene) -> App {
    let rate = scene.run.sample_rate;
    app_with_rate(scene, rate)
}

/// As [`app_with`], with `ticks_per_unit` ticks per unit of model time.
pub fn app_with_rate(scene: FieldScene, ticks_per_unit: f64) -> App {
    let mut app = headless_app();
    app.insert_resource(EntityMirror::EveryTick);
    load_scene(
        app.world_mut(),
        scene,
        SimSettings {
            ticks_per_unit,
            engine: EngineOptions::default(),
            backend: CPU,
        },
    )
    .unwrap();
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(1));
    app.update(); // startup; no tick yet
    app
}

/// The entities' state, row-major.
pub fn state(app: &mut App) -> (Vec<f64>, Vec<f64>) {
    let world = app.world_mut();
    let mut q = world.query::<(&GridPosition, &Excitatory, &Inhibitory)>();
    let n = q.iter(world).count();
    let (mut e, mut i) = (vec![0.0; n], vec![0.0; n]);
    for (pos, ex, inh) in q.iter(world) {
        e[pos.cell()] = ex.0;
        i[pos.cell()] = inh.0;
    }
    (e, i)
}

/// The engine's state, row-major (what every reader reads).
pub fn engine_state(app: &App) -> (Vec<f64>, Vec<f64>) {
    let state = app.world().resource::<Lattice>().state();
    (state.e.to_vec(), state.i.to_vec())
}

/// The time-varying part of every cell's drive over the last integrated segment.
pub fn felt_stimulus(app: &App) -> Vec<f64> {
    let state = app.world().resource::<Lattice>().state();
    state
        .drive
        .iter()
        .zip(state.h_ex)
        .map(|(d, h)| d - h)
        .collect()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// A fresh folder under the system temp dir (not created).
pub fn temp_out(tag: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(&format!("eifield-{tag}-"))
        .tempdir()
        .unwrap()
        .keep();
    std::fs::remove_dir(&dir).unwrap();
    dir
}

/// The CPU engine, named: tests that compare bits say which engine they
/// compare (`auto` could pick a GPU on a machine that has one).
pub const CPU: BackendRequest = BackendRequest {
    backend: BackendChoice::Cpu,
    precision: None,
};

/// Runs the `eifield` binary with `args`.
pub fn eifield(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `eifield view SCENE --script SCRIPT [extra…]` in a 1280 × 720 Xvfb window.
pub fn view_scripted(scene: &Path, script: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24"])
        .arg(env!("CARGO_BIN_EXE_eifield"))
        .arg("view")
        .arg(scene)
        .arg("--script")
        .arg(script)
        .args(extra)
        .output()
        .expect("xvfb-run is installed (package xvfb); .ci/run installs it")
}

/// Writes `scene` to `dir/NAME.ron`, runs `eifield run` on it into `dir/NAME`
/// (asserting that it succeeds), and returns that folder.
pub fn run_scene_file(scene: &FieldScene, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, scene.to_ron_string()).unwrap();
    let out = dir.join(name);
    let run = eifield(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--backend",
        "cpu",
    ]);
    assert!(
        run.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// The `json …` lines of `eifield bench --json`, parsed.
pub fn bench_json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("json "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
