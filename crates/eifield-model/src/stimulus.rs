//! Piecewise-constant inputs: pulse trains, click perturbations and pink noise,
//! with the instants at which they change so that the integrator can land on them.

use crate::noise::PinkNoise;
use crate::real::Real;
use crate::scene::{FieldScene, Noise, Stimulus};

/// Two instants closer than this are the same instant (in model time units).
pub const TIME_EPS: f64 = 1e-9;

/// A pulse train aimed at one cell (see DESIGN §1 for the timing).
#[derive(Clone, Debug, PartialEq)]
pub struct PulseTrain {
    /// Row-major index of the target cell.
    pub cell: usize,
    /// Pulses per unit of model time.
    pub freq: f64,
    /// Duration of each pulse.
    pub width: f64,
    /// Height of each pulse.
    pub amp: f64,
    /// Nothing happens before this time.
    pub onset: f64,
    /// Number of pulses, unlimited when `None`.
    pub count: Option<u64>,
}

impl PulseTrain {
    /// The pulse train of a scene stimulus on a grid with `cols` columns.
    pub fn from_stimulus(stimulus: &Stimulus, cols: usize) -> Self {
        let Stimulus::PulseTrain {
            row,
            col,
            freq,
            width,
            amp,
            onset,
            count,
        } = *stimulus;
        Self {
            cell: row * cols + col,
            freq,
            width,
            amp,
            onset,
            count,
        }
    }

    fn period(&self) -> f64 {
        1.0 / self.freq
    }

    /// The value at time `t`: `amp` while `t ≥ onset` and `(t − onset) mod T`
    /// lies in `[T/2, T/2 + width]`, else 0.
    pub fn value(&self, t: f64) -> f64 {
        if t < self.onset {
            return 0.0;
        }
        let period = self.period();
        let k = ((t - self.onset) / period).floor();
        if self.count.is_some_and(|c| k >= c as f64) {
            return 0.0;
        }
        let phase = (t - self.onset) - k * period;
        if phase >= 0.5 * period && phase <= 0.5 * period + self.width {
            self.amp
        } else {
            0.0
        }
    }

    /// Rising and falling edge of pulse `k`.
    fn edges(&self, k: f64) -> (f64, f64) {
        let period = self.period();
        let start = self.onset + k * period;
        let rise = start + 0.5 * period;
        let fall = start + (0.5 * period + self.width).min(period);
        (rise, fall)
    }

    /// The first instant after `t` (by more than [`TIME_EPS`]) at which the value can change.
    pub fn next_change_after(&self, t: f64) -> f64 {
        let period = self.period();
        let k0 = ((t - self.onset) / period).floor().max(0.0) - 1.0;
        let k0 = k0.max(0.0);
        for k in [k0, k0 + 1.0, k0 + 2.0] {
            if self.count.is_some_and(|c| k >= c as f64) {
                break;
            }
            let (rise, fall) = self.edges(k);
            if self.width > 0.0 {
                for edge in [rise, fall] {
                    if edge > t + TIME_EPS {
                        return edge;
                    }
                }
            }
        }
        f64::INFINITY
    }
}

/// A temporary kick: `amount` is added to the cell's `h_ex` on `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Perturbation {
    /// Row-major index of the target cell.
    pub cell: usize,
    /// Added drive.
    pub amount: f64,
    /// When it starts.
    pub start: f64,
    /// When it ends.
    pub end: f64,
}

impl Perturbation {
    fn value(&self, t: f64) -> f64 {
        if t >= self.start && t < self.end {
            self.amount
        } else {
            0.0
        }
    }
}

/// A stretch of integration over which every input is constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Where it ends.
    pub end: f64,
    /// How many equal steps it takes.
    pub steps: u64,
    /// The step.
    pub h: f64,
    /// Its middle, where the inputs are evaluated.
    pub mid: f64,
}

/// Everything that adds to the excitatory drive besides the constant `h_ex`.
#[derive(Default)]
pub struct Inputs {
    /// Pulse trains.
    pub pulses: Vec<PulseTrain>,
    /// Active and pending perturbations.
    pub perturbations: Vec<Perturbation>,
    /// Pink noise, if any.
    pub noise: Option<PinkNoise>,
}

impl Inputs {
    /// The first instant after `t` at which any input changes (∞ if none).
    pub fn next_change_after(&self, t: f64) -> f64 {
        let mut next = f64::INFINITY;
        for p in &self.pulses {
            next = next.min(p.next_change_after(t));
        }
        for p in &self.perturbations {
            for edge in [p.start, p.end] {
                if edge > t + TIME_EPS {
                    next = next.min(edge);
                }
            }
        }
        if let Some(noise) = &self.noise {
            let mut j = noise.sample_index(t) + 1;
            while noise.sample_time(j) <= t + TIME_EPS {
                j += 1;
            }
            next = next.min(noise.sample_time(j));
        }
        next
    }

    /// The summed pulse-train and perturbation input of `cell` at time `t`
    /// (without noise).
    pub fn stimulus_at(&self, cell: usize, t: f64) -> f64 {
        let pulses: f64 = self
            .pulses
            .iter()
            .filter(|p| p.cell == cell)
            .map(|p| p.value(t))
            .sum();
        let kicks: f64 = self
            .perturbations
            .iter()
            .filter(|p| p.cell == cell)
            .map(|p| p.value(t))
            .sum();
        pulses + kicks
    }

    /// Writes the total excitatory drive at time `t` into `out`:
    /// `h_ex + s(t) + σ·p(t)`, summed in f64 and rounded once to the
    /// engine's type. Inputs are constant between change instants, so
    /// callers evaluate it at the middle of an interval.
    pub fn fill_drive<T: Real>(&mut self, t: f64, h_ex: &[f64], out: &mut [T]) {
        use rayon::prelude::*;
        let noise = noise_at(&mut self.noise, t);
        // Every cell: the constant drive and the noise (split among the
        // threads of the caller's pool, if any: a big lattice's fill is a
        // pass over memory that the integration otherwise waits for).
        let fill = |out: &mut [T], start: usize| {
            let h_ex = &h_ex[start..start + out.len()];
            match noise {
                Some((sigma, p)) => {
                    let p = &p[start..start + out.len()];
                    for ((o, &h), &n) in out.iter_mut().zip(h_ex).zip(p) {
                        *o = T::of(h + sigma * n);
                    }
                }
                None => {
                    for (o, &h) in out.iter_mut().zip(h_ex) {
                        *o = T::of(h);
                    }
                }
            }
        };
        const PIECE: usize = 1 << 14;
        if crate::stepper::Workers::here() {
            out.par_chunks_mut(PIECE)
                .enumerate()
                .for_each(|(k, out)| fill(out, k * PIECE));
        } else {
            fill(out, 0);
        }
        // The driven cells, once each: their whole sum, in the order pulses
        // then perturbations, as one f64 sum.
        let cells = self.pulses.iter().map(|p| p.cell);
        let cells = cells.chain(self.perturbations.iter().map(|p| p.cell));
        for (k, cell) in cells.clone().enumerate() {
            if cells.clone().take(k).any(|c| c == cell) {
                continue;
            }
            let v = cell_drive(&self.pulses, &self.perturbations, noise, h_ex, cell, t);
            out[cell] = T::of(v);
        }
    }

    /// Whether pink noise is on (then every cell's drive moves with time).
    pub fn has_noise(&self) -> bool {
        self.noise.is_some()
    }

    /// Without noise (the caller checks [`Inputs::has_noise`]), the drive
    /// differs from `h_ex` only at the driven cells: their whole drive at
    /// `t`, as [`Inputs::fill_drive`] computes it, into `out` as
    /// `(cell, drive)` sorted by cell.
    pub(crate) fn fill_driven<T: Real>(&self, t: f64, h_ex: &[f64], out: &mut Vec<(usize, T)>) {
        debug_assert!(!self.has_noise(), "with noise every cell's drive moves");
        // The cells of [`Inputs::driven_cells`], listed in `out` itself so
        // that nothing is allocated once it has grown.
        out.clear();
        out.extend(self.stimulated_cells().map(|cell| (cell, T::ZERO)));
        out.sort_unstable_by_key(|c| c.0);
        out.dedup_by_key(|c| c.0);
        for (cell, drive) in out.iter_mut() {
            let v = cell_drive(&self.pulses, &self.perturbations, None, h_ex, *cell, t);
            *drive = T::of(v);
        }
    }

    /// Replaces the pulse trains with a scene's stimuli (on a grid with `cols` columns).
    pub fn set_pulses(&mut self, scene: &FieldScene, cols: usize) {
        self.pulses = scene
            .effective_stimuli()
            .iter()
            .map(|s| PulseTrain::from_stimulus(s, cols))
            .collect();
    }

    /// Replaces the noise with a scene's for `cells` cells, its first block
    /// starting at time `t`; noise with the same settings is kept as it is.
    pub fn set_noise(&mut self, scene: &FieldScene, cells: usize, t: f64) {
        let unchanged = match (&scene.noise, &self.noise) {
            (Noise::None, None) => true,
            (
                Noise::Pink {
                    sigma,
                    seed,
                    sample_rate,
                },
                Some(n),
            ) => n.sigma() == *sigma && n.seed() == *seed && n.sample_rate() == *sample_rate,
            _ => false,
        };
        if unchanged {
            return;
        }
        self.noise = match scene.noise {
            Noise::None => None,
            Noise::Pink {
                sigma,
                seed,
                sample_rate,
            } => {
                let expected = (scene.run.duration * sample_rate).ceil() as u64 + 1;
                Some(PinkNoise::new_at(
                    sigma,
                    seed,
                    sample_rate,
                    cells,
                    expected,
                    t,
                ))
            }
        };
    }

    /// The cells whose drive pulse trains or perturbations change, each once,
    /// in increasing order (noise reaches every cell and is not listed).
    pub fn driven_cells(&self) -> Vec<usize> {
        let mut cells: Vec<usize> = self.stimulated_cells().collect();
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// The cell of every pulse train and perturbation, in their order
    /// (repeats included).
    fn stimulated_cells(&self) -> impl Iterator<Item = usize> + '_ {
        let pulses = self.pulses.iter().map(|p| p.cell);
        pulses.chain(self.perturbations.iter().map(|p| p.cell))
    }

    /// The total excitatory drive at time `t` of the listed `cells` only,
    /// into `out` (one value per cell), with the same additions in the same
    /// order as [`Inputs::fill_drive`], so the values have its bits (noise
    /// included, when there is noise).
    pub fn drive_of_cells(&mut self, t: f64, h_ex: &[f64], cells: &[usize], out: &mut Vec<f64>) {
        out.clear();
        let noise = noise_at(&mut self.noise, t);
        for &cell in cells {
            let value = cell_drive(&self.pulses, &self.perturbations, noise, h_ex, cell, t);
            out.push(value);
        }
    }

    /// The next segment of an integration from `t` towards `t_end` (with
    /// `t < t_end`): it ends at the first input change or at `t_end`, and is
    /// cut into equal steps no longer than `dt`. Every engine walks time
    /// through this, so they land on the same instants with the same steps.
    pub fn segment(&self, t: f64, t_end: f64, dt: f64) -> Segment {
        let end = self.next_change_after(t).min(t_end);
        let span = end - t;
        let steps = (span / dt - TIME_EPS).ceil().max(1.0) as u64;
        Segment {
            end,
            steps,
            h: span / steps as f64,
            mid: t + 0.5 * span,
        }
    }

    /// Forgets perturbations that ended before `t`.
    pub fn drop_finished(&mut self, t: f64) {
        self.perturbations.retain(|p| p.end > t + TIME_EPS);
    }
}

/// The noise's `sigma` and its sample in effect at time `t`, if there is noise.
fn noise_at(noise: &mut Option<PinkNoise>, t: f64) -> Option<(f64, &[f64])> {
    noise.as_mut().map(|noise| {
        let sigma = noise.sigma();
        let j = noise.sample_index(t);
        (sigma, noise.sample(j))
    })
}

/// The total excitatory drive of `cell` at time `t` in f64: `h_ex` and the
/// noise, then its pulse trains, then its perturbations, in that order (the
/// order every reader of the drive shares, so their values have the same bits).
fn cell_drive(
    pulses: &[PulseTrain],
    perturbations: &[Perturbation],
    noise: Option<(f64, &[f64])>,
    h_ex: &[f64],
    cell: usize,
    t: f64,
) -> f64 {
    let mut value = match noise {
        Some((sigma, p)) => h_ex[cell] + sigma * p[cell],
        None => h_ex[cell],
    };
    for p in pulses.iter().filter(|p| p.cell == cell) {
        value += p.value(t);
    }
    for p in perturbations.iter().filter(|p| p.cell == cell) {
        value += p.value(t);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(count: Option<u64>) -> PulseTrain {
        PulseTrain {
            cell: 0,
            freq: 0.3,
            width: 1.3,
            amp: 6.0,
            onset: 2.0,
            count,
        }
    }

    #[test]
    fn pulse_timing_follows_the_definition() {
        let p = train(None);
        let period = 1.0 / 0.3;
        assert_eq!(p.value(1.9), 0.0);
        assert_eq!(p.value(2.0 + 0.5 * period - 0.01), 0.0);
        assert_eq!(p.value(2.0 + 0.5 * period + 0.01), 6.0);
        assert_eq!(p.value(2.0 + 0.5 * period + 1.29), 6.0);
        assert_eq!(p.value(2.0 + 0.5 * period + 1.31), 0.0);
        assert_eq!(p.value(2.0 + 1.5 * period + 0.5), 6.0);
    }

    #[test]
    fn nothing_before_onset_even_in_the_pulse_phase() {
        let p = PulseTrain {
            onset: 10.0,
            ..train(None)
        };
        // (t - 0) mod T would be inside a pulse here, but t < onset.
        assert_eq!(p.value(1.0 / 0.3 * 0.5 + 0.1), 0.0);
    }

    #[test]
    fn edges_are_found_in_order() {
        let p = train(None);
        let period = 1.0 / 0.3;
        let rise = 2.0 + 0.5 * period;
        assert!((p.next_change_after(0.0) - rise).abs() < 1e-12);
        assert!((p.next_change_after(rise) - (rise + 1.3)).abs() < 1e-12);
        assert!((p.next_change_after(rise + 1.3) - (rise + period)).abs() < 1e-12);
    }

    #[test]
    fn count_limits_the_pulses() {
        let p = train(Some(2));
        let period = 1.0 / 0.3;
        assert_eq!(p.value(2.0 + 1.5 * period + 0.5), 6.0);
        assert_eq!(p.value(2.0 + 2.5 * period + 0.5), 0.0);
        let last_fall = 2.0 + 1.5 * period + 1.3;
        assert!(p.next_change_after(last_fall).is_infinite());
    }

    #[test]
    fn wide_pulses_end_with_the_period() {
        let p = PulseTrain {
            width: 100.0,
            onset: 0.0,
            ..train(None)
        };
        let period = 1.0 / 0.3;
        assert_eq!(p.value(0.25 * period), 0.0);
        assert_eq!(p.value(0.75 * period), 6.0);
        assert!((p.next_change_after(0.6 * period) - period).abs() < 1e-12);
    }

    /// A pulse train into cell 1, a kick into `kicked` over [0, 1], and `noise`.
    fn pulse_and_kick(kicked: usize, noise: Option<PinkNoise>) -> Inputs {
        Inputs {
            pulses: vec![PulseTrain {
                cell: 1,
                onset: 0.0,
                ..train(None)
            }],
            perturbations: vec![Perturbation {
                cell: kicked,
                amount: 3.0,
                start: 0.0,
                end: 1.0,
            }],
            noise,
        }
    }

    #[test]
    fn drive_adds_pulses_and_perturbations_to_their_cells_only() {
        let mut inputs = pulse_and_kick(2, None);
        let h = [-6.0; 4];
        let mut out = [0.0; 4];
        inputs.fill_drive(0.5 / 0.3 + 0.1, &h, &mut out);
        assert_eq!(out, [-6.0, 0.0, -6.0, -6.0]);
        inputs.fill_drive(0.5, &h, &mut out);
        assert_eq!(out, [-6.0, -6.0, -3.0, -6.0]);
        assert_eq!(inputs.next_change_after(0.0), 1.0);
    }

    #[test]
    fn a_single_precision_drive_is_the_double_one_rounded_once() {
        let cells = 6;
        let h: Vec<f64> = (0..cells).map(|k| -6.0 + 0.1 * k as f64).collect();
        for noise in [None, Some(PinkNoise::new(0.7, 11, 50.0, cells, 256))] {
            // Two perturbations of cell 1, which the pulse train drives too.
            let mut inputs = pulse_and_kick(1, noise);
            inputs.perturbations.push(Perturbation {
                cell: 1,
                amount: 0.1,
                start: 0.0,
                end: 2.0,
            });
            for t in [0.03, 0.5, 1.7] {
                let mut double = vec![0.0f64; cells];
                let mut single = vec![0.0f32; cells];
                inputs.fill_drive(t, &h, &mut double);
                inputs.fill_drive(t, &h, &mut single);
                let rounded: Vec<f32> = double.iter().map(|&v| v as f32).collect();
                assert_eq!(single, rounded, "t = {t}");
            }
        }
    }

    #[test]
    fn the_drive_of_listed_cells_has_the_bits_of_the_whole_drive_with_noise_too() {
        let cells = 6;
        let h: Vec<f64> = (0..cells).map(|k| -6.0 + 0.1 * k as f64).collect();
        for noise in [None, Some(PinkNoise::new(0.7, 11, 50.0, cells, 256))] {
            let mut inputs = pulse_and_kick(4, noise);
            let listed = [4, 0, 1, 5];
            for t in [0.03, 0.5, 1.7] {
                let mut whole = vec![0.0f64; cells];
                inputs.fill_drive(t, &h, &mut whole);
                let mut some = Vec::new();
                inputs.drive_of_cells(t, &h, &listed, &mut some);
                let expected: Vec<u64> = listed.iter().map(|&k| whole[k].to_bits()).collect();
                let got: Vec<u64> = some.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, expected, "t = {t}, noise: {}", inputs.noise.is_some());
            }
        }
    }
}
