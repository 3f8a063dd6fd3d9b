//! Helpers shared by the engine-level tests: the reference solution, the
//! shipped scenes, a small driven lattice and a sampled run in either
//! precision.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::path::PathBuf;

use eifield_model::scene::Stimulus;
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene, Grid, Real};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The high-accuracy reference solution of the seed case.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("EIFIELD_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/reference/seed_default"))
}

/// A float64 array's shape and values.
pub fn read_npy(path: PathBuf) -> (Vec<u64>, Vec<f64>) {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f64>().unwrap())
}

/// The shipped seed scene.
pub fn seed_scene() -> FieldScene {
    FieldScene::load(&repo_root().join("scenes/seed_notebook.ron")).unwrap()
}

/// A 9 × 11 lattice with two pulse trains, E = I = 0 at the start (as the
/// notebook), lateral inhibition on, 5 units of time.
pub fn base_scene(boundary: Boundary) -> FieldScene {
    let mut scene = FieldScene {
        grid: Grid::new(9, 11, boundary),
        ..FieldScene::default()
    };
    scene.coupling.frac_ee = 0.6;
    scene.coupling.frac_ei = 0.1;
    scene.coupling.self_weight = 0.9;
    scene.drive.h_ex = -6.1;
    scene.stimuli = Some(vec![pulse(4, 5, 0.3, 0.0), pulse(0, 10, 0.45, 1.0)]);
    scene.run.duration = 5.0;
    scene
}

/// A pulse train of width 1.3 and amplitude 6 into a cell.
pub fn pulse(row: usize, col: usize, freq: f64, onset: f64) -> Stimulus {
    Stimulus::PulseTrain {
        row,
        col,
        freq,
        width: 1.3,
        amp: 6.0,
        onset,
        count: None,
    }
}

/// Runs the scene in the float type `T`, sampling at its rate, and returns
/// E and I at every sample, flattened, as f64.
pub fn run_samples<T: Real>(scene: &FieldScene, threads: usize) -> (Vec<f64>, Vec<f64>) {
    let options = EngineOptions {
        threads,
        simd: None,
    };
    let mut engine = Engine::<T>::build(scene, options).unwrap();
    let wide = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (mut es, mut is) = (wide(&engine.e), wide(&engine.i));
    for n in 1..scene.run.samples() {
        engine.advance_to(n as f64 / scene.run.sample_rate).unwrap();
        es.extend(wide(&engine.e));
        is.extend(wide(&engine.i));
    }
    (es, is)
}

/// The largest |a − b| over two equally long slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}
