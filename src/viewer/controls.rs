//! The controls plugin: play/pause, single step, reset, and loading and saving
//! scenes while the viewer runs, as [`SimCommand`] messages handled in one place.

use std::path::PathBuf;

use bevy::prelude::*;
use eifield_model::scene::{Initial, SceneSource};
use eifield_model::{EngineOptions, FieldScene, SceneError};

use super::{ViewerSystems, ticks_per_unit_for};
use crate::sim::backend::BackendRequest;
use crate::sim::session::{begin_session, log_reset, save_session};
use crate::sim::{ActiveScene, Lattice, Neighbours, SimSettings, SimStatus, load_scene};
use crate::view::{apply_scene_view, current_view_spec};

/// A request to the simulation from the UI (or a script).
#[derive(Message, Debug, Clone, PartialEq)]
pub enum SimCommand {
    /// Pause if running, run if paused.
    TogglePause,
    /// Integrate exactly one tick (while paused).
    Step,
    /// Rebuild the lattice from the active scene's initial state, keeping the current parameters.
    Reset,
    /// Load a scene file; on failure the current scene keeps running.
    Load(PathBuf),
    /// Save the active scene, with the current state as its initial state.
    Save {
        /// Where to write it.
        path: PathBuf,
        /// Replace an existing file.
        overwrite: bool,
    },
    /// Save the session: the scene as loaded and every change since.
    SaveSession {
        /// Where to write it.
        path: PathBuf,
        /// Replace an existing file.
        overwrite: bool,
    },
    /// Load a scene from its text (a file the web page was given); on
    /// failure the current scene keeps running.
    LoadText {
        /// The file's name, for messages.
        name: String,
        /// The scene file's text.
        text: String,
    },
}

/// What the web page does for the viewer where a native build uses files:
/// the page's crate inserts [`PageHost`] and handles these requests (file
/// picker, downloads, the URL, the canvas's recording). Without a
/// `PageHost`, the panel and the captures work with files.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    /// Let the user pick a scene file to load.
    OpenFile,
    /// Offer the scene, as [`SimCommand::Save`] writes it, as a download.
    DownloadScene,
    /// Offer the session as a download.
    DownloadSession,
    /// Put the scene into the page's URL, to share.
    Share,
    /// Start or stop recording the canvas.
    ToggleRecording,
}

/// The name of a file the page offers for download: `stem` with every
/// character but letters, digits, `-`, `=` and `.` made `_`, then `suffix`.
pub fn download_name(stem: &str, suffix: &str) -> String {
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-=.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}{suffix}")
}

/// The web page as the viewer's host: see [`PageRequest`].
#[derive(Resource, Debug, Default)]
pub struct PageHost {
    /// Whether the canvas is being recorded (the page says).
    pub recording: bool,
}

/// The outcome of the last load or save, shown in the UI.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ControlStatus {
    /// An error to show, if the last command failed.
    pub error: Option<String>,
    /// A confirmation to show, if it succeeded.
    pub info: Option<String>,
}

/// Adds [`SimCommand`] and its handler.
pub struct ControlsPlugin;

impl Plugin for ControlsPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<SimCommand>()
            .add_message::<PageRequest>()
            .init_resource::<ControlStatus>()
            .add_systems(Update, handle_commands.in_set(ViewerSystems::Controls));
    }
}

/// The active scene with the current state written in as its initial state
/// and every random draw resolved: loading it gives the same parameters,
/// stimuli and state. Where the world shows the lattice, the current view
/// (settings and camera pose) becomes the scene's `view` section.
///
/// After a blow-up the state is not finite and cannot be a scene's initial
/// state: the scene keeps the initial state it was loaded with, and the
/// second value says so.
pub fn snapshot_scene(world: &mut World) -> Option<(FieldScene, Option<String>)> {
    let scene = world.get_resource::<ActiveScene>()?.0.clone();
    // The state now (a GPU engine's copy may be a frame or more old).
    if let Err(e) = world.get_resource_mut::<Lattice>()?.sync() {
        error!("cannot read the lattice back from the GPU: {e}");
    }
    let state = world.get_resource::<Lattice>()?.state();
    let mut snapshot = scene.resolved();
    // The stencil the lattice is integrated with.
    if let Some(neighbours) = world.get_resource::<Neighbours>() {
        snapshot.grid = neighbours.grid();
    }
    let note = match world.get_resource::<SimStatus>() {
        Some(SimStatus::BlownUp(b)) => Some(format!(
            "the state is not finite since t = {:.4} (numerical blow-up), so the scene keeps its initial state",
            b.time
        )),
        _ => {
            snapshot.initial = Initial::Explicit {
                ex: state.e.to_vec().into(),
                inh: state.i.to_vec().into(),
            };
            None
        }
    };
    if let Some(view) = current_view_spec(world, &scene) {
        snapshot.view = Some(view);
    }
    Some((snapshot, note))
}

/// The scene as [`snapshot_scene`] makes it, as a scene file's text with
/// its per-cell arrays (the state) written in, checked to load again; and
/// a note when it keeps the initial state.
pub fn scene_text(world: &mut World) -> Result<(String, Option<String>), String> {
    checked_snapshot(world, None).map(|(_, text, note)| (text, note))
}

/// [`snapshot_scene`]'s scene, its text, checked to load again (named
/// `origin`, else the scene's name, in the message), and its note.
fn checked_snapshot(
    world: &mut World,
    origin: Option<&str>,
) -> Result<(FieldScene, String, Option<String>), String> {
    let Some((scene, note)) = snapshot_scene(world) else {
        return Err("no scene is loaded".into());
    };
    let text = scene.to_ron_string();
    FieldScene::from_ron_str(&text, origin.unwrap_or(&scene.name))
        .map_err(|e| format!("not saved: the scene would not load again: {e}"))?;
    Ok((scene, text, note))
}

/// Writes the scene as [`snapshot_scene`] makes it, with its per-cell
/// arrays (the state) beside it as `.npy` files named after it, after
/// checking that it loads again (a saved scene always loads); unless
/// `overwrite`, an existing file is kept.
pub fn save_scene(
    world: &mut World,
    path: &std::path::Path,
    overwrite: bool,
) -> Result<String, String> {
    let (scene, _, note) = checked_snapshot(world, Some(&path.display().to_string()))?;
    scene
        .save_with_arrays(path, overwrite)
        .map_err(|e| format!("not saved: {e}"))?;
    Ok(match note {
        Some(note) => format!("saved {}; {note}", path.display()),
        None => format!("saved {}", path.display()),
    })
}

fn handle_commands(world: &mut World) {
    let commands: Vec<SimCommand> = world
        .resource_mut::<Messages<SimCommand>>()
        .drain()
        .collect();
    for command in commands {
        match command {
            SimCommand::TogglePause => {
                let mut time = world.resource_mut::<Time<Virtual>>();
                if time.is_paused() {
                    time.unpause();
                } else {
                    time.pause();
                }
            }
            SimCommand::Step => {
                if world.resource::<Time<Virtual>>().is_paused() {
                    world.run_schedule(FixedUpdate);
                }
            }
            SimCommand::Reset => {
                let (Some(scene), Some(settings)) = (
                    world.get_resource::<ActiveScene>().map(|s| s.0.clone()),
                    world.get_resource::<SimSettings>().copied(),
                ) else {
                    continue;
                };
                let result = load_scene(world, scene, settings);
                if result.is_ok() {
                    log_reset(world);
                }
                set_status(
                    world,
                    result
                        .map(|_| "reset to the initial state".into())
                        .map_err(|e| e.to_string()),
                );
            }
            SimCommand::Load(path) => {
                let loaded = SceneSource::resolve(&path).load();
                open_loaded(world, loaded, &path.display().to_string());
            }
            SimCommand::SaveSession { path, overwrite } => {
                let result = save_session(world, &path, overwrite);
                set_status(world, result);
            }
            SimCommand::LoadText { name, text } => {
                open_loaded(world, FieldScene::from_ron_str(&text, &name), &name);
            }
            SimCommand::Save { path, overwrite } => {
                let result = save_scene(world, &path, overwrite)
                    .map_err(|e| e.replace("allow overwriting", "tick “overwrite”"));
                set_status(world, result);
            }
        }
    }
}

/// Opens a scene just read (from `name`) with the current engine settings,
/// and says how it went; a scene that failed to load leaves the current
/// one running.
fn open_loaded(world: &mut World, loaded: Result<FieldScene, SceneError>, name: &str) {
    let Some(settings) = world.get_resource::<SimSettings>().copied() else {
        return;
    };
    let result = loaded
        .map_err(|e| e.to_string())
        .and_then(|scene| {
            open_session(world, &scene, settings.engine, settings.backend)
                .map_err(|e| format!("{name}: {e}"))
        })
        .map(|_| format!("loaded {name}"));
    set_status(world, result);
}

/// Loads a scene into the viewer and starts a session on it: the tick rate
/// is the session's when the scene has events (so that they replay as they
/// were made), else one that suits the lattice's size; the scene's events are
/// replayed as the ticks reach them, and every change from then on is logged.
pub fn open_session(
    world: &mut World,
    scene: &FieldScene,
    engine: EngineOptions,
    backend: BackendRequest,
) -> Result<(), String> {
    crate::view::field_store::fits(&scene.grid)?;
    let ticks_per_unit = match &scene.events {
        Some(events) => events.tick_rate(scene.run.sample_rate),
        None => ticks_per_unit_for(scene.grid.len()),
    };
    let mut live = scene.clone();
    live.events = None;
    load_scene(
        world,
        live,
        SimSettings {
            ticks_per_unit,
            engine,
            backend,
        },
    )
    .map_err(|e| e.to_string())?;
    apply_scene_view(world, scene);
    begin_session(world, scene, ticks_per_unit, true)
}

/// Shows the outcome of a command in the panel.
pub fn set_status(world: &mut World, result: Result<String, String>) {
    let mut status = world.resource_mut::<ControlStatus>();
    match result {
        Ok(info) => {
            *status = ControlStatus {
                error: None,
                info: Some(info),
            }
        }
        Err(error) => {
            *status = ControlStatus {
                error: Some(error),
                info: None,
            }
        }
    }
}
