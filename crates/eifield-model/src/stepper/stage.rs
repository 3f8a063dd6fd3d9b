//! One stage of a step, the same arithmetic in both schedules: what a stage
//! does with each cell's derivative ([`Role`]), the inputs shared by the
//! stages of a step ([`Sweep`]), and the staged schedule's sweep.

use crate::coupling::Coupler;
use crate::fastmath::MulAdd;
use crate::grid::Grid;
use crate::lanes::{Lanes, Packed};
use crate::per_cell::Cells;
use crate::real::Real;
use crate::rhs::{CHUNK, ChunkIn, Coeffs, Emit, kernel_each};
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
        let y = (&y.0[..n], &y.1[..n]);
        let out = (&mut dst.0[..n], &mut dst.1[..n]);
        let of = T::of;
        match self {
            Self::Only { w } => {
                // Sliced to exactly `n` here (and in `Last`), not through
                // `comp_span`: its empty case hides that length from the
                // compiler, whose loop then keeps its bounds checks (the
                // f32 engine ran 11 % slower that way).
                let comp = if T::COMPENSATED {
                    (&mut comp.0[..n], &mut comp.1[..n])
                } else {
                    comp
                };
                let w = of(w);
                kernel_each::<M, T>(coeffs, x, &mut Only { w, y, out, comp })
            }
            Self::First { a } => {
                let acc = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    &mut First {
                        a: of(a),
                        y,
                        acc,
                        out,
                    },
                )
            }
            Self::Middle { a } => {
                let acc = (&mut acc.0[..n], &mut acc.1[..n]);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    &mut Middle {
                        a: of(a),
                        y,
                        acc,
                        out,
                    },
                )
            }
            Self::Last { w } => {
                let acc = (&acc.0[..n], &acc.1[..n]);
                let comp = if T::COMPENSATED {
                    (&mut comp.0[..n], &mut comp.1[..n])
                } else {
                    comp
                };
                let w = of(w);
                kernel_each::<M, T>(
                    coeffs,
                    x,
                    &mut Last {
                        w,
                        y,
                        acc,
                        out,
                        comp,
                    },
                )
            }
        }
    }
}

/// [`Role::Only`] on a chunk: `out = y + w·k`, compensated in a type that
/// asks for it (`comp` is empty otherwise).
struct Only<'s, T> {
    w: T,
    y: (&'s [T], &'s [T]),
    out: (&'s mut [T], &'s mut [T]),
    comp: (&'s mut [T], &'s mut [T]),
}

impl<T: Real> Emit<T> for Only<'_, T> {
    #[inline(always)]
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L) {
        let w = L::splat(self.w);
        let (ye, yi) = (L::load(&self.y.0[k..]), L::load(&self.y.1[k..]));
        if T::COMPENSATED {
            update_compensated(ye, w * de, &mut self.comp.0[k..], &mut self.out.0[k..]);
            update_compensated(yi, w * di, &mut self.comp.1[k..], &mut self.out.1[k..]);
        } else {
            (ye + w * de).store(&mut self.out.0[k..]);
            (yi + w * di).store(&mut self.out.1[k..]);
        }
    }
}

/// [`Role::First`] on a chunk: `acc = k`, `out = y + a·k`.
struct First<'s, T> {
    a: T,
    y: (&'s [T], &'s [T]),
    acc: (&'s mut [T], &'s mut [T]),
    out: (&'s mut [T], &'s mut [T]),
}

impl<T: Real> Emit<T> for First<'_, T> {
    #[inline(always)]
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L) {
        let a = L::splat(self.a);
        de.store(&mut self.acc.0[k..]);
        di.store(&mut self.acc.1[k..]);
        (L::load(&self.y.0[k..]) + a * de).store(&mut self.out.0[k..]);
        (L::load(&self.y.1[k..]) + a * di).store(&mut self.out.1[k..]);
    }
}

/// [`Role::Middle`] on a chunk: `acc += 2·k`, `out = y + a·k`.
struct Middle<'s, T> {
    a: T,
    y: (&'s [T], &'s [T]),
    acc: (&'s mut [T], &'s mut [T]),
    out: (&'s mut [T], &'s mut [T]),
}

impl<T: Real> Emit<T> for Middle<'_, T> {
    #[inline(always)]
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L) {
        let (a, two) = (L::splat(self.a), L::splat(T::of(2.0)));
        (L::load(&self.acc.0[k..]) + two * de).store(&mut self.acc.0[k..]);
        (L::load(&self.acc.1[k..]) + two * di).store(&mut self.acc.1[k..]);
        (L::load(&self.y.0[k..]) + a * de).store(&mut self.out.0[k..]);
        (L::load(&self.y.1[k..]) + a * di).store(&mut self.out.1[k..]);
    }
}

/// [`Role::Last`] on a chunk: `out = y + w·(acc + k)`, compensated in a
/// type that asks for it (`comp` is empty otherwise).
struct Last<'s, T> {
    w: T,
    y: (&'s [T], &'s [T]),
    acc: (&'s [T], &'s [T]),
    out: (&'s mut [T], &'s mut [T]),
    comp: (&'s mut [T], &'s mut [T]),
}

impl<T: Real> Emit<T> for Last<'_, T> {
    #[inline(always)]
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L) {
        let w = L::splat(self.w);
        let (ye, yi) = (L::load(&self.y.0[k..]), L::load(&self.y.1[k..]));
        let de = w * (L::load(&self.acc.0[k..]) + de);
        let di = w * (L::load(&self.acc.1[k..]) + di);
        if T::COMPENSATED {
            update_compensated(ye, de, &mut self.comp.0[k..], &mut self.out.0[k..]);
            update_compensated(yi, di, &mut self.comp.1[k..], &mut self.out.1[k..]);
        } else {
            (ye + de).store(&mut self.out.0[k..]);
            (yi + di).store(&mut self.out.1[k..]);
        }
    }
}

/// `out = y + d` with the running compensation `comp` of those cells
/// ([`compensated_add`]).
#[inline(always)]
fn update_compensated<T: Real, L: Packed<T>>(y: L, d: L, comp: &mut [T], out: &mut [T]) {
    let mut c = L::load(comp);
    compensated_add(y, d, &mut c).store(out);
    c.store(comp);
}

/// `y + d` for a cell whose earlier updates lost `c` to rounding (Kahan
/// summation): the lost part is taken back from `d` first, and what this
/// addition loses becomes the new `c`.
#[inline(always)]
fn compensated_add<L: Lanes>(y: L, d: L, c: &mut L) -> L {
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
