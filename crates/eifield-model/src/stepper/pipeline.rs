//! The pipelined schedule: the stages of a step pipelined over the rows of a
//! block, with the stage inputs in rings of a few rows that stay in cache.

use std::ops::Range;

use crate::fastmath::MulAdd;
use crate::grid::Boundary;
use crate::rhs::{CHUNK, ChunkIn, neighbour_sums};

use super::stage::{Role, RowInput, Sweep};
use super::{MAX_STAGES, Method, RING};

impl Sweep<'_> {
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
    pub(crate) fn pipelined_block<M: MulAdd>(
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
pub(crate) struct Rings {
    x_e: Vec<f64>,
    x_i: Vec<f64>,
    acc_e: Vec<f64>,
    acc_i: Vec<f64>,
}

impl Rings {
    pub(crate) fn new(cols: usize) -> Self {
        let x = (MAX_STAGES - 1) * RING * cols;
        Self {
            x_e: vec![0.0; x],
            x_i: vec![0.0; x],
            acc_e: vec![0.0; RING * cols],
            acc_i: vec![0.0; RING * cols],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.x_e.len() + self.x_i.len() + self.acc_e.len() + self.acc_i.len()
    }
}
