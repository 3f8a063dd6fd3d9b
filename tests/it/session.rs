//! Sessions: a scripted viewer session (clicks, a stimulator, a parameter
//! edit, a reset) saved and replayed headless gives the viewer's bits at the
//! ticks it reported; the viewer replays a saved session too; bad events are
//! named by their index.

use std::path::Path;

use eifield_model::FieldScene;

use crate::common::*;

/// A small field with waves, pink noise and a pulse train: every kind of
/// input a replay must reproduce.
const SESSION_SCENE: &str = r#"(
    name: "Session test",
    grid: (rows: 20, cols: 22, boundary: Open),
    coupling: (frac_ee: 0.8),
    drive: (h_ex: -6.0, h_in: -4.0, heterogeneity: Random(eps: 0.01, seed: 5)),
    initial: Zeros,
    stimuli: [PulseTrain(row: 10, col: 11, freq: 0.4, width: 1.0, amp: 6.0, onset: 0.0)],
    noise: Pink(sigma: 0.05, seed: 3, sample_rate: 50.0),
    run: (duration: 5.0, sample_rate: 100.0),
)"#;

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Asserts that the run in `out` holds the reported state at the reported
/// tick, bit for bit (one sample per tick).
fn assert_replay_matches(out: &Path, report: &serde_json::Value) {
    let tick = report["tick"].as_u64().unwrap() as usize;
    let (e_shape, e) = read_npy(&out.join("E.npy"));
    let (_, i) = read_npy(&out.join("I.npy"));
    let cells = e_shape[1] as usize;
    assert!(
        (e_shape[0] as usize) > tick,
        "the replay has {} samples, the report is at tick {tick}",
        e_shape[0]
    );
    let sample = |a: &[f64]| a[tick * cells..(tick + 1) * cells].to_vec();
    let (e_viewer, i_viewer) = (floats(&report["E"]), floats(&report["I"]));
    let bits = |a: &[f64]| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (name, replay, viewer) in [("E", sample(&e), e_viewer), ("I", sample(&i), i_viewer)] {
        let differ = bits(&replay)
            .iter()
            .zip(bits(&viewer))
            .filter(|(a, b)| **a != *b)
            .count();
        assert_eq!(
            differ,
            0,
            "{name} differs in {differ} cells at tick {tick} (max |Δ| = {:e})",
            max_abs_diff(&replay, &viewer)
        );
    }
}

#[test]
fn a_saved_viewer_session_replays_headless_bit_for_bit() {
    let dir = temp_out("session");
    std::fs::create_dir_all(&dir).unwrap();
    let scene = dir.join("field.ron");
    std::fs::write(&scene, SESSION_SCENE).unwrap();
    let (r1, r2, saved) = (
        dir.join("r1.json"),
        dir.join("r2.json"),
        dir.join("session.ron"),
    );
    let script = dir.join("session.script");
    std::fs::write(
        &script,
        format!(
            "wait 5\nclick 4 4\nwait 20\ntool stimulator\nclick 14 6\nwait 15\n\
             set coupling.frac_ee 0.6\nwait 10\nreport {}\nwait 10\nreset\nwait 10\n\
             tool perturb\nclick 10 16\nwait 15\nset drive.h_ex -6.05\nwait 5\nreport {}\n\
             save_session {}\nwait 3\nexit\n",
            r1.display(),
            r2.display(),
            saved.display()
        ),
    )
    .unwrap();
    let output = view_scripted(&scene, &script, &["--backend".as_ref(), "cpu".as_ref()]);
    assert!(
        output.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Every kind of change is in the session, at non-decreasing ticks.
    let session = FieldScene::load(&saved).expect("the saved session loads");
    let events = session.events.as_ref().expect("a session has events");
    assert_eq!(
        events.ticks_per_unit,
        Some(eifield::viewer::VIEW_TICKS_PER_UNIT)
    );
    let text = std::fs::read_to_string(&saved).unwrap();
    for kind in ["Perturb(", "AddStimulus(", "Set(", "Reset"] {
        assert!(text.contains(kind), "no {kind} in the session:\n{text}");
    }
    assert!(text.contains("coupling.frac_ee") && text.contains("drive.h_ex"));
    let (r1, r2) = (report(&r1), report(&r2));
    assert!(r2["tick"].as_u64() > r1["tick"].as_u64());
    // The reset restarted the model time but not the session's ticks.
    let rate = eifield::viewer::VIEW_TICKS_PER_UNIT;
    assert!(r2["t"].as_f64().unwrap() < r2["tick"].as_f64().unwrap() / rate - 0.1);

    let out = dir.join("replay");
    let run = eifield(&[
        "run",
        saved.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--backend",
        "cpu",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_replay_matches(&out, &r1);
    assert_replay_matches(&out, &r2);

    // The viewer replays the saved session too, and goes on after it.
    let r3 = dir.join("r3.json");
    let script = dir.join("replay.script");
    std::fs::write(
        &script,
        format!("wait 150\nreport {}\nexit\n", r3.display()),
    )
    .unwrap();
    let output = view_scripted(&saved, &script, &["--backend".as_ref(), "cpu".as_ref()]);
    assert!(
        output.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r3 = report(&r3);
    let tick = r3["tick"].as_u64().unwrap();
    let mut longer = session.clone();
    longer.events.as_mut().unwrap().duration = Some((tick + 1) as f64 / rate);
    let out = run_scene_file(&longer, &dir, "replay_longer");
    assert_replay_matches(&out, &r3);
}

#[test]
fn bad_events_are_errors_that_name_the_event() {
    let dir = temp_out("bad-events");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "(tick: 3, change: Perturb(row: 2, col: 2, amount: 4.0, duration: 0.5)),
             (tick: 5, change: Perturb(row: 30, col: 2, amount: 4.0, duration: 0.5))",
            "events.list[1].change",
            "outside the 20 × 22 grid",
        ),
        (
            "(tick: 9, change: Reset), (time: 0.05, change: Reset)",
            "events.list[1].time",
            "comes before the previous event",
        ),
        (
            "(time: 0.123, change: Reset)",
            "events.list[0].time",
            "fall on a tick",
        ),
    ];
    for (k, (list, field, message)) in cases.iter().enumerate() {
        let text = SESSION_SCENE.trim_end().trim_end_matches(')').to_owned()
            + &format!("    events: (ticks_per_unit: 100.0, list: [{list}]),\n)");
        let path = dir.join(format!("bad{k}.ron"));
        std::fs::write(&path, text).unwrap();
        let out = dir.join(format!("out{k}"));
        let run = eifield(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(field) && stderr.contains(message),
            "expected `{field}` and “{message}” in: {stderr}"
        );
        assert!(!out.exists(), "a refused run leaves no folder");
    }
}
