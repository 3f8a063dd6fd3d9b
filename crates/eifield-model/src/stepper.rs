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
//!   written once per step instead of once per stage. Row blocks run in
//!   parallel on a rayon pool; each block recomputes the few rows of the early
//!   stages it needs beyond its edges (its halo) and writes the new state into
//!   a second buffer that is swapped in, so no block reads what another writes.
//!
//! The split into blocks never changes a result, so results are bit-identical
//! whatever the thread count. Nothing allocates per step.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::fastmath::{Fused, MulAdd, Unfused};
use crate::grid::{Boundary, Grid};
use crate::rhs::{CHUNK, ChunkIn, Coeffs, SimdLevel, kernel_each, neighbour_sums};

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
/// Rows a block has at least (unless a thread would go idle): each block
/// recomputes `stages · (stages − 1)` row stages of halo, 12 for RK4.
const MIN_BLOCK_ROWS: usize = 32;
/// Rows each ring of the pipelined schedule holds (a stage input is read at
/// three consecutive rows; the RK4 sum lives four rows).
const RING: usize = 4;
/// The most stages a method has.
const MAX_STAGES: usize = 4;

/// Rows per parallel block for a lattice of `rows` rows on `threads` threads:
/// one block on one thread; else about [`BLOCKS_PER_THREAD`] blocks per thread
/// of at least [`MIN_BLOCK_ROWS`] rows, but never fewer blocks than threads
/// while each block keeps a row. The split never changes a result.
pub fn rows_per_block(rows: usize, threads: usize) -> usize {
    if threads <= 1 {
        return rows.max(1);
    }
    (rows / (threads * BLOCKS_PER_THREAD))
        .max(MIN_BLOCK_ROWS)
        .min(rows.div_ceil(threads))
        .max(1)
}

/// What one stage does with its right-hand side `k`, given the state `y` at
/// the start of the step: the same arithmetic in both schedules.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// The only stage (Euler): `out = y + w·k`.
    Only { w: f64 },
    /// The first of several: `acc = k`, `next = y + a·k`.
    First { a: f64 },
    /// A middle RK4 stage: `acc += 2·k`, `next = y + a·k`.
    Middle { a: f64 },
    /// The last of several: `out = y + w·(acc + k)`.
    Last { w: f64 },
}

impl Role {
    /// The role of stage `s` of `method` for a step `h`.
    fn of(method: Method, s: usize, h: f64) -> Self {
        match (method, s) {
            (Method::Euler, _) => Self::Only { w: h },
            (Method::Heun, 0) => Self::First { a: h },
            (Method::Heun, _) => Self::Last { w: 0.5 * h },
            (Method::Rk4, 0) => Self::First { a: 0.5 * h },
            (Method::Rk4, 1) => Self::Middle { a: 0.5 * h },
            (Method::Rk4, 2) => Self::Middle { a: h },
            (Method::Rk4, _) => Self::Last { w: h / 6.0 },
        }
    }

    /// Whether the stage writes the next stage's input (else the new state).
    fn feeds_next(self) -> bool {
        matches!(self, Self::First { .. } | Self::Middle { .. })
    }

    /// Runs the kernel on a chunk `x` and applies the role to each cell's
    /// derivative `k` as it comes out, given the state `y` at the start of the
    /// step: `dst` is the next stage's input for `First` and `Middle`, the new
    /// state for `Only` and `Last`; `acc` is not touched by `Only` (and may be
    /// empty for it). One pass, so nothing goes through memory in between.
    #[inline(always)]
    fn kernel_and_apply<M: MulAdd>(
        self,
        coeffs: &Coeffs,
        x: &ChunkIn<'_>,
        y: (&[f64], &[f64]),
        acc: (&mut [f64], &mut [f64]),
        dst: (&mut [f64], &mut [f64]),
    ) {
        let n = x.e.len();
        let (ye, yi) = (&y.0[..n], &y.1[..n]);
        let (de_out, di_out) = (&mut dst.0[..n], &mut dst.1[..n]);
        match self {
            Self::Only { w } => kernel_each::<M>(
                coeffs,
                x,
                #[inline(always)]
                |k, de, di| {
                    de_out[k] = ye[k] + w * de;
                    di_out[k] = yi[k] + w * di;
                },
            ),
            Self::First { a } => {
                let (acc_e, acc_i) = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        acc_e[k] = de;
                        acc_i[k] = di;
                        de_out[k] = ye[k] + a * de;
                        di_out[k] = yi[k] + a * di;
                    },
                )
            }
            Self::Middle { a } => {
                let (acc_e, acc_i) = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        acc_e[k] += 2.0 * de;
                        acc_i[k] += 2.0 * di;
                        de_out[k] = ye[k] + a * de;
                        di_out[k] = yi[k] + a * di;
                    },
                )
            }
            Self::Last { w } => {
                let (acc_e, acc_i) = (&acc.0[..n], &acc.1[..n]);
                kernel_each::<M>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        de_out[k] = ye[k] + w * (acc_e[k] + de);
                        di_out[k] = yi[k] + w * (acc_i[k] + di);
                    },
                )
            }
        }
    }
}

/// The read-only inputs shared by the stages of one step.
struct Sweep<'a> {
    grid: &'a Grid,
    coeffs: &'a Coeffs,
    drive: &'a [f64],
    h_in: &'a [f64],
    /// The state at the start of the step.
    y_e: &'a [f64],
    /// The state at the start of the step.
    y_i: &'a [f64],
}

/// The rows of one stage input around a row: the row itself (E and I) and
/// the E rows above and below it, `None` at an open edge.
struct RowInput<'a> {
    e: &'a [f64],
    i: &'a [f64],
    up: Option<&'a [f64]>,
    down: Option<&'a [f64]>,
}

impl Sweep<'_> {
    /// The neighbour sums of E of cells `g0 .. g0 + nsum.len()` (flattened
    /// index) of a stage input; the cells may span rows.
    #[inline(always)]
    fn neighbour_sums_of_cells(&self, e: &[f64], g0: usize, nsum: &mut [f64]) {
        let len = nsum.len();
        let cols = self.grid.cols;
        let row_of = |rr: usize| &e[rr * cols..(rr + 1) * cols];
        let mut g = g0;
        while g < g0 + len {
            let (r, c0) = (g / cols, g % cols);
            let seg = (cols - c0).min(g0 + len - g);
            neighbour_sums(
                self.grid.boundary,
                self.grid.row_above(r).map(row_of),
                self.grid.row_below(r).map(row_of),
                row_of(r),
                c0,
                &mut nsum[g - g0..g - g0 + seg],
            );
            g += seg;
        }
    }

    /// One stage of the staged schedule over the whole lattice: input
    /// `x = (e, i)`, the sum `acc` and the output `out` (the next stage's
    /// input, or the new state).
    #[inline(always)]
    fn staged_stage<M: MulAdd>(
        &self,
        role: Role,
        x: (&[f64], &[f64]),
        acc: (&mut [f64], &mut [f64]),
        out: (&mut [f64], &mut [f64]),
    ) {
        let n = self.grid.len();
        let mut nsum = [0.0; CHUNK];
        let mut g0 = 0;
        while g0 < n {
            let len = CHUNK.min(n - g0);
            self.neighbour_sums_of_cells(x.0, g0, &mut nsum[..len]);
            let span = g0..g0 + len;
            let (acc_e, acc_i): (&mut [f64], &mut [f64]) = match role {
                Role::Only { .. } => (&mut [], &mut []),
                _ => (&mut acc.0[span.clone()], &mut acc.1[span.clone()]),
            };
            role.kernel_and_apply::<M>(
                self.coeffs,
                &ChunkIn {
                    nsum: &nsum[..len],
                    e: &x.0[span.clone()],
                    i: &x.1[span.clone()],
                    drive: &self.drive[span.clone()],
                    h_in: &self.h_in[span.clone()],
                },
                (&self.y_e[span.clone()], &self.y_i[span.clone()]),
                (acc_e, acc_i),
                (&mut out.0[span.clone()], &mut out.1[span]),
            );
            g0 += len;
        }
    }

    /// The physical row of virtual row `v` (rows continue past the edges in
    /// the pipelined schedule), or `None` past an open edge.
    fn physical_row(&self, v: isize) -> Option<usize> {
        let rows = self.grid.rows as isize;
        match self.grid.boundary {
            Boundary::Open => (0..rows).contains(&v).then_some(v as usize),
            Boundary::Periodic => Some(v.rem_euclid(rows) as usize),
        }
    }

    /// The virtual rows on which stage `s` of `stages` runs for the block
    /// `rows`: the block itself for the last stage, one more row on each side
    /// for each earlier stage (clipped at open edges).
    fn stage_rows(&self, rows: &Range<usize>, s: usize, stages: usize) -> Range<isize> {
        let halo = (stages - 1 - s) as isize;
        let (lo, hi) = (rows.start as isize - halo, rows.end as isize + halo);
        match self.grid.boundary {
            Boundary::Open => lo.max(0)..hi.min(self.grid.rows as isize),
            Boundary::Periodic => lo..hi,
        }
    }

    /// The pipelined schedule on the row block `rows`, writing the new state
    /// of those rows into `out` (which covers exactly them).
    #[inline(always)]
    fn pipelined_block<M: MulAdd>(
        &self,
        method: Method,
        h: f64,
        rows: Range<usize>,
        out: (&mut [f64], &mut [f64]),
        rings: &mut Rings,
    ) {
        let stages = method.stages();
        let ranges: [Range<isize>; MAX_STAGES] =
            std::array::from_fn(|s| self.stage_rows(&rows, s.min(stages - 1), stages));
        let first = ranges[0].start;
        let end = ranges[stages - 1].end + (stages - 1) as isize;
        let mut nsum = [0.0; CHUNK];
        for j in first..end {
            for (s, range) in ranges.iter().enumerate().take(stages) {
                let v = j - s as isize;
                if range.contains(&v) {
                    let role = Role::of(method, s, h);
                    self.pipelined_row::<M>(
                        role,
                        s,
                        v,
                        rows.start,
                        &mut nsum,
                        rings,
                        (&mut *out.0, &mut *out.1),
                    );
                }
            }
        }
    }

    /// Stage `s` (with `role`) of virtual row `v` in the pipelined schedule.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pipelined_row<M: MulAdd>(
        &self,
        role: Role,
        s: usize,
        v: isize,
        block_start: usize,
        nsum: &mut [f64; CHUNK],
        rings: &mut Rings,
        out: (&mut [f64], &mut [f64]),
    ) {
        let cols = self.grid.cols;
        let p = self.physical_row(v).expect("stage rows lie on the lattice");
        let up_p = self.physical_row(v - 1);
        let down_p = self.physical_row(v + 1);
        let Rings {
            x_e,
            x_i,
            acc_e,
            acc_i,
        } = rings;
        // Stage s reads ring s − 1 (or the state) and writes ring s.
        let split = s * RING * cols;
        let (read_e, write_e) = x_e.split_at_mut(split);
        let (read_i, write_i) = x_i.split_at_mut(split);
        let input = if s == 0 {
            RowInput {
                e: row_at(self.y_e, p, cols),
                i: row_at(self.y_i, p, cols),
                up: up_p.map(|q| row_at(self.y_e, q, cols)),
                down: down_p.map(|q| row_at(self.y_e, q, cols)),
            }
        } else {
            let ring = (s - 1) * RING;
            let (read_e, read_i) = (&*read_e, &*read_i);
            RowInput {
                e: row_at(read_e, ring + ring_slot(v), cols),
                i: row_at(read_i, ring + ring_slot(v), cols),
                up: up_p.map(|_| row_at(read_e, ring + ring_slot(v - 1), cols)),
                down: down_p.map(|_| row_at(read_e, ring + ring_slot(v + 1), cols)),
            }
        };
        let slot = ring_slot(v) * cols..(ring_slot(v) + 1) * cols;
        let (acc_e, acc_i) = (&mut acc_e[slot.clone()], &mut acc_i[slot.clone()]);
        let (dst_e, dst_i) = if role.feeds_next() {
            (&mut write_e[slot.clone()], &mut write_i[slot])
        } else {
            let at = (p - block_start) * cols..(p - block_start + 1) * cols;
            (&mut out.0[at.clone()], &mut out.1[at])
        };
        let state = p * cols;
        let mut c0 = 0;
        while c0 < cols {
            let len = CHUNK.min(cols - c0);
            let span = c0..c0 + len;
            let nsum = &mut nsum[..len];
            neighbour_sums(self.grid.boundary, input.up, input.down, input.e, c0, nsum);
            let cells = state + c0..state + c0 + len;
            role.kernel_and_apply::<M>(
                self.coeffs,
                &ChunkIn {
                    nsum,
                    e: &input.e[span.clone()],
                    i: &input.i[span.clone()],
                    drive: &self.drive[cells.clone()],
                    h_in: &self.h_in[cells.clone()],
                },
                (&self.y_e[cells.clone()], &self.y_i[cells]),
                (&mut acc_e[span.clone()], &mut acc_i[span.clone()]),
                (&mut dst_e[span.clone()], &mut dst_i[span]),
            );
            c0 += len;
        }
    }
}

/// Row `r` of a row-major buffer of `cols` columns.
fn row_at(x: &[f64], r: usize, cols: usize) -> &[f64] {
    &x[r * cols..(r + 1) * cols]
}

/// The ring slot of virtual row `v`.
fn ring_slot(v: isize) -> usize {
    v.rem_euclid(RING as isize) as usize
}

/// Per-block scratch of the pipelined schedule: a ring of [`RING`] rows for
/// each stage input after the first, and one for the weighted sum of the
/// right-hand sides, E and I each.
struct Rings {
    x_e: Vec<f64>,
    x_i: Vec<f64>,
    acc_e: Vec<f64>,
    acc_i: Vec<f64>,
}

impl Rings {
    fn new(cols: usize) -> Self {
        let x = (MAX_STAGES - 1) * RING * cols;
        Self {
            x_e: vec![0.0; x],
            x_i: vec![0.0; x],
            acc_e: vec![0.0; RING * cols],
            acc_i: vec![0.0; RING * cols],
        }
    }

    fn len(&self) -> usize {
        self.x_e.len() + self.x_i.len() + self.acc_e.len() + self.acc_i.len()
    }
}

/// A stage of the staged schedule, compiled for one SIMD level.
type StagedFn =
    fn(&Sweep<'_>, Role, (&[f64], &[f64]), (&mut [f64], &mut [f64]), (&mut [f64], &mut [f64]));

/// A row block of the pipelined schedule, compiled for one SIMD level.
type PipelinedFn = fn(&Sweep<'_>, Method, f64, Range<usize>, (&mut [f64], &mut [f64]), &mut Rings);

/// The schedules' loops compiled for one SIMD level, so that the neighbour
/// sums and the stage updates use its vectors as well as the kernel.
#[derive(Clone, Copy)]
struct LevelCode {
    staged: StagedFn,
    pipelined: PipelinedFn,
}

impl LevelCode {
    /// The code for `level`, which must be one of [`SimdLevel::available`].
    fn of(level: SimdLevel) -> Self {
        level.assert_supported();
        match level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX2 and FMA.
            SimdLevel::Avx2 => Self {
                staged: |s, role, x, acc, out| unsafe { staged_avx2(s, role, x, acc, out) },
                pipelined: |s, m, h, rows, out, rings| unsafe {
                    pipelined_avx2(s, m, h, rows, out, rings)
                },
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `assert_supported` above checked that the CPU has AVX-512 F/DQ/VL and FMA.
            SimdLevel::Avx512 => Self {
                staged: |s, role, x, acc, out| unsafe { staged_avx512(s, role, x, acc, out) },
                pipelined: |s, m, h, rows, out, rings| unsafe {
                    pipelined_avx512(s, m, h, rows, out, rings)
                },
            },
            _ => Self {
                staged: |s, role, x, acc, out| s.staged_stage::<Unfused>(role, x, acc, out),
                pipelined: |s, m, h, rows, out, rings| {
                    s.pipelined_block::<Unfused>(m, h, rows, out, rings)
                },
            },
        }
    }
}

/// Defines the two stage loops compiled with one SIMD level's instructions
/// (and fused multiply-adds); [`LevelCode::of`] checks the CPU before use.
macro_rules! stage_loops_for {
    ($staged:ident, $pipelined:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $staged(
            s: &Sweep<'_>,
            role: Role,
            x: (&[f64], &[f64]),
            acc: (&mut [f64], &mut [f64]),
            out: (&mut [f64], &mut [f64]),
        ) {
            s.staged_stage::<Fused>(role, x, acc, out)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $pipelined(
            s: &Sweep<'_>,
            method: Method,
            h: f64,
            rows: Range<usize>,
            out: (&mut [f64], &mut [f64]),
            rings: &mut Rings,
        ) {
            s.pipelined_block::<Fused>(method, h, rows, out, rings)
        }
    };
}

stage_loops_for!(staged_avx2, pipelined_avx2, "avx2,fma");
stage_loops_for!(
    staged_avx512,
    pipelined_avx512,
    "avx512f,avx512dq,avx512vl,fma"
);

/// The worker threads of a [`Stepper`] (none when it runs on the caller's).
///
/// Each [`Stepper::step`] called from outside hands its work to the threads
/// as one queued job (and the queue allocates a block of slots now and then);
/// a loop of steps inside [`Workers::run`] is queued once, and each step then
/// splits its work among the threads directly.
#[derive(Clone)]
pub struct Workers(Option<Arc<rayon::ThreadPool>>);

impl Workers {
    /// Runs `f` on one of the worker threads (or here, without any).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// Steps a lattice with a fixed-step method, owning the scratch buffers.
pub struct Stepper {
    method: Method,
    schedule: Schedule,
    code: LevelCode,
    simd: SimdLevel,
    pool: Workers,
    threads: usize,
    /// Rows per parallel block (pipelined schedule).
    block_rows: usize,
    /// One set of rings per block (pipelined schedule).
    rings: Vec<Rings>,
    /// The weighted sum of the stages (staged schedule).
    acc_e: Vec<f64>,
    acc_i: Vec<f64>,
    /// Stage inputs, alternating (staged schedule); the new state is written
    /// into one of them (staged) or into the first (pipelined) and swapped in.
    x_e: [Vec<f64>; 2],
    x_i: [Vec<f64>; 2],
}

impl Stepper {
    /// A stepper for a lattice on `threads` threads, with the schedule for its
    /// size and the best SIMD kernel this CPU supports.
    pub fn new(method: Method, grid: &Grid, threads: usize) -> Self {
        Self::with_simd(method, grid, threads, SimdLevel::detect())
    }

    /// As [`Stepper::new`], with an explicit SIMD level.
    pub fn with_simd(method: Method, grid: &Grid, threads: usize, simd: SimdLevel) -> Self {
        Self::with_schedule(method, grid, threads, simd, Schedule::for_cells(grid.len()))
    }

    /// As [`Stepper::with_simd`], with an explicit schedule. The staged
    /// schedule always runs on the calling thread.
    pub fn with_schedule(
        method: Method,
        grid: &Grid,
        threads: usize,
        simd: SimdLevel,
        schedule: Schedule,
    ) -> Self {
        let cells = grid.len();
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
        let block_rows = rows_per_block(grid.rows, threads);
        let buf = |len: usize| vec![0.0; len];
        let (rings, acc, x0, x1) = match schedule {
            Schedule::Staged => {
                let several = method.stages() > 1;
                let acc = if several { cells } else { 0 };
                (Vec::new(), acc, cells, if several { cells } else { 0 })
            }
            Schedule::Pipelined => {
                let blocks = grid.rows.div_ceil(block_rows).max(1);
                let rings = (0..blocks).map(|_| Rings::new(grid.cols)).collect();
                (rings, 0, cells, 0)
            }
        };
        Self {
            method,
            schedule,
            code: LevelCode::of(simd),
            simd,
            pool,
            threads,
            block_rows,
            rings,
            acc_e: buf(acc),
            acc_i: buf(acc),
            x_e: [buf(x0), buf(x1)],
            x_i: [buf(x0), buf(x1)],
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
        let vecs = [&self.acc_e, &self.acc_i, &self.x_e[0], &self.x_e[1]]
            .into_iter()
            .chain([&self.x_i[0], &self.x_i[1]])
            .map(|v| v.capacity())
            .sum::<usize>();
        let rings = self.rings.iter().map(Rings::len).sum::<usize>();
        (vecs + rings) * std::mem::size_of::<f64>() / cells.max(1)
    }

    /// Advances `(e, i)` by one step `h` with the drives held constant. The
    /// new state is swapped into `e` and `i`, whose old buffers become scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        grid: &Grid,
        coeffs: &Coeffs,
        drive: &[f64],
        h_in: &[f64],
        e: &mut Vec<f64>,
        i: &mut Vec<f64>,
        h: f64,
    ) {
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
            grid,
            coeffs,
            drive,
            h_in,
            y_e: e,
            y_i: i,
        };
        let method = self.method;
        let stages = method.stages();
        let result = match self.schedule {
            Schedule::Staged => {
                let [xa_e, xb_e] = &mut self.x_e;
                let [xa_i, xb_i] = &mut self.x_i;
                let (acc_e, acc_i) = (&mut self.acc_e[..], &mut self.acc_i[..]);
                for s in 0..stages {
                    let role = Role::of(method, s, h);
                    // Stage s reads buffer (s − 1) mod 2 and writes buffer s mod 2.
                    let (x, out) = match (s, s % 2) {
                        (0, _) => ((&e[..], &i[..]), (&mut xa_e[..], &mut xa_i[..])),
                        (_, 0) => ((&xb_e[..], &xb_i[..]), (&mut xa_e[..], &mut xa_i[..])),
                        (_, _) => ((&xa_e[..], &xa_i[..]), (&mut xb_e[..], &mut xb_i[..])),
                    };
                    (self.code.staged)(&sweep, role, x, (&mut *acc_e, &mut *acc_i), out);
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
                let run_block = |k: usize, out: (&mut [f64], &mut [f64]), rings: &mut Rings| {
                    let start = k * block_rows;
                    let end = (start + block_rows).min(rows);
                    (code.pipelined)(&sweep, method, h, start..end, out, rings);
                };
                match &self.pool.0 {
                    Some(pool) => pool.install(|| {
                        out_e
                            .par_chunks_mut(block)
                            .zip(out_i.par_chunks_mut(block))
                            .zip(rings.par_iter_mut())
                            .enumerate()
                            .for_each(|(k, ((oe, oi), rings))| run_block(k, (oe, oi), rings));
                    }),
                    None => out_e
                        .chunks_mut(block)
                        .zip(out_i.chunks_mut(block))
                        .zip(rings.iter_mut())
                        .enumerate()
                        .for_each(|(k, ((oe, oi), rings))| run_block(k, (oe, oi), rings)),
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
    use crate::test_data::pseudo_random;

    #[test]
    fn blocks_grow_with_the_lattice_and_never_idle_a_thread() {
        // Two threads on 256 rows: four blocks of 64 rows.
        assert_eq!(rows_per_block(256, 2), 64);
        // 1024 rows on two threads: four blocks of 256.
        assert_eq!(rows_per_block(1024, 2), 256);
        // Sixteen threads on 256 rows: one block of 16 rows each, not 32.
        assert_eq!(rows_per_block(256, 16), 16);
        // One thread: one block.
        assert_eq!(rows_per_block(100, 1), 100);
        // Fewer rows than threads: one row per block.
        assert_eq!(rows_per_block(3, 8), 1);
    }

    /// One step written out from the method's definition over whole-lattice
    /// right-hand sides, in the same floating-point order as the stepper.
    #[allow(clippy::too_many_arguments)]
    fn step_by_definition(
        method: Method,
        grid: &Grid,
        coeffs: &Coeffs,
        simd: SimdLevel,
        drive: &[f64],
        h_in: &[f64],
        y: (&[f64], &[f64]),
        h: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let n = grid.len();
        let f = |x: (&[f64], &[f64])| {
            let (mut ke, mut ki) = (vec![0.0; n], vec![0.0; n]);
            let kernel = simd.kernel();
            crate::rhs::rhs(
                grid, coeffs, kernel, x.0, x.1, drive, h_in, &mut ke, &mut ki,
            );
            (ke, ki)
        };
        let axpy = |y: &[f64], a: f64, k: &[f64]| -> Vec<f64> {
            y.iter().zip(k).map(|(&y, &k)| y + a * k).collect()
        };
        let (ye, yi) = y;
        match method {
            Method::Euler => {
                let k = f(y);
                (axpy(ye, h, &k.0), axpy(yi, h, &k.1))
            }
            Method::Heun => {
                let k1 = f(y);
                let x1 = (axpy(ye, h, &k1.0), axpy(yi, h, &k1.1));
                let k2 = f((&x1.0, &x1.1));
                let w = 0.5 * h;
                let last = |y: &[f64], a: &[f64], k: &[f64]| -> Vec<f64> {
                    (0..n).map(|c| y[c] + w * (a[c] + k[c])).collect()
                };
                (last(ye, &k1.0, &k2.0), last(yi, &k1.1, &k2.1))
            }
            Method::Rk4 => {
                let k1 = f(y);
                let x1 = (axpy(ye, 0.5 * h, &k1.0), axpy(yi, 0.5 * h, &k1.1));
                let k2 = f((&x1.0, &x1.1));
                let x2 = (axpy(ye, 0.5 * h, &k2.0), axpy(yi, 0.5 * h, &k2.1));
                let k3 = f((&x2.0, &x2.1));
                let x3 = (axpy(ye, h, &k3.0), axpy(yi, h, &k3.1));
                let k4 = f((&x3.0, &x3.1));
                let w = h / 6.0;
                let last = |y: &[f64], k1: &[f64], k2: &[f64], k3: &[f64], k4: &[f64]| {
                    (0..n)
                        .map(|c| {
                            let mut acc = k1[c];
                            acc += 2.0 * k2[c];
                            acc += 2.0 * k3[c];
                            y[c] + w * (acc + k4[c])
                        })
                        .collect::<Vec<f64>>()
                };
                (
                    last(ye, &k1.0, &k2.0, &k3.0, &k4.0),
                    last(yi, &k1.1, &k2.1, &k3.1, &k4.1),
                )
            }
        }
    }

    #[test]
    fn both_schedules_give_the_bits_of_the_definition_on_many_shapes() {
        let coeffs = Coeffs::from_scene(&crate::FieldScene::default());
        let h = 0.01;
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
                let n = grid.len();
                let drive = pseudo_random(n, 1, 8.0);
                let h_in = pseudo_random(n, 2, 8.0);
                let y0 = (pseudo_random(n, 3, 4.0), pseudo_random(n, 4, 4.0));
                for (method, simd) in [Method::Rk4, Method::Heun, Method::Euler]
                    .into_iter()
                    .flat_map(|m| SimdLevel::available().into_iter().map(move |l| (m, l)))
                {
                    // Two steps, so that the swapped-in buffers are used too.
                    let mut want = y0.clone();
                    for _ in 0..2 {
                        want = step_by_definition(
                            method,
                            &grid,
                            &coeffs,
                            simd,
                            &drive,
                            &h_in,
                            (&want.0, &want.1),
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
                            Stepper::with_schedule(method, &grid, threads, simd, schedule);
                        let (mut e, mut i) = y0.clone();
                        for _ in 0..2 {
                            stepper.step(&grid, &coeffs, &drive, &h_in, &mut e, &mut i, h);
                        }
                        let case = format!(
                            "{boundary:?} {rows}x{cols} {method:?} {schedule:?} {threads} threads {simd:?}"
                        );
                        assert!(e == want.0, "E differs: {case}");
                        assert!(i == want.1, "I differs: {case}");
                    }
                }
            }
        }
    }
}
