//! The scene file schema (RON): every parameter of a run, with defaults, parsing
//! that reports `file:line:col`, validation that names the offending field
//! ([`validate`]), the optional view section ([`view`]), the drives and
//! initial states that seeds and per-cell arrays give, and per-cell arrays
//! in `.npy` files beside the scene ([`CellArray`]). Reading and writing a
//! scene and its arrays is the only I/O here.

mod builtin;
mod cells;
mod events;
mod params;
mod validate;
mod view;

use std::path::{Path, PathBuf};

pub use builtin::*;
pub use cells::CellArray;
pub use events::*;
pub use params::*;
pub use validate::*;
pub use view::*;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

pub use crate::coupling::{Kernel, MatrixFile, Profile};
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
    /// Changes made while it ran, at the ticks where they took effect (a
    /// saved viewer session; optional, see [`Events`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Events>,
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
            events: None,
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

/// Weights of a cell's own E and its neighbours' E inside the sigmoids:
/// `u = self_weight·E + frac_ee·Σ K(i, j)·E_j` with the kernel `K`, and `v`
/// likewise with `frac_ei` and `kernel_ei`. A `Matrix` kernel holds every
/// weight itself (`u = Σ_j M_ee[j, i]·E_j`): then the three numbers and
/// `kernel_ei` may not be given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CouplingFields", into = "CouplingFields")]
pub struct Coupling {
    /// Neighbour weight in the excitatory sigmoid `u`.
    pub frac_ee: f64,
    /// Neighbour weight in the inhibitory sigmoid `v`.
    pub frac_ei: f64,
    /// Own weight in both sigmoids.
    pub self_weight: f64,
    /// Which cells feed `u` (and `v`, unless `kernel_ei` is given).
    pub kernel: Kernel,
    /// Which cells feed `v`, when they differ from `kernel`'s.
    pub kernel_ei: Option<Kernel>,
}

impl Default for Coupling {
    fn default() -> Self {
        Self {
            frac_ee: DEFAULT_FRAC_EE,
            frac_ei: DEFAULT_FRAC_EI,
            self_weight: DEFAULT_SELF_WEIGHT,
            kernel: Kernel::Nearest,
            kernel_ei: None,
        }
    }
}

impl Coupling {
    /// The kernel of the inhibitory sigmoid.
    pub fn kernel_ei(&self) -> &Kernel {
        self.kernel_ei.as_ref().unwrap_or(&self.kernel)
    }
}

/// The coupling section as written in a scene file, where a field left out
/// can be told from one given.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Coupling")]
struct CouplingFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frac_ee: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frac_ei: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    self_weight: Option<f64>,
    #[serde(default)]
    kernel: Kernel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kernel_ei: Option<Kernel>,
}

impl TryFrom<CouplingFields> for Coupling {
    type Error = String;

    fn try_from(f: CouplingFields) -> Result<Self, String> {
        if f.kernel.is_matrix() {
            let given = [
                ("frac_ee", f.frac_ee.is_some()),
                ("frac_ei", f.frac_ei.is_some()),
                ("self_weight", f.self_weight.is_some()),
                ("kernel_ei", f.kernel_ei.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
                return Err(format!(
                    "`coupling.{name}` cannot be given with a Matrix kernel: the matrices \
                     hold every weight (the own one on the diagonal)"
                ));
            }
        }
        if f.kernel_ei.as_ref().is_some_and(Kernel::is_matrix) {
            return Err(
                "`coupling.kernel_ei` cannot be a Matrix: a Matrix kernel gives both \
                 matrices (`kernel: Matrix(ee: .., ei: ..)`)"
                    .into(),
            );
        }
        let d = Coupling::default();
        Ok(Self {
            frac_ee: f.frac_ee.unwrap_or(d.frac_ee),
            frac_ei: f.frac_ei.unwrap_or(d.frac_ei),
            self_weight: f.self_weight.unwrap_or(d.self_weight),
            kernel: f.kernel,
            kernel_ei: f.kernel_ei,
        })
    }
}

impl From<Coupling> for CouplingFields {
    fn from(c: Coupling) -> Self {
        let matrix = c.kernel.is_matrix();
        let number = |x: f64| (!matrix).then_some(x);
        Self {
            frac_ee: number(c.frac_ee),
            frac_ei: number(c.frac_ei),
            self_weight: number(c.self_weight),
            kernel: c.kernel,
            kernel_ei: if matrix { None } else { c.kernel_ei },
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
        h_ex: CellArray,
        /// Inhibitory drive per cell.
        h_in: CellArray,
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
        ex: CellArray,
        /// I per cell.
        inh: CellArray,
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
    /// How a headless run writes its samples.
    pub format: OutputFormat,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            duration: DEFAULT_DURATION,
            sample_rate: DEFAULT_SAMPLE_RATE,
            format: OutputFormat::Npy,
        }
    }
}

/// The files a headless run writes its samples into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputFormat {
    /// `E.npy`, `I.npy` and `t.npy`: `[samples, rows·cols]` NumPy arrays.
    #[default]
    Npy,
    /// `run.zarr`: a chunked, compressed Zarr version 3 store with the
    /// arrays `E` and `I` of shape `[time, row, col]` and their coordinates.
    Zarr,
}

impl RunSpec {
    /// Number of recorded samples, including t = 0: `duration · sample_rate + 1`
    /// (the product rounded to the nearest integer).
    pub fn samples(&self) -> u64 {
        (self.duration * self.sample_rate).round() as u64 + 1
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
        // Arrays in .npy files are checked when they are read.
        scene.validate_with(true).map_err(|e| SceneError::Invalid {
            origin: origin.to_owned(),
            field: e.field,
            message: e.message,
        })?;
        Ok(scene)
    }

    /// Reads, parses and validates a scene file, and reads the coupling
    /// matrices it names (paths relative to the scene file's folder).
    pub fn load(path: &Path) -> Result<Self, SceneError> {
        let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut scene = Self::from_ron_str(&text, &origin)?;
        let base = path.parent().unwrap_or(Path::new(""));
        scene.read_matrices(base, &origin)?;
        scene.read_cell_arrays(base, &origin)?;
        Ok(scene)
    }

    /// Reads the coupling matrices that are not read yet, relative paths
    /// from `base`; `origin` names the scene in errors.
    pub fn read_matrices(&mut self, base: &Path, origin: &str) -> Result<(), SceneError> {
        let n = self.grid.len();
        crate::coupling::read_matrices(&mut self.coupling.kernel, base, n).map_err(|e| {
            SceneError::Invalid {
                origin: origin.to_owned(),
                field: e.field,
                message: e.message,
            }
        })
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

    /// The stimulated cells (row-major indices, each once).
    pub fn stimulated_cells(&self) -> Vec<usize> {
        let mut cells: Vec<usize> = self
            .effective_stimuli()
            .iter()
            .map(|s| {
                let Stimulus::PulseTrain { row, col, .. } = *s;
                self.grid.index(row, col)
            })
            .collect();
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// A copy with every default written out (the default stimulus is
    /// listed), so that it runs identically wherever it is loaded. Seeded
    /// draws stay seeds (`Random` heterogeneity, a `Random` initial state,
    /// pink noise): their generator and its stream are pinned and tested,
    /// so the scene stays small at any lattice size.
    pub fn resolved(&self) -> Self {
        let mut out = self.clone();
        out.stimuli = Some(self.effective_stimuli());
        out
    }

    /// Reads the per-cell arrays that name a `.npy` file and are not read
    /// yet (relative paths from `base`); `origin` names the scene in errors.
    pub fn read_cell_arrays(&mut self, base: &Path, origin: &str) -> Result<(), SceneError> {
        let n = self.grid.len();
        let invalid = |field: &str, message: String| SceneError::Invalid {
            origin: origin.to_owned(),
            field: field.to_owned(),
            message,
        };
        for (array, field, _) in self.cell_arrays_mut() {
            array
                .read(base, n)
                .map_err(|message| invalid(field, message))?;
        }
        // Validated again, now with the arrays' values.
        self.validate().map_err(|e| invalid(&e.field, e.message))
    }

    /// The per-cell arrays with the fields that hold them and the files
    /// (after a prefix) they are stored in.
    fn cell_arrays_mut(&mut self) -> Vec<(&mut CellArray, &'static str, &'static str)> {
        let mut out = Vec::new();
        if let Heterogeneity::Explicit { h_ex, h_in } = &mut self.drive.heterogeneity {
            out.extend([
                (h_ex, "drive.heterogeneity.h_ex", "drive_h_ex.npy"),
                (h_in, "drive.heterogeneity.h_in", "drive_h_in.npy"),
            ]);
        }
        if let Initial::Explicit { ex, inh } = &mut self.initial {
            out.extend([
                (ex, "initial.ex", "initial_E.npy"),
                (inh, "initial.inh", "initial_I.npy"),
            ]);
        }
        out
    }

    /// Why the scene cannot run yet, if a per-cell array names a `.npy`
    /// file that was not read (see [`FieldScene::read_cell_arrays`]).
    pub fn unread_cell_array(&self) -> Option<String> {
        self.cell_arrays()
            .into_iter()
            .find_map(|(array, field, _)| {
                let reason = array.unread_reason()?;
                Some(format!("invalid value for `{field}`: {reason}"))
            })
    }

    /// As [`FieldScene::cell_arrays_mut`], read-only.
    fn cell_arrays(&self) -> Vec<(&CellArray, &'static str, &'static str)> {
        let mut out = Vec::new();
        if let Heterogeneity::Explicit { h_ex, h_in } = &self.drive.heterogeneity {
            out.extend([
                (h_ex, "drive.heterogeneity.h_ex", "drive_h_ex.npy"),
                (h_in, "drive.heterogeneity.h_in", "drive_h_in.npy"),
            ]);
        }
        if let Initial::Explicit { ex, inh } = &self.initial {
            out.extend([
                (ex, "initial.ex", "initial_E.npy"),
                (inh, "initial.inh", "initial_I.npy"),
            ]);
        }
        out
    }

    /// A copy whose per-cell arrays are written inline: its RON text is
    /// self-contained (how a scene travels to another process).
    pub fn with_arrays_inline(&self) -> Self {
        let mut scene = self.clone();
        for (array, _, _) in scene.cell_arrays_mut() {
            array.detach();
        }
        scene
    }

    /// The files [`FieldScene::store_cell_arrays`] writes into `dir`.
    pub fn cell_array_files(&self, dir: &Path, prefix: &str) -> Vec<PathBuf> {
        self.cell_arrays()
            .into_iter()
            .map(|(_, _, file)| dir.join(format!("{prefix}{file}")))
            .collect()
    }

    /// Writes the per-cell arrays into `.npy` files in `dir`
    /// (`{prefix}drive_h_ex.npy`, `…drive_h_in.npy`, `…initial_E.npy`,
    /// `…initial_I.npy`, each `[rows, cols]` float64), which the scene
    /// names from then on (relative to `dir`): a scene written into `dir`
    /// stays small and loads with them.
    pub fn store_cell_arrays(&mut self, dir: &Path, prefix: &str) -> Result<(), String> {
        let shape = [self.grid.rows, self.grid.cols];
        for (array, _, file) in self.cell_arrays_mut() {
            array.store(dir, &format!("{prefix}{file}"), shape)?;
        }
        Ok(())
    }

    /// Writes the scene to `path` with its per-cell arrays beside it
    /// (prefixed with the file's stem: `my.ron` gets `my.initial_E.npy`)
    /// and its coupling matrices (`coupling_ee.*`, `coupling_ei.*`). Unless
    /// `overwrite`, refuses to replace an existing file.
    pub fn save_with_arrays(&self, path: &Path, overwrite: bool) -> Result<(), String> {
        let mut scene = self.clone();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let prefix = format!("{stem}.");
        if !overwrite {
            let mut files = scene.cell_array_files(dir, &prefix);
            files.push(path.to_path_buf());
            if let Some(existing) = files.iter().find(|f| f.exists()) {
                return Err(format!(
                    "{} exists; choose another name or allow overwriting",
                    existing.display()
                ));
            }
        }
        scene.store_cell_arrays(dir, &prefix)?;
        crate::coupling::store_matrices(&mut scene.coupling.kernel, dir)?;
        std::fs::write(path, scene.to_ron_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
            Heterogeneity::Explicit { h_ex, h_in } => (h_ex.to_vec(), h_in.to_vec()),
        }
    }

    /// Initial `(E, I)` arrays, or `None` for `Rest` (which needs the solver).
    pub fn initial_arrays(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let n = self.grid.len();
        match &self.initial {
            Initial::Zeros => Some((written_zeros(n), written_zeros(n))),
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
            Initial::Explicit { ex, inh } => Some((ex.to_vec(), inh.to_vec())),
        }
    }
}

/// `n` zeros, written rather than only allocated: `vec![0.0; n]` leaves a big
/// vector's pages unmapped, a first read maps them to the shared zero page,
/// and the engine's first write to each (the state buffer it steps into
/// next) is then a copy-on-write fault that stops every thread of the
/// process to flush its TLB: a quarter of a 4096 × 4096 run's two steps.
fn written_zeros(n: usize) -> Vec<f64> {
    let mut zeros = Vec::with_capacity(n);
    zeros.resize(n, 0.0);
    zeros
}
