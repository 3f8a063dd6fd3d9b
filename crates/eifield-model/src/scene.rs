//! The scene file schema (RON): every parameter of a run, with defaults, parsing
//! that reports `file:line:col`, validation that names the offending field, and
//! resolution of random draws into explicit values.

use std::fmt;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::grid::Grid;

/// Default time constant of the excitatory population.
pub const DEFAULT_TAU_EX: f64 = 1.0;
/// Default time constant of the inhibitory population (slow homoclinic regime).
pub const DEFAULT_TAU_IN: f64 = 1.5;
/// Default inhibitory-to-excitatory weight.
pub const DEFAULT_C2: f64 = 10.0;
/// Default inhibitory self-weight.
pub const DEFAULT_C4: f64 = 0.0;
/// Default excitatory-to-excitatory weight.
pub const DEFAULT_C_EE: f64 = 5.0;
/// Default excitatory-to-inhibitory weight.
pub const DEFAULT_C_EI: f64 = 10.0;
/// Default fraction of each neighbour's E in the excitatory coupling.
pub const DEFAULT_FRAC_EE: f64 = 0.26;
/// Default fraction of each neighbour's E in the inhibitory coupling.
pub const DEFAULT_FRAC_EI: f64 = 0.0;
/// Default weight of a cell's own E inside its sigmoids.
pub const DEFAULT_SELF_WEIGHT: f64 = 1.0;
/// Default constant drive of the excitatory population.
pub const DEFAULT_H_EX: f64 = -6.35;
/// Default constant drive of the inhibitory population.
pub const DEFAULT_H_IN: f64 = -4.0;
/// Default spread of the random per-cell drives.
pub const DEFAULT_HETEROGENEITY_EPS: f64 = 0.01;
/// Default seed of the random per-cell drives.
pub const DEFAULT_HETEROGENEITY_SEED: u64 = 11111;
/// Default pulse-train frequency.
pub const DEFAULT_PULSE_FREQ: f64 = 0.3;
/// Default pulse width.
pub const DEFAULT_PULSE_WIDTH: f64 = 1.3;
/// Default pulse amplitude.
pub const DEFAULT_PULSE_AMP: f64 = 6.0;
/// Default RK4 time step.
pub const DEFAULT_DT: f64 = 0.005;
/// Default run duration.
pub const DEFAULT_DURATION: f64 = 20.0;
/// Default number of recorded samples per unit of model time.
pub const DEFAULT_SAMPLE_RATE: f64 = 100.0;

/// A complete description of a run. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldScene {
    /// Human-readable name.
    pub name: String,
    /// Lattice shape and boundary.
    pub grid: Grid,
    /// Local E–I model constants.
    pub model: ModelParams,
    /// Coupling weights inside the sigmoids.
    pub coupling: Coupling,
    /// Constant drives and their heterogeneity.
    pub drive: DriveSpec,
    /// Initial state.
    pub initial: Initial,
    /// Pulse trains; when left out, one default pulse train drives the centre cell.
    pub stimuli: Option<Vec<Stimulus>>,
    /// Pink noise added to every cell's excitatory drive.
    pub noise: Noise,
    /// Integration method and step.
    pub integrator: IntegratorSpec,
    /// Duration and recording rate.
    pub run: RunSpec,
    /// How the viewer and rendered videos show the lattice (optional).
    pub view: Option<ViewSpec>,
}

impl Default for FieldScene {
    fn default() -> Self {
        Self {
            name: "Untitled".to_owned(),
            grid: Grid::default(),
            model: ModelParams::default(),
            coupling: Coupling::default(),
            drive: DriveSpec::default(),
            initial: Initial::default(),
            stimuli: None,
            noise: Noise::default(),
            integrator: IntegratorSpec::default(),
            run: RunSpec::default(),
            view: None,
        }
    }
}

/// Constants of the local E–I dynamics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelParams {
    /// Rate factor of dE/dt.
    pub tau_ex: f64,
    /// Rate factor of dI/dt.
    pub tau_in: f64,
    /// Weight of tanh(I) in dE/dt.
    pub c2: f64,
    /// Weight of tanh(I) in dI/dt.
    pub c4: f64,
    /// Weight of the excitatory sigmoid in dE/dt.
    pub c_ee: f64,
    /// Weight of the excitatory sigmoid in dI/dt.
    pub c_ei: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        Self {
            tau_ex: DEFAULT_TAU_EX,
            tau_in: DEFAULT_TAU_IN,
            c2: DEFAULT_C2,
            c4: DEFAULT_C4,
            c_ee: DEFAULT_C_EE,
            c_ei: DEFAULT_C_EI,
        }
    }
}

/// Weights of a cell's own E and its neighbours' E inside the sigmoids.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Coupling {
    /// Neighbour weight in the excitatory sigmoid `u`.
    pub frac_ee: f64,
    /// Neighbour weight in the inhibitory sigmoid `v`.
    pub frac_ei: f64,
    /// Own weight in both sigmoids.
    pub self_weight: f64,
}

impl Default for Coupling {
    fn default() -> Self {
        Self {
            frac_ee: DEFAULT_FRAC_EE,
            frac_ei: DEFAULT_FRAC_EI,
            self_weight: DEFAULT_SELF_WEIGHT,
        }
    }
}

/// Constant drives of the two populations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriveSpec {
    /// Nominal excitatory drive.
    pub h_ex: f64,
    /// Nominal inhibitory drive.
    pub h_in: f64,
    /// How the per-cell drives differ from the nominal values.
    pub heterogeneity: Heterogeneity,
}

impl Default for DriveSpec {
    fn default() -> Self {
        Self {
            h_ex: DEFAULT_H_EX,
            h_in: DEFAULT_H_IN,
            heterogeneity: Heterogeneity::default(),
        }
    }
}

/// Per-cell variation of the constant drives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Heterogeneity {
    /// Every cell gets the nominal drives.
    None,
    /// `h = nominal + eps · N(0, 1)`, drawn per cell from a seeded generator
    /// (first all `h_ex`, then all `h_in`).
    Random {
        /// Standard deviation of the variation.
        eps: f64,
        /// Seed of the generator.
        seed: u64,
    },
    /// Absolute per-cell values, row-major; they replace the nominal drives.
    Explicit {
        /// Excitatory drive per cell.
        h_ex: Vec<f64>,
        /// Inhibitory drive per cell.
        h_in: Vec<f64>,
    },
}

impl Default for Heterogeneity {
    fn default() -> Self {
        Self::Random {
            eps: DEFAULT_HETEROGENEITY_EPS,
            seed: DEFAULT_HETEROGENEITY_SEED,
        }
    }
}

/// The state at t = 0.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Initial {
    /// E = I = 0 everywhere.
    #[default]
    Zeros,
    /// The steady state of the lattice with stimuli and noise off.
    Rest,
    /// E and I drawn from N(0, sigma²) per cell (first all E, then all I).
    Random {
        /// Standard deviation.
        sigma: f64,
        /// Seed of the generator.
        seed: u64,
    },
    /// Explicit per-cell values, row-major.
    Explicit {
        /// E per cell.
        ex: Vec<f64>,
        /// I per cell.
        inh: Vec<f64>,
    },
}

/// An input aimed at one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Stimulus {
    /// A periodic rectangular pulse train added to the cell's excitatory drive.
    PulseTrain {
        /// Target row.
        row: usize,
        /// Target column.
        col: usize,
        /// Pulses per unit of model time.
        #[serde(default = "default_pulse_freq")]
        freq: f64,
        /// Duration of each pulse.
        #[serde(default = "default_pulse_width")]
        width: f64,
        /// Height of each pulse.
        #[serde(default = "default_pulse_amp")]
        amp: f64,
        /// Nothing happens before this time; the first pulse starts half a period later.
        #[serde(default)]
        onset: f64,
        /// The number of pulses, or unlimited when left out.
        #[serde(default)]
        count: Option<u64>,
    },
}

fn default_pulse_freq() -> f64 {
    DEFAULT_PULSE_FREQ
}
fn default_pulse_width() -> f64 {
    DEFAULT_PULSE_WIDTH
}
fn default_pulse_amp() -> f64 {
    DEFAULT_PULSE_AMP
}

impl Stimulus {
    /// The notebook's pulse train, aimed at the centre of `grid`.
    pub fn default_for(grid: &Grid) -> Self {
        Stimulus::PulseTrain {
            row: grid.rows / 2,
            col: grid.cols / 2,
            freq: DEFAULT_PULSE_FREQ,
            width: DEFAULT_PULSE_WIDTH,
            amp: DEFAULT_PULSE_AMP,
            onset: 0.0,
            count: None,
        }
    }
}

/// Noise added to every cell's excitatory drive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Noise {
    /// No noise.
    #[default]
    None,
    /// Independent unit-variance pink (1/f) noise per cell, scaled by `sigma`
    /// and held constant over each of its samples.
    Pink {
        /// Scale of the noise.
        sigma: f64,
        /// Seed of the generator.
        seed: u64,
        /// Noise samples per unit of model time.
        sample_rate: f64,
    },
}

/// The integration method and its step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum IntegratorSpec {
    /// Classic fourth-order Runge–Kutta.
    Rk4 {
        /// Largest step.
        dt: f64,
    },
    /// Heun's second-order method.
    Heun {
        /// Largest step.
        dt: f64,
    },
    /// Forward Euler (first order; for teaching).
    Euler {
        /// Largest step.
        dt: f64,
    },
}

impl Default for IntegratorSpec {
    fn default() -> Self {
        Self::Rk4 { dt: DEFAULT_DT }
    }
}

impl IntegratorSpec {
    /// The largest step.
    pub fn dt(&self) -> f64 {
        match *self {
            Self::Rk4 { dt } | Self::Heun { dt } | Self::Euler { dt } => dt,
        }
    }

    /// The same method with another step.
    pub fn with_dt(&self, dt: f64) -> Self {
        match self {
            Self::Rk4 { .. } => Self::Rk4 { dt },
            Self::Heun { .. } => Self::Heun { dt },
            Self::Euler { .. } => Self::Euler { dt },
        }
    }
}

/// How long to run and how often to record.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Model time to integrate.
    pub duration: f64,
    /// Recorded samples per unit of model time.
    pub sample_rate: f64,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            duration: DEFAULT_DURATION,
            sample_rate: DEFAULT_SAMPLE_RATE,
        }
    }
}

impl RunSpec {
    /// Number of recorded samples, including t = 0: `duration · sample_rate + 1`
    /// (the product rounded to the nearest integer).
    pub fn samples(&self) -> u64 {
        (self.duration * self.sample_rate).round() as u64 + 1
    }
}

/// How the lattice is drawn: a 3D surface or a flat top-down heat map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewMode {
    /// A 3D surface whose height follows the field.
    #[default]
    Surface,
    /// A flat heat map seen from above, as in the notebook's animation.
    Heatmap,
}

/// Which population the view shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewField {
    /// Excitatory activity E.
    #[default]
    E,
    /// Inhibitory activity I.
    I,
}

/// The colour maps the views offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColorMapName {
    /// Perceptually uniform, dark blue to yellow.
    #[default]
    Viridis,
    /// Black, red, yellow, white (the notebook's animation).
    Hot,
    /// Diverging blue, white, red (the notebook's raster).
    BlueWhiteRed,
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

    fn check(&self, v: &mut Validator) {
        if let Some(h) = self.height_scale {
            v.check(h.is_finite() && h >= 0.0, "view.height_scale", || {
                format!("must be a finite number ≥ 0 (got {h})")
            });
        }
        if let Some((lo, hi)) = self.range {
            v.check(
                lo.is_finite() && hi.is_finite() && lo != hi,
                "view.range",
                || {
                    format!(
                        "must be two different finite numbers (value at the low end, value at the high end; got ({lo}, {hi}))"
                    )
                },
            );
        }
        if let Some(c) = &self.camera {
            v.finite("view.camera.yaw_deg", c.yaw_deg);
            v.check(
                c.pitch_deg.is_finite() && (1.0..=90.0).contains(&c.pitch_deg),
                "view.camera.pitch_deg",
                || format!("must be between 1 and 90 degrees (got {})", c.pitch_deg),
            );
            v.check(
                c.zoom.is_finite() && c.zoom > 0.0,
                "view.camera.zoom",
                || format!("must be a finite number > 0 (got {})", c.zoom),
            );
        }
        if let Some(tpf) = self.time_per_frame {
            v.check(tpf.is_finite() && tpf > 0.0, "view.time_per_frame", || {
                format!("must be a finite number > 0 (got {tpf})")
            });
        }
        if let Some(fps) = self.fps {
            v.check((1..=MAX_VIDEO_FPS).contains(&fps), "view.fps", || {
                format!("must be between 1 and {MAX_VIDEO_FPS} (got {fps})")
            });
        }
    }
}

/// Why a scene could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The RON text is malformed or has the wrong shape.
    #[error("{origin}:{line}:{col}: {message}")]
    Parse {
        /// File name or other origin of the text.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What was expected.
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}: invalid value for `{field}`: {message}")]
    Invalid {
        /// File name or other origin of the text.
        origin: String,
        /// Dotted path of the field, e.g. `stimuli[0].row`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A field that failed validation (before the origin is attached).
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidField {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid value for `{}`: {}", self.field, self.message)
    }
}

fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

impl FieldScene {
    /// Parses and validates RON text; `origin` names it in error messages.
    pub fn from_ron_str(text: &str, origin: &str) -> Result<Self, SceneError> {
        let scene: FieldScene = ron_options()
            .from_str(text)
            .map_err(|e| SceneError::Parse {
                origin: origin.to_owned(),
                line: e.span.start.line,
                col: e.span.start.col,
                message: e.code.to_string(),
            })?;
        scene.validate().map_err(|e| SceneError::Invalid {
            origin: origin.to_owned(),
            field: e.field,
            message: e.message,
        })?;
        Ok(scene)
    }

    /// Reads, parses and validates a scene file.
    pub fn load(path: &Path) -> Result<Self, SceneError> {
        let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_ron_str(&text, &path.display().to_string())
    }

    /// The scene as pretty RON text, readable by [`FieldScene::from_ron_str`].
    pub fn to_ron_string(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .extensions(ron::extensions::Extensions::IMPLICIT_SOME)
            .struct_names(false);
        ron::ser::to_string_pretty(self, config).expect("a scene always serialises")
    }

    /// The stimuli in effect: the listed ones, or the default centre pulse train.
    pub fn effective_stimuli(&self) -> Vec<Stimulus> {
        match &self.stimuli {
            Some(list) => list.clone(),
            None => vec![Stimulus::default_for(&self.grid)],
        }
    }

    /// Checks every value; the error names the first offending field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let mut v = Validator::default();
        let g = &self.grid;
        v.check(g.rows >= 1, "grid.rows", || {
            "must be at least 1 (got 0)".into()
        });
        v.check(g.cols >= 1, "grid.cols", || {
            "must be at least 1 (got 0)".into()
        });
        v.check(
            g.rows.checked_mul(g.cols).is_some_and(|n| n <= MAX_CELLS),
            "grid",
            || {
                format!(
                    "{} × {} cells is more than the supported {MAX_CELLS}",
                    g.rows, g.cols
                )
            },
        );
        let m = &self.model;
        for (name, value) in [
            ("model.tau_ex", m.tau_ex),
            ("model.tau_in", m.tau_in),
            ("model.c2", m.c2),
            ("model.c4", m.c4),
            ("model.c_ee", m.c_ee),
            ("model.c_ei", m.c_ei),
            ("coupling.frac_ee", self.coupling.frac_ee),
            ("coupling.frac_ei", self.coupling.frac_ei),
            ("coupling.self_weight", self.coupling.self_weight),
            ("drive.h_ex", self.drive.h_ex),
            ("drive.h_in", self.drive.h_in),
        ] {
            v.finite(name, value);
        }
        v.check(m.tau_ex > 0.0, "model.tau_ex", || {
            format!("must be > 0 (got {})", m.tau_ex)
        });
        v.check(m.tau_in > 0.0, "model.tau_in", || {
            format!("must be > 0 (got {})", m.tau_in)
        });
        v.check(m.c4 >= 0.0, "model.c4", || {
            format!("must be ≥ 0 (got {})", m.c4)
        });

        let cells = g.rows.saturating_mul(g.cols);
        match &self.drive.heterogeneity {
            Heterogeneity::None => {}
            Heterogeneity::Random { eps, .. } => {
                v.finite("drive.heterogeneity.eps", *eps);
                v.check(*eps >= 0.0, "drive.heterogeneity.eps", || {
                    format!("must be ≥ 0 (got {eps})")
                });
            }
            Heterogeneity::Explicit { h_ex, h_in } => {
                v.array("drive.heterogeneity.h_ex", h_ex, cells);
                v.array("drive.heterogeneity.h_in", h_in, cells);
            }
        }
        match &self.initial {
            Initial::Zeros | Initial::Rest => {}
            Initial::Random { sigma, .. } => {
                v.finite("initial.sigma", *sigma);
                v.check(*sigma >= 0.0, "initial.sigma", || {
                    format!("must be ≥ 0 (got {sigma})")
                });
            }
            Initial::Explicit { ex, inh } => {
                v.array("initial.ex", ex, cells);
                v.array("initial.inh", inh, cells);
            }
        }
        for (k, stimulus) in self.effective_stimuli().iter().enumerate() {
            let Stimulus::PulseTrain {
                row,
                col,
                freq,
                width,
                amp,
                onset,
                count,
            } = stimulus;
            let at = |f: &str| format!("stimuli[{k}].{f}");
            v.check(*row < g.rows, &at("row"), || {
                format!(
                    "row {row} is outside the grid (rows = {}, valid 0..={})",
                    g.rows,
                    g.rows.saturating_sub(1)
                )
            });
            v.check(*col < g.cols, &at("col"), || {
                format!(
                    "column {col} is outside the grid (cols = {}, valid 0..={})",
                    g.cols,
                    g.cols.saturating_sub(1)
                )
            });
            for (name, value) in [
                ("freq", *freq),
                ("width", *width),
                ("amp", *amp),
                ("onset", *onset),
            ] {
                v.finite(&at(name), value);
            }
            v.check(*freq > 0.0, &at("freq"), || {
                format!("must be > 0 (got {freq})")
            });
            v.check(*width >= 0.0, &at("width"), || {
                format!("must be ≥ 0 (got {width})")
            });
            v.check(*onset >= 0.0, &at("onset"), || {
                format!("must be ≥ 0 (got {onset})")
            });
            v.check(count.is_none_or(|c| c > 0), &at("count"), || {
                "must be at least 1 when given".into()
            });
        }
        if let Noise::Pink {
            sigma, sample_rate, ..
        } = &self.noise
        {
            v.finite("noise.sigma", *sigma);
            v.finite("noise.sample_rate", *sample_rate);
            v.check(*sigma >= 0.0, "noise.sigma", || {
                format!("must be ≥ 0 (got {sigma})")
            });
            v.check(*sample_rate > 0.0, "noise.sample_rate", || {
                format!("must be > 0 (got {sample_rate})")
            });
        }
        let dt = self.integrator.dt();
        v.check(dt.is_finite() && dt > 0.0, "integrator.dt", || {
            format!("must be a finite number > 0 (got {dt})")
        });
        let r = &self.run;
        v.check(
            r.duration.is_finite() && r.duration >= 0.0,
            "run.duration",
            || format!("must be a finite number ≥ 0 (got {})", r.duration),
        );
        v.check(
            r.sample_rate.is_finite() && r.sample_rate > 0.0,
            "run.sample_rate",
            || format!("must be a finite number > 0 (got {})", r.sample_rate),
        );
        v.check(
            !(r.duration * r.sample_rate).is_finite() || r.duration * r.sample_rate <= MAX_SAMPLES,
            "run",
            || format!("duration × sample_rate is more than the supported {MAX_SAMPLES} samples"),
        );
        if let Some(view) = &self.view {
            view.check(&mut v);
        }
        v.finish()
    }

    /// A copy with every random draw written out, so that it runs identically
    /// without relying on seeds: heterogeneity becomes `Explicit` absolute
    /// drives, a `Random` initial state becomes `Explicit`, and the default
    /// stimulus is listed. Seeded noise stays seeded (it is reproducible).
    pub fn resolved(&self) -> Self {
        let mut out = self.clone();
        let (h_ex, h_in) = self.cell_drives();
        out.drive.heterogeneity = Heterogeneity::Explicit { h_ex, h_in };
        if let Initial::Random { .. } = self.initial {
            let (ex, inh) = self
                .initial_arrays()
                .expect("random initial state has arrays");
            out.initial = Initial::Explicit { ex, inh };
        }
        out.stimuli = Some(self.effective_stimuli());
        out
    }

    /// Per-cell constant drives `(h_ex, h_in)` after heterogeneity.
    pub fn cell_drives(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.grid.len();
        let (h0_ex, h0_in) = (self.drive.h_ex, self.drive.h_in);
        match &self.drive.heterogeneity {
            Heterogeneity::None => (vec![h0_ex; n], vec![h0_in; n]),
            Heterogeneity::Random { eps, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let mut draw = |h0: f64| -> Vec<f64> {
                    (0..n)
                        .map(|_| {
                            let z: f64 = StandardNormal.sample(&mut rng);
                            h0 + eps * z
                        })
                        .collect()
                };
                let h_ex = draw(h0_ex);
                let h_in = draw(h0_in);
                (h_ex, h_in)
            }
            Heterogeneity::Explicit { h_ex, h_in } => (h_ex.clone(), h_in.clone()),
        }
    }

    /// Initial `(E, I)` arrays, or `None` for `Rest` (which needs the solver).
    pub fn initial_arrays(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let n = self.grid.len();
        match &self.initial {
            Initial::Zeros => Some((vec![0.0; n], vec![0.0; n])),
            Initial::Rest => None,
            Initial::Random { sigma, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let mut draw = || -> Vec<f64> {
                    (0..n)
                        .map(|_| {
                            let z: f64 = StandardNormal.sample(&mut rng);
                            sigma * z
                        })
                        .collect()
                };
                let ex = draw();
                let inh = draw();
                Some((ex, inh))
            }
            Initial::Explicit { ex, inh } => Some((ex.clone(), inh.clone())),
        }
    }
}

/// The largest lattice a scene may ask for (4096 × 4096).
pub const MAX_CELLS: usize = 1 << 24;
/// The largest number of recorded samples a scene may ask for.
pub const MAX_SAMPLES: f64 = 1e9;

/// Collects the first validation failure.
#[derive(Default)]
struct Validator {
    first: Option<InvalidField>,
}

impl Validator {
    fn check(&mut self, ok: bool, field: &str, message: impl FnOnce() -> String) {
        if !ok && self.first.is_none() {
            self.first = Some(InvalidField {
                field: field.to_owned(),
                message: message(),
            });
        }
    }

    fn finite(&mut self, field: &str, value: f64) {
        self.check(value.is_finite(), field, || {
            format!("must be a finite number (got {value})")
        });
    }

    fn array(&mut self, field: &str, values: &[f64], expected: usize) {
        self.check(values.len() == expected, field, || {
            format!(
                "expected {expected} values (rows × cols), got {}",
                values.len()
            )
        });
        if let Some(k) = values.iter().position(|x| !x.is_finite()) {
            self.check(false, &format!("{field}[{k}]"), || {
                format!("must be a finite number (got {})", values[k])
            });
        }
    }

    fn finish(self) -> Result<(), InvalidField> {
        match self.first {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
