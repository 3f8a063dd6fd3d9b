//! Videos and figures: `eifield render` on the software renderer checked with
//! ffprobe, the PNG fallback without ffmpeg, recording in the viewer, and the
//! figures of a run.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eifield::capture::video::VideoOutput;
use eifield::commands::render::{self, RenderRequest};

use crate::common::*;

/// codec, pixel format, width, height and decoded frame count of a video.
fn probe(video: &Path) -> (String, String, u64, u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,pix_fmt,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(video)
        .output()
        .expect("ffprobe is installed (package ffmpeg); .ci/run installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &json["streams"][0];
    let number = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap()
    };
    (
        s["codec_name"].as_str().unwrap().to_owned(),
        s["pix_fmt"].as_str().unwrap().to_owned(),
        number(&s["width"]),
        number(&s["height"]),
        number(&s["nb_read_frames"]),
    )
}

/// Decodes frame `n` of a video into an RGB image.
fn decode_frame(video: &Path, n: u64, dir: &Path) -> image::RgbImage {
    let path = dir.join(format!("frame{n}.png"));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-frames:v", "1"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image::open(&path).unwrap().to_rgb8()
}

fn distinct_colours(image: &image::RgbImage) -> usize {
    image
        .pixels()
        .step_by(7)
        .map(|p| p.0)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn mean_abs_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn render_writes_an_h264_video_with_duration_times_fps_frames() {
    let dir = temp_out("render");
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("seed.mp4");
    let request = RenderRequest {
        scene: scene_path("seed_notebook.ron"),
        out: Some(video.clone()),
        quiet: true,
        size: Some((640, 360)),
        fps: Some(30),
        duration: Some(2.0),
        ..Default::default()
    };
    let summary = render::render(&request, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.stopped, None);
    assert_eq!(summary.output, Some(VideoOutput::Mp4(video.clone())));
    assert_eq!((summary.frames, summary.frames_requested), (60, 60));
    // Frame N shows t = N × time-per-frame.
    assert!(
        (summary.last_frame_time - 59.0 * 0.05).abs() < 1e-9,
        "{}",
        summary.last_frame_time
    );

    let (codec, pix_fmt, w, h, frames) = probe(&video);
    assert_eq!(codec, "h264");
    assert_eq!(pix_fmt, "yuv420p");
    assert_eq!((w, h), (640, 360));
    assert_eq!(frames, 60, "2 s × 30 fps");

    let first = decode_frame(&video, 0, &dir);
    let last = decode_frame(&video, 59, &dir);
    assert!(
        distinct_colours(&last) > 50,
        "the frame is nearly uniform: {} colours",
        distinct_colours(&last)
    );
    let change = mean_abs_difference(&first, &last);
    assert!(change > 0.5, "frames do not change over time: {change}");

    // An existing video is kept unless --force is given.
    let again = eifield(&[
        "render",
        scene_path("seed_notebook.ron").to_str().unwrap(),
        "--out",
        video.to_str().unwrap(),
        "--duration",
        "0.1",
    ]);
    assert_eq!(again.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        msg.contains("already exists") && msg.contains("--force"),
        "{msg}"
    );
}

#[test]
fn without_ffmpeg_frames_become_pngs_and_two_renders_agree() {
    let dir = temp_out("nofmpeg");
    let empty_path = dir.join("empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let render_once = |name: &str| -> (Output, std::path::PathBuf) {
        let video = dir.join(name);
        let output = Command::new(env!("CARGO_BIN_EXE_eifield"))
            .args(["render"])
            .arg(scene_path("seed_notebook.ron"))
            .arg("--out")
            .arg(&video)
            .args(["--size", "160x90", "--fps", "10", "--duration", "1.2"])
            .args(["--time-per-frame", "0.25", "--view", "heatmap"])
            .env("PATH", &empty_path)
            .output()
            .unwrap();
        (output, video)
    };
    let (output, video) = render_once("a.mp4");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("ffmpeg") && log.contains("PNG"), "{log}");
    assert!(!video.exists());
    let frames_a = dir.join("a_frames");
    let list = |d: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let names = list(&frames_a);
    assert_eq!(names.len(), 12, "1.2 s × 10 fps: {names:?}");
    assert_eq!(names[0], "frame_000000.png");
    let first = image::open(frames_a.join(&names[0])).unwrap().to_rgb8();
    assert_eq!((first.width(), first.height()), (160, 90));
    let last = image::open(frames_a.join(&names[11])).unwrap().to_rgb8();
    assert!(
        mean_abs_difference(&first, &last) > 0.5,
        "frames do not change"
    );

    let (output, _) = render_once("b.mp4");
    assert!(output.status.success());
    let frames_b = dir.join("b_frames");
    assert_eq!(list(&frames_b), names);
    for name in &names {
        let a = image::open(frames_a.join(name)).unwrap().to_rgb8();
        let b = image::open(frames_b.join(name)).unwrap().to_rgb8();
        assert!(
            a == b,
            "{name} differs between two renders of the same scene"
        );
    }
}

#[test]
fn render_refuses_bad_options_before_any_work() {
    let scene = scene_path("seed_notebook.ron");
    let scene = scene.to_str().unwrap();
    let out = eifield(&["render", scene, "--out", "x.avi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".mp4"));
    let out = eifield(&["render", scene, "--out", "x.mp4", "--size", "12x7000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("width"));
    let out = eifield(&["render", scene, "--out", "x.mp4", "--pitch", "120"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("view.camera.pitch_deg"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("x.mp4").exists());
}

#[test]
fn run_with_figures_writes_the_three_notebook_figures() {
    let out = temp_out("figures");
    let result = eifield(&[
        "run",
        scene_path("seed_notebook.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--figures",
        "--figure-size",
        "640x480",
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for name in eifield::commands::plot::FIGURE_FILES {
        let image = image::open(out.join("figures").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_rgb8();
        assert_eq!((image.width(), image.height()), (640, 480), "{name}");
        let white = image.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let total = (image.width() * image.height()) as usize;
        assert!(white < total * 98 / 100, "{name} is blank");
        assert!(distinct_colours(&image) > 20, "{name} has too few colours");
    }
    // The raster is mostly colour (the blue-white-red heat map).
    let raster = image::open(out.join("figures/raster.png"))
        .unwrap()
        .to_rgb8();
    let coloured = raster
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 40)
        .count();
    assert!(
        coloured > 640 * 480 / 3,
        "raster has {coloured} coloured pixels"
    );

    // Plotting again keeps the figures unless --force is given.
    let again = eifield(&["plot", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = eifield(&[
        "plot",
        out.to_str().unwrap(),
        "--force",
        "--cells",
        "3,3;0,0",
        "--figure-size",
        "500x300",
    ]);
    assert!(forced.status.success());
    let traces = image::open(out.join("figures/traces.png")).unwrap();
    assert_eq!((traces.width(), traces.height()), (500, 300));
    let bad = eifield(&["plot", out.to_str().unwrap(), "--force", "--cells", "3,30"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cells[0]"));
}

#[test]
fn viewer_records_an_mp4_without_losing_frames() {
    let dir = temp_out("record");
    std::fs::create_dir_all(&dir).unwrap();
    let captures = dir.join("captures");
    let script = dir.join("record.script");
    std::fs::write(&script, "wait 5\nrecord\nwait 20\nrecord\nexit\n").unwrap();
    let output = view_scripted(
        &scene_path("seed_notebook.ron"),
        &script,
        &["--captures".as_ref(), captures.as_os_str()],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "viewer failed: {log}");
    let video = captures.join("recording-001.mp4");
    let (codec, pix_fmt, w, h, frames) = probe(&video);
    assert_eq!((codec.as_str(), pix_fmt.as_str()), ("h264", "yuv420p"));
    assert_eq!((w, h), (1280, 720));
    // Every frame the viewer captured is in the video.
    let captured: u64 = log
        .split("video saved to ")
        .nth(1)
        .and_then(|rest| rest.split(" (").nth(1))
        .and_then(|n| n.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no recording message in the log: {log}"));
    assert_eq!(frames, captured);
    assert!(
        frames >= 10,
        "only {frames} frames recorded in 20 rendered frames"
    );
    let first = decode_frame(&video, 0, &dir);
    let last = decode_frame(&video, frames - 1, &dir);
    assert!(
        mean_abs_difference(&first, &last) > 0.05,
        "the recording does not change"
    );
}

#[test]
fn a_recording_of_the_3d_view_can_carry_the_overlay() {
    let dir = temp_out("record-overlay");
    std::fs::create_dir_all(&dir).unwrap();
    let captures = dir.join("captures");
    let script = dir.join("record.script");
    std::fs::write(
        &script,
        "wait 5\nhide_panels on\noverlay on\nrecord\nwait 12\nrecord\nexit\n",
    )
    .unwrap();
    let output = view_scripted(
        Path::new("waves"),
        &script,
        &["--captures".as_ref(), captures.as_os_str()],
    );
    assert!(
        output.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let video = captures.join("recording-001.mp4");
    let (_, _, w, h, frames) = probe(&video);
    let last = decode_frame(&video, frames - 1, &dir);
    // The title box (top left) holds the scene's name and the time in light
    // text; without the overlay that corner is the dark background.
    let [title, _] = eifield::capture::overlay::Overlay::regions((w as u32, h as u32));
    let light = (title.1..title.1 + title.3)
        .flat_map(|y| (title.0..title.0 + title.2).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = last.get_pixel(x, y).0;
            p.iter().all(|&c| c > 170)
        })
        .count();
    assert!(
        light > 100,
        "{light} light pixels in the overlay's title box"
    );
}

#[test]
fn an_interrupted_render_keeps_a_playable_video_of_the_frames_so_far() {
    let dir = temp_out("render-int");
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("long.mp4");
    let child = Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args([
            "render",
            "seed_notebook",
            "--size",
            "320x180",
            "--duration",
            "600",
        ])
        .arg("--out")
        .arg(&video)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !video.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the render never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Let it render a while, then press Ctrl-C.
    std::thread::sleep(std::time::Duration::from_secs(8));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{log}");
    assert!(log.contains("interrupted after"), "{log}");
    let (codec, _, width, height, frames) = probe(&video);
    assert_eq!((codec.as_str(), width, height), ("h264", 320, 180));
    assert!((1..18000).contains(&frames), "{frames} frames");
}
