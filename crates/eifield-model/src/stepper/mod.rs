//! Fixed-step integrators (RK4, Heun, forward Euler) over the whole lattice.
//!
//! Two schedules evaluate exactly the same per-cell arithmetic, so they give
//! the same bits:
//! - **staged** (small lattices, one thread): each stage is one sweep over the
//!   lattice, in chunks of the flattened cell index so that even a 7 × 7
//!   lattice fills whole SIMD vectors, into full-size scratch buffers that stay
//!   in cache at that size;
//! - **pipelined** (large lattices): stage `s` of row `r` needs stage `s − 1`
//!   of rows `r − 1 ..= r + 1` only, so one pass over the rows computes stage 1
//!   of row `j`, stage 2 of row `j − 1`, and so on. The stage inputs live in
//!   rings of a few rows that stay in cache, and the lattice is read and
//!   written once per step instead of once per stage. A stencil that reaches
//!   `R` rows lags each stage `R` rows behind the one before it.
//!   General coupling matrices feed every cell from anywhere, so they always
//!   run staged. Row blocks run in
//!   parallel on a rayon pool; each block recomputes the few rows of the early
//!   stages it needs beyond its edges (its halo) and writes the new state into
//!   a second buffer that is swapped in, so no block reads what another writes.
//!
//! The split into blocks never changes a result, so results are bit-identical
//! whatever the thread count. Nothing allocates per step.

pub(crate) mod pipeline;
pub(crate) mod stage;

use std::sync::Arc;

use rayon::prelude::*;

use crate::coupling::{Coupler, stencil_scratch};
use crate::per_cell::Cells;
use crate::real::Real;
use crate::rhs::Coeffs;
use crate::simd::{LevelCode, SimdLevel};
use pipeline::Rings;
use stage::{Role, Sweep};

/// The integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// Right-hand-side evaluations per step.
    pub fn stages(self) -> usize {
        match self {
            Self::Rk4 => 4,
            Self::Heun => 2,
            Self::Euler => 1,
        }
    }
}

/// How a step walks the lattice; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// One sweep per stage over full-size scratch buffers, on one thread.
    Staged,
    /// Stages pipelined over rows, in parallel row blocks.
    Pipelined,
}

impl Schedule {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Pipelined => "pipelined",
        }
    }

    /// The schedule for a lattice of `cells` cells: staged below
    /// [`PIPELINE_MIN_CELLS`], where everything fits in cache anyway.
    pub fn for_cells(cells: usize) -> Self {
        if cells < PIPELINE_MIN_CELLS {
            Self::Staged
        } else {
            Self::Pipelined
        }
    }
}

/// Lattices of at least this many cells are pipelined (and may use threads).
pub const PIPELINE_MIN_CELLS: usize = 16_384;
/// Row blocks per thread aimed for, so that work stealing can even out the load.
const BLOCKS_PER_THREAD: usize = 2;
/// Rows a block has at least per row of stencil reach (unless a thread
/// would go idle): each block recomputes `stages · (stages − 1) · reach`
/// row stages of halo, 12 for RK4 with the 4-neighbour stencil.
const MIN_BLOCK_ROWS: usize = 32;
/// The most stages a method has.
const MAX_STAGES: usize = 4;

/// Rows per parallel block for a lattice of `rows` rows on `threads` threads:
/// one block on one thread; else about [`BLOCKS_PER_THREAD`] blocks per thread
/// of at least [`MIN_BLOCK_ROWS`] rows, but never fewer blocks than threads
/// while each block keeps a row. The split never changes a result.
pub fn rows_per_block(rows: usize, threads: usize, reach: usize) -> usize {
    if threads <= 1 {
        return rows.max(1);
    }
    (rows / (threads * BLOCKS_PER_THREAD))
        .max(MIN_BLOCK_ROWS * reach.max(1))
        .min(rows.div_ceil(threads))
        .max(1)
}

/// The worker threads of a [`Stepper`] (none when it runs on the caller's).
///
/// Each [`Stepper::step`] called from outside hands its work to the threads
/// as one queued job (and the queue allocates a block of slots now and then);
/// a loop of steps inside [`Workers::run`] is queued once, and each step then
/// splits its work among the threads directly.
#[derive(Clone)]
pub struct Workers(Option<Arc<rayon::ThreadPool>>);

impl Workers {
    /// Whether this thread is one of a pool's workers (inside
    /// [`Workers::run`] of an engine with several threads): then a pass
    /// over the lattice may be split among them; outside, it runs here, so
    /// that a one-thread engine uses one thread (and allocates nothing).
    pub fn here() -> bool {
        rayon::current_thread_index().is_some()
    }

    /// Runs `f` on one of the worker threads (or here, without any).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// Steps a lattice with a fixed-step method in the float type `T`, owning
/// the scratch buffers.
pub struct Stepper<T: Real = f64> {
    method: Method,
    schedule: Schedule,
    code: LevelCode<T>,
    simd: SimdLevel,
    pool: Workers,
    threads: usize,
    /// Worker threads asked for (kept when a coupling change rebuilds it).
    threads_asked: usize,
    /// Rows per parallel block (pipelined schedule).
    block_rows: usize,
    /// One set of rings per block (pipelined schedule).
    rings: Vec<Rings<T>>,
    /// The stencil sums' rows (staged schedule).
    scratch: Vec<T>,
    /// The weighted sum of the stages (staged schedule).
    acc_e: Vec<T>,
    acc_i: Vec<T>,
    /// Stage inputs, alternating (staged schedule); the new state is written
    /// into one of them (staged) or into the first (pipelined) and swapped in.
    x_e: [Vec<T>; 2],
    x_i: [Vec<T>; 2],
    /// The running compensation of each cell's E and I updates (a
    /// compensated type only: see [`Real::COMPENSATED`]); zero after a
    /// rebuild.
    comp_e: Vec<T>,
    comp_i: Vec<T>,
}

impl<T: Real> Stepper<T> {
    /// A stepper for a lattice and its coupling on `threads` threads, with
    /// the schedule for its size and the best SIMD kernel this CPU supports.
    pub fn new(method: Method, coupler: &Coupler, threads: usize) -> Self {
        Self::with_simd(method, coupler, threads, SimdLevel::detect())
    }

    /// As [`Stepper::new`], with an explicit SIMD level.
    pub fn with_simd(method: Method, coupler: &Coupler, threads: usize, simd: SimdLevel) -> Self {
        let schedule = if coupler.is_matrix() {
            Schedule::Staged
        } else {
            Schedule::for_cells(coupler.grid().len())
        };
        Self::with_schedule(method, coupler, threads, simd, schedule)
    }

    /// As [`Stepper::with_simd`], with an explicit schedule (general
    /// matrices always run staged). The staged schedule always runs on the
    /// calling thread.
    pub fn with_schedule(
        method: Method,
        coupler: &Coupler,
        threads: usize,
        simd: SimdLevel,
        schedule: Schedule,
    ) -> Self {
        let grid = coupler.grid();
        let schedule = if coupler.is_matrix() {
            Schedule::Staged
        } else {
            schedule
        };
        let reach = coupler.reach();
        let cells = grid.len();
        let threads_asked = threads;
        let threads = match schedule {
            Schedule::Staged => 1,
            Schedule::Pipelined => threads.max(1).min(grid.rows.max(1)),
        };
        let pool = Workers((threads > 1).then(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|k| format!("eifield-step-{k}"))
                    .build()
                    .expect("a rayon pool can be built"),
            )
        }));
        // Every worker thread starts now (and sets up what it keeps for
        // itself), so that steps later allocate nothing whichever thread
        // first takes part in one.
        if let Some(pool) = &pool.0 {
            pool.broadcast(|_| ());
        }
        let block_rows = rows_per_block(grid.rows, threads, reach);
        let buf = |len: usize| vec![T::ZERO; len];
        let blocks = grid.rows.div_ceil(block_rows).max(1);
        // A compensation per cell; without them, one unused value per block
        // of the pipelined schedule, which hands each block its own piece.
        let comp = match (T::COMPENSATED, schedule) {
            (true, _) => cells,
            (false, Schedule::Staged) => 0,
            (false, Schedule::Pipelined) => blocks,
        };
        let (rings, acc, x0, x1, scratch) = match schedule {
            Schedule::Staged => {
                let several = method.stages() > 1;
                let acc = if several { cells } else { 0 };
                let x1 = if several { cells } else { 0 };
                (Vec::new(), acc, cells, x1, stencil_scratch(reach))
            }
            Schedule::Pipelined => {
                let rings = (0..blocks).map(|_| Rings::new(grid.cols, reach)).collect();
                (rings, 0, cells, 0, 0)
            }
        };
        Self {
            method,
            schedule,
            code: LevelCode::of(simd),
            simd,
            pool,
            threads,
            threads_asked,
            block_rows,
            rings,
            scratch: buf(scratch),
            acc_e: buf(acc),
            acc_i: buf(acc),
            x_e: [buf(x0), buf(x1)],
            x_i: [buf(x0), buf(x1)],
            comp_e: buf(comp),
            comp_i: buf(comp),
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Worker threads used (1 for the staged schedule, whatever was asked).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Worker threads asked for when it was built.
    pub fn threads_asked(&self) -> usize {
        self.threads_asked
    }

    /// A handle on the worker threads, for running a loop of steps on them.
    pub fn workers(&self) -> Workers {
        self.pool.clone()
    }

    /// The SIMD level of the kernel.
    pub fn simd(&self) -> SimdLevel {
        self.simd
    }

    /// Bytes of scratch memory per cell of a lattice of `cells` cells.
    pub fn scratch_bytes_per_cell(&self, cells: usize) -> usize {
        let vecs = [
            &self.acc_e,
            &self.acc_i,
            &self.x_e[0],
            &self.x_e[1],
            &self.scratch,
        ]
        .into_iter()
        .chain([&self.x_i[0], &self.x_i[1], &self.comp_e, &self.comp_i])
        .map(|v| v.capacity())
        .sum::<usize>();
        let rings = self.rings.iter().map(Rings::len).sum::<usize>();
        (vecs + rings) * std::mem::size_of::<T>() / cells.max(1)
    }

    /// Advances `(e, i)` by one step `h` with the drives held constant. The
    /// new state is swapped into `e` and `i`, whose old buffers become scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn step<'a>(
        &mut self,
        coupler: &Coupler,
        coeffs: &Coeffs,
        drive: impl Into<Cells<'a, T>>,
        h_in: impl Into<Cells<'a, T>>,
        e: &mut Vec<T>,
        i: &mut Vec<T>,
        h: f64,
    ) {
        let drive: Cells<'a, T> = drive.into();
        let h_in: Cells<'a, T> = h_in.into();
        let grid = coupler.grid();
        let n = grid.len();
        assert!(e.len() == n && i.len() == n && drive.len() == n && h_in.len() == n);
        assert_eq!(
            self.x_e[0].len(),
            n,
            "stepper was built for another lattice size"
        );
        if n == 0 {
            return;
        }
        let sweep = Sweep {
            coupler,
            coeffs,
            drive,
            h_in,
            y_e: e,
            y_i: i,
            sums: self.code.sums,
            row_sums: self.code.row_sums,
        };
        let method = self.method;
        let stages = method.stages();
        let result = match self.schedule {
            Schedule::Staged => {
                let [xa_e, xb_e] = &mut self.x_e;
                let [xa_i, xb_i] = &mut self.x_i;
                let (acc_e, acc_i) = (&mut self.acc_e[..], &mut self.acc_i[..]);
                let scratch = &mut self.scratch[..];
                let (comp_e, comp_i) = (&mut self.comp_e[..], &mut self.comp_i[..]);
                for s in 0..stages {
                    let role = Role::of(method, s, h);
                    // Stage s reads buffer (s − 1) mod 2 and writes buffer s mod 2.
                    let (x, out) = match (s, s % 2) {
                        (0, _) => ((&e[..], &i[..]), (&mut xa_e[..], &mut xa_i[..])),
                        (_, 0) => ((&xb_e[..], &xb_i[..]), (&mut xa_e[..], &mut xa_i[..])),
                        (_, _) => ((&xa_e[..], &xa_i[..]), (&mut xb_e[..], &mut xb_i[..])),
                    };
                    let acc = (&mut *acc_e, &mut *acc_i);
                    let comp = (&mut *comp_e, &mut *comp_i);
                    (self.code.staged)(&sweep, role, x, acc, out, comp, &mut *scratch);
                }
                (stages - 1) % 2
            }
            Schedule::Pipelined => {
                let rows = grid.rows;
                let block_rows = self.block_rows;
                let block = block_rows * grid.cols;
                let (out_e, out_i) = (&mut self.x_e[0], &mut self.x_i[0]);
                let rings = &mut self.rings;
                let code = self.code;
                // Each block gets its rows of the output and of the
                // compensations (none in a type without them).
                let comp_block = if T::COMPENSATED { block } else { 1 };
                let (comp_e, comp_i) = (&mut self.comp_e, &mut self.comp_i);
                let run_block = |k: usize,
                                 out: (&mut [T], &mut [T]),
                                 comp: (&mut [T], &mut [T]),
                                 rings: &mut Rings<T>| {
                    let start = k * block_rows;
                    let end = (start + block_rows).min(rows);
                    let comp = if T::COMPENSATED {
                        comp
                    } else {
                        (&mut [][..], &mut [][..])
                    };
                    (code.pipelined)(&sweep, method, h, start..end, out, comp, rings);
                };
                match &self.pool.0 {
                    Some(pool) => pool.install(|| {
                        out_e
                            .par_chunks_mut(block)
                            .zip(out_i.par_chunks_mut(block))
                            .zip(comp_e.par_chunks_mut(comp_block))
                            .zip(comp_i.par_chunks_mut(comp_block))
                            .zip(rings.par_iter_mut())
                            .enumerate()
                            .for_each(|(k, ((((oe, oi), ce), ci), rings))| {
                                run_block(k, (oe, oi), (ce, ci), rings)
                            });
                    }),
                    None => out_e
                        .chunks_mut(block)
                        .zip(out_i.chunks_mut(block))
                        .zip(comp_e.chunks_mut(comp_block))
                        .zip(comp_i.chunks_mut(comp_block))
                        .zip(rings.iter_mut())
                        .enumerate()
                        .for_each(|(k, ((((oe, oi), ce), ci), rings))| {
                            run_block(k, (oe, oi), (ce, ci), rings)
                        }),
                }
                0
            }
        };
        std::mem::swap(e, &mut self.x_e[result]);
        std::mem::swap(i, &mut self.x_i[result]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::{Kernel, Profile};
    use crate::grid::{Boundary, Grid};
    use crate::test_data::{coupler, pseudo_random};

    #[test]
    fn blocks_grow_with_the_lattice_and_never_idle_a_thread() {
        // Two threads on 256 rows: four blocks of 64 rows.
        assert_eq!(rows_per_block(256, 2, 1), 64);
        // 1024 rows on two threads: four blocks of 256.
        assert_eq!(rows_per_block(1024, 2, 1), 256);
        // Sixteen threads on 256 rows: one block of 16 rows each, not 32.
        assert_eq!(rows_per_block(256, 16, 1), 16);
        // One thread: one block.
        assert_eq!(rows_per_block(100, 1, 1), 100);
        // Fewer rows than threads: one row per block.
        assert_eq!(rows_per_block(3, 8, 1), 1);
        // A wider stencil recomputes more halo: larger blocks.
        assert_eq!(rows_per_block(1024, 2, 3), 256);
        assert_eq!(rows_per_block(256, 2, 3), 96);
    }

    /// One step written out from the method's definition over whole-lattice
    /// right-hand sides, in the same floating-point order as the stepper.
    #[allow(clippy::too_many_arguments)]
    fn step_by_definition<T: Real>(
        method: Method,
        coupler: &Coupler,
        coeffs: &Coeffs,
        simd: SimdLevel,
        drive: &[T],
        h_in: &[T],
        y: (&[T], &[T]),
        comp: &mut (Vec<T>, Vec<T>),
        h: f64,
    ) -> (Vec<T>, Vec<T>) {
        let n = coupler.grid().len();
        // `y + d`, compensated (Kahan) in a type that asks for it.
        let add = |y: T, d: T, c: &mut T| {
            if T::COMPENSATED {
                let d = d - *c;
                let sum = y + d;
                *c = (sum - y) - d;
                sum
            } else {
                y + d
            }
        };
        let f = |x: (&[T], &[T])| {
            let (mut ke, mut ki) = (vec![T::ZERO; n], vec![T::ZERO; n]);
            crate::rhs::rhs(
                coupler, coeffs, simd, x.0, x.1, drive, h_in, &mut ke, &mut ki,
            );
            (ke, ki)
        };
        let axpy = |y: &[T], a: f64, k: &[T]| -> Vec<T> {
            let a = T::of(a);
            y.iter().zip(k).map(|(&y, &k)| y + a * k).collect()
        };
        let (ye, yi) = y;
        match method {
            Method::Euler => {
                let k = f(y);
                let w = T::of(h);
                let (ce, ci) = (&mut comp.0, &mut comp.1);
                (
                    (0..n).map(|c| add(ye[c], w * k.0[c], &mut ce[c])).collect(),
                    (0..n).map(|c| add(yi[c], w * k.1[c], &mut ci[c])).collect(),
                )
            }
            Method::Heun => {
                let k1 = f(y);
                let x1 = (axpy(ye, h, &k1.0), axpy(yi, h, &k1.1));
                let k2 = f((&x1.0, &x1.1));
                let w = T::of(0.5 * h);
                let last = |y: &[T], a: &[T], k: &[T], comp: &mut Vec<T>| -> Vec<T> {
                    (0..n)
                        .map(|c| add(y[c], w * (a[c] + k[c]), &mut comp[c]))
                        .collect()
                };
                (
                    last(ye, &k1.0, &k2.0, &mut comp.0),
                    last(yi, &k1.1, &k2.1, &mut comp.1),
                )
            }
            Method::Rk4 => {
                let k1 = f(y);
                let x1 = (axpy(ye, 0.5 * h, &k1.0), axpy(yi, 0.5 * h, &k1.1));
                let k2 = f((&x1.0, &x1.1));
                let x2 = (axpy(ye, 0.5 * h, &k2.0), axpy(yi, 0.5 * h, &k2.1));
                let k3 = f((&x2.0, &x2.1));
                let x3 = (axpy(ye, h, &k3.0), axpy(yi, h, &k3.1));
                let k4 = f((&x3.0, &x3.1));
                let (w, two) = (T::of(h / 6.0), T::of(2.0));
                let last = |y: &[T], k: [&[T]; 4], comp: &mut Vec<T>| {
                    (0..n)
                        .map(|c| {
                            let mut acc = k[0][c];
                            acc += two * k[1][c];
                            acc += two * k[2][c];
                            add(y[c], w * (acc + k[3][c]), &mut comp[c])
                        })
                        .collect::<Vec<T>>()
                };
                (
                    last(ye, [&k1.0, &k2.0, &k3.0, &k4.0], &mut comp.0),
                    last(yi, [&k1.1, &k2.1, &k3.1, &k4.1], &mut comp.1),
                )
            }
        }
    }

    #[test]
    fn both_schedules_give_the_bits_of_the_definition_on_many_shapes() {
        schedules_give_the_bits_of_the_definition::<f64>();
    }

    #[test]
    fn both_schedules_give_the_bits_of_the_definition_in_single_precision() {
        schedules_give_the_bits_of_the_definition::<f32>();
    }

    fn schedules_give_the_bits_of_the_definition<T: Real>() {
        let coeffs = Coeffs {
            frac_ei: 0.13,
            ..Coeffs::from_scene(&crate::FieldScene::default())
        };
        let h = 0.01;
        let disk = |radius, profile| Kernel::Disk { radius, profile };
        let kernels = [
            (Kernel::Nearest, None),
            (Kernel::Moore { diagonal: 0.5 }, None),
            (disk(2.5, Profile::Gaussian { sigma: 1.2 }), None),
            (
                disk(
                    3.0,
                    Profile::MexicanHat {
                        sigma_center: 1.0,
                        sigma_surround: 2.5,
                        surround: 0.2,
                    },
                ),
                Some(Kernel::Nearest),
            ),
        ];
        for (kernel, kernel_ei) in kernels {
            for boundary in [Boundary::Open, Boundary::Periodic] {
                for (rows, cols) in [
                    (1, 1),
                    (1, 5),
                    (2, 3),
                    (3, 2),
                    (4, 4),
                    (7, 7),
                    (9, 300),
                    (70, 17),
                    (0, 5),
                    (5, 0),
                ] {
                    let grid = Grid::new(rows, cols, boundary);
                    let coupler = coupler(grid, &kernel, kernel_ei.as_ref());
                    let n = grid.len();
                    let rounded = |v: Vec<f64>| v.into_iter().map(T::of).collect::<Vec<T>>();
                    let drive = rounded(pseudo_random(n, 1, 8.0));
                    let h_in = rounded(pseudo_random(n, 2, 8.0));
                    let y0 = (
                        rounded(pseudo_random(n, 3, 4.0)),
                        rounded(pseudo_random(n, 4, 4.0)),
                    );
                    for (method, simd) in [Method::Rk4, Method::Heun, Method::Euler]
                        .into_iter()
                        .flat_map(|m| SimdLevel::available().into_iter().map(move |l| (m, l)))
                    {
                        // Two steps, so that the swapped-in buffers are used too.
                        let mut want = y0.clone();
                        let mut comp = (vec![T::ZERO; n], vec![T::ZERO; n]);
                        for _ in 0..2 {
                            want = step_by_definition(
                                method,
                                &coupler,
                                &coeffs,
                                simd,
                                &drive,
                                &h_in,
                                (&want.0, &want.1),
                                &mut comp,
                                h,
                            );
                        }
                        let runs = [
                            (Schedule::Staged, 1),
                            (Schedule::Pipelined, 1),
                            (Schedule::Pipelined, 3),
                            (Schedule::Pipelined, 16),
                        ];
                        for (schedule, threads) in runs {
                            let mut stepper =
                                Stepper::with_schedule(method, &coupler, threads, simd, schedule);
                            let (mut e, mut i) = y0.clone();
                            for _ in 0..2 {
                                stepper.step(&coupler, &coeffs, &drive, &h_in, &mut e, &mut i, h);
                            }
                            let case = format!(
                                "{} {kernel:?} {boundary:?} {rows}x{cols} {method:?} {schedule:?} {threads} threads {simd:?}",
                                T::NAME
                            );
                            assert!(e == want.0, "E differs: {case}");
                            assert!(i == want.1, "I differs: {case}");
                        }
                    }
                }
            }
        }
    }
}
