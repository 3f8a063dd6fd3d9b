//! The f32 CPU engine: the reference case within 1e-3, every kernel within
//! 1e-3 of the f64 engine on a short run, and the same bits on every rerun
//! and every thread count.

mod common;

use eifield_model::coupling::{CouplingMatrix, MatrixFile};
use eifield_model::scene::{IntegratorSpec, Kernel, Profile};
use eifield_model::{Boundary, FieldScene};

use common::{base_scene, max_abs_diff, read_npy, reference_dir, run_samples, seed_scene};

#[test]
fn the_seed_case_matches_the_reference_within_1e_3() {
    let dir = reference_dir();
    let ((_, ref_e), (_, ref_i)) = (read_npy(dir.join("E.npy")), read_npy(dir.join("I.npy")));
    let scene = seed_scene();
    let (e, i) = run_samples::<f32>(&scene, 1);
    let (de, di) = (max_abs_diff(&e, &ref_e), max_abs_diff(&i, &ref_i));
    eprintln!("f32, default dt: max |dE| = {de:e}, max |dI| = {di:e}");
    assert!(de <= 1e-3 && di <= 1e-3);
    let mut fine = scene.clone();
    fine.integrator = IntegratorSpec::Rk4 { dt: 0.001 };
    let (e, i) = run_samples::<f32>(&fine, 1);
    eprintln!(
        "f32, dt = 1e-3: max |dE| = {:e}, max |dI| = {:e}",
        max_abs_diff(&e, &ref_e),
        max_abs_diff(&i, &ref_i)
    );
}

/// A lattice large enough for the pipelined schedule, with a pulse train,
/// pink noise and a Gaussian disk kernel.
fn pipelined_scene() -> FieldScene {
    FieldScene::from_ron_str(
        "(grid: (rows: 130, cols: 150, boundary: Periodic), \
          coupling: (frac_ee: 0.8, kernel: Disk(radius: 2.5, profile: Gaussian(sigma: 1.2))), \
          drive: (h_ex: -6.0), \
          noise: Pink(sigma: 0.3, seed: 4, sample_rate: 20.0), \
          stimuli: Some([PulseTrain(row: 5, col: 7, freq: 1.0, width: 0.3, amp: 6.0)]), \
          run: (duration: 2.0, sample_rate: 10.0))",
        "test",
    )
    .unwrap()
}

#[test]
fn reruns_and_thread_counts_give_the_same_bits() {
    let scene = pipelined_scene();
    let first = run_samples::<f32>(&scene, 1);
    let again = run_samples::<f32>(&scene, 1);
    assert!(first == again, "a rerun changed the bits");
    let threads = run_samples::<f32>(&scene, 3);
    assert!(first == threads, "three threads changed the bits");
    // The seed scene runs staged: its reruns too.
    let seed = seed_scene();
    assert!(run_samples::<f32>(&seed, 1) == run_samples::<f32>(&seed, 1));
}

/// The kernels test's lattice with `kernel`, for 3 units of time.
fn kernel_scene(kernel: Kernel, boundary: Boundary) -> FieldScene {
    let mut scene = base_scene(boundary);
    scene.coupling.kernel = kernel;
    scene.run.duration = 3.0;
    scene
}

#[test]
fn every_kernel_in_f32_follows_f64_within_1e_3() {
    let n = 99;
    // A random sparse matrix with a diagonal, negative weights included.
    let mut dense = vec![0.0; n * n];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for (k, w) in dense.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x >> 11) as f64 / (1u64 << 53) as f64;
        if k % (n + 1) == 0 {
            *w = 0.9;
        } else if r < 0.05 {
            *w = 4.0 * r - 0.05;
        }
    }
    let matrix = |m: &[f64]| {
        MatrixFile::with_matrix(
            "m.npy",
            std::sync::Arc::new(CouplingMatrix::from_dense(n, m)),
        )
    };
    let disk = |radius, profile| Kernel::Disk { radius, profile };
    let kernels = [
        Kernel::Nearest,
        Kernel::Moore { diagonal: 0.7 },
        disk(1.5, Profile::Flat),
        disk(3.0, Profile::Gaussian { sigma: 1.5 }),
        disk(
            4.0,
            Profile::MexicanHat {
                sigma_center: 1.0,
                sigma_surround: 2.0,
                surround: 0.3,
            },
        ),
        Kernel::Matrix {
            ee: matrix(&dense),
            ei: matrix(&dense.iter().map(|w| 0.5 * w).collect::<Vec<_>>()),
        },
    ];
    for kernel in kernels {
        for boundary in [Boundary::Open, Boundary::Periodic] {
            let scene = kernel_scene(kernel.clone(), boundary);
            let (e64, i64) = run_samples::<f64>(&scene, 1);
            let (e32, i32) = run_samples::<f32>(&scene, 1);
            let (de, di) = (max_abs_diff(&e32, &e64), max_abs_diff(&i32, &i64));
            let name = format!("{kernel:?}");
            let name = &name[..name.len().min(40)];
            eprintln!("{name} {boundary:?}: max |dE| = {de:e}, max |dI| = {di:e}");
            assert!(de <= 1e-3 && di <= 1e-3, "{name} {boundary:?}");
        }
    }
}
