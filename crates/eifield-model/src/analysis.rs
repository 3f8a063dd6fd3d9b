//! Measuring the spread of activity from recorded runs: activation times and
//! counts, the cells whose activity a stimulus induced (against a control run
//! without stimuli), the extent of induction and the wave speed, with exactly
//! the definitions of the README's "Analysis" section; and the nullclines of
//! one cell for a phase plane.

use std::collections::VecDeque;

use crate::coupling::Coupler;
use crate::grid::{Boundary, Grid};
use crate::rhs::Coeffs;

/// The threshold of E an activation crosses upward, unless told otherwise.
pub const DEFAULT_THRESHOLD: f64 = 1.0;
/// Cells nearer than this to a stimulated cell are left out of the speed fit.
pub const SPEED_MIN_DISTANCE: f64 = 3.0;
/// The fewest cells a speed is fitted to.
pub const SPEED_MIN_CELLS: usize = 5;

/// The activations of every cell of a recorded run.
#[derive(Clone, Debug, PartialEq)]
pub struct Activations {
    /// The earliest activation time of each cell (NaN if none), row-major.
    pub first: Vec<f64>,
    /// The number of activations of each cell.
    pub count: Vec<i64>,
}

impl Activations {
    /// All activations in the run.
    pub fn total(&self) -> i64 {
        self.count.iter().sum()
    }
}

/// Finds the activations in `e` (`samples × cells`, row-major by sample) at
/// the times `t`: an activation of cell i is an upward crossing
/// `E_i[n−1] < θ ≤ E_i[n]`, at the linearly interpolated time
/// `t[n−1] + (θ − E_i[n−1]) / (E_i[n] − E_i[n−1]) · (t[n] − t[n−1])`.
pub fn activations(e: &[f64], t: &[f64], cells: usize, threshold: f64) -> Activations {
    let mut first = vec![f64::NAN; cells];
    let mut count = vec![0i64; cells];
    let samples = t.len().min(e.len() / cells.max(1));
    for n in 1..samples {
        let (before, now) = (
            &e[(n - 1) * cells..n * cells],
            &e[n * cells..(n + 1) * cells],
        );
        for k in 0..cells {
            let (a, b) = (before[k], now[k]);
            if a < threshold && threshold <= b {
                count[k] += 1;
                if first[k].is_nan() {
                    first[k] = t[n - 1] + (threshold - a) / (b - a) * (t[n] - t[n - 1]);
                }
            }
        }
    }
    Activations { first, count }
}

/// Euclidean distance in cells between two cells; on a periodic lattice the
/// shortest way around.
pub fn distance(grid: &Grid, a: usize, b: usize) -> f64 {
    let ((ra, ca), (rb, cb)) = (grid.position(a), grid.position(b));
    let along = |x: usize, y: usize, n: usize| {
        let d = x.abs_diff(y);
        match grid.boundary {
            Boundary::Open => d,
            Boundary::Periodic => d.min(n - d),
        }
    };
    let (dr, dc) = (along(ra, rb, grid.rows), along(ca, cb, grid.cols));
    ((dr * dr + dc * dc) as f64).sqrt()
}

/// The distance of every cell to the nearest of `sources` (∞ without sources).
pub fn distance_to_nearest(grid: &Grid, sources: &[usize]) -> Vec<f64> {
    (0..grid.len())
        .map(|k| {
            sources
                .iter()
                .map(|&s| distance(grid, k, s))
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// The induced cells: a cell is induced when its count in the driven run
/// exceeds the control's and a path of such cells, each step from a cell to
/// one it feeds through the coupling (its 4 neighbours with the default
/// kernel; every cell of a disk; the nonzero entries of a matrix), joins it to
/// a stimulated cell (the path starts at the stimulated cell whatever that
/// cell's own count; a stimulated cell is induced only if its own count is
/// higher).
pub fn induced(
    coupler: &Coupler,
    driven: &[i64],
    control: &[i64],
    stimulated: &[usize],
) -> Vec<bool> {
    let n = coupler.grid().len();
    let higher = |k: usize| driven[k] > control[k];
    let fed = coupler.fed_cells();
    let mut induced = vec![false; n];
    let mut seen = vec![false; n];
    let mut queue = VecDeque::new();
    for &s in stimulated.iter().filter(|&&s| s < n) {
        if !seen[s] {
            seen[s] = true;
            induced[s] = higher(s);
            queue.push_back(s);
        }
    }
    while let Some(k) = queue.pop_front() {
        for nb in fed.of(k) {
            if !seen[nb] && higher(nb) {
                seen[nb] = true;
                induced[nb] = true;
                queue.push_back(nb);
            }
        }
    }
    induced
}

/// A straight-line fit `r = v·t + intercept`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpeedFit {
    /// Slope: cells per unit of model time.
    pub speed: f64,
    /// Distance at t = 0.
    pub intercept: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Cells fitted.
    pub cells: usize,
}

/// Least-squares slope of `r` against `t` over the points given; `None` with
/// fewer than [`SPEED_MIN_CELLS`] points or no spread in time.
pub fn fit_speed(points: &[(f64, f64)]) -> Option<SpeedFit> {
    let n = points.len();
    if n < SPEED_MIN_CELLS {
        return None;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let mean_r = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let stt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let srr: f64 = points.iter().map(|p| (p.1 - mean_r).powi(2)).sum();
    let str_: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_r)).sum();
    if stt <= 0.0 {
        return None;
    }
    let speed = str_ / stt;
    let r2 = if srr > 0.0 {
        str_ * str_ / (stt * srr)
    } else {
        1.0
    };
    Some(SpeedFit {
        speed,
        intercept: mean_r - speed * mean_t,
        r2,
        cells: n,
    })
}

/// What the analysis of a driven run against its control finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Spread {
    /// Activations of the driven run.
    pub driven: Activations,
    /// Activations of the control run.
    pub control: Activations,
    /// Induced cells, row-major.
    pub induced: Vec<bool>,
    /// Distance of each cell to the nearest stimulated cell.
    pub distance: Vec<f64>,
    /// The largest distance of an induced cell to the nearest stimulated cell
    /// (0 if none is induced; `None` without stimulated cells).
    pub extent: Option<f64>,
    /// The wave speed fit, if enough cells qualify.
    pub fit: Option<SpeedFit>,
    /// The `(t, r)` points the speed was fitted to.
    pub points: Vec<(f64, f64)>,
}

/// Measures the spread: `driven` and `control` are the two runs' E arrays
/// (`samples × cells`) at the times `t` (and `t_control`).
pub fn spread(
    coupler: &Coupler,
    stimulated: &[usize],
    (driven, t): (&[f64], &[f64]),
    (control, t_control): (&[f64], &[f64]),
    threshold: f64,
) -> Spread {
    let grid = coupler.grid();
    let cells = grid.len();
    let driven = activations(driven, t, cells, threshold);
    let control = activations(control, t_control, cells, threshold);
    let induced = induced(coupler, &driven.count, &control.count, stimulated);
    let distance = distance_to_nearest(grid, stimulated);
    let extent = (!stimulated.is_empty()).then(|| {
        (0..cells)
            .filter(|&k| induced[k])
            .map(|k| distance[k])
            .fold(0.0, f64::max)
    });
    let points: Vec<(f64, f64)> = (0..cells)
        .filter(|&k| induced[k] && driven.first[k].is_finite() && distance[k] >= SPEED_MIN_DISTANCE)
        .map(|k| (driven.first[k], distance[k]))
        .collect();
    let fit = if stimulated.is_empty() {
        None
    } else {
        fit_speed(&points)
    };
    Spread {
        driven,
        control,
        induced,
        distance,
        extent,
        fit,
        points,
    }
}

/// The cells of the straight line from `a` to `b` (inclusive), `(row, col)`
/// pairs by Bresenham's algorithm.
pub fn line_cells(a: (usize, usize), b: (usize, usize)) -> Vec<(usize, usize)> {
    let (mut r, mut c) = (a.0 as i64, a.1 as i64);
    let (r1, c1) = (b.0 as i64, b.1 as i64);
    let (dr, dc) = ((r1 - r).abs(), -(c1 - c).abs());
    let (sr, sc) = (if r < r1 { 1 } else { -1 }, if c < c1 { 1 } else { -1 });
    let mut err = dr + dc;
    let mut out = Vec::new();
    loop {
        out.push((r as usize, c as usize));
        if r == r1 && c == c1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dc {
            err += dc;
            r += sr;
        }
        if e2 <= dr {
            err += dr;
            c += sc;
        }
    }
    out
}

/// What one cell feels, frozen, for its phase plane: its total excitatory
/// drive, its inhibitory drive, and its sigmoids' arguments split into the
/// part that moves with its own E and the frozen rest:
/// `u = own_ee·E + rest_ee`, `v = own_ei·E + rest_ei`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrozenInputs {
    /// `h_ex + s + σ·p`.
    pub drive: f64,
    /// `h_in`.
    pub h_in: f64,
    /// The weight of the cell's own E in `u`.
    pub own_ee: f64,
    /// The other cells' weighted E in `u`.
    pub rest_ee: f64,
    /// The weight of the cell's own E in `v`.
    pub own_ei: f64,
    /// The other cells' weighted E in `v`.
    pub rest_ei: f64,
}

impl FrozenInputs {
    /// The inputs of cell `i` with the field `e` frozen, through the coupling.
    pub fn of_cell(
        coupler: &Coupler,
        c: &Coeffs,
        e: &[f64],
        i: usize,
        drive: f64,
        h_in: f64,
    ) -> Self {
        let (mut own, mut rest) = ((c.self_weight, c.self_weight), (0.0, 0.0));
        for (j, w_ee, w_ei) in coupler.inputs_of(i) {
            if j == i {
                own.0 += c.frac_ee * w_ee;
                own.1 += c.frac_ei * w_ei;
            } else {
                rest.0 += c.frac_ee * w_ee * e[j];
                rest.1 += c.frac_ei * w_ei * e[j];
            }
        }
        Self {
            drive,
            h_in,
            own_ee: own.0,
            rest_ee: rest.0,
            own_ei: own.1,
            rest_ei: rest.1,
        }
    }
}

/// Points `(E, I)` of a curve in the phase plane.
pub type PhaseCurve = Vec<(f64, f64)>;

/// Iterations of the bisection that finds the I-nullcline (enough for f64).
const BISECTION_STEPS: usize = 200;

/// The nullclines of one cell with its inputs frozen, sampled at `points`
/// values of E in `e_range`: `dE/dt = 0` as `I = atanh((drive − E +
/// c_ee·tanh(u)) / c2)` where that is defined, and `dI/dt = 0` as the root
/// of `I + c4·tanh(I) = h_in + c_ei·tanh(v)` (one root, the left side
/// increases with I since c4 ≥ 0). Returns `(E-nullcline, I-nullcline)` as
/// `(E, I)` points.
pub fn nullclines(
    c: &Coeffs,
    inputs: FrozenInputs,
    e_range: (f64, f64),
    points: usize,
) -> (PhaseCurve, PhaseCurve) {
    let (mut e_null, mut i_null) = (Vec::new(), Vec::new());
    for k in 0..points {
        let e = e_range.0 + (e_range.1 - e_range.0) * k as f64 / (points.max(2) - 1) as f64;
        let u = inputs.own_ee * e + inputs.rest_ee;
        let v = inputs.own_ei * e + inputs.rest_ei;
        if c.c2 != 0.0 {
            let x = (inputs.drive - e + c.c_ee * u.tanh()) / c.c2;
            if x.abs() < 1.0 {
                e_null.push((e, x.atanh()));
            }
        }
        let target = inputs.h_in + c.c_ei * v.tanh();
        // I + c4·tanh(I) lies within c4 of I, so the root is within c4 of target.
        let (mut lo, mut hi) = (target - c.c4 - 1.0, target + c.c4 + 1.0);
        for _ in 0..BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            if mid + c.c4 * mid.tanh() < target {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= f64::EPSILON * mid.abs().max(1.0) {
                break;
            }
        }
        i_null.push((e, 0.5 * (lo + hi)));
    }
    (e_null, i_null)
}

/// The numbers of a measured spread (`summary.json` of `eifield analyze`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    /// The threshold used.
    pub threshold: f64,
    /// The extent of induction in cells (null without stimulated cells).
    pub extent: Option<f64>,
    /// Wave speed in cells per unit of model time (null if fewer than 5 cells qualify).
    pub speed: Option<f64>,
    /// Distance at t = 0 of the fit.
    pub intercept: Option<f64>,
    /// r² of the fit.
    pub r2: Option<f64>,
    /// Cells the speed was fitted to.
    pub cells_used: usize,
    /// Activations in the driven run.
    pub activations_driven: i64,
    /// Activations in the control run.
    pub activations_control: i64,
    /// Cells induced.
    pub cells_induced: usize,
}

impl Summary {
    /// The summary of a measured spread.
    pub fn of(spread: &Spread, threshold: f64) -> Self {
        Self {
            threshold,
            extent: spread.extent,
            speed: spread.fit.map(|f| f.speed),
            intercept: spread.fit.map(|f| f.intercept),
            r2: spread.fit.map(|f| f.r2),
            cells_used: spread.fit.map_or(0, |f| f.cells),
            activations_driven: spread.driven.total(),
            activations_control: spread.control.total(),
            cells_induced: spread.induced.iter().filter(|&&i| i).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of `f(x, y, t)` on a grid at times `t`.
    fn sample(grid: &Grid, t: &[f64], f: impl Fn(f64, f64, f64) -> f64) -> Vec<f64> {
        let mut e = Vec::new();
        for &time in t {
            for k in 0..grid.len() {
                let (r, c) = grid.position(k);
                e.push(f(c as f64, r as f64, time));
            }
        }
        e
    }

    fn times(n: usize, dt: f64) -> Vec<f64> {
        (0..n).map(|k| k as f64 * dt).collect()
    }

    /// A smooth front: rises from −1 to 3 around `x = v·t`.
    fn front(x: f64, v: f64, t: f64) -> f64 {
        1.0 + 2.0 * ((v * t - x) / 1.5).tanh()
    }

    #[test]
    fn a_planar_wave_gives_its_speed() {
        let grid = Grid::new(5, 60, Boundary::Open);
        let v = 2.5;
        let t = times(400, 0.1);
        let e = sample(&grid, &t, |x, _, time| front(x, v, time));
        // Stimulated: the whole left column; the control never fires.
        let stimulated: Vec<usize> = (0..grid.rows).map(|r| grid.index(r, 0)).collect();
        let control = vec![-1.0; e.len()];
        let s = spread(
            &Coupler::nearest(grid),
            &stimulated,
            (&e, &t),
            (&control, &t),
            1.0,
        );
        let fit = s.fit.expect("a speed");
        assert!((fit.speed - v).abs() <= 0.01 * v, "speed {}", fit.speed);
        assert!(fit.r2 > 0.99, "r² {}", fit.r2);
        assert_eq!(s.extent, Some(59.0));
        // Every cell the front crosses is induced; the stimulated column starts
        // at θ (no upward crossing), so it is not.
        for k in 0..grid.len() {
            assert_eq!(s.induced[k], grid.position(k).1 > 0, "cell {k}");
        }
    }

    #[test]
    fn a_ring_wave_gives_its_speed() {
        let grid = Grid::new(41, 41, Boundary::Open);
        let v = 1.8;
        let t = times(300, 0.1);
        let e = sample(&grid, &t, |x, y, time| {
            front(((x - 20.0).powi(2) + (y - 20.0).powi(2)).sqrt(), v, time)
        });
        let centre = grid.index(20, 20);
        let control = vec![-1.0; e.len()];
        let s = spread(
            &Coupler::nearest(grid),
            &[centre],
            (&e, &t),
            (&control, &t),
            1.0,
        );
        let fit = s.fit.expect("a speed");
        assert!((fit.speed - v).abs() <= 0.01 * v, "speed {}", fit.speed);
        assert!(fit.r2 > 0.99, "r² {}", fit.r2);
    }

    #[test]
    fn no_crossings_give_nan_and_no_speed() {
        let grid = Grid::new(4, 4, Boundary::Periodic);
        let t = times(50, 0.1);
        let e = vec![0.5; 50 * 16];
        let s = spread(&Coupler::nearest(grid), &[5], (&e, &t), (&e, &t), 1.0);
        assert!(s.driven.first.iter().all(|f| f.is_nan()));
        assert_eq!(s.driven.total(), 0);
        assert_eq!(s.fit, None);
        assert_eq!(s.extent, Some(0.0));
        // Without stimulated cells there is no extent.
        assert_eq!(
            spread(&Coupler::nearest(grid), &[], (&e, &t), (&e, &t), 1.0).extent,
            None
        );
    }

    #[test]
    fn crossings_are_interpolated_and_only_upward_ones_count() {
        // A linear ramp crosses 1.0 at exactly t = 0.35.
        let t = times(11, 0.1);
        let ramp: Vec<f64> = t.iter().map(|&t| 4.0 * t - 0.4).collect();
        let a = activations(&ramp, &t, 1, 1.0);
        assert!((a.first[0] - 0.35).abs() < 1e-12, "{}", a.first[0]);
        assert_eq!(a.count, vec![1]);
        // Starts above θ, falls below, rises again: one activation, the rise.
        let e = [2.0, 1.5, 0.5, 0.0, 0.8, 1.2, 2.0];
        let a = activations(&e, &times(7, 1.0), 1, 1.0);
        assert_eq!(a.count, vec![1]);
        assert!((a.first[0] - 4.5).abs() < 1e-12, "{}", a.first[0]);
        // Touching θ from below counts (E[n−1] < θ ≤ E[n]).
        let a = activations(&[0.0, 1.0, 0.0, 1.0], &times(4, 1.0), 1, 1.0);
        assert_eq!(a.count, vec![2]);
    }

    #[test]
    fn induction_follows_paths_of_higher_counts_from_the_stimulus() {
        let grid = Grid::new(1, 7, Boundary::Open);
        let s = 0;
        // Cells 1, 2 fire more; cell 3 does not; cell 5 fires more but is cut off.
        let driven = [1, 3, 2, 0, 0, 4, 0];
        let control = [1, 0, 0, 0, 0, 1, 0];
        let induced_by = |coupler: &Coupler| induced(coupler, &driven, &control, &[s]);
        let nearest = Coupler::nearest(grid);
        assert_eq!(
            induced_by(&nearest),
            [false, true, true, false, false, false, false]
        );
        // A disk of radius 2 joins cells two apart: cell 5 is reached from 2
        // only through 3 or 4, which are not higher, so it stays cut off; a
        // radius-3 disk reaches it from 2 directly.
        let disk = |radius| {
            let kernel = crate::coupling::Kernel::Disk {
                radius,
                profile: crate::coupling::Profile::Flat,
            };
            crate::test_data::coupler(grid, &kernel, None)
        };
        assert_eq!(
            induced_by(&disk(2.0)),
            [false, true, true, false, false, false, false]
        );
        assert_eq!(
            induced_by(&disk(3.0)),
            [false, true, true, false, false, true, false]
        );
        // Periodic distances wrap.
        let ring = Grid::new(1, 10, Boundary::Periodic);
        assert_eq!(distance(&ring, 0, 9), 1.0);
        assert_eq!(distance(&Grid::new(1, 10, Boundary::Open), 0, 9), 9.0);
    }

    #[test]
    fn nullclines_satisfy_the_steady_state_equations() {
        let scene = crate::FieldScene::default();
        let mut c = Coeffs::from_scene(&scene);
        for (c4, nsum) in [(0.0, 0.0), (2.5, 0.0), (1.0, 1.7)] {
            c.c4 = c4;
            let inputs = FrozenInputs {
                drive: -6.35,
                h_in: -4.0,
                own_ee: c.self_weight,
                rest_ee: c.frac_ee * nsum,
                own_ei: c.self_weight,
                rest_ei: c.frac_ei * nsum,
            };
            let (e_null, i_null) = nullclines(&c, inputs, (-3.0, 5.0), 400);
            assert!(e_null.len() > 50 && i_null.len() == 400);
            for &(e, i) in &e_null {
                let u = c.self_weight * e + c.frac_ee * nsum;
                let de = inputs.drive - e - c.c2 * i.tanh() + c.c_ee * u.tanh();
                assert!(de.abs() < 1e-9, "dE/dt = {de} at ({e}, {i})");
            }
            for &(e, i) in &i_null {
                let v = c.self_weight * e + c.frac_ei * nsum;
                let di = inputs.h_in - i - c.c4 * i.tanh() + c.c_ei * v.tanh();
                assert!(di.abs() < 1e-9, "dI/dt = {di} at ({e}, {i})");
            }
        }
    }

    #[test]
    fn lines_of_cells_follow_bresenham() {
        assert_eq!(line_cells((0, 0), (0, 3)), [(0, 0), (0, 1), (0, 2), (0, 3)]);
        assert_eq!(line_cells((2, 2), (0, 0)), [(2, 2), (1, 1), (0, 0)]);
        assert_eq!(line_cells((0, 0), (1, 3)), [(0, 0), (0, 1), (1, 2), (1, 3)]);
        assert_eq!(line_cells((4, 4), (4, 4)), [(4, 4)]);
    }
}
