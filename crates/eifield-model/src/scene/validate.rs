//! Validation of a scene: every value is checked against the model's domain
//! and against what the program can do with it (timer resolution, memory,
//! sample counts), and the error names the offending field.

use std::fmt;

use super::*;

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

impl FieldScene {
    /// Checks every value; the error names the first offending field. A
    /// per-cell array whose `.npy` file is not read yet is an error (see
    /// [`FieldScene::read_cell_arrays`]).
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.validate_with(false)
    }

    /// As [`FieldScene::validate`]; with `files_pending`, per-cell arrays
    /// whose file is not read yet pass (they are checked when read).
    pub(super) fn validate_with(&self, files_pending: bool) -> Result<(), InvalidField> {
        let mut v = Validator {
            files_pending,
            ..Validator::default()
        };
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
            ("model.c2", m.c2),
            ("model.c_ee", m.c_ee),
            ("model.c_ei", m.c_ei),
            ("coupling.frac_ee", self.coupling.frac_ee),
            ("coupling.frac_ei", self.coupling.frac_ei),
            ("coupling.self_weight", self.coupling.self_weight),
            ("drive.h_ex", self.drive.h_ex),
            ("drive.h_in", self.drive.h_in),
        ] {
            v.magnitude(name, value);
        }
        for (name, kernel) in [
            ("coupling.kernel", Some(&self.coupling.kernel)),
            ("coupling.kernel_ei", self.coupling.kernel_ei.as_ref()),
        ] {
            if let Some(Err((field, message))) = kernel.map(Kernel::check) {
                v.check(false, &format!("{name}.{field}"), || message);
            }
        }
        v.within("model.tau_ex", m.tau_ex, 0.0, MAX_MAGNITUDE, false);
        v.within("model.tau_in", m.tau_in, 0.0, MAX_MAGNITUDE, false);
        v.within("model.c4", m.c4, 0.0, MAX_MAGNITUDE, true);

        let cells = g.rows.saturating_mul(g.cols);
        match &self.drive.heterogeneity {
            Heterogeneity::None => {}
            Heterogeneity::Random { eps, .. } => {
                v.within("drive.heterogeneity.eps", *eps, 0.0, MAX_MAGNITUDE, true);
            }
            Heterogeneity::Explicit { h_ex, h_in } => {
                v.array("drive.heterogeneity.h_ex", h_ex, cells);
                v.array("drive.heterogeneity.h_in", h_in, cells);
            }
        }
        match &self.initial {
            Initial::Zeros | Initial::Rest => {}
            Initial::Random { sigma, .. } => {
                v.within("initial.sigma", *sigma, 0.0, MAX_MAGNITUDE, true);
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
            v.within(&at("freq"), *freq, MIN_RATE, MAX_RATE, true);
            v.within(&at("width"), *width, 0.0, MAX_TIME, true);
            v.magnitude(&at("amp"), *amp);
            v.within(&at("onset"), *onset, 0.0, MAX_TIME, true);
            v.check(count.is_none_or(|c| c > 0), &at("count"), || {
                "must be at least 1 when given".into()
            });
        }
        if let Noise::Pink {
            sigma, sample_rate, ..
        } = &self.noise
        {
            v.within("noise.sigma", *sigma, 0.0, MAX_MAGNITUDE, true);
            v.within("noise.sample_rate", *sample_rate, MIN_RATE, MAX_RATE, true);
        }
        v.within("integrator.dt", self.integrator.dt(), MIN_DT, MAX_DT, true);
        let r = &self.run;
        v.within("run.duration", r.duration, 0.0, MAX_TIME, true);
        v.within("run.sample_rate", r.sample_rate, MIN_RATE, MAX_RATE, true);
        v.check(r.duration * r.sample_rate <= MAX_SAMPLES, "run", || {
            format!(
                "duration × sample_rate = {:e} samples is more than the supported {MAX_SAMPLES:e}",
                r.duration * r.sample_rate
            )
        });
        if let Some(view) = &self.view {
            view.check(&mut v);
        }
        if let Some(events) = &self.events {
            events.check(self, &mut v);
        }
        v.finish()
    }
}

/// The largest lattice a scene may ask for (4096 × 4096).
pub const MAX_CELLS: usize = 1 << 24;
/// The largest number of recorded samples a scene may ask for.
pub const MAX_SAMPLES: f64 = 1e9;
/// The largest magnitude of a model constant, drive, amplitude or spread.
/// Beyond it the model means nothing, and sums of such values could overflow.
pub const MAX_MAGNITUDE: f64 = 1e12;
/// The largest magnitude of a per-cell value (explicit drives and states):
/// room for a drive of [`MAX_MAGNITUDE`] plus a random spread of as much,
/// so that a resolved scene always loads again.
pub const MAX_CELL_VALUE: f64 = 1e15;
/// The longest model time a scene may name (durations, onsets, widths).
pub const MAX_TIME: f64 = 1e9;
/// The lowest rate (samples, noise samples or pulses per unit of model time).
/// Its period, 1e6 units, still fits a timer (`std::time::Duration`).
pub const MIN_RATE: f64 = 1e-6;
/// The highest rate (samples, noise samples or pulses per unit of model time):
/// one per microsecond of model time keeps ticks and input edges far apart
/// from the resolution of timers (1 ns) and of input instants (`TIME_EPS`).
pub const MAX_RATE: f64 = 1e6;
/// The smallest integration step (`integrator.dt`).
pub const MIN_DT: f64 = 1e-6;
/// The largest integration step (`integrator.dt`).
pub const MAX_DT: f64 = 1e3;

/// Collects the first validation failure.
#[derive(Default)]
pub(super) struct Validator {
    first: Option<InvalidField>,
    /// Per-cell arrays whose file is not read yet pass.
    files_pending: bool,
}

impl Validator {
    pub(super) fn check(&mut self, ok: bool, field: &str, message: impl FnOnce() -> String) {
        if !ok && self.first.is_none() {
            self.first = Some(InvalidField {
                field: field.to_owned(),
                message: message(),
            });
        }
    }

    /// A finite number of magnitude at most [`MAX_MAGNITUDE`].
    pub(super) fn magnitude(&mut self, field: &str, value: f64) {
        self.check(value.abs() <= MAX_MAGNITUDE, field, || {
            format!("must be a finite number between -{MAX_MAGNITUDE:e} and {MAX_MAGNITUDE:e} (got {value})")
        });
    }

    /// A number in `[lo, hi]`, or `(lo, hi]` when `lo` is excluded.
    pub(super) fn within(&mut self, field: &str, value: f64, lo: f64, hi: f64, lo_included: bool) {
        let above = if lo_included { value >= lo } else { value > lo };
        self.check(above && value <= hi, field, || {
            let low = if lo_included { "≥" } else { ">" };
            format!("must be a finite number {low} {lo} and ≤ {hi:e} (got {value})")
        });
    }

    pub(super) fn array(&mut self, field: &str, values: &super::CellArray, expected: usize) {
        if let Some(reason) = values.unread_reason() {
            // A file not read yet is checked when it is read.
            self.check(self.files_pending, field, || reason);
            return;
        }
        self.check(values.len() == expected, field, || {
            format!(
                "expected {expected} values (rows × cols), got {}",
                values.len()
            )
        });
        if let Some(k) = values
            .iter()
            .position(|x| x.is_nan() || x.abs() > MAX_CELL_VALUE)
        {
            let value = values[k];
            self.check(false, &format!("{field}[{k}]"), || {
                format!("must be a finite number between -{MAX_CELL_VALUE:e} and {MAX_CELL_VALUE:e} (got {value})")
            });
        }
    }

    pub(super) fn finish(self) -> Result<(), InvalidField> {
        match self.first {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
