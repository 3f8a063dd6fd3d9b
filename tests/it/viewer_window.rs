//! The viewer in a real window (Xvfb + Mesa's software Vulkan): a scripted run
//! loads a scene, clicks a cell, waits, takes a screenshot and exits.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[test]
fn scripted_viewer_run_shows_the_surface_and_a_click_raises_e() {
    let dir = temp_out("window");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("shot.png");
    let report = dir.join("report.json");
    let script = dir.join("smoke.script");
    std::fs::write(
        &script,
        format!(
            // Enough model time for the kick (1.3 units) to show, however
            // slowly a loaded machine runs the frames.
            "wait 10\nclick 1 5\nwait_time 1.5\nscreenshot {}\nreport {}\nexit\n",
            shot.display(),
            report.display()
        ),
    )
    .unwrap();
    let output = view_scripted(&scene_path("seed_notebook.ron"), &script, &[]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "viewer failed: {log}");

    let image = image::open(&shot).expect("a screenshot").to_rgb8();
    assert_eq!((image.width(), image.height()), (1280, 720));
    // The 3D view (right of the panel, above the plots) is not uniform: the surface is drawn.
    let (x0, x1, y0, y1) = (400, 1240, 40, 440);
    let mut distinct = std::collections::HashSet::new();
    let clear = [20u8, 20, 26];
    let mut surface_pixels = 0;
    for y in (y0..y1).step_by(4) {
        for x in (x0..x1).step_by(4) {
            let p = image.get_pixel(x, y).0;
            distinct.insert(p);
            if p.iter().zip(clear).any(|(a, b)| a.abs_diff(b) > 30) {
                surface_pixels += 1;
            }
        }
    }
    assert!(
        distinct.len() > 50,
        "view looks uniform: {} colours",
        distinct.len()
    );
    assert!(
        surface_pixels > 500,
        "no surface in the view: {surface_pixels} non-background samples"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let click = &report["clicks"][0];
    assert_eq!(
        (click["row"].as_u64(), click["col"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(
        report["perturbations"].as_u64(),
        Some(1),
        "exactly one perturbation"
    );
    // An idle viewer never marks the scene or the view changed.
    assert_eq!(report["active_scene_changes"].as_u64(), Some(0));
    assert_eq!(report["view_settings_changes"].as_u64(), Some(0));
    let (t_click, t_report) = (
        click["t_at_click"].as_f64().unwrap(),
        report["t"].as_f64().unwrap(),
    );
    let peak = click["e_max_since"].as_f64().unwrap();
    // The same cell over the same span of model time without the click.
    let scene = load("seed_notebook.ron");
    let rate = eifield::viewer::VIEW_TICKS_PER_UNIT;
    assert_eq!(eifield::viewer::ticks_per_unit_for(scene.grid.len()), rate);
    let mut app = app_with_rate(scene, rate);
    let k = 5 + 7;
    let mut unclicked_peak = f64::NEG_INFINITY;
    while app.world().resource::<eifield::sim::SimClock>().time() < t_report - 1e-9 {
        app.update();
        let t = app.world().resource::<eifield::sim::SimClock>().time();
        if t >= t_click - 1e-9 {
            unclicked_peak = unclicked_peak.max(engine_state(&app).0[k]);
        }
    }
    assert!(t_report > t_click, "the report came after the click");
    assert!(
        peak > unclicked_peak + 1.0,
        "E of the clicked cell peaked at {peak}; without the click at {unclicked_peak}"
    );
}

#[test]
fn viewer_without_a_display_points_to_the_headless_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_eifield"))
        .args(["view"])
        .arg(scene_path("seed_notebook.ron"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&output.stderr);
    assert!(
        msg.contains("no display") && msg.contains("eifield run"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"));
}

#[test]
fn clicks_over_the_panels_never_reach_the_lattice() {
    let dir = temp_out("panels");
    std::fs::create_dir_all(&dir).unwrap();
    // The seed scene seen from above, zoomed in so that the lattice lies
    // under the whole window, the panels included.
    let mut seed = load("seed_notebook.ron");
    seed.view.get_or_insert_with(Default::default).camera =
        Some(eifield_model::scene::CameraSpec {
            yaw_deg: 0.0,
            pitch_deg: 89.0,
            zoom: 0.1,
        });
    let scene = dir.join("zoomed.ron");
    std::fs::write(&scene, seed.to_ron_string()).unwrap();
    let (over_panels, all) = (dir.join("panels.json"), dir.join("all.json"));
    let script = dir.join("panels.script");
    std::fs::write(
        &script,
        format!(
            // The left panel, the bottom panel, then the free 3D view.
            "wait 10\nclick_at 150 300\nwait 5\nclick_at 640 600\nwait 10\nreport {}\n\
             click_at 800 250\nwait 10\nreport {}\nexit\n",
            over_panels.display(),
            all.display()
        ),
    )
    .unwrap();
    let output = view_scripted(&scene, &script, &[]);
    assert!(
        output.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let panels = read(&over_panels);
    for click in panels["clicks_at"].as_array().unwrap() {
        assert!(
            !click["cell_under"].is_null(),
            "no cell behind the panel at {}: the check would prove nothing",
            click["screen"]
        );
    }
    assert_eq!(
        panels["perturbations"].as_u64(),
        Some(0),
        "a click over a panel reached the lattice"
    );
    // The same clicks on the free view do reach it.
    assert_eq!(read(&all)["perturbations"].as_u64(), Some(1));
}

#[test]
fn the_line_tool_turns_the_raster_into_a_kymograph() {
    let dir = temp_out("line");
    std::fs::create_dir_all(&dir).unwrap();
    let (report, shot) = (dir.join("line.json"), dir.join("line.png"));
    let script = dir.join("line.script");
    std::fs::write(
        &script,
        format!(
            // Paused while clicking, so that no wave moves the surface under the pointer.
            "pause\ntool line\nwait 10\nclick 32 4\nwait 5\nclick 32 60\nplay\nwait 40\nactivation_map on\nwait 20\n\
             screenshot {}\nreport {}\nexit\n",
            shot.display(),
            report.display()
        ),
    )
    .unwrap();
    let output = view_scripted(Path::new("waves"), &script, &[]);
    assert!(
        output.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        report["raster_line"],
        serde_json::json!([[32, 4], [32, 60]])
    );
    // Line clicks do not perturb the lattice.
    assert_eq!(report["perturbations"].as_u64(), Some(0));
    assert!(image::open(&shot).is_ok());
}
