//! Fixed-step integrators (RK4, Heun, forward Euler) over the whole lattice.
//!
//! Each stage is one sweep over the rows: the right-hand side of a chunk of
//! cells is computed into stack buffers and immediately folded into the
//! accumulator and the next stage's input, so the lattice is read and written
//! once per stage. Row blocks run in parallel on a rayon pool when one is
//! given; the per-cell arithmetic does not depend on the split, so the results
//! are bit-identical whatever the thread count. Nothing allocates per step.

use std::ops::Range;

use crate::grid::Grid;
use crate::rhs::{CHUNK, ChunkIn, ChunkKernel, Coeffs, SimdLevel, neighbour_sums};

/// The integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Classic fourth-order Runge–Kutta.
    Rk4,
    /// Heun's second-order method.
    Heun,
    /// Forward Euler.
    Euler,
}

impl Method {
    /// The convergence order of the method.
    pub fn order(self) -> u32 {
        match self {
            Self::Rk4 => 4,
            Self::Heun => 2,
            Self::Euler => 1,
        }
    }
}

/// Cells one parallel task handles at most (bigger lattices make more tasks).
pub const MIN_CELLS_PER_TASK: usize = 8192;
/// Cells one parallel task handles at least, however many threads there are.
pub const SMALLEST_TASK: usize = 1024;
/// Tasks per thread aimed for, so that work stealing can even out the load.
const TASKS_PER_THREAD: usize = 4;

/// Rows per parallel task for a `rows × cols` lattice on `threads` threads:
/// about [`TASKS_PER_THREAD`] tasks per thread, each of [`SMALLEST_TASK`] to
/// [`MIN_CELLS_PER_TASK`] cells. The split never changes a result: every cell
/// is computed the same way whichever task holds it.
pub fn rows_per_task(rows: usize, cols: usize, threads: usize) -> usize {
    let cells = rows * cols;
    let target =
        (cells / (threads.max(1) * TASKS_PER_THREAD)).clamp(SMALLEST_TASK, MIN_CELLS_PER_TASK);
    (target / cols.max(1)).max(1)
}

/// The read-only inputs shared by the stages of one step.
struct Stage<'a> {
    grid: &'a Grid,
    coeffs: &'a Coeffs,
    kernel: ChunkKernel,
    drive: &'a [f64],
    h_in: &'a [f64],
    /// Rows per parallel task; `None` runs every row on the calling thread.
    rows_per_task: Option<usize>,
}

impl Stage<'_> {
    /// Sweeps `rows` of the stage input `(e, i)`, calling
    /// `op(global_index, local_index, ke, ki, outs)` for each chunk of cells.
    /// `outs` cover exactly `rows`.
    fn sweep<const N: usize, F>(
        &self,
        e: &[f64],
        i: &[f64],
        rows: Range<usize>,
        mut outs: [&mut [f64]; N],
        op: &F,
    ) where
        F: Fn(usize, usize, &[f64], &[f64], &mut [&mut [f64]; N]) + Sync,
    {
        let cols = self.grid.cols;
        if let Some(rows_per_task) = self.rows_per_task
            && rows.len() > rows_per_task
        {
            let mid = rows.start + rows.len() / 2;
            let split = (mid - rows.start) * cols;
            let mut halves = outs.map(|s| {
                let (a, b) = s.split_at_mut(split);
                (Some(a), Some(b))
            });
            let lower: [&mut [f64]; N] =
                std::array::from_fn(|k| halves[k].0.take().expect("split"));
            let upper: [&mut [f64]; N] =
                std::array::from_fn(|k| halves[k].1.take().expect("split"));
            rayon::join(
                || self.sweep(e, i, rows.start..mid, lower, op),
                || self.sweep(e, i, mid..rows.end, upper, op),
            );
            return;
        }
        let (mut nsum, mut ke, mut ki) = ([0.0; CHUNK], [0.0; CHUNK], [0.0; CHUNK]);
        let base = rows.start * cols;
        let end = rows.end * cols;
        let row_of = |rr: usize| &e[rr * cols..(rr + 1) * cols];
        // Chunks run over the flattened cell index, so that small lattices fill
        // whole SIMD vectors; neighbour sums are taken one row segment at a time.
        let mut g0 = base;
        while g0 < end {
            let len = CHUNK.min(end - g0);
            let mut g = g0;
            while g < g0 + len {
                let (r, c0) = (g / cols, g % cols);
                let seg = (cols - c0).min(g0 + len - g);
                let up = self.grid.row_above(r).map(row_of);
                let down = self.grid.row_below(r).map(row_of);
                neighbour_sums(
                    self.grid.boundary,
                    up,
                    down,
                    row_of(r),
                    c0,
                    &mut nsum[g - g0..g - g0 + seg],
                );
                g += seg;
            }
            let span = g0..g0 + len;
            (self.kernel)(
                self.coeffs,
                &ChunkIn {
                    nsum: &nsum[..len],
                    e: &e[span.clone()],
                    i: &i[span.clone()],
                    drive: &self.drive[span.clone()],
                    h_in: &self.h_in[span],
                },
                &mut ke[..len],
                &mut ki[..len],
            );
            op(g0, g0 - base, &ke[..len], &ki[..len], &mut outs);
            g0 += len;
        }
    }

    /// A first stage: `acc = k(y)`, `out = y + c·k`.
    fn first(
        &self,
        y: (&[f64], &[f64]),
        acc: (&mut [f64], &mut [f64]),
        out: (&mut [f64], &mut [f64]),
        c: f64,
    ) {
        let (ye, yi) = y;
        self.sweep(
            ye,
            yi,
            0..self.grid.rows,
            [acc.0, acc.1, out.0, out.1],
            &|g, l, ke, ki, o: &mut [&mut [f64]; 4]| {
                let len = ke.len();
                o[0][l..l + len].copy_from_slice(ke);
                o[1][l..l + len].copy_from_slice(ki);
                axpy_into(&mut o[2][l..l + len], &ye[g..g + len], c, ke);
                axpy_into(&mut o[3][l..l + len], &yi[g..g + len], c, ki);
            },
        );
    }

    /// A middle RK4 stage: `acc += 2·k(s)`, `out = y + c·k`.
    fn middle(
        &self,
        s: (&[f64], &[f64]),
        y: (&[f64], &[f64]),
        acc: (&mut [f64], &mut [f64]),
        out: (&mut [f64], &mut [f64]),
        c: f64,
    ) {
        let (ye, yi) = y;
        self.sweep(
            s.0,
            s.1,
            0..self.grid.rows,
            [acc.0, acc.1, out.0, out.1],
            &|g, l, ke, ki, o: &mut [&mut [f64]; 4]| {
                let len = ke.len();
                for (a, &k) in o[0][l..l + len].iter_mut().zip(ke) {
                    *a += 2.0 * k;
                }
                for (a, &k) in o[1][l..l + len].iter_mut().zip(ki) {
                    *a += 2.0 * k;
                }
                axpy_into(&mut o[2][l..l + len], &ye[g..g + len], c, ke);
                axpy_into(&mut o[3][l..l + len], &yi[g..g + len], c, ki);
            },
        );
    }

    /// A last stage: `y += b·(acc + k(s))`.
    fn last(
        &self,
        s: (&[f64], &[f64]),
        acc: (&[f64], &[f64]),
        y: (&mut [f64], &mut [f64]),
        b: f64,
    ) {
        let (ae, ai) = acc;
        self.sweep(
            s.0,
            s.1,
            0..self.grid.rows,
            [y.0, y.1],
            &|g, l, ke, ki, o: &mut [&mut [f64]; 2]| {
                let len = ke.len();
                for ((y, &a), &k) in o[0][l..l + len].iter_mut().zip(&ae[g..g + len]).zip(ke) {
                    *y += b * (a + k);
                }
                for ((y, &a), &k) in o[1][l..l + len].iter_mut().zip(&ai[g..g + len]).zip(ki) {
                    *y += b * (a + k);
                }
            },
        );
    }

    /// A forward-Euler stage: `out = y + h·k(y)`.
    fn euler(&self, y: (&[f64], &[f64]), out: (&mut [f64], &mut [f64]), h: f64) {
        let (ye, yi) = y;
        self.sweep(
            ye,
            yi,
            0..self.grid.rows,
            [out.0, out.1],
            &|g, l, ke, ki, o: &mut [&mut [f64]; 2]| {
                let len = ke.len();
                axpy_into(&mut o[0][l..l + len], &ye[g..g + len], h, ke);
                axpy_into(&mut o[1][l..l + len], &yi[g..g + len], h, ki);
            },
        );
    }
}

/// `out[l..] = y[g..] + c·k`.
#[inline(always)]
fn axpy_into(out: &mut [f64], y: &[f64], c: f64, k: &[f64]) {
    for ((o, &y), &k) in out.iter_mut().zip(y).zip(k) {
        *o = y + c * k;
    }
}

/// Steps a lattice with a fixed-step method, owning the scratch buffers.
pub struct Stepper {
    method: Method,
    kernel: ChunkKernel,
    simd: SimdLevel,
    pool: Option<rayon::ThreadPool>,
    threads: usize,
    acc_e: Vec<f64>,
    acc_i: Vec<f64>,
    sa_e: Vec<f64>,
    sa_i: Vec<f64>,
    sb_e: Vec<f64>,
    sb_i: Vec<f64>,
}

impl Stepper {
    /// A stepper for `cells` cells on `threads` threads (1 = no pool; lattices
    /// under `2 · MIN_CELLS_PER_TASK` cells always run on the calling thread),
    /// using the best SIMD kernel this CPU supports.
    pub fn new(method: Method, cells: usize, threads: usize) -> Self {
        Self::with_simd(method, cells, threads, SimdLevel::detect())
    }

    /// As [`Stepper::new`], with an explicit SIMD level.
    pub fn with_simd(method: Method, cells: usize, threads: usize, simd: SimdLevel) -> Self {
        // Small lattices gain nothing from a pool: one task would hold every row.
        let threads = if cells >= 2 * MIN_CELLS_PER_TASK {
            threads.max(1)
        } else {
            1
        };
        let pool = (threads > 1).then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|k| format!("eifield-step-{k}"))
                .build()
                .expect("a rayon pool can be built")
        });
        let stage_buffers = match method {
            Method::Rk4 => 3,
            Method::Heun => 2,
            Method::Euler => 1,
        };
        let buf = |needed: bool| vec![0.0; if needed { cells } else { 0 }];
        Self {
            method,
            kernel: simd.kernel(),
            simd,
            pool,
            threads,
            acc_e: buf(stage_buffers >= 2),
            acc_i: buf(stage_buffers >= 2),
            sa_e: buf(true),
            sa_i: buf(true),
            sb_e: buf(stage_buffers >= 3),
            sb_i: buf(stage_buffers >= 3),
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Worker threads used (1 for small lattices, whatever was asked).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The SIMD level of the kernel.
    pub fn simd(&self) -> SimdLevel {
        self.simd
    }

    /// Bytes of scratch memory per cell.
    pub fn scratch_bytes_per_cell(&self) -> usize {
        let per = |v: &Vec<f64>| v.capacity();
        let total = per(&self.acc_e)
            + per(&self.acc_i)
            + per(&self.sa_e)
            + per(&self.sa_i)
            + per(&self.sb_e)
            + per(&self.sb_i);
        total * std::mem::size_of::<f64>() / self.sa_e.len().max(1)
    }

    /// Advances `(e, i)` by one step `h` with the drives held constant.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        grid: &Grid,
        coeffs: &Coeffs,
        drive: &[f64],
        h_in: &[f64],
        e: &mut [f64],
        i: &mut [f64],
        h: f64,
    ) {
        let n = grid.len();
        assert!(e.len() == n && i.len() == n && drive.len() == n && h_in.len() == n);
        assert_eq!(
            self.sa_e.len(),
            n,
            "stepper was built for another lattice size"
        );
        let stage = Stage {
            grid,
            coeffs,
            kernel: self.kernel,
            drive,
            h_in,
            rows_per_task: self
                .pool
                .is_some()
                .then(|| rows_per_task(grid.rows, grid.cols, self.threads)),
        };
        let method = self.method;
        let Self {
            acc_e,
            acc_i,
            sa_e,
            sa_i,
            sb_e,
            sb_i,
            pool,
            ..
        } = self;
        let mut body = move || match method {
            Method::Rk4 => {
                let half = 0.5 * h;
                stage.first((e, i), (acc_e, acc_i), (sa_e, sa_i), half);
                stage.middle((sa_e, sa_i), (e, i), (acc_e, acc_i), (sb_e, sb_i), half);
                stage.middle((sb_e, sb_i), (e, i), (acc_e, acc_i), (sa_e, sa_i), h);
                stage.last((sa_e, sa_i), (acc_e, acc_i), (e, i), h / 6.0);
            }
            Method::Heun => {
                stage.first((e, i), (acc_e, acc_i), (sa_e, sa_i), h);
                stage.last((sa_e, sa_i), (acc_e, acc_i), (e, i), 0.5 * h);
            }
            Method::Euler => {
                stage.euler((e, i), (sa_e, sa_i), h);
                e.copy_from_slice(sa_e);
                i.copy_from_slice(sa_i);
            }
        };
        match pool {
            Some(pool) => pool.install(body),
            None => body(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_grow_with_the_lattice_and_shrink_with_the_threads() {
        // Two threads: 8192-cell tasks (32 rows of 256).
        assert_eq!(rows_per_task(256, 256, 2), 32);
        // Sixteen threads on 256²: 1024-cell tasks, 64 of them.
        assert_eq!(rows_per_task(256, 256, 16), 4);
        // 1024² never goes past 8192 cells per task.
        assert_eq!(rows_per_task(1024, 1024, 16), 8);
        // Rows wider than a task are one row each.
        assert_eq!(rows_per_task(10, 100_000, 4), 1);
    }
}
