//! The pipelined schedule: the stages of a step pipelined over the rows of a
//! block, with the stage inputs in rings of a few rows that stay in cache.

use std::ops::Range;

use crate::coupling::{RowWindow, physical_row, stencil_scratch};
use crate::fastmath::MulAdd;
use crate::grid::Boundary;
use crate::real::Real;
use crate::rhs::{CHUNK, ChunkIn, neighbour_sums};

use super::stage::{ChunkScratch, Role, Sweep, comp_span};
use super::{MAX_STAGES, Method};

impl<T: Real> Sweep<'_, T> {
    /// The virtual rows on which stage `s` of `stages` runs for the block
    /// `rows`: the block itself for the last stage, `reach` more rows on each
    /// side for each earlier stage (clipped at open edges).
    fn stage_rows(
        &self,
        rows: &Range<usize>,
        s: usize,
        stages: usize,
        reach: usize,
    ) -> Range<isize> {
        let halo = ((stages - 1 - s) * reach) as isize;
        let (lo, hi) = (rows.start as isize - halo, rows.end as isize + halo);
        match self.grid().boundary {
            Boundary::Open => lo.max(0)..hi.min(self.grid().rows as isize),
            Boundary::Periodic => lo..hi,
        }
    }

    /// The pipelined schedule on the row block `rows`, writing the new state
    /// of those rows into `out` and updating their compensations `comp` (both
    /// cover exactly them; `comp` is empty in a type without). Stage `s` of
    /// virtual row `v` needs stage `s − 1` of rows `v − reach ..= v + reach`,
    /// so at pass `j` stage `s` computes row `j − s·reach`.
    #[inline(always)]
    pub(crate) fn pipelined_block<M: MulAdd>(
        &self,
        method: Method,
        h: f64,
        rows: Range<usize>,
        out: (&mut [T], &mut [T]),
        comp: (&mut [T], &mut [T]),
        rings: &mut Rings<T>,
    ) {
        let stages = method.stages();
        let reach = rings.reach;
        let ranges: [Range<isize>; MAX_STAGES] =
            std::array::from_fn(|s| self.stage_rows(&rows, s.min(stages - 1), stages, reach));
        let lag = |s: usize| (s * reach) as isize;
        let first = ranges[0].start;
        let end = ranges[stages - 1].end + lag(stages - 1);
        let mut chunk = ChunkScratch::new();
        for j in first..end {
            for (s, range) in ranges.iter().enumerate().take(stages) {
                let v = j - lag(s);
                if range.contains(&v) {
                    let role = Role::of(method, s, h);
                    self.pipelined_row::<M>(
                        role,
                        s,
                        v,
                        rows.start,
                        &mut chunk,
                        rings,
                        (&mut *out.0, &mut *out.1),
                        (&mut *comp.0, &mut *comp.1),
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
        chunk: &mut ChunkScratch<T>,
        rings: &mut Rings<T>,
        out: (&mut [T], &mut [T]),
        comp: (&mut [T], &mut [T]),
    ) {
        let grid = self.grid();
        let cols = grid.cols;
        let p = physical_row(grid, v).expect("stage rows lie on the lattice");
        let Rings {
            x_e,
            x_i,
            acc_e,
            acc_i,
            ring,
            reach,
            scratch,
        } = rings;
        let (ring, reach) = (*ring, *reach);
        let slot_of = |v: isize| v.rem_euclid(ring as isize) as usize;
        // Stage s reads ring s − 1 (or the state) and writes ring s.
        let split = s * ring * cols;
        let (read_e, write_e) = x_e.split_at_mut(split);
        let (read_i, write_i) = x_i.split_at_mut(split);
        let (read_e, read_i) = (&*read_e, &*read_i);
        let base = s.saturating_sub(1) * ring;
        let (input_e, input_i) = if s == 0 {
            (row_at(self.y_e, p, cols), row_at(self.y_i, p, cols))
        } else {
            (
                row_at(read_e, base + slot_of(v), cols),
                row_at(read_i, base + slot_of(v), cols),
            )
        };
        // The input's E row `d` rows below `v` (above where negative).
        let e_row = |d: isize| {
            physical_row(grid, v + d).map(|q| {
                if s == 0 {
                    row_at(self.y_e, q, cols)
                } else {
                    row_at(read_e, base + slot_of(v + d), cols)
                }
            })
        };
        // The 4-neighbour stencil needs the rows above and below; other
        // kernels a window of rows (built only for them: it is a few
        // hundred bytes, per row of every stage).
        let nearest = self.coupler.is_nearest();
        let (up, down) = if nearest {
            (e_row(-1), e_row(1))
        } else {
            (None, None)
        };
        let window = (!nearest).then(|| RowWindow::from_fn(reach, e_row));
        let slot = slot_of(v) * cols..(slot_of(v) + 1) * cols;
        let (acc_e, acc_i) = (&mut acc_e[slot.clone()], &mut acc_i[slot.clone()]);
        // Only the last stage (on the block's own rows) writes the new state
        // and updates the compensations.
        let (dst_e, dst_i, comp) = if role.feeds_next() {
            let none: (&mut [T], &mut [T]) = (&mut [], &mut []);
            (&mut write_e[slot.clone()], &mut write_i[slot], none)
        } else {
            let at = (p - block_start) * cols..(p - block_start + 1) * cols;
            let (oe, oi) = (&mut out.0[at.clone()], &mut out.1[at.clone()]);
            (oe, oi, comp_span(comp, at))
        };
        let two = self.coupler.has_two_sums();
        let state = p * cols;
        let ChunkScratch {
            nsum,
            nsum_ei,
            drive,
            h_in,
        } = chunk;
        let mut c0 = 0;
        while c0 < cols {
            let len = CHUNK.min(cols - c0);
            let span = c0..c0 + len;
            let (ns, ns_ei) = (&mut nsum[..len], &mut nsum_ei[..len]);
            match &window {
                None => neighbour_sums(grid.boundary, up, down, input_e, c0, ns),
                Some(window) => (self.row_sums)(self.coupler, window, c0, ns, ns_ei, scratch),
            }
            let cells = state + c0..state + c0 + len;
            role.kernel_and_apply::<M, T>(
                self.coeffs,
                &ChunkIn {
                    nsum: ns,
                    nsum_ei: if two { ns_ei } else { ns },
                    e: &input_e[span.clone()],
                    i: &input_i[span.clone()],
                    drive: self.drive.span(cells.clone(), drive),
                    h_in: self.h_in.span(cells.clone(), h_in),
                },
                (&self.y_e[cells.clone()], &self.y_i[cells]),
                (&mut acc_e[span.clone()], &mut acc_i[span.clone()]),
                (&mut dst_e[span.clone()], &mut dst_i[span.clone()]),
                comp_span((&mut *comp.0, &mut *comp.1), span),
            );
            c0 += len;
        }
    }
}

/// Row `r` of a row-major buffer of `cols` columns.
fn row_at<T>(x: &[T], r: usize, cols: usize) -> &[T] {
    &x[r * cols..(r + 1) * cols]
}

/// Per-block scratch of the pipelined schedule: a ring of rows for each
/// stage input after the first, one for the weighted sum of the right-hand
/// sides, E and I each, and the stencil sums' rows. A stage input is read
/// at `2·reach + 1` consecutive rows and a row's sum lives
/// `(stages − 1)·reach + 1` rows, so each ring holds `3·reach + 1` rows
/// (4 for the 4-neighbour stencil).
pub(crate) struct Rings<T> {
    x_e: Vec<T>,
    x_i: Vec<T>,
    acc_e: Vec<T>,
    acc_i: Vec<T>,
    ring: usize,
    reach: usize,
    scratch: Vec<T>,
}

impl<T: Real> Rings<T> {
    pub(crate) fn new(cols: usize, reach: usize) -> Self {
        let ring = ring_rows(reach);
        let x = (MAX_STAGES - 1) * ring * cols;
        Self {
            x_e: vec![T::ZERO; x],
            x_i: vec![T::ZERO; x],
            acc_e: vec![T::ZERO; ring * cols],
            acc_i: vec![T::ZERO; ring * cols],
            ring,
            reach,
            scratch: vec![T::ZERO; stencil_scratch(reach)],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.x_e.len() + self.x_i.len() + self.acc_e.len() + self.acc_i.len() + self.scratch.len()
    }
}

/// Rows of each ring for a stencil of reach `reach` (see [`Rings`]).
pub(crate) fn ring_rows(reach: usize) -> usize {
    (2 * reach + 1).max((MAX_STAGES - 1) * reach + 1)
}
