//! The optional `view` section of a scene: how the viewer and rendered
//! videos show the lattice, with its validation.

use serde::{Deserialize, Serialize};

use super::validate::{InvalidField, MAX_RATE, MAX_TIME, MIN_RATE, Validator};

/// How the lattice is drawn: a 3D surface or a flat top-down heat map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViewMode {
    /// A 3D surface whose height follows the field.
    #[default]
    Surface,
    /// A flat heat map seen from above, as in the notebook's animation.
    Heatmap,
}

/// Which population the view shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViewField {
    /// Excitatory activity E.
    #[default]
    E,
    /// Inhibitory activity I.
    I,
}

/// The colour maps the views offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColorMapName {
    /// Perceptually uniform, dark blue to yellow.
    #[default]
    Viridis,
    /// Black, red, yellow, white (the notebook's animation).
    Hot,
    /// Diverging blue, white, red (the notebook's raster).
    BlueWhiteRed,
}

/// A small enum chosen by name on the command line and in menus.
pub trait NamedChoice: Copy + Sized + 'static {
    /// Every value, in menu order.
    const ALL: &'static [Self];
    /// The value's name (lower case, as typed on the command line).
    fn name(self) -> &'static str;
    /// The value called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
    /// Every name, in menu order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }
}

impl NamedChoice for ViewMode {
    const ALL: &'static [Self] = &[Self::Surface, Self::Heatmap];
    fn name(self) -> &'static str {
        match self {
            Self::Surface => "surface",
            Self::Heatmap => "heatmap",
        }
    }
}

impl NamedChoice for ViewField {
    const ALL: &'static [Self] = &[Self::E, Self::I];
    fn name(self) -> &'static str {
        match self {
            Self::E => "e",
            Self::I => "i",
        }
    }
}

impl NamedChoice for ColorMapName {
    const ALL: &'static [Self] = &[Self::Viridis, Self::Hot, Self::BlueWhiteRed];
    fn name(self) -> &'static str {
        match self {
            Self::Viridis => "viridis",
            Self::Hot => "hot",
            Self::BlueWhiteRed => "blue-white-red",
        }
    }
}

/// A camera pose relative to the view that frames the whole lattice.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSpec {
    /// Rotation about the vertical axis, in degrees (0: looking along −z, towards row 0).
    pub yaw_deg: f64,
    /// Elevation above the lattice plane, in degrees (90: straight down).
    pub pitch_deg: f64,
    /// Distance as a fraction of the framing distance (< 1 is closer).
    pub zoom: f64,
}

/// Default elevation of the 3D view, in degrees.
pub const DEFAULT_CAMERA_PITCH_DEG: f64 = 51.566;

impl Default for CameraSpec {
    fn default() -> Self {
        Self {
            yaw_deg: 0.0,
            pitch_deg: DEFAULT_CAMERA_PITCH_DEG,
            zoom: 1.0,
        }
    }
}

/// How the viewer and rendered videos show the lattice. Every field is
/// optional; what is left out takes the program's default (or a command-line option).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewSpec {
    /// Surface or heat map.
    pub mode: Option<ViewMode>,
    /// E or I.
    pub field: Option<ViewField>,
    /// Colour map.
    pub colormap: Option<ColorMapName>,
    /// World height per unit of the field, in cell spacings (surface mode; 0 is flat).
    pub height_scale: Option<f64>,
    /// Field values at the low and the high end of the colour map (reversed when low > high).
    pub range: Option<(f64, f64)>,
    /// Camera pose (surface mode).
    pub camera: Option<CameraSpec>,
    /// Model time per video frame when recording or rendering.
    pub time_per_frame: Option<f64>,
    /// Video frames per second of playback.
    pub fps: Option<u32>,
    /// The model time of the scene's still picture (`eifield render --still`
    /// draws it; the README's thumbnails are such stills).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_time: Option<f64>,
}

/// The most video frames per second a scene or option may ask for.
pub const MAX_VIDEO_FPS: u32 = 240;

impl ViewSpec {
    /// Checks every value; the error names the offending field under `view`.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let mut v = Validator::default();
        self.check(&mut v);
        v.finish()
    }

    pub(super) fn check(&self, v: &mut Validator) {
        if let Some(h) = self.height_scale {
            v.within("view.height_scale", h, 0.0, MAX_HEIGHT_SCALE, true);
        }
        if let Some((lo, hi)) = self.range {
            v.magnitude("view.range", lo);
            v.magnitude("view.range", hi);
            // The shader works in f32: the two ends must differ there too.
            v.check(lo as f32 != hi as f32, "view.range", || {
                format!(
                    "must be two different numbers (value at the low end, value at the high end; got ({lo}, {hi}))"
                )
            });
        }
        if let Some(c) = &self.camera {
            v.within(
                "view.camera.yaw_deg",
                c.yaw_deg,
                -MAX_YAW_DEG,
                MAX_YAW_DEG,
                true,
            );
            v.within("view.camera.pitch_deg", c.pitch_deg, 1.0, 90.0, true);
            v.within("view.camera.zoom", c.zoom, MIN_ZOOM, MAX_ZOOM, true);
        }
        if let Some(tpf) = self.time_per_frame {
            v.within(
                "view.time_per_frame",
                tpf,
                1.0 / MAX_RATE,
                1.0 / MIN_RATE,
                true,
            );
        }
        if let Some(t) = self.thumbnail_time {
            v.within("view.thumbnail_time", t, 0.0, MAX_TIME, true);
        }
        if let Some(fps) = self.fps {
            v.check((1..=MAX_VIDEO_FPS).contains(&fps), "view.fps", || {
                format!("must be between 1 and {MAX_VIDEO_FPS} (got {fps})")
            });
        }
    }
}

/// The largest height scale of the surface view.
pub const MAX_HEIGHT_SCALE: f64 = 1e6;
/// The largest camera yaw a scene may give, in degrees.
pub const MAX_YAW_DEG: f64 = 1e6;
/// The closest camera zoom (a fraction of the framing distance).
pub const MIN_ZOOM: f64 = 1e-3;
/// The farthest camera zoom.
pub const MAX_ZOOM: f64 = 1e3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{FieldScene, SceneError};

    #[test]
    fn view_section_parses_round_trips_and_names_bad_fields() {
        let text = "(grid: (rows: 3, cols: 4), view: (mode: Heatmap, colormap: Hot, \
                    range: (2.0, -1.0), camera: (yaw_deg: 30.0, zoom: 0.5), fps: 24))";
        let scene = FieldScene::from_ron_str(text, "t.ron").unwrap();
        let view = scene.view.clone().unwrap();
        assert_eq!(view.mode, Some(ViewMode::Heatmap));
        assert_eq!(view.colormap, Some(ColorMapName::Hot));
        assert_eq!(view.range, Some((2.0, -1.0)));
        let camera = view.camera.unwrap();
        assert_eq!((camera.yaw_deg, camera.zoom), (30.0, 0.5));
        assert_eq!(camera.pitch_deg, DEFAULT_CAMERA_PITCH_DEG);
        let again = FieldScene::from_ron_str(&scene.to_ron_string(), "again.ron").unwrap();
        assert_eq!(again, scene);

        for (bad, field) in [
            ("view: (camera: (pitch_deg: 95.0))", "view.camera.pitch_deg"),
            ("view: (range: (1.0, 1.0))", "view.range"),
            ("view: (height_scale: -1.0)", "view.height_scale"),
            ("view: (fps: 0)", "view.fps"),
            ("view: (time_per_frame: 0.0)", "view.time_per_frame"),
        ] {
            match FieldScene::from_ron_str(&format!("({bad})"), "bad.ron") {
                Err(SceneError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
