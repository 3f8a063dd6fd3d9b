//! What the view shows and how ([`ViewSettings`]: field, mode, colour map,
//! height scale, colour range) and the view's system sets.

use bevy::prelude::*;
use eifield_model::scene::{CameraSpec, ColorMapName, ViewField, ViewMode, ViewSpec};
use eifield_model::{FieldScene, Grid};

/// The view's system sets in `Update`, in this order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewSystems {
    /// Rebuild the mesh when the lattice changes shape.
    Rebuild,
    /// Frame the lattice and place the camera.
    Camera,
    /// Upload the shown field and the shading settings.
    Upload,
}

/// What the surface shows and how.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct ViewSettings {
    /// E or I.
    pub field: ViewField,
    /// Surface or heat map.
    pub mode: ViewMode,
    /// Colour map.
    pub colormap: ColorMapName,
    /// World units of height per unit of the field (surface mode).
    pub height_scale: f32,
    /// Field values mapped to the two ends of the colour map.
    pub range: (f32, f32),
    /// Show the live activation map (first activation time since the last
    /// load, flat) instead of the field.
    pub activation_map: bool,
}

/// Default colour range for E (its typical span in the notebook's regime).
pub const DEFAULT_E_RANGE: (f32, f32) = (-1.5, 2.5);
/// Default height per unit of E, in cell spacings.
pub const DEFAULT_HEIGHT_SCALE: f32 = 1.0;

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            field: ViewField::E,
            mode: ViewMode::Surface,
            colormap: ColorMapName::Viridis,
            height_scale: DEFAULT_HEIGHT_SCALE,
            range: DEFAULT_E_RANGE,
            activation_map: false,
        }
    }
}

impl ViewSettings {
    /// The settings a scene asks for in its `view` section, with defaults
    /// (and a height scale suited to the lattice) for what it leaves out.
    pub fn for_scene(scene: &FieldScene) -> Self {
        let spec = scene.view.clone().unwrap_or_default();
        let defaults = Self::default();
        Self {
            field: spec.field.unwrap_or(defaults.field),
            mode: spec.mode.unwrap_or(defaults.mode),
            colormap: spec.colormap.unwrap_or(defaults.colormap),
            height_scale: spec
                .height_scale
                .map_or_else(|| default_height_scale(&scene.grid), |h| h as f32),
            range: spec
                .range
                .map_or(defaults.range, |(lo, hi)| (lo as f32, hi as f32)),
            activation_map: false,
        }
    }

    /// These settings as a scene's `view` section, with the camera's pose
    /// relative to the framed view, if given, and the recording settings of `base`.
    pub fn to_spec(&self, camera: Option<CameraSpec>, base: &ViewSpec) -> ViewSpec {
        ViewSpec {
            mode: Some(self.mode),
            field: Some(self.field),
            colormap: Some(self.colormap),
            height_scale: Some(self.height_scale as f64),
            range: Some((self.range.0 as f64, self.range.1 as f64)),
            camera: camera.or(base.camera),
            time_per_frame: base.time_per_frame,
            fps: base.fps,
            thumbnail_time: base.thumbnail_time,
        }
    }
}

/// The height scale that suits a lattice: about a sixteenth of its larger
/// side per unit of the field, within [0.5, 16].
pub fn default_height_scale(grid: &Grid) -> f32 {
    (grid.rows.max(grid.cols) as f32 / 32.0).clamp(0.5, 16.0)
}
