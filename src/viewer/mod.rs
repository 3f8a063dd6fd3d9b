//! The interactive viewer: a window with the lattice surface, the control
//! panel and the plots, built on the same simulation and view plugins as
//! headless runs and offscreen renders.
//!
//! | plugin | concern |
//! |---|---|
//! | [`controls::ControlsPlugin`] | play/pause, step, reset, load and save, as messages |
//! | [`panels::PanelsPlugin`] | the egui panel, plots and tooltip |
//! | [`script::ScriptPlugin`] | scripted runs for automated checks (added with `--script`) |
//!
//! [`ViewerPlugins`] adds these with the camera controls and picking.

pub mod controls;
pub mod panels;
pub mod script;

use std::path::Path;

use bevy::app::PluginGroupBuilder;
use bevy::prelude::*;
use bevy_egui::EguiPlugin;
use eifield_model::{EngineOptions, FieldScene};

use crate::capture::recording::{ScreenCapture, recording};
use crate::capture::{CapturePlugins, CaptureSystems};
use crate::error::EXIT_INPUT;
use crate::sim::backend::{
    AUTO_GPU_MIN_CELLS, BackendChoice, BackendRequest, GpuDevice, renderer_context,
};
use crate::sim::probes::ProbeSystems;
use crate::sim::{SimClock, SimPlugins, TickCost};
use crate::view::ViewPlugins;
use crate::view::camera::OrbitControlsPlugin;
use crate::view::picking::LatticePickingPlugin;

/// Fixed ticks per unit of model time in the viewer for lattices up to
/// [`SMALL_LATTICE`] cells; larger lattices take longer ticks.
pub const VIEW_TICKS_PER_UNIT: f64 = 100.0;
/// Lattices up to this size tick at [`VIEW_TICKS_PER_UNIT`].
pub const SMALL_LATTICE: usize = 64 * 64;
/// Fewest ticks per unit of model time for huge lattices: short enough ticks
/// (5 RK4 steps at the default dt) that one fits a frame's simulation budget
/// on a many-core machine even at 1024 × 1024.
pub const MIN_TICKS_PER_UNIT: f64 = 40.0;
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

/// Wall time per frame the simulation may use in the viewer; when the lattice
/// cannot keep up with the chosen speed, model time runs slower instead of
/// the frame rate collapsing.
pub const SIM_FRAME_BUDGET: f64 = 0.030;

/// The largest virtual-time step per frame that keeps the simulation's ticks
/// within [`SIM_FRAME_BUDGET`], in real seconds at the current speed.
pub fn budgeted_max_delta(tick_cost: f64, ticks_per_unit: f64, speed: f64) -> std::time::Duration {
    let ticks = if tick_cost > 0.0 {
        (SIM_FRAME_BUDGET / tick_cost).max(1.0)
    } else {
        f64::INFINITY
    };
    let virtual_seconds = ticks / ticks_per_unit;
    let real = (virtual_seconds / speed.max(1e-9)).clamp(1e-3, DEFAULT_MAX_DELTA);
    std::time::Duration::from_secs_f64(real)
}

/// Bevy's default cap on one frame's virtual-time step, in seconds.
const DEFAULT_MAX_DELTA: f64 = 0.25;

fn budget_frames(
    cost: Res<TickCost>,
    clock: Option<Res<SimClock>>,
    mut time: ResMut<Time<Virtual>>,
) {
    let Some(clock) = clock else {
        return;
    };
    let speed = time.relative_speed_f64();
    let max_delta = budgeted_max_delta(cost.seconds, clock.ticks_per_unit, speed);
    if time.max_delta() != max_delta {
        time.set_max_delta(max_delta);
    }
}

/// The viewer's system sets in `Update`, in this order: a script's step
/// (which may send commands), the commands' handling, the probes' reset after
/// a load, the capture commands, then the panels' bookkeeping. (The panel
/// itself is drawn in egui's pass, after `Update`.)
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewerSystems {
    /// One step of a `--script`.
    Script,
    /// [`controls::SimCommand`]s from the panel, keys and scripts.
    Controls,
    /// Throughput measurement and the free view area.
    Panels,
}

/// What the window adds to the simulation and the view: camera controls,
/// picking, the controls, the panels and capture.
pub struct ViewerPlugins;

impl PluginGroup for ViewerPlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(ViewerSetsPlugin)
            .add(OrbitControlsPlugin)
            .add(LatticePickingPlugin)
            .add(controls::ControlsPlugin)
            .add(panels::PanelsPlugin)
            .add_group(CapturePlugins)
    }
}

/// Orders the viewer's sets and the frame budget of the simulation.
struct ViewerSetsPlugin;

impl Plugin for ViewerSetsPlugin {
    fn build(&self, app: &mut App) {
        app.configure_sets(
            Update,
            (
                ViewerSystems::Script,
                ViewerSystems::Controls,
                ProbeSystems::Reset,
                CaptureSystems::Commands,
                ViewerSystems::Panels,
            )
                .chain(),
        )
        .add_systems(
            First,
            budget_frames
                .run_if(not(recording))
                .before(bevy::time::TimeSystems),
        );
    }
}

/// The simulation, view and viewer plugins on an app that has a window.
pub fn add_viewer_plugins(app: &mut App) {
    app.add_plugins((SimPlugins, ViewPlugins, ViewerPlugins));
}

/// The viewer's app on `window` for `scene` (named `source` in messages),
/// without running it: the simulation, view and viewer plugins, the engine
/// chosen by `backend` on `threads` threads, capture settings from the
/// scene's view (captures go to `captures`). The command line's `view` and
/// the web page both build it.
pub fn viewer_app(
    window: Window,
    scene: &FieldScene,
    source: &str,
    threads: usize,
    backend: BackendRequest,
    captures: &Path,
) -> Result<App, String> {
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(window),
        ..default()
    }))
    .add_plugins(EguiPlugin::default())
    .insert_resource(ClearColor(Color::srgb(0.08, 0.08, 0.1)));
    add_viewer_plugins(&mut app);
    let engine = EngineOptions {
        threads,
        simd: None,
    };
    // A lattice that may run on the GPU waits for the renderer's device
    // (it exists once the app runs), so that the surface can read its buffers.
    let may_use_gpu = match backend.backend {
        BackendChoice::Cpu => false,
        BackendChoice::Gpu => true,
        BackendChoice::Auto => scene.grid.len() >= AUTO_GPU_MIN_CELLS,
    };
    if may_use_gpu {
        app.insert_resource(PendingSession {
            scene: scene.clone(),
            source: source.to_owned(),
            engine,
            backend,
        })
        .add_systems(Startup, open_pending_session);
    } else {
        controls::open_session(app.world_mut(), scene, engine, backend)
            .map_err(|e| format!("{source}: {e}"))?;
    }
    {
        let view = scene.view.clone().unwrap_or_default();
        let mut capture = app.world_mut().resource_mut::<ScreenCapture>();
        capture.dir = captures.to_owned();
        capture.time_per_frame = view.time_per_frame.unwrap_or(capture.time_per_frame);
        capture.fps = view.fps.unwrap_or(capture.fps);
    }
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_relative_speed_f64(DEFAULT_SPEED);
    Ok(app)
}

/// A session to open once the renderer's device exists.
#[derive(Resource)]
struct PendingSession {
    scene: FieldScene,
    source: String,
    engine: EngineOptions,
    backend: BackendRequest,
}

/// Opens the pending session on the renderer's device: the GPU engine, if
/// one is chosen, runs there. A scene that cannot be loaded ends the viewer
/// with exit code 2, as before the window opened.
fn open_pending_session(world: &mut World) {
    let Some(pending) = world.remove_resource::<PendingSession>() else {
        return;
    };
    if let Some(context) = renderer_context(world) {
        world.insert_resource(GpuDevice {
            context,
            renderer_shares_it: true,
        });
    }
    if let Err(e) = controls::open_session(world, &pending.scene, pending.engine, pending.backend) {
        eprintln!("error: {}: {e}", pending.source);
        world.write_message(AppExit::from_code(EXIT_INPUT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_budget_caps_the_ticks_per_frame() {
        // 10 ms per tick, 100 ticks per unit, speed 4: 3 ticks fit the budget,
        // that is 0.03 units of model time, 7.5 ms of real time at speed 4.
        let d = budgeted_max_delta(0.010, 100.0, 4.0).as_secs_f64();
        assert!((d - 0.0075).abs() < 1e-9, "{d}");
        // Cheap ticks: Bevy's default cap.
        assert_eq!(
            budgeted_max_delta(1e-7, 100.0, 1.0).as_secs_f64(),
            DEFAULT_MAX_DELTA
        );
        // Unknown cost (no tick yet): the default cap.
        assert_eq!(
            budgeted_max_delta(0.0, 100.0, 1.0).as_secs_f64(),
            DEFAULT_MAX_DELTA
        );
        // Very slow ticks still allow one tick per frame.
        let d = budgeted_max_delta(1.0, 10.0, 1.0).as_secs_f64();
        assert!((d - 0.1).abs() < 1e-9, "{d}");
    }
}
