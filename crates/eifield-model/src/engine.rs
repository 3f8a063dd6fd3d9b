//! The lattice engine: state, per-cell parameters, inputs and a stepper, advanced
//! to any time while landing exactly on every instant where an input changes.

use crate::coupling::{Coupler, CouplingError};
use crate::grid::Grid;
use crate::per_cell::{Cells, PerCell};
use crate::real::Real;
use crate::rhs::{Coeffs, SimdLevel, rhs};
use crate::scene::{FieldScene, IntegratorSpec};
use crate::stepper::{Method, Schedule, Stepper};
use crate::stimulus::{Inputs, TIME_EPS};

/// Step used while relaxing to the rest state.
pub const REST_DT: f64 = 0.02;
/// The rest state is reached when every |dE/dt|, |dI/dt| is below this.
pub const REST_TOLERANCE: f64 = 1e-11;
/// Give up relaxing after this much model time.
pub const REST_MAX_TIME: f64 = 5000.0;
/// How often (in model time) relaxation checks for convergence.
pub const REST_CHECK_INTERVAL: f64 = 1.0;

/// The state became non-finite.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("numerical blow-up: {variable} of cell (row {row}, col {col}) is {value} at t = {time}")]
pub struct BlowUp {
    /// Model time at which it was detected.
    pub time: f64,
    /// Row of the first non-finite cell.
    pub row: usize,
    /// Column of the first non-finite cell.
    pub col: usize,
    /// `"E"` or `"I"`.
    pub variable: &'static str,
    /// The offending value.
    pub value: f64,
}

impl BlowUp {
    /// The first non-finite value of a state on `grid` at `time` (E before
    /// I, the smallest index first), if any.
    pub fn first_in<T: Real>(grid: Grid, time: f64, e: &[T], i: &[T]) -> Option<Self> {
        [("E", e), ("I", i)]
            .into_iter()
            .find_map(|(variable, values)| {
                let k = first_non_finite(values)?;
                let (row, col) = grid.position(k);
                Some(Self {
                    time,
                    row,
                    col,
                    variable,
                    value: values[k].to_f64(),
                })
            })
    }
}

/// The index of the first non-finite value, looked for in pieces on every
/// thread of the caller's pool, if any (the check follows every advance,
/// and on a big lattice it is a pass over the whole state).
fn first_non_finite<T: Real>(values: &[T]) -> Option<usize> {
    use rayon::prelude::*;
    if !crate::stepper::Workers::here() {
        return values.iter().position(|v| !v.is_finite());
    }
    const PIECE: usize = 1 << 14;
    // A fold, not `any`: it does not stop early, and so vectorises.
    let piece = values
        .par_chunks(PIECE)
        .position_first(|p| p.iter().fold(false, |bad, v| bad | !v.is_finite()))?;
    let start = piece * PIECE;
    let within = values[start..].iter().position(|v| !v.is_finite())?;
    Some(start + within)
}

/// The engine could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The coupling's matrices could not be read or do not fit.
    #[error(transparent)]
    Coupling(#[from] CouplingError),
    /// `Initial: Rest` did not converge.
    #[error(
        "invalid value for `initial`: Rest: the field has no stable rest state it settles to \
         (max |dE/dt|, |dI/dt| = {residual:e} after t = {time}); choose another initial state"
    )]
    NoRest {
        /// Remaining largest derivative.
        residual: f64,
        /// Time spent relaxing.
        time: f64,
    },
    /// A per-cell array names a `.npy` file that was not read.
    #[error("{0}")]
    UnreadArray(String),
}

/// Knobs that are not part of the scene.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Worker threads for the stepper (1 = run on the calling thread).
    pub threads: usize,
    /// SIMD level of the kernel (`None`: the best available).
    pub simd: Option<SimdLevel>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            simd: None,
        }
    }
}

/// The whole simulation state, independent of any ECS, computed in the
/// float type `T` (`f64` unless asked otherwise; see [`crate::real`]).
pub struct Engine<T: Real = f64> {
    /// Lattice geometry.
    pub grid: Grid,
    /// The coupling (its lattice is `grid`).
    coupler: Coupler,
    /// Right-hand-side constants.
    pub coeffs: Coeffs,
    /// Constant excitatory drive per cell.
    pub h_ex: Vec<f64>,
    /// Constant inhibitory drive per cell (in the engine's type), stored
    /// once when every cell has the same.
    pub h_in: PerCell<T>,
    /// Time-varying inputs.
    pub inputs: Inputs,
    /// Largest step.
    pub dt: f64,
    /// Model time.
    pub t: f64,
    /// E per cell.
    pub e: Vec<T>,
    /// I per cell.
    pub i: Vec<T>,
    /// Steps taken so far.
    pub steps: u64,
    /// The total excitatory drive of the last integrated segment (see
    /// [`Engine::drive`]), per cell; empty while it is `h_ex` but at the
    /// cells in `driven` (an f64 engine without noise).
    drive: Vec<T>,
    /// The driven cells' drives, `(cell, drive)` sorted by cell, while
    /// `drive` is empty.
    driven: Vec<(usize, T)>,
    stepper: Stepper<T>,
}

/// An engine's drive: `drive` per cell, or where that is empty (an f64
/// engine without noise), `h_ex` with the cells `driven` changed.
fn drive_cells<'a, T: Real>(
    h_ex: &'a [f64],
    drive: &'a [T],
    driven: &'a [(usize, T)],
) -> Cells<'a, T> {
    match T::as_same(h_ex) {
        Some(base) if drive.is_empty() => Cells::Changed {
            base,
            changed: driven,
        },
        _ => Cells::Each(drive),
    }
}

fn method_of(spec: &IntegratorSpec) -> Method {
    match spec {
        IntegratorSpec::Rk4 { .. } => Method::Rk4,
        IntegratorSpec::Heun { .. } => Method::Heun,
        IntegratorSpec::Euler { .. } => Method::Euler,
    }
}

impl Engine {
    /// Builds the double-precision engine for a validated scene, at t = 0.
    pub fn from_scene(scene: &FieldScene, options: EngineOptions) -> Result<Self, EngineError> {
        Self::build(scene, options)
    }
}

impl<T: Real> Engine<T> {
    /// Builds the engine in the float type `T` for a validated scene, at
    /// t = 0. Per-cell values given in the scene (drives, initial state) are
    /// rounded once to `T`; the rest state is found in f64 and then rounded.
    pub fn build(scene: &FieldScene, options: EngineOptions) -> Result<Self, EngineError> {
        if let Some(message) = scene.unread_cell_array() {
            return Err(EngineError::UnreadArray(message));
        }
        let grid = scene.grid;
        let n = grid.len();
        let (h_ex, h_in) = scene.cell_drives();
        let simd = options.simd.unwrap_or_else(SimdLevel::detect);
        let method = method_of(&scene.integrator);
        let coupler = Coupler::build(&scene.coupling, grid)?;
        let stepper = Stepper::with_simd(method, &coupler, options.threads, simd);
        let mut engine = Self {
            grid,
            coupler,
            coeffs: Coeffs::from_scene(scene),
            h_ex,
            h_in: PerCell::new(rounded(h_in)),
            inputs: Inputs::default(),
            dt: scene.integrator.dt(),
            t: 0.0,
            e: vec![T::ZERO; n],
            i: vec![T::ZERO; n],
            steps: 0,
            drive: Vec::new(),
            driven: Vec::new(),
            stepper,
        };
        match scene.initial_arrays() {
            Some((e, i)) => {
                engine.e = rounded(e);
                engine.i = rounded(i);
            }
            None => engine.relax_to_rest()?,
        }
        engine.set_stimuli(scene);
        engine.set_noise(scene, 0.0);
        engine.refresh_drive();
        Ok(engine)
    }

    /// The total excitatory drive `h_ex + s(t) + σ·p(t)` per cell that the
    /// integration used over its last segment (before the first step, and
    /// after [`Engine::refresh_drive`] or [`Engine::derivatives`]: the drive in
    /// effect just after the current time). This is the drive the lattice
    /// actually felt; nothing else evaluates the inputs.
    pub fn drive(&self) -> Cells<'_, T> {
        drive_cells(&self.h_ex, &self.drive, &self.driven)
    }

    /// Evaluates the drive at `t` for the next segment: an f64 engine
    /// without noise keeps only the driven cells' (every other cell's is
    /// its `h_ex`), saving a lattice-sized buffer; otherwise every cell's.
    fn fill_drive(&mut self, t: f64) {
        if T::as_same(&self.h_ex).is_some() && !self.inputs.has_noise() {
            self.inputs.fill_driven(t, &self.h_ex, &mut self.driven);
            self.drive = Vec::new();
        } else {
            self.driven.clear();
            self.drive.resize(self.grid.len(), T::ZERO);
            self.inputs.fill_drive(t, &self.h_ex, &mut self.drive);
        }
    }

    /// Fills the drive buffer with the inputs in effect just after the current
    /// time (used before the first step and after inputs are replaced). The
    /// instant chosen lies in the segment the next step integrates, so the
    /// forward-only noise is never asked for an earlier sample afterwards.
    pub fn refresh_drive(&mut self) {
        let next = self.inputs.next_change_after(self.t).min(self.t + self.dt);
        let instant = self.t + 0.5 * (next - self.t);
        self.fill_drive(instant);
    }

    /// Replaces the lattice's boundary by `stencil`'s, which must have the
    /// lattice's shape. Returns false, changing nothing, when the shape differs.
    pub fn set_stencil(&mut self, stencil: Grid) -> bool {
        if (stencil.rows, stencil.cols) != (self.grid.rows, self.grid.cols) {
            return false;
        }
        self.grid = stencil;
        self.coupler.set_boundary(stencil.boundary);
        true
    }

    /// The coupling.
    pub fn coupler(&self) -> &Coupler {
        &self.coupler
    }

    /// Replaces the coupling by the scene's kernels (its lattice must be
    /// this one's): the constants, and the stepper when the reach or the
    /// schedule changes. A coupling equal to the current one changes nothing.
    pub fn set_coupling(&mut self, scene: &FieldScene) -> Result<(), CouplingError> {
        self.coeffs = Coeffs::from_scene(scene);
        let coupler = Coupler::build(&scene.coupling, self.grid)?;
        if coupler != self.coupler {
            let rebuild = coupler.reach() != self.coupler.reach()
                || coupler.is_matrix() != self.coupler.is_matrix();
            self.coupler = coupler;
            if rebuild {
                self.stepper = Stepper::with_simd(
                    self.stepper.method(),
                    &self.coupler,
                    self.stepper.threads_asked(),
                    self.stepper.simd(),
                );
            }
        }
        Ok(())
    }

    /// Replaces the pulse trains with the scene's stimuli.
    pub fn set_stimuli(&mut self, scene: &FieldScene) {
        self.inputs.set_pulses(scene, self.grid.cols);
    }

    /// Replaces the noise with the scene's, its first block starting at time
    /// `t`; noise with the same settings is kept as it is.
    pub fn set_noise(&mut self, scene: &FieldScene, t: f64) {
        self.inputs.set_noise(scene, self.grid.len(), t);
    }

    /// Replaces the integration method and step (e.g. from a live control).
    pub fn set_integrator(&mut self, spec: &IntegratorSpec) {
        let method = method_of(spec);
        if method != self.stepper.method() {
            self.stepper = Stepper::with_simd(
                method,
                &self.coupler,
                self.stepper.threads_asked(),
                self.stepper.simd(),
            );
        }
        self.dt = spec.dt();
    }

    /// The integration method.
    pub fn method(&self) -> Method {
        self.stepper.method()
    }

    /// Worker threads used by the stepper.
    pub fn threads(&self) -> usize {
        self.stepper.threads()
    }

    /// SIMD level of the kernel.
    pub fn simd(&self) -> SimdLevel {
        self.stepper.simd()
    }

    /// How the stepper walks the lattice.
    pub fn schedule(&self) -> Schedule {
        self.stepper.schedule()
    }

    /// Bytes of engine memory per cell: state, per-cell parameters, the drive
    /// buffer and the stepper's scratch.
    pub fn bytes_per_cell(&self) -> usize {
        let own = ([&self.e, &self.i, &self.drive]
            .iter()
            .map(|v| v.capacity())
            .sum::<usize>()
            + self.h_in.stored())
            * std::mem::size_of::<T>()
            + self.h_ex.capacity() * std::mem::size_of::<f64>();
        let own = own / self.grid.len().max(1);
        own + self.stepper.scratch_bytes_per_cell(self.grid.len())
    }

    /// Integrates from the current time to `t_end`, splitting steps so that each
    /// one lies between two consecutive input changes, with no step longer than
    /// `dt`. Returns an error (and stops) if the state becomes non-finite.
    pub fn advance_to(&mut self, t_end: f64) -> Result<(), BlowUp> {
        // The whole loop runs on the stepper's threads: see `Workers`.
        let workers = self.stepper.workers();
        workers.run(|| self.advance_on_this_thread(t_end))
    }

    fn advance_on_this_thread(&mut self, t_end: f64) -> Result<(), BlowUp> {
        while self.t < t_end - TIME_EPS {
            let segment = self.inputs.segment(self.t, t_end, self.dt);
            self.fill_drive(segment.mid);
            for _ in 0..segment.steps {
                self.stepper.step(
                    &self.coupler,
                    &self.coeffs,
                    drive_cells(&self.h_ex, &self.drive, &self.driven),
                    &self.h_in,
                    &mut self.e,
                    &mut self.i,
                    segment.h,
                );
            }
            self.steps += segment.steps;
            self.t = segment.end;
            self.inputs.drop_finished(self.t);
        }
        if self.t < t_end {
            self.t = t_end;
        }
        self.check_finite()
    }

    /// The first non-finite value, if any.
    pub fn check_finite(&self) -> Result<(), BlowUp> {
        match BlowUp::first_in(self.grid, self.t, &self.e, &self.i) {
            Some(blow_up) => Err(blow_up),
            None => Ok(()),
        }
    }

    /// dE/dt and dI/dt of the current state with the inputs in effect just
    /// after the current time (inputs are right-continuous).
    pub fn derivatives(&mut self) -> (Vec<T>, Vec<T>) {
        let n = self.grid.len();
        let (mut de, mut di) = (vec![T::ZERO; n], vec![T::ZERO; n]);
        self.refresh_drive();
        rhs(
            &self.coupler,
            &self.coeffs,
            self.stepper.simd(),
            &self.e,
            &self.i,
            drive_cells(&self.h_ex, &self.drive, &self.driven),
            &self.h_in,
            &mut de,
            &mut di,
        );
        (de, di)
    }

    /// Replaces the state with the lattice's steady state with all inputs off,
    /// found by integrating from E = I = 0 until every derivative vanishes.
    /// This runs in f64 whatever the engine's type (its tolerance is below
    /// f32's resolution), and the result is rounded once.
    pub fn relax_to_rest(&mut self) -> Result<(), EngineError> {
        let n = self.grid.len();
        let mut e = vec![0.0; n];
        let mut i = vec![0.0; n];
        let h_in = self.h_in.map(T::to_f64);
        let mut stepper = Stepper::<f64>::with_simd(
            Method::Rk4,
            &self.coupler,
            self.stepper.threads_asked(),
            self.stepper.simd(),
        );
        let (mut de, mut di) = (vec![0.0; n], vec![0.0; n]);
        let level = self.stepper.simd();
        let steps_per_check = (REST_CHECK_INTERVAL / REST_DT).round() as u64;
        let mut time = 0.0;
        let mut residual;
        loop {
            rhs(
                &self.coupler,
                &self.coeffs,
                level,
                &e,
                &i,
                &self.h_ex,
                &h_in,
                &mut de,
                &mut di,
            );
            residual = de.iter().chain(&di).fold(0.0f64, |m, v| m.max(v.abs()));
            if residual < REST_TOLERANCE {
                break;
            }
            if !residual.is_finite() || time >= REST_MAX_TIME {
                return Err(EngineError::NoRest { residual, time });
            }
            let workers = stepper.workers();
            workers.run(|| {
                for _ in 0..steps_per_check {
                    stepper.step(
                        &self.coupler,
                        &self.coeffs,
                        &self.h_ex,
                        &h_in,
                        &mut e,
                        &mut i,
                        REST_DT,
                    );
                }
            });
            time += REST_CHECK_INTERVAL;
        }
        self.e = rounded(e);
        self.i = rounded(i);
        Ok(())
    }
}

/// The values rounded once to `T` (the same values in f64).
fn rounded<T: Real>(values: Vec<f64>) -> Vec<T> {
    values.into_iter().map(T::of).collect()
}
