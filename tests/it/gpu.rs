//! The GPU backend through the command line, on whatever adapter this
//! machine has (Mesa's software Vulkan in CI): the reference case within the
//! issue's tolerances in f64 and f32, the manifest's backend keys, identical
//! bits from run to run, the benchmark's GPU lines and a GPU render.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use eifield::commands::run::headless_app;
use eifield::sim::backend::{BackendChoice, BackendRequest};
use eifield::sim::probes::{ActivationTimes, FollowedCells, Probes, ProbesPlugin, Raster};
use eifield::sim::{EntityMirror, Neighbours, SimClock, SimSettings, SimStatus, load_scene};
use eifield_model::FieldScene;
use eifield_model::scene::IntegratorSpec;

use crate::common::*;

/// `eifield run SCENE --out OUT --quiet EXTRA…`, asserting success.
fn run(scene: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    let result = eifield(&args);
    assert!(
        result.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

/// The largest difference of E and I from the reference solution.
fn reference_error(out: &Path) -> f64 {
    let reference = reference_dir();
    ["E.npy", "I.npy"]
        .iter()
        .map(|name| {
            let (shape, got) = read_npy(&out.join(name));
            let (want_shape, want) = read_npy(&reference.join(name));
            assert_eq!(shape, want_shape, "{name}");
            max_abs_diff(&got, &want)
        })
        .fold(0.0, f64::max)
}

#[test]
fn the_reference_case_through_the_gpu_backend_in_both_precisions() {
    let dir = temp_out("gpu-reference");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = scene_path("seed_notebook.ron");
    let mut fine = FieldScene::load(&seed).unwrap();
    fine.integrator = IntegratorSpec::Rk4 { dt: 0.001 };
    let fine_path = dir.join("fine.ron");
    std::fs::write(&fine_path, fine.to_ron_string()).unwrap();

    let cases: [(&Path, &str, &[&str], f64); 4] = [
        (&seed, "f64", &["--backend", "gpu"], 1e-4),
        (&fine_path, "f64-fine", &["--backend", "gpu"], 1e-6),
        (
            &seed,
            "f32",
            &["--backend", "gpu", "--precision", "f32"],
            1e-2,
        ),
        (&seed, "cpu", &["--backend", "cpu"], 1e-4),
    ];
    for (scene, name, extra, tolerance) in cases {
        let out = dir.join(name);
        run(scene, &out, extra);
        let error = reference_error(&out);
        let m = manifest(&out);
        println!(
            "{name}: max |ΔE|, |ΔI| against the reference {error:e} (backend {}, adapter {}, precision {})",
            m["backend"], m["adapter"], m["precision"]
        );
        assert!(error <= tolerance, "{name}: {error:e} > {tolerance:e}");
        let (backend, precision) = match name {
            "cpu" => ("cpu", "f64"),
            "f32" => ("gpu", "f32"),
            _ => ("gpu", "f64"),
        };
        assert_eq!(m["backend"], backend, "{name}");
        assert_eq!(m["precision"], precision, "{name}");
        assert!(!m["adapter"].as_str().unwrap().is_empty());
    }
    // f32 is really single precision: it differs from the f64 run.
    let (_, e64) = read_npy(&dir.join("f64").join("E.npy"));
    let (_, e32) = read_npy(&dir.join("f32").join("E.npy"));
    assert!(max_abs_diff(&e64, &e32) > 0.0);
}

#[test]
fn two_gpu_runs_write_the_same_bytes() {
    let dir = temp_out("gpu-repeat");
    let scene = scene_path("waves.ron");
    let mut short = FieldScene::load(&scene).unwrap();
    short.run.duration = 3.0;
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short.ron");
    std::fs::write(&path, short.to_ron_string()).unwrap();
    for name in ["a", "b"] {
        run(&path, &dir.join(name), &["--backend", "gpu"]);
    }
    for file in ["E.npy", "I.npy"] {
        let a = std::fs::read(dir.join("a").join(file)).unwrap();
        let b = std::fs::read(dir.join("b").join(file)).unwrap();
        assert!(a == b, "{file} differs between two GPU runs");
    }
}

#[test]
fn bench_measures_the_gpu_beside_the_cpu() {
    let result = eifield(&[
        "bench",
        "--seconds",
        "0.05",
        "--sides",
        "64",
        "--gpu-sides",
        "64",
        "--backend",
        "gpu",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines = bench_json_lines(&text);
    let has = |backend: &str, precision: &str| {
        lines
            .iter()
            .any(|m| m["backend"] == backend && m["precision"] == precision && m["side"] == 64)
    };
    assert!(has("cpu", "f64"), "{text}");
    assert!(has("gpu", "f64"), "{text}");
    assert!(has("gpu", "f32"), "{text}");
    // The same problem from the same state: the centre cell agrees closely
    // whatever the engine (the runs differ in length, so compare loosely).
    for m in &lines {
        assert!(m["cell_steps_per_s"].as_f64().unwrap() > 0.0);
        assert!(m["centre_e"].as_f64().unwrap().is_finite());
    }
}

/// The frames of a video as decoded by `ffmpeg`, one checksum each.
fn frame_checksums(video: &Path) -> Vec<String> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(video)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg is installed (.ci/run installs it)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap_or("").trim().to_owned())
        .collect()
}

/// A render on the GPU backend draws from the engine's buffers on the
/// renderer's device; every frame equals the CPU render's (the frames are
/// drawn while the next ones are integrated, so this also checks that a
/// frame never shows a later state).
#[test]
fn a_gpu_render_draws_what_the_cpu_render_draws() {
    let dir = temp_out("gpu-render");
    std::fs::create_dir_all(&dir).unwrap();
    let video = |backend: &str| {
        let path = dir.join(format!("{backend}.mp4"));
        let result = eifield(&[
            "render",
            "waves",
            "--duration",
            "1",
            "--fps",
            "12",
            "--time-per-frame",
            "0.25",
            "--size",
            "320x180",
            "--quiet",
            "--out",
            path.to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert!(
            result.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        frame_checksums(&path)
    };
    let cpu = video("cpu");
    let gpu = video("gpu");
    assert_eq!(cpu.len(), 12);
    let differing = cpu.iter().zip(&gpu).filter(|(a, b)| a != b).count();
    println!(
        "GPU and CPU videos differ in {differing} of {} frames",
        cpu.len()
    );
    assert_eq!(gpu, cpu);
}

/// Writes a viewer script: let `ticks_frames` frames run, pause, then report
/// and take a screenshot. The pointer rests over the 3D view's empty top
/// left corner, away from the lattice, so that no tooltip covers the view:
/// the tooltip is egui text, which this test does not compare (once, in CI,
/// a single pixel of the view differed with the pointer over the lattice;
/// the tooltip's text, drawn from a glyph atlas that the two viewers' panels
/// fill in a different order, is the likely cause).
fn pause_report_shot(dir: &Path, name: &str, run_frames: u32) -> (PathBuf, PathBuf, PathBuf) {
    let report = dir.join(format!("{name}.json"));
    let shot = dir.join(format!("{name}.png"));
    let script = dir.join(format!("{name}.script"));
    let running = if run_frames > 0 {
        format!("wait {run_frames}\n")
    } else {
        String::new()
    };
    std::fs::write(
        &script,
        format!(
            "{running}pause\npointer 320 10\nwait 20\nreport {}\nscreenshot {}\nwait 3\nexit\n",
            report.display(),
            shot.display()
        ),
    )
    .unwrap();
    (script, report, shot)
}

/// The viewer on the GPU backend: the engine runs on the renderer's device
/// and the surface is fed from its buffers (the report says so); the state
/// it reaches agrees with the CPU engine's after the same ticks, and it is
/// drawn exactly as the CPU viewer draws that state.
#[test]
fn the_gpu_viewer_draws_its_state_as_the_cpu_viewer_does() {
    let dir = temp_out("gpu-viewer");
    std::fs::create_dir_all(&dir).unwrap();
    let mut scene = FieldScene {
        name: "random start".into(),
        grid: eifield_model::Grid::new(40, 56, eifield_model::Boundary::Open),
        initial: eifield_model::scene::Initial::Random {
            sigma: 1.5,
            seed: 3,
        },
        ..FieldScene::default()
    };
    scene.view = Some(eifield_model::scene::ViewSpec {
        range: Some((-3.0, 3.0)),
        ..Default::default()
    });
    let path = dir.join("random.ron");
    std::fs::write(&path, scene.to_ron_string()).unwrap();

    let (script, report, shot) = pause_report_shot(&dir, "gpu", 15);
    let output = view_scripted(
        &path,
        &script,
        &[OsStr::new("--backend"), OsStr::new("gpu")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let gpu: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(gpu["backend"], "gpu");
    assert_eq!(gpu["surface_from_gpu"], true);
    let values = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (e, i) = (values(&gpu["E"]), values(&gpu["I"]));
    let ticks = gpu["tick"].as_u64().unwrap();
    println!("the GPU viewer paused at tick {ticks}");

    // The CPU engine after the same ticks.
    let rate = eifield::viewer::ticks_per_unit_for(scene.grid.len());
    let mut app = app_with_rate(scene.clone(), rate);
    for _ in 0..ticks {
        app.update();
    }
    let (cpu_e, cpu_i) = engine_state(&app);
    let difference = max_abs_diff(&e, &cpu_e).max(max_abs_diff(&i, &cpu_i));
    println!("GPU viewer against the CPU engine: max difference {difference:e}");
    assert!(difference <= 1e-10, "{difference:e}");

    // The CPU viewer shown that state draws the same picture.
    let mut same_state = scene.clone();
    same_state.initial = eifield_model::scene::Initial::Explicit {
        ex: e.into(),
        inh: i.into(),
    };
    let same_path = dir.join("same_state.ron");
    std::fs::write(&same_path, same_state.to_ron_string()).unwrap();
    let (script, _, cpu_shot) = pause_report_shot(&dir, "cpu", 0);
    let output = view_scripted(
        &same_path,
        &script,
        &[OsStr::new("--backend"), OsStr::new("cpu")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (a, b) = (
        image::open(&shot).unwrap().to_rgb8(),
        image::open(&cpu_shot).unwrap().to_rgb8(),
    );
    // The 3D view: right of the side panel, above the plots (the panels show the time).
    let (mut differing, mut varied) = (0, std::collections::HashSet::new());
    for y in 0..490 {
        for x in 310..1280 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            differing += usize::from(p != q);
            varied.insert(p.0);
        }
    }
    println!(
        "3D view: {differing} differing pixels, {} colours",
        varied.len()
    );
    if let Some((x, y)) = (0..490)
        .flat_map(|y| (310..1280).map(move |x| (x, y)))
        .find(|&(x, y)| a.get_pixel(x, y) != b.get_pixel(x, y))
    {
        println!(
            "first at ({x}, {y}): GPU viewer {:?}, CPU viewer {:?}",
            a.get_pixel(x, y).0,
            b.get_pixel(x, y).0
        );
    }
    assert!(varied.len() > 100, "the surface is drawn");
    assert_eq!(differing, 0);
}

#[test]
fn the_control_of_an_analysis_runs_on_the_runs_engine() {
    let dir = temp_out("gpu-analyze");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run");
    run(
        &scene_path("seed_notebook.ron"),
        &out,
        &["--backend", "gpu", "--precision", "f32", "--analyze"],
    );
    let control = manifest(&out.join("analysis").join("control"));
    assert_eq!(control["backend"], "gpu");
    assert_eq!(control["precision"], "f32");
}

/// A headless app with probes on `backend`, four ticks per update.
fn probed_app(backend: BackendChoice) -> App {
    probed_app_with(
        backend,
        FieldScene::load(&scene_path("seed_notebook.ron")).unwrap(),
    )
}

/// As [`probed_app`], with another scene.
fn probed_app_with(backend: BackendChoice, scene: FieldScene) -> App {
    let mut app = headless_app();
    app.add_plugins(ProbesPlugin)
        .insert_resource(EntityMirror::EveryTick);
    load_scene(
        app.world_mut(),
        scene,
        SimSettings {
            ticks_per_unit: 100.0,
            engine: eifield_model::EngineOptions::default(),
            backend: BackendRequest {
                backend,
                precision: None,
            },
        },
    )
    .unwrap();
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(4));
    app.update();
    app
}

/// With the GPU engine the viewer's probes, raster, activation map and
/// hovered cell take what the GPU gathers after every tick, collected a
/// frame or so later: every tick's sample, each the CPU engine's at that time.
#[test]
fn gpu_probes_raster_and_activations_get_every_tick_from_the_gpu() {
    let mut gpu = probed_app(BackendChoice::Gpu);
    let mut cpu = probed_app(BackendChoice::Cpu);
    let (row, col) = {
        let probes = gpu.world().resource::<Probes>();
        assert_eq!(probes.0.len(), 1, "a probe on the stimulated cell");
        (probes.0[0].row, probes.0[0].col)
    };
    let grid = gpu.world().resource::<Neighbours>().grid();
    let probed = grid.index(row, col);
    gpu.world_mut().resource_mut::<FollowedCells>().extra = vec![probed];
    for _ in 0..60 {
        gpu.update();
        cpu.update();
    }
    let history = |app: &App| {
        let probes = app.world().resource::<Probes>();
        probes.0[0].history.iter().copied().collect::<Vec<_>>()
    };
    let (gpu_history, cpu_history) = (history(&gpu), history(&cpu));
    assert!(
        cpu_history.len() >= 4 * 55,
        "one sample per tick: {}",
        cpu_history.len()
    );
    assert!(
        gpu_history.len() + 4 * 3 >= cpu_history.len() && gpu_history.len() <= cpu_history.len(),
        "every tick but the last few frames': GPU {}, CPU {}",
        gpu_history.len(),
        cpu_history.len()
    );
    for pair in gpu_history.windows(2) {
        assert!(
            (pair[1].t - pair[0].t - 0.01).abs() < 1e-12,
            "one sample per tick: {} then {}",
            pair[0].t,
            pair[1].t
        );
    }
    for (sample, same_time) in gpu_history.iter().zip(&cpu_history) {
        assert_eq!(sample.t, same_time.t);
        assert!(
            (same_time.e - sample.e).abs() <= 1e-10 && (same_time.i - sample.i).abs() <= 1e-10,
            "t = {}: {sample:?} vs {same_time:?}",
            sample.t
        );
        assert_eq!(sample.stimulus, same_time.stimulus, "t = {}", sample.t);
    }
    assert!(
        gpu_history.iter().any(|s| s.stimulus != 0.0),
        "the samples cover a pulse"
    );
    // The raster: the CPU's columns at the same times.
    let (gpu_raster, cpu_raster) = (
        gpu.world().resource::<Raster>().clone(),
        cpu.world().resource::<Raster>().clone(),
    );
    assert!(gpu_raster.times.len() >= 50, "{}", gpu_raster.times.len());
    for (t, column) in gpu_raster.times.iter().zip(&gpu_raster.columns) {
        let k = cpu_raster
            .times
            .iter()
            .position(|c| c == t)
            .unwrap_or_else(|| panic!("the CPU raster has a column at t = {t}"));
        let difference = column
            .iter()
            .zip(&cpu_raster.columns[k])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(difference <= 1e-6, "t = {t}: {difference:e}");
    }
    // The activation map: what has arrived is the CPU's.
    let (gpu_first, cpu_first) = (
        gpu.world().resource::<ActivationTimes>().first.clone(),
        cpu.world().resource::<ActivationTimes>().first.clone(),
    );
    let activated = gpu_first.iter().filter(|t| t.is_finite()).count();
    assert!(activated > 0, "some cells activated");
    for (k, (g, c)) in gpu_first.iter().zip(&cpu_first).enumerate() {
        if g.is_finite() {
            assert!((g - c).abs() <= 1e-9, "cell {k}: GPU {g}, CPU {c}");
        }
    }
    // The hovered cell's latest values are those of a gathered tick.
    let latest = gpu.world().resource::<FollowedCells>().latest.clone();
    assert_eq!(latest.len(), 1);
    let (cell, t, e, i) = latest[0];
    assert_eq!(cell, probed);
    let sample = gpu_history
        .iter()
        .find(|s| s.t == t)
        .expect("a probe sample then");
    assert_eq!((sample.e, sample.i), (e, i));
    println!(
        "{} GPU samples, {} CPU; {} raster columns; {activated} cells activated",
        gpu_history.len(),
        cpu_history.len(),
        gpu_raster.times.len()
    );
}

/// The viewer does not wait for the GPU's non-finite check: a blow-up stops
/// the clock when the check arrives, named at the end of the frame whose
/// ticks produced it (the CPU engine names the tick itself).
#[test]
fn a_gpu_blow_up_stops_the_viewer_at_the_end_of_its_frame() {
    let mut scene = FieldScene::load(&scene_path("seed_notebook.ron")).unwrap();
    // A rate this large makes RK4 explode within a few ticks.
    scene.model.tau_ex = 1e6;
    let mut gpu = probed_app_with(BackendChoice::Gpu, scene.clone());
    let mut cpu = probed_app_with(BackendChoice::Cpu, scene);
    for _ in 0..20 {
        gpu.update();
        cpu.update();
    }
    let blow_up = |app: &App| match app.world().resource::<SimStatus>() {
        SimStatus::BlownUp(b) => b.clone(),
        other => panic!("expected a blow-up, got {other:?}"),
    };
    let (g, c) = (blow_up(&gpu), blow_up(&cpu));
    let tick = 0.01;
    assert!(
        g.time >= c.time && g.time < c.time + 4.0 * tick,
        "GPU {g}, CPU {c}"
    );
    assert!(
        (g.time / (4.0 * tick)).fract() < 1e-9 || (g.time / (4.0 * tick)).fract() > 1.0 - 1e-9,
        "at the end of a frame (4 ticks): {}",
        g.time
    );
    let ticks = gpu.world().resource::<SimClock>().ticks;
    gpu.update();
    assert_eq!(
        gpu.world().resource::<SimClock>().ticks,
        ticks,
        "the clock stopped"
    );
    println!("GPU: {g}; CPU: {c}");
}

#[test]
fn a_sweep_on_the_gpu_gives_the_cpu_sweeps_table() {
    let dir = temp_out("gpu-sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let mut base = FieldScene::load(&scene_path("seed_notebook.ron")).unwrap();
    base.run.duration = 8.0;
    std::fs::write(dir.join("base.ron"), base.to_ron_string()).unwrap();
    let spec = dir.join("sweep.ron");
    std::fs::write(
        &spec,
        r#"(
            base: "base.ron",
            axes: [
                (param: "coupling.frac_ee", values: [0.2, 0.3]),
                (param: "drive.h_ex", values: [-6.4, -6.35, -6.3]),
            ],
        )"#,
    )
    .unwrap();
    // The GPU's batches: all six points at once (the default), 4 + 2, and
    // one lattice at a time.
    let table = |backend: &str, batch: Option<&str>| {
        let out = dir.join(format!("{backend}-{}", batch.unwrap_or("default")));
        let mut args = vec![
            "sweep",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            backend,
            "--quiet",
        ];
        if let Some(batch) = batch {
            args.extend(["--batch", batch]);
        }
        let result = eifield(&args);
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let row: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("points").join("000004.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(row["backend"], backend);
        assert_eq!(row["precision"], "f64");
        let text = std::fs::read_to_string(out.join("points.csv")).unwrap();
        text.lines()
            .map(|line| line.split(',').map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let cpu = table("cpu", None);
    assert_eq!(cpu.len(), 7, "a header and six points");
    let batches = [None, Some("2"), Some("1")].map(|batch| table("gpu", batch));
    // Batches or not, the GPU gives the same table.
    assert_eq!(batches[0], batches[1]);
    assert_eq!(batches[0], batches[2]);
    let gpu = &batches[0];
    assert_eq!(cpu[0], gpu[0]);
    for (a, b) in cpu.iter().zip(gpu).skip(1) {
        for (x, y) in a.iter().zip(b) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                // Counts equal, measures within 1e-6 relative.
                (Ok(x), Ok(y)) => assert!(
                    (x - y).abs() <= 1e-6 * x.abs().max(y.abs()),
                    "{a:?} vs {b:?}"
                ),
                _ => assert_eq!(x, y, "{a:?} vs {b:?}"),
            }
        }
    }
    // Points that induce something: the comparison compares numbers.
    assert!(
        cpu.iter()
            .skip(1)
            .any(|row| !row[4].is_empty() && row[4] != "0")
    );
}
