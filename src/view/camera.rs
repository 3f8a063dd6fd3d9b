//! The camera plugins: an orbit camera that frames any grid on load (with the
//! scene's camera pose applied), a top-down framing for the heat-map mode, and
//! mouse controls (right drag orbits, middle or shift + right drag pans, the
//! wheel zooms, R resets).

use bevy::camera::{RenderTarget, SubCameraView};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;
use bevy_egui::input::egui_wants_any_pointer_input;
use eifield_model::Grid;
use eifield_model::scene::CameraSpec;

use eifield_model::scene::ViewMode;

use super::settings::{DEFAULT_E_RANGE, ViewSettings, ViewSystems};
use crate::sim::Neighbours;

/// Vertical field of view of the camera.
pub const FOV_Y: f32 = std::f32::consts::FRAC_PI_4;
/// Elevation of the top-down view (just short of vertical, to keep `look_at` well defined).
const TOP_DOWN_PITCH: f32 = std::f32::consts::FRAC_PI_2 - 1e-3;
/// Margin around the framed lattice.
const FRAME_MARGIN: f32 = 1.08;
/// Radians of orbit per pixel of drag.
const ORBIT_SPEED: f32 = 0.006;
/// Zoom factor per wheel line.
const ZOOM_STEP: f32 = 0.1;

/// An orbit camera around a focus point.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct OrbitCamera {
    /// The point looked at.
    pub focus: Vec3,
    /// Rotation about the vertical axis.
    pub yaw: f32,
    /// Elevation above the ground plane.
    pub pitch: f32,
    /// Distance from the focus.
    pub distance: f32,
}

impl OrbitCamera {
    /// The camera's transform.
    pub fn transform(&self) -> Transform {
        let offset = Vec3::new(
            self.pitch.cos() * self.yaw.sin(),
            self.pitch.sin(),
            self.pitch.cos() * self.yaw.cos(),
        ) * self.distance;
        Transform::from_translation(self.focus + offset).looking_at(self.focus, Vec3::Y)
    }
}

/// The orbit that shows the whole lattice (including the height range of the
/// surface) for a viewport of the given aspect ratio.
pub fn frame_grid(grid: &Grid, aspect: f32, mode: ViewMode, height_scale: f32) -> OrbitCamera {
    let (w, d) = (grid.cols as f32, grid.rows as f32);
    let half_fov_y = FOV_Y * 0.5;
    let half_fov_x = (half_fov_y.tan() * aspect).atan();
    match mode {
        ViewMode::Heatmap => {
            let distance =
                ((d * 0.5) / half_fov_y.tan()).max((w * 0.5) / half_fov_x.tan()) * FRAME_MARGIN;
            OrbitCamera {
                focus: Vec3::ZERO,
                yaw: 0.0,
                pitch: TOP_DOWN_PITCH,
                distance,
            }
        }
        ViewMode::Surface => {
            let pitch = (CameraSpec::default().pitch_deg as f32).to_radians();
            let (lo, hi) = (
                DEFAULT_E_RANGE.0 * height_scale,
                DEFAULT_E_RANGE.1 * height_scale,
            );
            let centre_y = 0.5 * (lo + hi);
            let focus = Vec3::new(0.0, centre_y, 0.0);
            // The nearest distance at which every corner of the box that holds
            // the surface lies inside the view (camera at focus − forward · D).
            let view = OrbitCamera {
                focus,
                yaw: 0.0,
                pitch,
                distance: 1.0,
            }
            .transform();
            let (right, up, forward) = (*view.right(), *view.up(), *view.forward());
            let (tan_x, tan_y) = (half_fov_x.tan(), half_fov_y.tan());
            let mut distance = 0.0f32;
            for x in [-0.5 * w, 0.5 * w] {
                for y in [lo, hi] {
                    for z in [-0.5 * d, 0.5 * d] {
                        let rel = Vec3::new(x, y, z) - focus;
                        let ahead = rel.dot(forward);
                        distance = distance
                            .max(rel.dot(right).abs() / tan_x - ahead)
                            .max(rel.dot(up).abs() / tan_y - ahead);
                    }
                }
            }
            let distance = distance * FRAME_MARGIN;
            OrbitCamera {
                focus: Vec3::new(0.0, centre_y, 0.0),
                yaw: 0.0,
                pitch,
                distance,
            }
        }
    }
}

/// The framed view with a camera pose applied: yaw, pitch (surface mode
/// only; the heat map is always seen from above) and zoom.
pub fn posed_frame(
    grid: &Grid,
    aspect: f32,
    mode: ViewMode,
    height_scale: f32,
    pose: &CameraSpec,
) -> OrbitCamera {
    let mut orbit = frame_grid(grid, aspect, mode, height_scale);
    if mode == ViewMode::Surface {
        orbit.yaw = (pose.yaw_deg as f32).to_radians();
        orbit.pitch = (pose.pitch_deg as f32).to_radians().min(TOP_DOWN_PITCH);
    }
    orbit.distance *= pose.zoom as f32;
    orbit
}

/// The pose of `orbit` relative to the framed view `framed`: the inverse of
/// [`posed_frame`] (a pan of the focus is not part of a pose).
pub fn pose_relative_to(orbit: &OrbitCamera, framed: &OrbitCamera) -> CameraSpec {
    let yaw = (orbit.yaw as f64).to_degrees().rem_euclid(360.0);
    CameraSpec {
        yaw_deg: if yaw > 180.0 { yaw - 360.0 } else { yaw },
        pitch_deg: (orbit.pitch as f64).to_degrees().clamp(1.0, 90.0),
        zoom: (orbit.distance / framed.distance) as f64,
    }
}

/// The camera pose applied whenever the lattice is framed (from the scene's
/// `view.camera`, or the default).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Default)]
pub struct CameraPose(pub CameraSpec);

/// The part of the window the panels leave free, in logical pixels (`None`:
/// the whole window). The lattice is framed in this area, and the view's
/// centre of projection sits at its centre; the rest of the window still shows
/// the scene behind the panels.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Default)]
pub struct FreeViewArea(pub Option<Rect>);

/// The sub-view that puts the centre of a `window`-sized view at the centre of
/// `free` (both in physical pixels): the camera's full view is the free area,
/// and the window shows it with a margin around it.
pub fn sub_view_for(window: UVec2, free: Rect) -> SubCameraView {
    SubCameraView {
        full_size: UVec2::new(
            free.width().round().max(1.0) as u32,
            free.height().round().max(1.0) as u32,
        ),
        offset: -free.min,
        size: window.max(UVec2::ONE),
    }
}

fn fit_free_area(
    free: Option<Res<FreeViewArea>>,
    windows: Query<&Window, With<bevy::window::PrimaryWindow>>,
    mut cameras: Query<&mut Camera, With<OrbitCamera>>,
) {
    let (Some(free), Ok(window)) = (free, windows.single()) else {
        return;
    };
    let scale = window.scale_factor();
    let sub = free.0.map(|area| {
        let physical = Rect::from_corners(area.min * scale, area.max * scale);
        sub_view_for(window.physical_size(), physical)
    });
    for mut camera in &mut cameras {
        if camera.sub_camera_view != sub {
            camera.sub_camera_view = sub;
        }
    }
}

/// Renders the camera into this image instead of the window (offscreen rendering).
#[derive(Resource, Debug, Clone)]
pub struct OffscreenTarget(pub Handle<Image>);

/// Adds the camera, its light and the framing.
pub struct CameraPlugin;

impl Plugin for CameraPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CameraPose>()
            .add_systems(Startup, spawn_camera)
            .add_systems(
                Update,
                (fit_free_area, frame_on_change, apply_orbit)
                    .chain()
                    .in_set(ViewSystems::Camera),
            );
    }
}

/// Adds the mouse and keyboard controls of the orbit camera (with a window and egui).
pub struct OrbitControlsPlugin;

impl Plugin for OrbitControlsPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            orbit_controls
                .run_if(not(egui_wants_any_pointer_input))
                .in_set(ViewSystems::Camera)
                .after(frame_on_change)
                .before(apply_orbit),
        );
    }
}

fn spawn_camera(mut commands: Commands, offscreen: Option<Res<OffscreenTarget>>) {
    let orbit = frame_grid(&Grid::default(), 16.0 / 9.0, ViewMode::Surface, 1.0);
    let mut camera = commands.spawn((
        Camera3d::default(),
        Projection::Perspective(PerspectiveProjection {
            fov: FOV_Y,
            ..default()
        }),
        orbit,
        orbit.transform(),
    ));
    if let Some(target) = offscreen {
        camera.insert(RenderTarget::Image(target.0.clone().into()));
    }
    commands.spawn((
        DirectionalLight {
            illuminance: 9000.0,
            shadow_maps_enabled: false,
            ..default()
        },
        Transform::from_xyz(-4.0, 10.0, 6.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight {
        brightness: 400.0,
        ..default()
    });
}

/// The aspect ratio the lattice is framed for: the free area's where the
/// panels leave one, else the viewport's.
pub fn viewport_aspect(camera: &Camera) -> f32 {
    if let Some(sub) = &camera.sub_camera_view {
        return sub.full_size.x as f32 / sub.full_size.y.max(1) as f32;
    }
    camera
        .logical_viewport_size()
        .filter(|s| s.y > 0.0)
        .map_or(16.0 / 9.0, |s| s.x / s.y)
}

/// Frames the lattice when it is loaded, the view mode changes or a new pose is set.
fn frame_on_change(
    neighbours: Option<Res<Neighbours>>,
    settings: Res<ViewSettings>,
    pose: Res<CameraPose>,
    mut cameras: Query<(&Camera, &mut OrbitCamera)>,
    mut last: Local<Option<(Grid, ViewMode, i32)>>,
) {
    let Some(neighbours) = neighbours else {
        return;
    };
    for (camera, mut orbit) in &mut cameras {
        let aspect = viewport_aspect(camera);
        // Re-frame when the lattice, the mode or the viewport's shape changes.
        let key = (
            neighbours.grid(),
            settings.mode,
            (aspect * 20.0).round() as i32,
        );
        if *last == Some(key) && !pose.is_changed() {
            return;
        }
        *orbit = posed_frame(
            &neighbours.grid(),
            aspect,
            settings.mode,
            settings.height_scale,
            &pose.0,
        );
        *last = Some(key);
    }
}

#[allow(clippy::too_many_arguments)]
fn orbit_controls(
    mouse: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    settings: Res<ViewSettings>,
    pose: Res<CameraPose>,
    neighbours: Option<Res<Neighbours>>,
    mut cameras: Query<(&Camera, &mut OrbitCamera)>,
) {
    for (camera, mut orbit) in &mut cameras {
        let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
        let delta = motion.delta;
        let pan =
            mouse.pressed(MouseButton::Middle) || (shift && mouse.pressed(MouseButton::Right));
        if pan {
            let right = Vec3::new(orbit.yaw.cos(), 0.0, -orbit.yaw.sin());
            let forward = Vec3::new(-orbit.yaw.sin(), 0.0, -orbit.yaw.cos());
            let scale = orbit.distance * 0.0015;
            orbit.focus += (-right * delta.x + forward * delta.y) * scale;
        } else if mouse.pressed(MouseButton::Right) && settings.mode == ViewMode::Surface {
            orbit.yaw -= delta.x * ORBIT_SPEED;
            orbit.pitch = (orbit.pitch + delta.y * ORBIT_SPEED).clamp(0.05, TOP_DOWN_PITCH);
        }
        if scroll.delta.y != 0.0 {
            orbit.distance = (orbit.distance * (-scroll.delta.y * ZOOM_STEP).exp()).clamp(0.5, 1e5);
        }
        if keys.just_pressed(KeyCode::KeyR)
            && let Some(neighbours) = &neighbours
        {
            *orbit = posed_frame(
                &neighbours.grid(),
                viewport_aspect(camera),
                settings.mode,
                settings.height_scale,
                &pose.0,
            );
        }
    }
}

fn apply_orbit(mut cameras: Query<(&OrbitCamera, &mut Transform), Changed<OrbitCamera>>) {
    for (orbit, mut transform) in &mut cameras {
        *transform = orbit.transform();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eifield_model::Boundary;

    /// Normalised device coordinates of `p` seen by `orbit`.
    fn ndc(orbit: &OrbitCamera, aspect: f32, p: Vec3) -> Vec2 {
        let view = orbit.transform().to_matrix().inverse();
        let proj = Mat4::perspective_rh(FOV_Y, aspect, 0.1, 1e6);
        let clip = proj * view * p.extend(1.0);
        Vec2::new(clip.x / clip.w, clip.y / clip.w)
    }

    #[test]
    fn every_grid_shape_is_framed() {
        for (rows, cols) in [
            (7, 7),
            (64, 64),
            (1, 1),
            (1, 200),
            (300, 2),
            (256, 1024),
            (1024, 1024),
        ] {
            let grid = Grid::new(rows, cols, Boundary::Open);
            for aspect in [16.0 / 9.0, 1.0, 0.6] {
                for mode in [ViewMode::Surface, ViewMode::Heatmap] {
                    let orbit = frame_grid(&grid, aspect, mode, 1.0);
                    let (hw, hd) = (cols as f32 * 0.5, rows as f32 * 0.5);
                    let heights: &[f32] = match mode {
                        ViewMode::Surface => &[DEFAULT_E_RANGE.0, DEFAULT_E_RANGE.1],
                        ViewMode::Heatmap => &[0.0],
                    };
                    let mut extent = 0.0f32;
                    for &y in heights {
                        for (x, z) in [(-hw, -hd), (hw, -hd), (-hw, hd), (hw, hd)] {
                            let p = ndc(&orbit, aspect, Vec3::new(x, y, z));
                            assert!(
                                p.x.abs() <= 1.0 && p.y.abs() <= 1.0,
                                "{rows}x{cols} {mode:?} aspect {aspect}: corner ({x}, {y}, {z}) at {p}"
                            );
                            extent = extent.max(p.x.abs()).max(p.y.abs());
                        }
                    }
                    // Framed, not lost in the distance.
                    assert!(
                        extent > 0.45,
                        "{rows}x{cols} {mode:?} aspect {aspect}: extent {extent}"
                    );
                }
            }
        }
    }
}
