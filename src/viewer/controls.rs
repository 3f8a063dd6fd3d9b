//! The control plugin: play/pause, single step, reset, and loading and saving
//! scenes while the viewer runs, as [`SimCommand`] messages handled in one place.

use std::path::PathBuf;

use bevy::prelude::*;
use eifield_model::FieldScene;
use eifield_model::scene::Initial;

use crate::sim::{ActiveScene, Lattice, SimSettings, load_scene};
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
pub struct ControlPlugin;

impl Plugin for ControlPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<SimCommand>()
            .init_resource::<ControlStatus>()
            .add_systems(Update, handle_commands);
    }
}

/// The active scene with the current state written in as its initial state
/// and every random draw resolved: loading it gives the same parameters,
/// stimuli and state. Where the world shows the lattice, the current view
/// (settings and camera pose) becomes the scene's `view` section.
pub fn snapshot_scene(world: &mut World) -> Option<FieldScene> {
    let scene = world.get_resource::<ActiveScene>()?.0.clone();
    let engine = &world.get_resource::<Lattice>()?.0;
    let mut snapshot = scene.resolved();
    snapshot.initial = Initial::Explicit {
        ex: engine.e.clone(),
        inh: engine.i.clone(),
    };
    if let Some(view) = current_view_spec(world, &scene) {
        snapshot.view = Some(view);
    }
    Some(snapshot)
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
                set_status(
                    world,
                    result
                        .map(|_| "reset to the initial state".into())
                        .map_err(|e| e.to_string()),
                );
            }
            SimCommand::Load(path) => {
                let Some(settings) = world.get_resource::<SimSettings>().copied() else {
                    continue;
                };
                let result = FieldScene::load(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|scene| {
                        load_scene(world, scene.clone(), settings)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        apply_scene_view(world, &scene);
                        Ok(())
                    })
                    .map(|_| format!("loaded {}", path.display()));
                set_status(world, result);
            }
            SimCommand::Save { path, overwrite } => {
                let result = if path.exists() && !overwrite {
                    Err(format!(
                        "{} exists; tick “overwrite” to replace it",
                        path.display()
                    ))
                } else {
                    match snapshot_scene(world) {
                        Some(scene) => std::fs::write(&path, scene.to_ron_string())
                            .map(|_| format!("saved {}", path.display()))
                            .map_err(|e| format!("{}: {e}", path.display())),
                        None => Err("no scene is loaded".into()),
                    }
                };
                set_status(world, result);
            }
        }
    }
}

fn set_status(world: &mut World, result: Result<String, String>) {
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
