//! The gallery of regimes and the pictures made of it: every shipped scene
//! runs (its events replayed); the default scene still shows a wave when its
//! thumbnail is taken; a still with the overlay differs from one without only
//! inside the overlay's boxes; a rendered video has the asked duration and
//! frame rate.

use std::path::Path;
use std::process::Command;

use eifield::capture::overlay::Overlay;
use eifield_model::FieldScene;
use eifield_model::scene::{BUILTIN_SCENES, DEFAULT_SCENE};

use crate::common::*;

/// E at or above this counts as active.
const ACTIVE: f64 = 1.0;

#[test]
fn every_shipped_scene_runs_headless_with_its_events() {
    let dir = temp_out("gallery");
    std::fs::create_dir_all(&dir).unwrap();
    for builtin in BUILTIN_SCENES {
        let mut scene = FieldScene::from_ron_str(builtin.text, builtin.name).unwrap();
        let view = scene.view.clone().unwrap_or_default();
        assert!(
            view.thumbnail_time.is_some(),
            "{}: the README's thumbnail time",
            builtin.name
        );
        // Long enough for the breakup scene's events (at t = 1) to happen.
        scene.run.duration = 2.0;
        let out = run_scene_file(&scene, &dir, builtin.name);
        let (shape, e) = read_npy(&out.join("E.npy"));
        assert_eq!(shape[0], scene.run.samples(), "{}", builtin.name);
        assert!(e.iter().all(|v| v.is_finite()), "{}", builtin.name);
    }
}

#[test]
fn the_default_scene_shows_a_wave_at_its_thumbnail_time() {
    let mut scene = load(&format!("{DEFAULT_SCENE}.ron"));
    let at = scene.view.as_ref().and_then(|v| v.thumbnail_time).unwrap();
    scene.run.duration = at;
    let dir = temp_out("default-scene");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run_scene_file(&scene, &dir, "run");
    let (shape, e) = read_npy(&out.join("E.npy"));
    let cells = shape[1] as usize;
    let last = &e[e.len() - cells..];
    let grid = scene.grid;
    let active: Vec<usize> = (0..cells).filter(|&k| last[k] >= ACTIVE).collect();
    // Some cell on the edge has been active by then (the first ring has
    // crossed the field).
    let on_edge = (0..cells).any(|k| {
        let (r, c) = grid.position(k);
        let edge = r == 0 || c == 0 || r == grid.rows - 1 || c == grid.cols - 1;
        edge && e.chunks(cells).any(|sample| sample[k] >= ACTIVE)
    });
    assert!(on_edge, "by t = {at} no activity has reached the edge");
    assert!(
        active.len() * 2 <= cells,
        "at t = {at} {} of {cells} cells are active: no longer a wave",
        active.len()
    );
    assert!(!active.is_empty());
}

#[test]
fn the_rings_scene_shows_a_round_ring_at_its_thumbnail_time() {
    let mut scene = load("rings.ron");
    let at = scene.view.as_ref().and_then(|v| v.thumbnail_time).unwrap();
    scene.run.duration = at;
    let dir = temp_out("rings-scene");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run_scene_file(&scene, &dir, "run");
    let (shape, e) = read_npy(&out.join("E.npy"));
    let cells = shape[1] as usize;
    let last = &e[e.len() - cells..];
    let grid = scene.grid;
    let (cr, cc) = (grid.rows as isize / 2, grid.cols as isize / 2);
    // How far the front has gone along each axis and diagonal: the farthest
    // active cell on the ray.
    let reach = |dr: isize, dc: isize| -> f64 {
        let mut far = 0.0f64;
        for step in 0.. {
            let (r, c) = (cr + dr * step, cc + dc * step);
            if r < 0 || c < 0 || r >= grid.rows as isize || c >= grid.cols as isize {
                break;
            }
            if last[grid.index(r as usize, c as usize)] >= ACTIVE {
                far = far.max(((dr * dr + dc * dc) as f64).sqrt() * step as f64);
            }
        }
        far
    };
    let rays = [
        (0, 1),
        (0, -1),
        (1, 0),
        (-1, 0),
        (1, 1),
        (1, -1),
        (-1, 1),
        (-1, -1),
    ];
    let reaches: Vec<f64> = rays.iter().map(|&(dr, dc)| reach(dr, dc)).collect();
    let (lo, hi) = reaches
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
    assert!(
        lo >= 10.0,
        "the ring has not spread by t = {at}: {reaches:?}"
    );
    assert!(
        hi / lo <= 1.1,
        "the ring is not round at t = {at}: reach along axes and diagonals {reaches:?}"
    );
}

/// Renders a still of `scene` at 320 × 180 into `out`, with extra options.
fn still(scene: &str, out: &Path, extra: &[&str]) -> image::RgbaImage {
    let output = Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args([
            "render", scene, "--still", "--size", "320x180", "--quiet", "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    image::open(out).expect("a PNG").to_rgba8()
}

#[test]
fn the_overlay_changes_only_its_own_boxes() {
    let dir = temp_out("overlay");
    std::fs::create_dir_all(&dir).unwrap();
    let with = still("waves", &dir.join("with.png"), &["--at", "20"]);
    let without = still(
        "waves",
        &dir.join("without.png"),
        &["--at", "20", "--no-overlay"],
    );
    assert_eq!(with.dimensions(), (320, 180));
    let regions = Overlay::regions(with.dimensions());
    let inside = |x: u32, y: u32| {
        regions
            .iter()
            .any(|&(rx, ry, rw, rh)| x >= rx && x < rx + rw && y >= ry && y < ry + rh)
    };
    let mut differ_inside = 0;
    for (x, y, p) in with.enumerate_pixels() {
        if p != without.get_pixel(x, y) {
            assert!(inside(x, y), "pixel ({x}, {y}) outside the overlay differs");
            differ_inside += 1;
        }
    }
    assert!(
        differ_inside > 500,
        "the overlay drew {differ_inside} pixels"
    );
}

#[test]
fn a_rendered_video_has_the_asked_duration_and_frame_rate() {
    let dir = temp_out("video");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("v.mp4");
    let output = Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args([
            "render",
            "seed_notebook",
            "--size",
            "160x96",
            "--fps",
            "12",
            "--duration",
            "1.5",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=r_frame_rate:format=duration",
            "-of",
            "json",
        ])
        .arg(&out)
        .output()
        .expect("ffprobe is installed (package ffmpeg); .ci/run installs it");
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(info["streams"][0]["r_frame_rate"], "12/1", "{info}");
    let duration: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 1.5).abs() < 0.01, "duration {duration}");
}
