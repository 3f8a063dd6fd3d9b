//! One stage of a step, the same arithmetic in both schedules: what a stage
//! does with each cell's derivative ([`Role`]), the inputs shared by the
//! stages of a step ([`Sweep`]), and the staged schedule's sweep.

use crate::coupling::Coupler;
use crate::fastmath::MulAdd;
use crate::grid::Grid;
use crate::per_cell::Cells;
use crate::real::Real;
use crate::rhs::{CHUNK, ChunkIn, Coeffs, kernel_each};
use crate::simd::{RowSumsFn, SumsFn};

use super::Method;

/// What one stage does with its right-hand side `k`, given the state `y` at
/// the start of the step: the same arithmetic in both schedules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Role {
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
    pub(crate) fn of(method: Method, s: usize, h: f64) -> Self {
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
    pub(crate) fn feeds_next(self) -> bool {
        matches!(self, Self::First { .. } | Self::Middle { .. })
    }

    /// Runs the kernel on a chunk `x` and applies the role to each cell's
    /// derivative `k` as it comes out, given the state `y` at the start of the
    /// step: `dst` is the next stage's input for `First` and `Middle`, the new
    /// state for `Only` and `Last`; `acc` is not touched by `Only` (and may be
    /// empty for it). One pass, so nothing goes through memory in between.
    /// `comp` holds the cells' running compensations of the state update
    /// (read and written by `Only` and `Last` in a compensated type, empty
    /// otherwise).
    #[inline(always)]
    pub(crate) fn kernel_and_apply<M: MulAdd, T: Real>(
        self,
        coeffs: &Coeffs,
        x: &ChunkIn<'_, T>,
        y: (&[T], &[T]),
        acc: (&mut [T], &mut [T]),
        dst: (&mut [T], &mut [T]),
        comp: (&mut [T], &mut [T]),
    ) {
        let n = x.e.len();
        let (ye, yi) = (&y.0[..n], &y.1[..n]);
        let (de_out, di_out) = (&mut dst.0[..n], &mut dst.1[..n]);
        match self {
            Self::Only { w } if T::COMPENSATED => {
                let w = T::of(w);
                let (ce, ci) = (&mut comp.0[..n], &mut comp.1[..n]);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        de_out[k] = compensated_add(ye[k], w * de, &mut ce[k]);
                        di_out[k] = compensated_add(yi[k], w * di, &mut ci[k]);
                    },
                )
            }
            Self::Only { w } => {
                let w = T::of(w);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        de_out[k] = ye[k] + w * de;
                        di_out[k] = yi[k] + w * di;
                    },
                )
            }
            Self::First { a } => {
                let a = T::of(a);
                let (acc_e, acc_i) = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M, T>(
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
                let (a, two) = (T::of(a), T::of(2.0));
                let (acc_e, acc_i) = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        acc_e[k] += two * de;
                        acc_i[k] += two * di;
                        de_out[k] = ye[k] + a * de;
                        di_out[k] = yi[k] + a * di;
                    },
                )
            }
            Self::Last { w } if T::COMPENSATED => {
                let w = T::of(w);
                let (acc_e, acc_i) = (&acc.0[..n], &acc.1[..n]);
                let (ce, ci) = (&mut comp.0[..n], &mut comp.1[..n]);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    #[inline(always)]
                    |k, de, di| {
                        de_out[k] = compensated_add(ye[k], w * (acc_e[k] + de), &mut ce[k]);
                        di_out[k] = compensated_add(yi[k], w * (acc_i[k] + di), &mut ci[k]);
                    },
                )
            }
            Self::Last { w } => {
                let w = T::of(w);
                let (acc_e, acc_i) = (&acc.0[..n], &acc.1[..n]);
                kernel_each::<M, T>(
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

/// `y + d` for a cell whose earlier updates lost `c` to rounding (Kahan
/// summation): the lost part is taken back from `d` first, and what this
/// addition loses becomes the new `c`.
#[inline(always)]
fn compensated_add<T: Real>(y: T, d: T, c: &mut T) -> T {
    let d = d - *c;
    let sum = y + d;
    *c = (sum - y) - d;
    sum
}

/// The cells `span` of the compensations (nothing for a type without them,
/// or where a stage that does not update them was given none).
#[inline(always)]
pub(crate) fn comp_span<'a, T: Real>(
    comp: (&'a mut [T], &'a mut [T]),
    span: std::ops::Range<usize>,
) -> (&'a mut [T], &'a mut [T]) {
    if T::COMPENSATED && !comp.0.is_empty() {
        (&mut comp.0[span.clone()], &mut comp.1[span])
    } else {
        (&mut [], &mut [])
    }
}

/// A chunk's scratch: its coupling sums, and its drives where they have to
/// be put together ([`Cells::span`]).
pub(crate) struct ChunkScratch<T> {
    pub(crate) nsum: [T; CHUNK],
    pub(crate) nsum_ei: [T; CHUNK],
    pub(crate) drive: [T; CHUNK],
    pub(crate) h_in: [T; CHUNK],
}

impl<T: Real> ChunkScratch<T> {
    pub(crate) fn new() -> Self {
        Self {
            nsum: [T::ZERO; CHUNK],
            nsum_ei: [T::ZERO; CHUNK],
            drive: [T::ZERO; CHUNK],
            h_in: [T::ZERO; CHUNK],
        }
    }
}

/// The read-only inputs shared by the stages of one step.
pub(crate) struct Sweep<'a, T> {
    pub(crate) coupler: &'a Coupler,
    pub(crate) coeffs: &'a Coeffs,
    pub(crate) drive: Cells<'a, T>,
    pub(crate) h_in: Cells<'a, T>,
    /// The state at the start of the step.
    pub(crate) y_e: &'a [T],
    /// The state at the start of the step.
    pub(crate) y_i: &'a [T],
    /// The coupling sums of other kernels than the 4-neighbour stencil, in
    /// the SIMD level's code: called rather than inlined, so that the
    /// 4-neighbour loops stay as small as they were before kernels.
    pub(crate) sums: SumsFn<T>,
    /// As `sums`, for a run of columns of one row.
    pub(crate) row_sums: RowSumsFn<T>,
}

impl<T: Real> Sweep<'_, T> {
    /// The lattice.
    pub(crate) fn grid(&self) -> &Grid {
        self.coupler.grid()
    }

    /// One stage of the staged schedule over the whole lattice: input
    /// `x = (e, i)`, the sum `acc` and the output `out` (the next stage's
    /// input, or the new state), the compensations `comp` of the whole
    /// lattice; `scratch` holds the stencil sums' rows.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn staged_stage<M: MulAdd>(
        &self,
        role: Role,
        x: (&[T], &[T]),
        acc: (&mut [T], &mut [T]),
        out: (&mut [T], &mut [T]),
        comp: (&mut [T], &mut [T]),
        scratch: &mut [T],
    ) {
        let n = self.grid().len();
        let two = self.coupler.has_two_sums();
        let mut nsum = [T::ZERO; CHUNK];
        let mut nsum_ei = [T::ZERO; CHUNK];
        let (mut drive, mut h_in) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
        let mut g0 = 0;
        while g0 < n {
            let len = CHUNK.min(n - g0);
            if self.coupler.is_nearest() {
                self.coupler
                    .nearest_sums_of_cells(x.0, g0, &mut nsum[..len]);
            } else {
                let sums = (&mut nsum[..len], &mut nsum_ei[..len]);
                (self.sums)(self.coupler, x.0, g0, sums.0, sums.1, scratch);
            }
            let span = g0..g0 + len;
            let (acc_e, acc_i): (&mut [T], &mut [T]) = match role {
                Role::Only { .. } => (&mut [], &mut []),
                _ => (&mut acc.0[span.clone()], &mut acc.1[span.clone()]),
            };
            role.kernel_and_apply::<M, T>(
                self.coeffs,
                &ChunkIn {
                    nsum: &nsum[..len],
                    nsum_ei: if two { &nsum_ei[..len] } else { &nsum[..len] },
                    e: &x.0[span.clone()],
                    i: &x.1[span.clone()],
                    drive: self.drive.span(span.clone(), &mut drive),
                    h_in: self.h_in.span(span.clone(), &mut h_in),
                },
                (&self.y_e[span.clone()], &self.y_i[span.clone()]),
                (acc_e, acc_i),
                (&mut out.0[span.clone()], &mut out.1[span.clone()]),
                comp_span((&mut *comp.0, &mut *comp.1), span),
            );
            g0 += len;
        }
    }
}
