//! `eifield view`: the viewer in a window of this machine's desktop, on a
//! scene file or a built-in scene, optionally driven by a script.

use std::path::Path;
use std::process::ExitCode;

use bevy::prelude::*;
use bevy::window::WindowResolution;
use eifield_model::scene::SceneSource;

use crate::commands::AppError;
use crate::sim::backend::BackendRequest;
use crate::viewer::script::{Script, ScriptPlugin, parse_script};
use crate::viewer::viewer_app;

/// True when a window can be opened (an X11 or Wayland display is set).
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Opens the viewer on a scene (a file or a built-in name); `script` drives
/// it for automated checks; recordings and screenshots go to `captures`.
pub fn run_viewer(
    scene_arg: &Path,
    script: Option<&Path>,
    captures: &Path,
    backend: BackendRequest,
) -> Result<ExitCode, AppError> {
    if !display_available() {
        return Err(AppError::Input(
            "no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the viewer cannot open a window.\n\
             Headless commands work without one: `eifield run <scene> --out <dir>` integrates a scene \
             and writes NumPy arrays."
                .into(),
        ));
    }
    let source = SceneSource::resolve(scene_arg);
    let scene = source.load()?;
    let script = match script {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| AppError::Input(format!("{}: {e}", p.display())))?;
            let commands =
                parse_script(&text, &p.display().to_string()).map_err(AppError::Input)?;
            Some(Script::new(commands))
        }
    };
    let window = Window {
        title: format!("eifield: {}", scene.name),
        resolution: WindowResolution::new(1280, 720),
        ..default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut app = viewer_app(
        window,
        &scene,
        &source.to_string(),
        threads,
        backend,
        captures,
    )
    .map_err(AppError::Input)?;
    if let Some(script) = script {
        app.add_plugins(ScriptPlugin).insert_resource(script);
    }
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    })
}
