//! Coupling kernels end to end: the 4-neighbour stencil written as general
//! matrices (`.npy`, CSR and CSC `.npz`) gives the `Nearest` run, bad kernels
//! and matrix files are refused by name, and a Gaussian disk makes a ring
//! wave isotropic where the 4-neighbour stencil makes it square.

mod common;

use std::io::Write;

use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

use eifield_model::scene::{Coupling, Heterogeneity, Kernel, Profile, Stimulus};
use eifield_model::{Boundary, Engine, EngineOptions, FieldScene, Grid};

use common::base_scene;

/// A fresh folder under the system's temporary folder.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eifield-kernels-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_to_end(scene: &FieldScene) -> (Vec<f64>, Vec<f64>, u64) {
    let mut engine = Engine::from_scene(scene, EngineOptions::default()).unwrap();
    engine.advance_to(scene.run.duration).unwrap();
    (engine.e, engine.i, engine.steps)
}

/// The dense matrix `self_weight·1 + frac·A` of the 4-neighbour stencil,
/// row-major, `M[j, i]` = the weight with which `j` feeds `i`.
fn nearest_matrix(grid: &Grid, frac: f64, self_weight: f64) -> Vec<f64> {
    let n = grid.len();
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        let (r, c) = grid.position(i);
        m[i * n + i] += self_weight;
        for j in grid.neighbours(r, c) {
            m[j * n + i] += frac;
        }
    }
    m
}

fn npy_bytes<T: npyz::AutoSerialize + Copy>(shape: &[u64], values: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

/// `format` as scipy writes it: a 0-d array of ASCII bytes (`|S3`).
fn format_bytes(format: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<String>::new()
        .dtype(npyz::DType::Plain("|S3".parse().unwrap()))
        .shape(&[])
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.push(&format.to_owned()).unwrap();
    w.finish().unwrap();
    out
}

/// Writes a dense matrix as scipy's `save_npz` would, in CSR or CSC.
fn write_npz(path: &Path, n: usize, m: &[f64], csc: bool) {
    let (mut data, mut indices, mut indptr) = (Vec::new(), Vec::new(), vec![0i32]);
    for outer in 0..n {
        for inner in 0..n {
            let w = if csc {
                m[inner * n + outer]
            } else {
                m[outer * n + inner]
            };
            if w != 0.0 {
                data.push(w);
                indices.push(inner as i32);
            }
        }
        indptr.push(data.len() as i32);
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let files = [
        ("indices.npy", npy_bytes(&[indices.len() as u64], &indices)),
        ("indptr.npy", npy_bytes(&[indptr.len() as u64], &indptr)),
        ("format.npy", format_bytes(if csc { "csc" } else { "csr" })),
        ("shape.npy", npy_bytes(&[2], &[n as i64, n as i64])),
        ("data.npy", npy_bytes(&[data.len() as u64], &data)),
    ];
    for (name, bytes) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// The scene with `Matrix(ee, ei)` as its coupling, saved beside its
/// matrices, loaded back from the file.
fn matrix_scene(dir: &Path, base: &FieldScene, ee: &str, ei: &str) -> FieldScene {
    let mut scene = base.clone();
    scene.coupling = Coupling {
        kernel: Kernel::Matrix {
            ee: eifield_model::scene::MatrixFile::new(ee),
            ei: eifield_model::scene::MatrixFile::new(ei),
        },
        ..Coupling::default()
    };
    let path = dir.join("scene.ron");
    std::fs::write(&path, scene.to_ron_string()).unwrap();
    FieldScene::load(&path).unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn the_four_neighbour_stencil_written_as_matrices_gives_the_nearest_run() {
    for boundary in [Boundary::Open, Boundary::Periodic] {
        let base = base_scene(boundary);
        let (want_e, want_i, steps) = run_to_end(&base);
        assert!(steps >= 1000, "{steps} steps");
        let grid = base.grid;
        let n = grid.len();
        let c = &base.coupling;
        let m_ee = nearest_matrix(&grid, c.frac_ee, c.self_weight);
        let m_ei = nearest_matrix(&grid, c.frac_ei, c.self_weight);
        let dir = scratch_dir(&format!("{boundary:?}"));
        std::fs::write(dir.join("ee.npy"), npy_bytes(&[n as u64, n as u64], &m_ee)).unwrap();
        std::fs::write(dir.join("ei.npy"), npy_bytes(&[n as u64, n as u64], &m_ei)).unwrap();
        write_npz(&dir.join("ee_csr.npz"), n, &m_ee, false);
        write_npz(&dir.join("ei_csc.npz"), n, &m_ei, true);
        for (ee, ei) in [
            ("ee.npy", "ei.npy"),
            ("ee_csr.npz", "ei_csc.npz"),
            ("ee.npy", "ei_csc.npz"),
        ] {
            let scene = matrix_scene(&dir, &base, ee, ei);
            let (e, i, _) = run_to_end(&scene);
            let (de, di) = (max_abs_diff(&e, &want_e), max_abs_diff(&i, &want_i));
            eprintln!(
                "{boundary:?} {ee} {ei}: max |dE| = {de:e}, max |dI| = {di:e} after {steps} steps"
            );
            assert!(
                de <= 1e-12 && di <= 1e-12,
                "{boundary:?} {ee}/{ei}: {de:e} {di:e}"
            );
            // The state moved: the comparison is not between two rest states.
            assert!(want_e.iter().any(|&x| x > 0.5));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn bad_kernels_and_matrix_files_are_refused_by_name() {
    let dir = scratch_dir("bad");
    let grid = Grid::new(3, 4, Boundary::Open);
    let n = grid.len();
    let base = FieldScene {
        grid,
        ..FieldScene::default()
    };
    let good = nearest_matrix(&grid, 0.2, 1.0);
    std::fs::write(
        dir.join("good.npy"),
        npy_bytes(&[n as u64, n as u64], &good),
    )
    .unwrap();
    std::fs::write(dir.join("small.npy"), npy_bytes(&[4, 4], &[0.5f64; 16])).unwrap();
    let mut nan = good.clone();
    nan[3 * n + 5] = f64::NAN;
    std::fs::write(dir.join("nan.npy"), npy_bytes(&[n as u64, n as u64], &nan)).unwrap();
    std::fs::write(dir.join("text.npy"), "not an array").unwrap();
    let load = |ee: &str| -> String {
        let mut scene = base.clone();
        scene.coupling.kernel = Kernel::Matrix {
            ee: eifield_model::scene::MatrixFile::new(ee),
            ei: eifield_model::scene::MatrixFile::new("good.npy"),
        };
        let path = dir.join("scene.ron");
        std::fs::write(&path, scene.to_ron_string()).unwrap();
        FieldScene::load(&path).unwrap_err().to_string()
    };
    let wrong = load("small.npy");
    assert!(
        wrong.contains("coupling.kernel.ee") && wrong.contains("n = rows × cols = 12"),
        "{wrong}"
    );
    let bad = load("nan.npy");
    assert!(bad.contains("M[3, 5]") && bad.contains("finite"), "{bad}");
    let missing = load("missing.npy");
    assert!(
        missing.contains("coupling.kernel.ee") && missing.contains("missing.npy"),
        "{missing}"
    );
    let text = load("text.npy");
    assert!(text.contains("coupling.kernel.ee"), "{text}");

    // Numbers beside a matrix are refused where they are written.
    let ron = "(grid: (rows: 3, cols: 4), coupling: (frac_ee: 0.3, kernel: Matrix(ee: \"good.npy\", ei: \"good.npy\")))";
    let err = FieldScene::from_ron_str(ron, "s.ron")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("coupling.frac_ee") && err.contains("s.ron:1:"),
        "{err}"
    );
    for (ron, field) in [
        (
            "(coupling: (kernel: Disk(radius: 0.5, profile: Flat)))",
            "coupling.kernel.radius",
        ),
        (
            "(coupling: (kernel: Disk(radius: 17.0, profile: Flat)))",
            "coupling.kernel.radius",
        ),
        (
            "(coupling: (kernel: Disk(radius: 3.0, profile: Gaussian(sigma: 0.0))))",
            "coupling.kernel.profile.sigma",
        ),
        (
            "(coupling: (kernel_ei: Disk(radius: 3.0, profile: Gaussian(sigma: -1.0))))",
            "coupling.kernel_ei.profile.sigma",
        ),
        (
            "(coupling: (kernel: Moore(diagonal: inf)))",
            "coupling.kernel.diagonal",
        ),
        (
            "(coupling: (kernel: Disk(radius: 4.0, profile: MexicanHat(sigma_center: 1.0, sigma_surround: 3.0, surround: 5.0))))",
            "coupling.kernel.profile",
        ),
    ] {
        let err = FieldScene::from_ron_str(ron, "s.ron")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{field}`")), "{ron}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// First activation time (upward crossing of E = 1, interpolated) of every
/// cell of a ring-wave scene, sampled every `every` units.
fn first_activations(scene: &FieldScene, every: f64) -> Vec<f64> {
    let mut engine = Engine::from_scene(
        scene,
        EngineOptions {
            threads: 2,
            simd: None,
        },
    )
    .unwrap();
    let mut first = vec![f64::NAN; scene.grid.len()];
    let mut before = engine.e.clone();
    let mut t = 0.0;
    while t < scene.run.duration {
        let next = t + every;
        engine.advance_to(next).unwrap();
        for (k, (&a, &b)) in before.iter().zip(&engine.e).enumerate() {
            if first[k].is_nan() && a < 1.0 && b >= 1.0 {
                first[k] = t + every * (1.0 - a) / (b - a);
            }
        }
        before.copy_from_slice(&engine.e);
        t = next;
    }
    first
}

/// The height of the pulse that starts the ring: a wide kernel spreads a
/// cell's pull over many cells, so one cell must be driven harder than the
/// gallery's 8 to ignite its neighbours.
const PULSE_AMP: f64 = 20.0;

/// The isotropy test's field for `kernel`: the gallery's target waves (at
/// rest, strong coupling, a little lateral inhibition) on 81 × 81 cells
/// without heterogeneity, one pulse into the centre.
fn ring_scene(kernel: Kernel) -> FieldScene {
    // The kernel's total weight (4 but for Moore) scales the fractions, so
    // that every kernel couples a cell as strongly in all.
    let total = match kernel {
        Kernel::Moore { diagonal } => 4.0 + 4.0 * diagonal,
        _ => 4.0,
    };
    let side = 81;
    let waves = eifield_model::scene::builtin("waves").unwrap();
    let mut scene = FieldScene::from_ron_str(waves.text, "waves").unwrap();
    scene.grid = Grid::new(side, side, Boundary::Open);
    scene.drive.h_ex = -6.0;
    scene.drive.heterogeneity = Heterogeneity::None;
    scene.coupling.frac_ee = 0.8 * 4.0 / total;
    scene.coupling.frac_ei = 0.1 * 4.0 / total;
    scene.coupling.kernel = kernel;
    scene.stimuli = Some(vec![Stimulus::PulseTrain {
        row: side / 2,
        col: side / 2,
        freq: 0.2,
        width: 1.3,
        amp: PULSE_AMP,
        onset: 0.0,
        count: Some(1),
    }]);
    scene.run.duration = 30.0;
    scene
}

/// The README's pictures of the three rings are drawn from scene files
/// beside them: they hold the fields this test measures.
#[test]
fn the_readmes_ring_pictures_show_the_fields_measured_here() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kernels");
    for (file, kernel) in [
        ("nearest.ron", Kernel::Nearest),
        ("moore.ron", Kernel::Moore { diagonal: 0.5 }),
        (
            "disk.ron",
            Kernel::Disk {
                radius: 3.0,
                profile: Profile::Gaussian { sigma: 1.5 },
            },
        ),
    ] {
        let shown = FieldScene::load(&docs.join(file)).unwrap();
        let measured = ring_scene(kernel);
        assert_eq!(shown.grid, measured.grid, "{file}");
        assert_eq!(shown.model, measured.model, "{file}");
        assert_eq!(shown.coupling, measured.coupling, "{file}");
        assert_eq!(shown.drive, measured.drive, "{file}");
        assert_eq!(shown.initial, measured.initial, "{file}");
        assert_eq!(shown.stimuli, measured.stimuli, "{file}");
        assert_eq!(shown.integrator, measured.integrator, "{file}");
        assert_eq!(shown.run.duration, measured.run.duration, "{file}");
    }
}

/// Speed of the front along the axes and along the diagonals, from a
/// least-squares fit of first activation against distance from the centre
/// over the cells within 1 cell of those lines, between r = 8 and r = 32.
fn axis_and_diagonal_speeds(kernel: Kernel) -> (f64, f64) {
    let scene = ring_scene(kernel);
    let side = scene.grid.rows;
    let first = first_activations(&scene, 0.05);
    let c = (side / 2) as f64;
    let fit = |on_line: &dyn Fn(f64, f64) -> bool| -> f64 {
        let pts: Vec<(f64, f64)> = (0..scene.grid.len())
            .filter_map(|k| {
                let (r, col) = scene.grid.position(k);
                let (y, x) = (r as f64 - c, col as f64 - c);
                let d = (x * x + y * y).sqrt();
                ((8.0..=32.0).contains(&d) && on_line(x, y)).then_some((d, first[k]))
            })
            .collect();
        assert!(pts.len() > 40, "too few cells on the line");
        let missing: Vec<_> = pts.iter().filter(|p| !p.1.is_finite()).collect();
        assert!(
            missing.is_empty(),
            "the wave did not reach every cell up to r = 32: {} of {} missing, e.g. at r = {:?}",
            missing.len(),
            pts.len(),
            missing.first().map(|p| p.0)
        );
        let m = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
        let (mx, my) = (sx / m, sy / m);
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        sxx / sxy
    };
    let axes = fit(&|x, y| x.abs().min(y.abs()) <= 1.0);
    let diagonals = fit(&|x, y| (x.abs() - y.abs()).abs() <= 1.0 * std::f64::consts::SQRT_2);
    (axes, diagonals)
}

#[test]
fn a_gaussian_disk_makes_ring_waves_isotropic() {
    let ratio = |(a, d): (f64, f64)| a.max(d) / a.min(d);
    let nearest = axis_and_diagonal_speeds(Kernel::Nearest);
    let moore = axis_and_diagonal_speeds(Kernel::Moore { diagonal: 0.5 });
    let disk = axis_and_diagonal_speeds(Kernel::Disk {
        radius: 3.0,
        profile: Profile::Gaussian { sigma: 1.5 },
    });
    for (name, s) in [
        ("Nearest", nearest),
        ("Moore(0.5), fractions × 4/6", moore),
        ("Disk(3, Gaussian 1.5)", disk),
    ] {
        eprintln!(
            "{name}: speed along the axes {:.3}, along the diagonals {:.3} cells per unit, max/min {:.3}",
            s.0,
            s.1,
            ratio(s)
        );
    }
    // The 4-neighbour stencil is measurably anisotropic (the measure can fail) ...
    assert!(ratio(nearest) > 1.15, "Nearest: {:.3}", ratio(nearest));
    // ... and the Gaussian disk is not.
    assert!(ratio(disk) <= 1.08, "Disk: {:.3}", ratio(disk));
}
