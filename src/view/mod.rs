//! The view: the lattice drawn as one surface (or heat map), an orbit camera
//! that frames it, colour maps, and pointer picking of cells. Render systems
//! read the simulation state and never write it.
//!
//! | plugin | concern |
//! |---|---|
//! | [`surface::SurfacePlugin`] | the lattice mesh, displaced and coloured by a shader from the shown field |
//! | [`gpu_feed::GpuFeedPlugin`] | the surface's field converted on the GPU from a GPU engine's state |
//! | [`camera::CameraPlugin`] | the orbit camera and its framing of the lattice |
//! | [`camera::OrbitControlsPlugin`] | mouse and keyboard camera controls (viewer only) |
//! | [`picking::LatticePickingPlugin`] | pointer rays to cells, click tools (viewer only) |
//!
//! [`ViewPlugins`] is what an offscreen render and the viewer share.

pub mod camera;
pub mod colormap;
pub mod field_store;
pub mod gpu_feed;
pub mod picking;
pub mod settings;
pub mod surface;

use bevy::app::PluginGroupBuilder;
use bevy::prelude::*;
use eifield_model::FieldScene;
use eifield_model::scene::{ViewMode, ViewSpec};

use camera::{CameraPose, OrbitCamera, frame_grid, pose_relative_to};
pub use settings::*;

/// The surface and the camera: what offscreen renders and the viewer draw.
pub struct ViewPlugins;

impl PluginGroup for ViewPlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(surface::SurfacePlugin)
            .add(gpu_feed::GpuFeedPlugin)
            .add(camera::CameraPlugin)
    }
}

/// Shows `scene` as its `view` section asks: view settings and camera pose.
pub fn apply_scene_view(world: &mut World, scene: &FieldScene) {
    world.insert_resource(ViewSettings::for_scene(scene));
    let pose = scene
        .view
        .as_ref()
        .and_then(|v| v.camera)
        .unwrap_or_default();
    world.insert_resource(CameraPose(pose));
}

/// The view section describing what `world` shows now: the view settings and
/// the camera's pose relative to the framed view.
pub fn current_view_spec(world: &mut World, scene: &FieldScene) -> Option<ViewSpec> {
    let settings = world.get_resource::<ViewSettings>()?.clone();
    let base = scene.view.clone().unwrap_or_default();
    let camera = world
        .query::<(&Camera, &OrbitCamera)>()
        .iter(world)
        .next()
        .filter(|_| settings.mode == ViewMode::Surface)
        .map(|(camera, orbit)| {
            let aspect = camera::viewport_aspect(camera);
            let framed = frame_grid(&scene.grid, aspect, settings.mode, settings.height_scale);
            (*orbit, framed)
        });
    let pose = camera.map(|(orbit, framed)| pose_relative_to(&orbit, &framed));
    Some(settings.to_spec(pose, &base))
}
