//! The `eifield run` command end to end: output files, determinism, round trip,
//! stops, and every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eifield::commands::run::{self as headless, RunRequest, StopReason};
use eifield_model::FieldScene;

use crate::common::*;

/// The manifest of a run folder.
fn manifest_of(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn the_cpu_engine_in_f32_writes_float32_arrays_that_every_reader_reads() {
    let dir = temp_out("cpu-f32");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            "seed_notebook",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend(extra);
        let result = eifield(&args);
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(result.status.success(), "{args:?}: {stderr}");
        stderr
    };
    let f32_args = ["--backend", "cpu", "--precision", "f32"];
    let (a, b) = (dir.join("a"), dir.join("b"));
    let note = run(&a, &f32_args);
    assert!(
        note.contains("f32 is for exploration") && note.contains("--precision f64"),
        "{note}"
    );
    run(&b, &f32_args);
    let m = manifest_of(&a);
    assert_eq!(
        (m["backend"].as_str(), m["precision"].as_str()),
        (Some("cpu"), Some("f32"))
    );
    let reference = reference_dir();
    for name in ["E.npy", "I.npy"] {
        // Two runs: the same bytes; half the bytes of f64.
        let bytes = std::fs::read(a.join(name)).unwrap();
        assert!(
            bytes == std::fs::read(b.join(name)).unwrap(),
            "{name} differs"
        );
        let (shape, got, width) = read_float_npy(&a.join(name));
        assert_eq!((shape, width), (vec![2001, 49], 4), "{name}");
        let (_, want) = read_npy(&reference.join(name));
        let error = max_abs_diff(&got, &want);
        println!("f32 on the CPU, {name}: max error against the reference {error:e}");
        assert!(error <= 1e-3, "{name}: {error:e}");
    }
    // The analysis runs its control in f32 too; plot reads the arrays.
    let analyzed = dir.join("analyzed");
    run(
        &analyzed,
        &["--backend", "cpu", "--precision", "f32", "--analyze"],
    );
    let control = manifest_of(&analyzed.join("analysis").join("control"));
    assert_eq!(control["precision"], "f32");
    let plot = eifield(&["plot", a.to_str().unwrap()]);
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    // A run continues from an f32 run's last state (in f64 here).
    let next = dir.join("next");
    run(&next, &["--continue-from", a.to_str().unwrap()]);
    let (_, before) = read_npy(&a.join("E.npy"));
    let (_, after, width) = read_float_npy(&next.join("E.npy"));
    assert_eq!(width, 8);
    assert_eq!(&after[..49], &before[before.len() - 49..]);
}

fn run_scene(scene: &Path, out: &Path) -> headless::Manifest {
    let request = RunRequest {
        scene: scene.to_owned(),
        out: out.to_owned(),
        force: false,
        quiet: true,
        threads: Some(1),
        continue_from: None,
        resume: false,
        backend: CPU,
        output: Default::default(),
    };
    let manifest =
        headless::run(&request, Arc::new(AtomicBool::new(false))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.stop, StopReason::Completed);
    manifest
}

/// The `manifest.json` of a run folder.
pub(crate) fn read_manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

pub(crate) fn write_scene(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_writes_loadable_arrays_scene_and_manifest() {
    let out = temp_out("seed");
    let out_str = out.to_str().unwrap();
    let scene = scene_path("seed_notebook.ron");
    let result = eifield(&["run", scene.to_str().unwrap(), "--out", out_str, "--quiet"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let (shape, e) = read_npy(&out.join("E.npy"));
    assert_eq!(shape, vec![2001, 49]);
    let (ishape, _) = read_npy(&out.join("I.npy"));
    assert_eq!(ishape, vec![2001, 49]);
    let (tshape, t) = read_npy(&out.join("t.npy"));
    assert_eq!(tshape, vec![2001]);
    for (n, &tn) in t.iter().enumerate() {
        assert_eq!(tn, n as f64 / 100.0);
    }
    // Same numbers as the reference (the ECS test checks the tolerance; here the files).
    let (_, ref_e) = read_npy(&reference_dir().join("E.npy"));
    assert!(max_abs_diff(&e, &ref_e) <= 1e-4);
    let manifest = read_manifest(&out);
    assert_eq!(manifest["stop"]["reason"], "completed");
    assert_eq!(manifest["samples"], 2001);
    assert!(manifest["steps"].as_u64().unwrap() >= 4000);
    assert!(manifest["version"].is_string());
    assert!(manifest["wall_time_s"].as_f64().unwrap() > 0.0);
    eifield_model::FieldScene::load(&out.join("scene.ron")).unwrap();

    // A second run into the same folder is refused, and nothing is touched.
    let before = std::fs::read(out.join("E.npy")).unwrap();
    let again = eifield(&["run", scene.to_str().unwrap(), "--out", out_str]);
    assert_eq!(again.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        msg.contains("already exists") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(std::fs::read(out.join("E.npy")).unwrap(), before);
    // With --force it goes ahead.
    let forced = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out_str,
        "--force",
        "--quiet",
    ]);
    assert!(forced.status.success());
    assert_eq!(std::fs::read(out.join("E.npy")).unwrap(), before);
}

/// A scene with every random part switched on, on a non-square periodic grid.
const RANDOM_SCENE: &str = r#"(
    name: "random parts",
    grid: (rows: 5, cols: 8, boundary: Periodic),
    drive: (heterogeneity: Random(eps: 0.05, seed: 3)),
    initial: Random(sigma: 0.5, seed: 4),
    stimuli: [
        PulseTrain(row: 1, col: 6, freq: 0.5, width: 0.4, amp: 5.0, onset: 0.7, count: 3),
        PulseTrain(row: 4, col: 0, freq: 0.25, width: 1.0, amp: 6.0),
    ],
    noise: Pink(sigma: 0.3, seed: 5, sample_rate: 50.0),
    integrator: Heun(dt: 0.004),
    run: (duration: 6.0, sample_rate: 40.0),
)"#;

#[test]
fn same_scene_twice_gives_identical_bits() {
    let dir = temp_out("twice");
    let scene = write_scene(&dir, "random.ron", RANDOM_SCENE);
    let (a, b) = (dir.join("a"), dir.join("b"));
    run_scene(&scene, &a);
    run_scene(&scene, &b);
    for file in ["E.npy", "I.npy", "t.npy", "scene.ron"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
}

#[test]
fn resolved_scene_round_trips_to_identical_results() {
    let dir = temp_out("roundtrip");
    let scene = write_scene(&dir, "random.ron", RANDOM_SCENE);
    let first = dir.join("first");
    run_scene(&scene, &first);
    let resolved_text = std::fs::read_to_string(first.join("scene.ron")).unwrap();
    // The seeded draws stay seeds (their generator is pinned): a small scene.
    assert!(
        resolved_text.contains("Random(") && !resolved_text.contains("Explicit"),
        "{resolved_text}"
    );
    let second = dir.join("second");
    run_scene(&first.join("scene.ron"), &second);
    for file in ["E.npy", "I.npy", "t.npy", "scene.ron"] {
        assert_eq!(
            std::fs::read(first.join(file)).unwrap(),
            std::fs::read(second.join(file)).unwrap(),
            "{file} differs"
        );
    }
    // And the parsed scenes are equal.
    let a = eifield_model::FieldScene::load(&first.join("scene.ron")).unwrap();
    let b = eifield_model::FieldScene::load(&second.join("scene.ron")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn blow_up_keeps_the_samples_before_it() {
    let dir = temp_out("blowup");
    let scene = write_scene(
        &dir,
        "blowup.ron",
        // Forward Euler with dt·tau_in = 10: every step multiplies I's error by about -9.
        "(grid: (rows: 3, cols: 4), model: (tau_in: 10.0), integrator: Euler(dt: 1.0), initial: Random(sigma: 3.0, seed: 1), run: (duration: 400.0, sample_rate: 1.0))",
    );
    let out = dir.join("out");
    let result = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(result.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&result.stderr);
    assert!(
        msg.contains("blow-up") && msg.contains("row") && msg.contains("t = "),
        "{msg}"
    );
    let manifest = read_manifest(&out);
    assert_eq!(manifest["stop"]["reason"], "blow_up");
    let (shape, e) = read_npy(&out.join("E.npy"));
    assert!(shape[0] >= 1 && shape[0] < 401, "{shape:?}");
    assert!(e.iter().all(|v| v.is_finite()));
    assert_eq!(read_npy(&out.join("t.npy")).0[0], shape[0]);
}

#[test]
fn sigterm_and_sigint_stop_cleanly_with_loadable_files() {
    for signal in ["TERM", "INT"] {
        let dir = temp_out(&format!("sig{signal}"));
        let scene = write_scene(
            &dir,
            "long.ron",
            "(grid: (rows: 128, cols: 128), initial: Zeros, run: (duration: 100000.0, sample_rate: 10.0))",
        );
        let out = dir.join("out");
        let mut child = spawn_run_until_flushed(&scene, &out, 2);
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "SIG{signal}");
        let manifest = read_manifest(&out);
        assert_eq!(manifest["stop"]["reason"], "interrupted", "SIG{signal}");
        let (shape, _) = read_npy(&out.join("E.npy"));
        let (tshape, _) = read_npy(&out.join("t.npy"));
        assert_eq!(shape, vec![tshape[0], 128 * 128]);
        assert_eq!(manifest["samples"].as_u64().unwrap(), tshape[0]);
    }
}

/// Runs a bad scene and returns stderr, checking exit code 2 and no panic.
fn rejected(tag: &str, text: &str) -> String {
    let dir = temp_out(tag);
    let scene = write_scene(&dir, "bad.ron", text);
    let out = dir.join("out");
    let result = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let msg = String::from_utf8_lossy(&result.stderr).into_owned();
    assert_eq!(result.status.code(), Some(2), "{tag}: {msg}");
    assert!(!msg.contains("panicked"), "{tag}: {msg}");
    assert!(!out.exists(), "{tag}: the output folder was left behind");
    msg
}

#[test]
fn malformed_scenes_report_file_line_and_column() {
    let msg = rejected("syntax", "(\n    grid: (rows: 7 cols: 7),\n)");
    assert!(msg.contains("bad.ron:2:"), "{msg}");
    let msg = rejected("unknown", "(\n    grid: (rows: 7, colz: 7),\n)");
    assert!(msg.contains("bad.ron:2:") && msg.contains("colz"), "{msg}");
    let msg = rejected("type", "(\n  run: (duration: \"long\"),\n)");
    assert!(msg.contains("bad.ron:2:"), "{msg}");
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        ("zero-rows", "(grid: (rows: 0, cols: 7))", "grid.rows"),
        ("zero-cols", "(grid: (rows: 3, cols: 0))", "grid.cols"),
        ("dt-zero", "(integrator: Rk4(dt: 0.0))", "integrator.dt"),
        (
            "dt-negative",
            "(integrator: Heun(dt: -0.01))",
            "integrator.dt",
        ),
        ("dt-inf", "(integrator: Euler(dt: inf))", "integrator.dt"),
        (
            "stim-row",
            "(stimuli: [PulseTrain(row: 7, col: 0)])",
            "stimuli[0].row",
        ),
        (
            "stim-col",
            "(grid: (rows: 9, cols: 4), stimuli: [PulseTrain(row: 1, col: 2), PulseTrain(row: 1, col: 4)])",
            "stimuli[1].col",
        ),
        (
            "het-len",
            "(drive: (heterogeneity: Explicit(h_ex: [1.0, 2.0], h_in: [1.0, 2.0])))",
            "drive.heterogeneity.h_ex",
        ),
        (
            "init-len",
            "(grid: (rows: 1, cols: 2), initial: Explicit(ex: [0.0, 0.0], inh: [0.0]))",
            "initial.inh",
        ),
        (
            "width",
            "(stimuli: [PulseTrain(row: 1, col: 1, width: -1.0)])",
            "stimuli[0].width",
        ),
        (
            "freq",
            "(stimuli: [PulseTrain(row: 1, col: 1, freq: -0.3)])",
            "stimuli[0].freq",
        ),
        ("nan-model", "(model: (c2: NaN))", "model.c2"),
        (
            "nan-array",
            "(grid: (rows: 1, cols: 2), initial: Explicit(ex: [0.0, NaN], inh: [0.0, 0.0]))",
            "initial.ex[1]",
        ),
        (
            "nan-noise",
            "(noise: Pink(sigma: NaN, seed: 1, sample_rate: 10.0))",
            "noise.sigma",
        ),
        (
            "sample-rate",
            "(run: (sample_rate: 0.0))",
            "run.sample_rate",
        ),
        (
            "sample-rate-neg",
            "(run: (sample_rate: -5.0))",
            "run.sample_rate",
        ),
        (
            "noise-rate",
            "(noise: Pink(sigma: 1.0, seed: 1, sample_rate: 0.0))",
            "noise.sample_rate",
        ),
        // Finite but beyond what the program can do with them.
        (
            "huge-run",
            "(run: (duration: 1e300, sample_rate: 1e300))",
            "run.duration",
        ),
        (
            "zero-tick",
            "(run: (sample_rate: 1e300))",
            "run.sample_rate",
        ),
        (
            "huge-tick",
            "(run: (sample_rate: 1e-300))",
            "run.sample_rate",
        ),
        (
            "tiny-dt",
            "(integrator: Euler(dt: 1e-300))",
            "integrator.dt",
        ),
        (
            "fast-noise",
            "(noise: Pink(sigma: 1.0, seed: 1, sample_rate: 1e300))",
            "noise.sample_rate",
        ),
        (
            "zero-frame",
            "(view: (time_per_frame: 1e-300))",
            "view.time_per_frame",
        ),
        ("huge-drive", "(drive: (h_ex: 1e300))", "drive.h_ex"),
        (
            "too-many-samples",
            "(run: (duration: 1e9, sample_rate: 10.0))",
            "run",
        ),
    ];
    for (tag, text, field) in cases {
        let msg = rejected(tag, text);
        assert!(
            msg.contains(&format!("`{field}`")),
            "{tag}: expected `{field}` in: {msg}"
        );
    }
}

#[test]
fn rest_without_a_rest_state_is_a_clear_input_error() {
    let msg = rejected("rest", "(initial: Rest, run: (duration: 1.0))");
    assert!(msg.contains("`initial`") && msg.contains("Rest"), "{msg}");
}

#[test]
fn missing_scene_and_unwritable_output_are_reported_before_work() {
    let dir = temp_out("io");
    std::fs::create_dir_all(&dir).unwrap();
    let result = eifield(&[
        "run",
        dir.join("nope.ron").to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("nope.ron"));

    // An output path below a regular file cannot be created.
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let scene = scene_path("seed_notebook.ron");
    let out = blocker.join("out");
    let result = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let msg = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{msg}");
    assert!(msg.contains("cannot create output folder"), "{msg}");
}

#[test]
fn scenes_lists_the_builtin_scenes_and_nothing_else() {
    let output = eifield(&["scenes"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, eifield_model::scene::builtin_names());
    assert!(names.len() >= 6, "a gallery of regimes: {names:?}");
    for line in text.lines() {
        assert!(line.split_whitespace().count() > 3, "a description: {line}");
    }
}

/// Runs the binary with `args` in `dir`, without a display.
fn eifield_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args(args)
        .current_dir(dir)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap()
}

#[test]
fn builtin_scenes_load_by_name_from_any_folder() {
    let dir = temp_out("anywhere");
    std::fs::create_dir_all(&dir).unwrap();
    for (arg, out) in [("seed_notebook", "x"), ("scenes/snic.ron", "y")] {
        let result = eifield_in(&dir, &["run", arg, "--out", out, "--quiet"]);
        let msg = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{arg}: {msg}");
        let manifest = read_manifest(&dir.join(out));
        assert!(
            manifest["scene_file"]
                .as_str()
                .unwrap()
                .ends_with("(built in)"),
            "{manifest}"
        );
        assert_eq!(read_npy(&dir.join(out).join("E.npy")).0[1], 49);
    }
    // A name that is neither a file nor a built-in scene lists the built-ins.
    let result = eifield_in(&dir, &["run", "wavez", "--out", "z"]);
    assert_eq!(result.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&result.stderr);
    assert!(
        msg.contains(&eifield_model::scene::builtin_names().join(", ")),
        "{msg}"
    );
    // With no arguments the viewer opens on the default scene; without a
    // display that is a clear error, not a missing file.
    let result = eifield_in(&dir, &[]);
    assert_eq!(result.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&result.stderr);
    assert!(
        msg.contains("no display") && !msg.contains("No such file"),
        "{msg}"
    );
}

#[test]
fn bench_reports_throughput_lines_and_the_seed_run_from_any_folder() {
    let dir = temp_out("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let result = eifield_in(
        &dir,
        &["bench", "--seconds", "0.05", "--sides", "7,128", "--json"],
    );
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines = bench_json_lines(&text);
    // 7 × 7 once (it always runs on one thread), 128 × 128 at 1 and all
    // threads, each in both precisions.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(lines.len(), if threads > 1 { 6 } else { 4 }, "{text}");
    for precision in ["f64", "f32"] {
        assert!(
            lines
                .iter()
                .any(|m| m["precision"] == precision && m["side"] == 128),
            "{text}"
        );
    }
    assert!(
        text.contains("bytes per cell in f64") && text.contains("in f32"),
        "{text}"
    );
    for m in &lines {
        assert!(m["cell_steps_per_s"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["steps"].as_u64().unwrap() >= 2, "{m}");
    }
    assert!(
        text.contains("seed_notebook (built in): 7 × 7") && text.contains("integrated in"),
        "{text}"
    );
    let bad = eifield_in(&dir, &["bench", "--scene", "nope.ron"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_threads_option_changes_the_threads_not_the_bits() {
    let dir = temp_out("threads");
    let scene = write_scene(
        &dir,
        "wide.ron",
        "(grid: (rows: 128, cols: 130, boundary: Periodic), initial: Random(sigma: 1.0, seed: 3), \
         run: (duration: 2.0, sample_rate: 10.0))",
    );
    let mut results = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.join(format!("out{threads}"));
        let result = eifield(&[
            "run",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--threads",
            threads,
        ]);
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let manifest = read_manifest(&out);
        assert_eq!(manifest["threads"].as_u64().unwrap().to_string(), threads);
        results.push(std::fs::read(out.join("E.npy")).unwrap());
    }
    assert_eq!(
        results[0], results[1],
        "E.npy differs between 1 and 2 threads"
    );
    let result = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        dir.join("out0").to_str().unwrap(),
        "--threads",
        "0",
    ]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("--threads"));
}

#[test]
fn a_run_continues_from_the_last_sample_of_an_earlier_one() {
    let dir = temp_out("continue");
    std::fs::create_dir_all(&dir).unwrap();
    let mut scene = load("seed_notebook.ron");
    scene.run.duration = 5.0;
    let path = dir.join("transient.ron");
    std::fs::write(&path, scene.to_ron_string()).unwrap();
    let (first, second) = (dir.join("transient"), dir.join("figure"));
    let run = |args: &[&str]| {
        let out = eifield(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        first.to_str().unwrap(),
        "--quiet",
    ]);
    run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
        "--quiet",
        "--continue-from",
        first.to_str().unwrap(),
    ]);
    let cells = scene.grid.len();
    for name in ["E.npy", "I.npy"] {
        let (_, before) = read_npy(&first.join(name));
        let (_, after) = read_npy(&second.join(name));
        let last = &before[before.len() - cells..];
        assert_eq!(
            &after[..cells],
            last,
            "{name}: the second run starts from the first's last state"
        );
        assert_ne!(&after[after.len() - cells..], last, "{name}: and moves on");
    }
    // The resolved scene records that state as its initial state.
    let resolved = FieldScene::load(&second.join("scene.ron")).unwrap();
    let (_, before) = read_npy(&first.join("E.npy"));
    match resolved.initial {
        eifield_model::scene::Initial::Explicit { ex, .. } => {
            assert_eq!(**ex, before[before.len() - cells..].to_vec())
        }
        other => panic!("initial state {other:?}"),
    }
    // Another grid is a clear error.
    let out = eifield(&[
        "run",
        "waves",
        "--out",
        dir.join("other").to_str().unwrap(),
        "--continue-from",
        first.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("7 × 7") && stderr.contains("64 × 64"),
        "{stderr}"
    );
    assert!(!dir.join("other").exists());
}

/// A run of a million cells writes a scene of a few KB (seeded drives stay
/// seeds) whose folder reruns to the same bits; a state to continue from is
/// written beside it as `.npy` arrays; and probing for a GPU on a machine
/// without a display prints nothing.
#[test]
fn a_large_runs_scene_is_small_reruns_to_the_same_bits_and_probing_is_quiet() {
    let dir = temp_out("big-scene");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("big.ron");
    std::fs::write(
        &spec,
        "(grid: (rows: 1024, cols: 1024, boundary: Open), \
         run: (duration: 0.01, sample_rate: 100.0))",
    )
    .unwrap();
    let run = |scene: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        args.push("--quiet");
        let done = Command::new(env!("CARGO_BIN_EXE_eifield"))
            .args(&args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
        assert!(done.status.success(), "{stderr}");
        stderr
    };
    // `auto` probes for a GPU at this size.
    let stderr = run(&spec, &dir.join("first"), &["--backend", "auto"]);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let scene = dir.join("first").join("scene.ron");
    let size = std::fs::metadata(&scene).unwrap().len();
    assert!(size < 16 * 1024, "scene.ron of 1024² holds {size} bytes");
    run(&scene, &dir.join("again"), &["--backend", "cpu"]);
    for name in ["E.npy", "I.npy"] {
        let (_, first) = read_npy(&dir.join("first").join(name));
        let (_, again) = read_npy(&dir.join("again").join(name));
        assert!(first == again, "{name}: the folder reruns to the same bits");
    }
    // A continued run's state lives beside its scene.
    let next = dir.join("next");
    run(
        &spec,
        &next,
        &["--continue-from", dir.join("first").to_str().unwrap()],
    );
    assert!(std::fs::metadata(next.join("scene.ron")).unwrap().len() < 16 * 1024);
    let (shape, initial) = read_npy(&next.join("initial_E.npy"));
    assert_eq!(shape, [1024, 1024]);
    let (_, first) = read_npy(&dir.join("first").join("E.npy"));
    assert!(initial[..] == first[first.len() - initial.len()..]);
}

/// A run killed with SIGKILL at a random moment, then `--resume`d, gives
/// the bytes of a run that was never stopped (pulses, pink noise and random
/// drives continuing as if nothing happened); another engine, a completed
/// run and another scene are refused, saying why.
#[test]
fn a_run_killed_at_a_random_moment_resumes_to_the_same_bits() {
    let dir = temp_out("resume");
    let scene = write_scene(
        &dir,
        "long.ron",
        "(grid: (rows: 64, cols: 64), \
         noise: Pink(sigma: 0.3, seed: 5, sample_rate: 20.0), \
         stimuli: [PulseTrain(row: 32, col: 20, freq: 0.3, width: 1.3, amp: 6.0, onset: 0.0)], \
         run: (duration: 150.0, sample_rate: 5.0))",
    );
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        args.push("--quiet");
        eifield(&args)
    };
    let whole = dir.join("whole");
    let started = std::time::Instant::now();
    assert!(run(&whole, &[]).status.success());
    let killed = dir.join("killed");
    let manifest = kill_at_a_random_moment(&scene, &killed, started.elapsed(), 0.4);
    let samples = manifest["samples"].as_u64().unwrap();
    let (shape, _) = read_npy(&killed.join("t.npy"));
    assert_eq!(shape[0], samples, "the manifest counts what t.npy holds");
    println!("killed with {samples} samples flushed");
    let other_engine = run(&killed, &["--resume", "--precision", "f32"]);
    assert_eq!(other_engine.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&other_engine.stderr);
    assert!(stderr.contains("--precision f64"), "{stderr}");
    let resumed = run(&killed, &["--resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    for name in ["E.npy", "I.npy", "t.npy"] {
        assert!(
            std::fs::read(whole.join(name)).unwrap() == std::fs::read(killed.join(name)).unwrap(),
            "{name}: the resumed run differs from the whole run"
        );
    }
    let (a, b) = (read_manifest(&whole), read_manifest(&killed));
    assert_eq!(b["stop"]["reason"], "completed");
    assert_eq!(
        (a["steps"].clone(), a["samples"].clone()),
        (b["steps"].clone(), b["samples"].clone())
    );
    // What cannot be resumed says why.
    let again = run(&killed, &["--resume"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("completed"));
    let other = write_scene(&dir, "other.ron", "(grid: (rows: 64, cols: 64))");
    let refused = eifield(&[
        "run",
        other.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
        "--resume",
    ]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another scene"));
}

/// Runs `scene` into `out` and kills it (SIGKILL) at a random moment after
/// its first flushed samples, at most `fraction` of `whole_run` (the time a
/// whole run took) later; returns the manifest it left, which must say
/// `running`.
pub(crate) fn kill_at_a_random_moment(
    scene: &Path,
    out: &Path,
    whole_run: std::time::Duration,
    fraction: f64,
) -> serde_json::Value {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let delay = whole_run.mul_f64(fraction * f64::from(nanos % 1000) / 1000.0);
    println!("the whole run took {whole_run:?}; killing after the first flush + {delay:?}");
    let mut child = spawn_run_until_flushed(scene, out, 2);
    std::thread::sleep(delay);
    child.kill().unwrap();
    child.wait().unwrap();
    let manifest = read_manifest(out);
    assert_eq!(manifest["stop"]["reason"], "running", "killed mid-run");
    manifest
}

/// Starts `eifield run SCENE --out OUT` and waits until the manifest counts
/// `samples` samples on disk (at most two minutes).
fn spawn_run_until_flushed(scene: &Path, out: &Path, samples: u64) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args([
            "run",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while read_manifest_if_any(out).is_none_or(|m| m["samples"].as_u64().unwrap_or(0) < samples) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run wrote no samples"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// The manifest of a run folder, if it has one yet.
fn read_manifest_if_any(out: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A disk that fills up (here: a file-size limit on the process, which
/// makes writes fail as a full disk does) stops the run with exit 1 and a
/// clear error; the arrays hold every sample the manifest counts, and the
/// run resumes once there is room, to the bytes of a run never stopped.
#[test]
fn a_full_disk_stops_the_run_cleanly_and_it_resumes_later() {
    let dir = temp_out("full-disk");
    let scene = write_scene(
        &dir,
        "big.ron",
        "(grid: (rows: 256, cols: 256), run: (duration: 20.0, sample_rate: 1.0))",
    );
    let full = dir.join("full");
    // 2 MB per file (4 MB where `sh` is bash, which counts KB): E.npy, 512
    // KB per sample, fills up well before the end.
    let limited = Command::new("sh")
        .args(["-c", "ulimit -f 4096; trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_eifield"))
        .args([
            "run",
            scene.to_str().unwrap(),
            "--out",
            full.to_str().unwrap(),
        ])
        .args(["--quiet", "--threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{stderr}");
    let manifest = read_manifest(&full);
    assert_eq!(manifest["stop"]["reason"], "write_error", "{manifest}");
    let message = manifest["stop"]["message"].as_str().unwrap();
    assert!(message.contains(".npy"), "{message}");
    let samples = manifest["samples"].as_u64().unwrap();
    println!("stopped after {samples} samples: {message}");
    // It stopped early (how many samples were flushed first depends on the
    // machine's speed: flushes come every half second).
    assert!(samples < 21, "{samples}");
    for name in ["E.npy", "I.npy", "t.npy"] {
        let (shape, values) = read_npy(&full.join(name));
        assert!(shape[0] >= samples, "{name} holds {shape:?}");
        assert!(values.iter().all(|v| v.is_finite()), "{name}");
    }
    // With room again, it resumes to the bytes of a run never stopped.
    let resumed = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        full.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let whole = dir.join("whole");
    let done = eifield(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(done.status.success());
    for name in ["E.npy", "I.npy", "t.npy"] {
        assert!(
            std::fs::read(whole.join(name)).unwrap() == std::fs::read(full.join(name)).unwrap(),
            "{name}: the resumed run differs from the whole run"
        );
    }
}
