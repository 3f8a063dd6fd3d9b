//! The interactive viewer: a window with the lattice surface, the control
//! panel and the plots, built on the same simulation plugins as headless runs.

use std::path::Path;
use std::process::ExitCode;

use bevy::prelude::*;
use bevy::window::WindowResolution;
use bevy_egui::EguiPlugin;
use eifield_model::{EngineOptions, FieldScene};

use crate::camera::CameraPlugin;
use crate::control::ControlPlugin;
use crate::picking::LatticePickingPlugin;
use crate::probes::ProbesPlugin;
use crate::script::{Script, ScriptPlugin, parse_script};
use crate::sim::{SimPlugin, SimSettings, load_scene};
use crate::stimulus::StimulusPlugin;
use crate::ui::UiPlugin;
use crate::view::ViewPlugin;

/// Fixed ticks per unit of model time in the viewer for lattices up to
/// [`SMALL_LATTICE`] cells; larger lattices take longer ticks.
pub const VIEW_TICKS_PER_UNIT: f64 = 100.0;
/// Lattices up to this size tick at [`VIEW_TICKS_PER_UNIT`].
pub const SMALL_LATTICE: usize = 64 * 64;
/// Fewest ticks per unit of model time for huge lattices.
pub const MIN_TICKS_PER_UNIT: f64 = 10.0;
/// Model time per second of wall time when the viewer opens.
pub const DEFAULT_SPEED: f64 = 4.0;

/// Ticks per unit of model time for a lattice: each tick copies the state
/// between entities and engine, so big lattices take fewer, longer ticks.
pub fn ticks_per_unit_for(cells: usize) -> f64 {
    if cells <= SMALL_LATTICE {
        VIEW_TICKS_PER_UNIT
    } else {
        (VIEW_TICKS_PER_UNIT * SMALL_LATTICE as f64 / cells as f64).max(MIN_TICKS_PER_UNIT)
    }
}

/// True when a window can be opened (an X11 or Wayland display is set).
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The simulation plugins plus everything the viewer draws and handles.
pub fn add_viewer_plugins(app: &mut App) {
    app.add_plugins((
        SimPlugin,
        StimulusPlugin,
        ProbesPlugin,
        ViewPlugin,
        CameraPlugin,
        LatticePickingPlugin,
        ControlPlugin,
        UiPlugin,
    ));
}

/// Opens the viewer on a scene; `script` drives it for automated checks.
pub fn run_viewer(scene_path: &Path, script: Option<&Path>) -> ExitCode {
    if !display_available() {
        eprintln!(
            "error: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the viewer cannot open a window.\n\
             Headless commands work without one: `eifield run <scene.ron> --out <dir>` integrates a scene \
             and writes NumPy arrays."
        );
        return ExitCode::from(2);
    }
    let scene = match FieldScene::load(scene_path) {
        Ok(scene) => scene,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let script = match script.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|t| parse_script(&t, &p.display().to_string()))
    }) {
        None => None,
        Some(Ok(commands)) => Some(Script::new(commands)),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: format!("eifield: {}", scene.name),
            resolution: WindowResolution::new(1280, 720),
            ..default()
        }),
        ..default()
    }))
    .add_plugins(EguiPlugin::default())
    .insert_resource(ClearColor(Color::srgb(0.08, 0.08, 0.1)));
    add_viewer_plugins(&mut app);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settings = SimSettings {
        ticks_per_unit: ticks_per_unit_for(scene.grid.len()),
        engine: EngineOptions {
            threads,
            simd: None,
        },
    };
    if let Err(e) = load_scene(app.world_mut(), scene, settings) {
        eprintln!("error: {}: {e}", scene_path.display());
        return ExitCode::from(2);
    }
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_relative_speed_f64(DEFAULT_SPEED);
    if let Some(script) = script {
        app.add_plugins(ScriptPlugin).insert_resource(script);
    }
    match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}
