//! The script plugin: drives the viewer from a text file for automated checks.
//!
//! One command per line (`#` starts a comment):
//!
//! | command | effect |
//! |---|---|
//! | `wait N` | let N frames pass |
//! | `click ROW COL` | move the mouse pointer over the cell and left-click it |
//! | `click_at X Y` | move the mouse pointer to a point of the window and left-click |
//! | `pointer X Y` | move the mouse pointer to a point of the window, without a click |
//! | `screenshot PATH` | save a PNG of the window and wait until it is written |
//! | `report PATH` | write a JSON report: the clicks (E at the click and the largest E since), the points clicked (and the cell under each), the model time `t`, the session's tick count `tick`, the state (`E` and `I`, row-major), the perturbations sent so far, the frames after the first in which the active scene or the view settings were marked changed, and the frame rate |
//!
//! Clicks are sent as window events, the way a real mouse's are.
//! | `record` | start recording, or stop the recording and wait until its video is written |
//! | `activation_map on` / `off` | show the live activation map, or the field again |
//! | `tool NAME` | the tool of a plain click: `perturb`, `stimulator`, `probe` or `line` |
//! | `set PARAM VALUE` | edit a parameter of the active scene, as the panel does (e.g. `set coupling.frac_ee 0.3`) |
//! | `pause` / `play` | stop or resume the simulation's clock |
//! | `hide_panels on` / `off` | record the 3D view alone, or the whole window |
//! | `overlay on` / `off` | draw the overlay (name, time, colour bar) on recorded frames, or not |
//! | `reset` | rebuild the lattice from its initial state, as the Reset button does |
//! | `save_session PATH` | save the session (replacing the file), as the Save session button does |
//! | `exit` | quit |

use std::path::{Path, PathBuf};

use bevy::input::ButtonState;
use bevy::input::mouse::MouseButtonInput;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy::window::{CursorMoved, PrimaryWindow, WindowEvent};
use serde::Serialize;

use super::ViewerSystems;
use super::controls::SimCommand;
use crate::capture::recording::{CaptureCommand, ScreenCapture};
use crate::sim::probes::Raster;
use crate::sim::session::Session;
use crate::sim::stimulus::Perturb;
use crate::sim::{ActiveScene, Lattice, Neighbours, SimClock, SimSystems};
use crate::view::ViewSettings;
use crate::view::gpu_feed::GpuSurfaceFeed;
use crate::view::picking::{ClickSettings, Tool, ray_to_cell};
use crate::view::surface::{DrawnField, cell_centre};

/// Frames between the pointer move, press and release of a scripted click.
const CLICK_PHASE_FRAMES: u32 = 3;
/// Frames `exit` waits before quitting.
const EXIT_DELAY_FRAMES: u32 = 5;
/// Longest `wait_time`, in frames (a paused clock would never get there).
const WAIT_TIME_LIMIT_FRAMES: u32 = 20_000;
/// Longest wait for a screenshot file, in frames.
const SCREENSHOT_TIMEOUT_FRAMES: u32 = 600;

/// One script command.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptCommand {
    /// Let frames pass.
    Wait(u32),
    /// Let model time pass (units of model time), however many frames it takes.
    WaitTime(f64),
    /// Click a cell.
    Click(usize, usize),
    /// Click a point of the window (logical pixels from the top left).
    ClickAt(f32, f32),
    /// Move the pointer to a point of the window, without a click.
    Pointer(f32, f32),
    /// Save a screenshot.
    Screenshot(PathBuf),
    /// Write the click report.
    Report(PathBuf),
    /// Start or stop recording.
    Record,
    /// Show the activation map (`on`) or the field (`off`).
    ActivationMap(bool),
    /// Choose the tool of a plain click.
    Tool(Tool),
    /// Edit a parameter of the active scene.
    Set(String, f64),
    /// Stop (true) or resume (false) the simulation's clock.
    Pause(bool),
    /// Record the 3D view alone (true) or the whole window.
    HidePanels(bool),
    /// Draw the overlay on recorded frames.
    Overlay(bool),
    /// Reset the lattice.
    Reset,
    /// Save the session.
    SaveSession(PathBuf),
    /// Quit.
    Exit,
}

/// Parses a script; errors name the line.
pub fn parse_script(text: &str, origin: &str) -> Result<Vec<ScriptCommand>, String> {
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let err = |what: &str| format!("{origin}:{}: {what}: `{line}`", k + 1);
        let number = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| err("expected a whole number"))
        };
        let command = match words.as_slice() {
            ["wait", n] => ScriptCommand::Wait(number(n)? as u32),
            ["wait_time", t] => ScriptCommand::WaitTime(
                t.parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .ok_or_else(|| err("expected a model time of at least 0"))?,
            ),
            ["click", r, c] => ScriptCommand::Click(number(r)?, number(c)?),
            ["click_at" | "pointer", x, y] => {
                let coordinate = |s: &str| {
                    s.parse::<f32>()
                        .map_err(|_| err("expected a number of pixels"))
                };
                let (x, y) = (coordinate(x)?, coordinate(y)?);
                if words[0] == "pointer" {
                    ScriptCommand::Pointer(x, y)
                } else {
                    ScriptCommand::ClickAt(x, y)
                }
            }
            ["screenshot", p] => ScriptCommand::Screenshot(PathBuf::from(p)),
            ["report", p] => ScriptCommand::Report(PathBuf::from(p)),
            ["record"] => ScriptCommand::Record,
            ["activation_map", "on"] => ScriptCommand::ActivationMap(true),
            ["activation_map", "off"] => ScriptCommand::ActivationMap(false),
            ["tool", name] => ScriptCommand::Tool(match *name {
                "perturb" => Tool::Perturb,
                "stimulator" => Tool::Stimulator,
                "probe" => Tool::Probe,
                "line" => Tool::Line,
                _ => {
                    return Err(format!(
                        "{origin}:{}: unknown tool {name} (perturb | stimulator | probe | line)",
                        k + 1
                    ));
                }
            }),
            ["set", param, value] => ScriptCommand::Set(
                param.to_string(),
                value.parse::<f64>().map_err(|_| err("expected a number"))?,
            ),
            ["reset"] => ScriptCommand::Reset,
            ["pause"] => ScriptCommand::Pause(true),
            ["hide_panels", "on"] => ScriptCommand::HidePanels(true),
            ["hide_panels", "off"] => ScriptCommand::HidePanels(false),
            ["overlay", "on"] => ScriptCommand::Overlay(true),
            ["overlay", "off"] => ScriptCommand::Overlay(false),
            ["play"] => ScriptCommand::Pause(false),
            ["save_session", p] => ScriptCommand::SaveSession(PathBuf::from(p)),
            ["exit"] => ScriptCommand::Exit,
            _ => {
                return Err(err(
                    "unknown command (wait N | click ROW COL | click_at X Y | screenshot PATH | report PATH | record | activation_map on|off | tool NAME | set PARAM VALUE | pause | play | hide_panels on|off | overlay on|off | reset | save_session PATH | exit)",
                ));
            }
        };
        out.push(command);
    }
    Ok(out)
}

/// A click made by the script, followed up to the report.
#[derive(Debug, Clone, Serialize)]
pub struct ClickRecord {
    /// Row clicked.
    pub row: usize,
    /// Column clicked.
    pub col: usize,
    /// Screen position used.
    pub screen: [f32; 2],
    /// Model time when the click was sent.
    pub t_at_click: f64,
    /// E of the cell when the click was sent.
    pub e_at_click: f64,
    /// The largest E of the cell since.
    pub e_max_since: f64,
}

/// A click on a point of the window.
#[derive(Debug, Clone, Serialize)]
pub struct ScreenClickRecord {
    /// Window position clicked.
    pub screen: [f32; 2],
    /// The lattice cell under that point, whether or not a panel covers it.
    pub cell_under: Option<(usize, usize)>,
}

/// The running script.
#[derive(Resource, Debug)]
pub struct Script {
    commands: Vec<ScriptCommand>,
    next: usize,
    /// Frames left in the current command.
    countdown: u32,
    /// The model time a `wait_time` waits for, and the frames it has waited.
    waiting_for: Option<(f64, u32)>,
    /// Progress of a click: frames since its start.
    click_phase: Option<u32>,
    /// A screenshot being written.
    pending_screenshot: Option<PathBuf>,
    clicks: Vec<ClickRecord>,
    clicks_at: Vec<ScreenClickRecord>,
    /// Perturbations sent to the lattice since the script started.
    perturbations: u64,
    /// Frames after the first in which the active scene was marked changed.
    scene_changes: u64,
    /// Frames after the first in which the view settings were marked changed.
    view_changes: u64,
    /// The raster's line (kymograph), if one was drawn.
    raster_line: Option<((usize, usize), (usize, usize))>,
    /// Frames run and the real time at the first one (for the report's frame rate).
    frames: u64,
    started: Option<f64>,
    /// Frames waited before quitting.
    exit_delay: u32,
    /// A `record` command sent: whether it started (true) or stopped (false) a recording.
    record_sent: Option<bool>,
}

impl Script {
    /// A script ready to run.
    pub fn new(commands: Vec<ScriptCommand>) -> Self {
        Self {
            commands,
            next: 0,
            countdown: 0,
            waiting_for: None,
            click_phase: None,
            pending_screenshot: None,
            clicks: Vec::new(),
            clicks_at: Vec::new(),
            perturbations: 0,
            scene_changes: 0,
            view_changes: 0,
            raster_line: None,
            frames: 0,
            started: None,
            exit_delay: 0,
            record_sent: None,
        }
    }
}

/// Runs a [`Script`] resource, one step per frame.
pub struct ScriptPlugin;

impl Plugin for ScriptPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            (follow_clicks, run_script)
                .chain()
                .in_set(ViewerSystems::Script),
        )
        .add_systems(FixedUpdate, follow_clicked_cells.in_set(SimSystems::Record));
    }
}

fn follow_clicks(
    script: Option<ResMut<Script>>,
    lattice: Option<Res<Lattice>>,
    scene: Option<Res<ActiveScene>>,
    view: Option<Res<ViewSettings>>,
    mut perturbs: MessageReader<Perturb>,
    raster: Option<Res<Raster>>,
) {
    let (Some(mut script), Some(lattice)) = (script, lattice) else {
        return;
    };
    script.raster_line = raster.and_then(|r| r.line);
    script.perturbations += perturbs.read().count() as u64;
    if script.frames > 0 {
        script.scene_changes += u64::from(scene.is_some_and(|s| s.is_changed()));
        script.view_changes += u64::from(view.is_some_and(|v| v.is_changed()));
    }
    max_of_clicked_cells(&mut script, &lattice);
}

/// Each clicked cell's largest E since its click, at every tick: a frame
/// can hold many ticks (more on a loaded machine, whose frames are slow),
/// and a short rise between two frames would go unseen. (A GPU engine's
/// state is copied back at frames; [`follow_clicks`] sees those.)
fn follow_clicked_cells(script: Option<ResMut<Script>>, lattice: Option<Res<Lattice>>) {
    if let (Some(mut script), Some(lattice)) = (script, lattice) {
        max_of_clicked_cells(&mut script, &lattice);
    }
}

fn max_of_clicked_cells(script: &mut Script, lattice: &Lattice) {
    if script.clicks.is_empty() {
        return;
    }
    let state = lattice.state();
    for click in &mut script.clicks {
        if let Some((e, _, _)) = state.cell(click.row, click.col) {
            click.e_max_since = click.e_max_since.max(e);
        }
    }
}

/// The screen position of a cell's centre on the drawn surface.
fn cell_screen_position(
    camera: &Camera,
    transform: &GlobalTransform,
    neighbours: &Neighbours,
    drawn: &DrawnField,
    row: usize,
    col: usize,
) -> Option<Vec2> {
    let grid = neighbours.grid();
    let p = cell_centre(&grid, row, col);
    let h = drawn
        .heights
        .get(grid.index(row, col))
        .copied()
        .unwrap_or(0.0);
    let in_viewport = camera
        .world_to_viewport(transform, Vec3::new(p.x, h, p.y))
        .ok()?;
    let offset = camera.logical_viewport_rect().map_or(Vec2::ZERO, |r| r.min);
    Some(in_viewport + offset)
}

/// One frame of a scripted left click at `position` (window coordinates),
/// sent as window events so that it takes the same path as a real mouse:
/// through egui (which keeps clicks over its panels) and the picking backend.
/// Returns true on the frame of the press.
fn click_step(
    script: &mut Script,
    window: Option<Entity>,
    position: Vec2,
    events: &mut MessageWriter<WindowEvent>,
) -> bool {
    let Some(window) = window else {
        return false;
    };
    let phase = script.click_phase.unwrap_or(0);
    let stage = phase / CLICK_PHASE_FRAMES;
    let first_frame_of_stage = phase.is_multiple_of(CLICK_PHASE_FRAMES);
    let button = |state| {
        WindowEvent::MouseButtonInput(MouseButtonInput {
            button: MouseButton::Left,
            state,
            window,
        })
    };
    let event = match stage {
        0 => Some(WindowEvent::CursorMoved(CursorMoved {
            window,
            position,
            delta: None,
        })),
        1 => Some(button(ButtonState::Pressed)),
        2 => Some(button(ButtonState::Released)),
        _ => None,
    };
    match event {
        None => {
            script.click_phase = None;
            script.next += 1;
            false
        }
        Some(event) => {
            script.click_phase = Some(phase + 1);
            if first_frame_of_stage {
                events.write(event);
            }
            first_frame_of_stage && stage == 1
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_script(
    mut commands: Commands,
    script: Option<ResMut<Script>>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    windows: Query<Entity, With<PrimaryWindow>>,
    neighbours: Option<Res<Neighbours>>,
    drawn: Res<DrawnField>,
    (mut lattice, feed): (Option<ResMut<Lattice>>, Res<GpuSurfaceFeed>),
    mut events: MessageWriter<WindowEvent>,
    mut exit: MessageWriter<AppExit>,
    time: Res<Time<Real>>,
    (mut capture, mut capture_commands): (
        Option<ResMut<ScreenCapture>>,
        MessageWriter<CaptureCommand>,
    ),
    clock: Option<Res<SimClock>>,
    (mut view, mut click): (ResMut<ViewSettings>, ResMut<ClickSettings>),
    (session, mut active, mut sim_commands): (
        Res<Session>,
        Option<ResMut<ActiveScene>>,
        MessageWriter<SimCommand>,
    ),
    mut virtual_time: ResMut<Time<Virtual>>,
) {
    let Some(mut script) = script else {
        return;
    };
    script.frames += 1;
    let now = time.elapsed_secs_f64();
    let started = *script.started.get_or_insert(now);
    if let Some(path) = script.pending_screenshot.clone() {
        if path.exists() && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            script.pending_screenshot = None;
            script.countdown = 0;
        } else {
            script.countdown = script.countdown.saturating_sub(1);
            if script.countdown == 0 {
                error!("script: the screenshot {} was not written", path.display());
                exit.write(AppExit::from_code(3));
            }
            return;
        }
    }
    if script.countdown > 0 {
        script.countdown -= 1;
        return;
    }
    if let Some((until, frames)) = script.waiting_for {
        let now = clock.as_ref().map_or(f64::INFINITY, |c| c.time());
        if now >= until - 1e-9 {
            script.waiting_for = None;
            script.next += 1;
        } else if frames >= WAIT_TIME_LIMIT_FRAMES {
            error!("script: model time did not reach {until} within {frames} frames");
            exit.write(AppExit::from_code(3));
        } else {
            script.waiting_for = Some((until, frames + 1));
        }
        return;
    }
    let Some(command) = script.commands.get(script.next).cloned() else {
        return;
    };
    match command {
        ScriptCommand::Wait(n) => {
            script.countdown = n;
            script.next += 1;
        }
        ScriptCommand::WaitTime(t) => {
            let now = clock.as_ref().map_or(0.0, |c| c.time());
            script.waiting_for = Some((now + t, 0));
        }
        ScriptCommand::Click(row, col) => {
            let (Ok((camera, transform)), Some(neighbours), Some(lattice)) =
                (cameras.single(), neighbours.as_deref(), lattice.as_deref())
            else {
                return;
            };
            let Some(position) =
                cell_screen_position(camera, transform, neighbours, &drawn, row, col)
            else {
                error!("script: cell ({row}, {col}) is not on screen");
                exit.write(AppExit::from_code(3));
                return;
            };
            let pressed = click_step(&mut script, windows.single().ok(), position, &mut events);
            if pressed {
                let e = lattice
                    .state()
                    .cell(row, col)
                    .map_or(f64::NAN, |(e, _, _)| e);
                script.clicks.push(ClickRecord {
                    row,
                    col,
                    screen: position.to_array(),
                    t_at_click: clock.as_ref().map_or(0.0, |c| c.time()),
                    e_at_click: e,
                    e_max_since: e,
                });
            }
        }
        ScriptCommand::Pointer(x, y) => {
            if let Ok(window) = windows.single() {
                events.write(WindowEvent::CursorMoved(CursorMoved {
                    window,
                    position: Vec2::new(x, y),
                    delta: None,
                }));
            }
            script.next += 1;
        }
        ScriptCommand::ClickAt(x, y) => {
            let position = Vec2::new(x, y);
            let pressed = click_step(&mut script, windows.single().ok(), position, &mut events);
            if pressed {
                let cell_under = match (cameras.single(), neighbours.as_deref()) {
                    (Ok((camera, transform)), Some(neighbours)) => camera
                        .viewport_to_world(transform, position)
                        .ok()
                        .and_then(|ray| {
                            ray_to_cell(ray.origin, *ray.direction, &neighbours.grid(), |k| {
                                drawn.heights.get(k).copied().unwrap_or(0.0)
                            })
                        })
                        .map(|(cell, _)| cell),
                    _ => None,
                };
                script.clicks_at.push(ScreenClickRecord {
                    screen: [x, y],
                    cell_under,
                });
            }
        }
        ScriptCommand::Screenshot(path) => {
            let _ = std::fs::remove_file(&path);
            commands
                .spawn(Screenshot::primary_window())
                .observe(save_to_disk(path.clone()));
            script.pending_screenshot = Some(path);
            script.countdown = SCREENSHOT_TIMEOUT_FRAMES;
            script.next += 1;
        }
        ScriptCommand::Report(path) => {
            let fps = (script.frames.saturating_sub(1)) as f64 / (now - started).max(1e-9);
            let t = clock.as_ref().map_or(0.0, |c| c.time());
            // The state now: a GPU engine's copy may be a frame or more old.
            if let Some(Err(e)) = lattice.as_mut().map(|l| l.sync()) {
                error!("script: cannot read the lattice back from the GPU: {e}");
            }
            let state = lattice.as_ref().map(|l| l.state());
            let report = Report {
                fps,
                t,
                tick: session.tick,
                e: state.map_or(&[], |s| s.e),
                i: state.map_or(&[], |s| s.i),
                backend: lattice.as_ref().map(|l| l.engine().info().backend),
                surface_from_gpu: feed.0.is_some(),
            };
            if let Err(e) = write_report(&path, &script, &report) {
                error!("script: cannot write {}: {e}", path.display());
            }
            script.next += 1;
        }
        ScriptCommand::Record => {
            let recording = capture.as_ref().is_some_and(|c| c.is_recording());
            match script.record_sent {
                None => {
                    capture_commands.write(CaptureCommand::ToggleRecording);
                    script.record_sent = Some(!recording);
                    script.countdown = 0;
                }
                // Wait until the recording has started, or has been written out.
                Some(started) if started == recording => {
                    script.record_sent = None;
                    script.next += 1;
                }
                Some(_) => {
                    if let Some(error) = capture.as_ref().and_then(|c| c.error.clone()) {
                        error!("script: recording failed: {error}");
                        exit.write(AppExit::from_code(3));
                    }
                }
            }
        }
        ScriptCommand::ActivationMap(on) => {
            view.activation_map = on;
            script.next += 1;
        }
        ScriptCommand::Tool(tool) => {
            click.tool = tool;
            script.next += 1;
        }
        ScriptCommand::Set(param, value) => {
            if let Some(scene) = active.as_mut() {
                let mut edited = scene.0.clone();
                match edited
                    .set_param(&param, value)
                    .and_then(|_| edited.validate())
                {
                    Ok(()) => scene.0 = edited,
                    Err(e) => {
                        error!("script: set {param} {value}: {e}");
                        exit.write(AppExit::from_code(3));
                    }
                }
            }
            script.next += 1;
        }
        ScriptCommand::Reset => {
            sim_commands.write(SimCommand::Reset);
            script.next += 1;
        }
        ScriptCommand::HidePanels(on) => {
            if let Some(capture) = capture.as_mut() {
                capture.hide_panels = on;
            }
            script.next += 1;
        }
        ScriptCommand::Overlay(on) => {
            if let Some(capture) = capture.as_mut() {
                capture.overlay = on;
            }
            script.next += 1;
        }
        ScriptCommand::Pause(pause) => {
            if pause {
                virtual_time.pause();
            } else {
                virtual_time.unpause();
            }
            script.next += 1;
        }
        ScriptCommand::SaveSession(path) => {
            sim_commands.write(SimCommand::SaveSession {
                path,
                overwrite: true,
            });
            script.next += 1;
        }
        ScriptCommand::Exit => {
            if script.exit_delay < EXIT_DELAY_FRAMES {
                // Let any finished screenshot readback settle before quitting.
                script.exit_delay += 1;
                return;
            }
            exit.write(AppExit::Success);
            script.next += 1;
        }
    }
}

/// What a report says of the simulation now.
struct Report<'a> {
    fps: f64,
    t: f64,
    tick: u64,
    e: &'a [f64],
    i: &'a [f64],
    /// The engine's backend (`"cpu"`, `"gpu"`).
    backend: Option<&'static str>,
    /// Whether the surface is fed from the GPU engine's buffers.
    surface_from_gpu: bool,
}

fn write_report(path: &Path, script: &Script, report: &Report) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "t": report.t,
        "tick": report.tick,
        "E": report.e,
        "I": report.i,
        "clicks": script.clicks,
        "clicks_at": script.clicks_at,
        "perturbations": script.perturbations,
        "active_scene_changes": script.scene_changes,
        "view_settings_changes": script.view_changes,
        "raster_line": script.raster_line,
        "frames_per_second": report.fps,
        "backend": report.backend,
        "surface_from_gpu": report.surface_from_gpu,
    }))
    .map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_and_errors_name_the_line() {
        let script = parse_script(
            "# smoke\nwait 5\nclick 1 2 # a cell\nwait_time 1.5\npointer 3 4.5\nclick_at 6 7\n\
             screenshot a.png\nreport r.json\nexit\n",
            "s",
        )
        .unwrap();
        assert_eq!(
            script,
            vec![
                ScriptCommand::Wait(5),
                ScriptCommand::Click(1, 2),
                ScriptCommand::WaitTime(1.5),
                ScriptCommand::Pointer(3.0, 4.5),
                ScriptCommand::ClickAt(6.0, 7.0),
                ScriptCommand::Screenshot("a.png".into()),
                ScriptCommand::Report("r.json".into()),
                ScriptCommand::Exit
            ]
        );
        let err = parse_script("wait 1\nclick x 2\n", "s.txt").unwrap_err();
        assert!(err.starts_with("s.txt:2:"), "{err}");
        assert!(parse_script("jump\n", "s").is_err());
        for bad in ["wait_time -1", "wait_time x", "wait_time inf"] {
            let err = parse_script(bad, "s").unwrap_err();
            assert!(err.contains("model time"), "{err}");
        }
    }
}
