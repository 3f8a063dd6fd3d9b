//! The right-hand side of the lattice ODE, computed a row chunk at a time into
//! caller-owned buffers, with a SIMD kernel chosen at run time.

use crate::coupling::{Coupler, stencil_scratch};
#[cfg(target_arch = "x86_64")]
use crate::fastmath::Fused;
use crate::fastmath::{MulAdd, Unfused, tanh3};
use crate::grid::Boundary;
use crate::lanes::{Lanes, Packed};
use crate::per_cell::Cells;
use crate::real::Real;
use crate::scene::FieldScene;
use crate::simd::LevelCode;
pub use crate::simd::SimdLevel;

/// The constants of the right-hand side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coeffs {
    /// Rate factor of dE/dt.
    pub tau_ex: f64,
    /// Rate factor of dI/dt.
    pub tau_in: f64,
    /// Weight of tanh(I) in dE/dt.
    pub c2: f64,
    /// Weight of tanh(I) in dI/dt.
    pub c4: f64,
    /// Weight of tanh(u) in dE/dt.
    pub c_ee: f64,
    /// Weight of tanh(v) in dI/dt.
    pub c_ei: f64,
    /// Neighbour weight in u.
    pub frac_ee: f64,
    /// Neighbour weight in v.
    pub frac_ei: f64,
    /// Own weight in u and v.
    pub self_weight: f64,
}

impl Coeffs {
    /// The constants of a scene.
    pub fn from_scene(scene: &FieldScene) -> Self {
        let m = &scene.model;
        let c = &scene.coupling;
        // A matrix holds every weight, the own one on its diagonal.
        let (frac_ee, frac_ei, self_weight) = if c.kernel.is_matrix() {
            (1.0, 1.0, 0.0)
        } else {
            (c.frac_ee, c.frac_ei, c.self_weight)
        };
        Self {
            tau_ex: m.tau_ex,
            tau_in: m.tau_in,
            c2: m.c2,
            c4: m.c4,
            c_ee: m.c_ee,
            c_ei: m.c_ei,
            frac_ee,
            frac_ei,
            self_weight,
        }
    }
}

/// Columns processed at once; the per-chunk buffers live on the stack.
pub const CHUNK: usize = 256;

/// Computes dE/dt and dI/dt for `len ≤ CHUNK` cells from their own values, their
/// neighbour sums and drives.
pub type ChunkKernel<T> = fn(&Coeffs, &ChunkIn<'_, T>, &mut [T], &mut [T]);

/// The inputs of one chunk of cells; all slices have the chunk's length.
pub struct ChunkIn<'a, T> {
    /// Coupling sums of E for the excitatory sigmoid.
    pub nsum: &'a [T],
    /// Coupling sums of E for the inhibitory sigmoid (the same slice as
    /// `nsum` when both use one kernel).
    pub nsum_ei: &'a [T],
    /// E of the cells.
    pub e: &'a [T],
    /// I of the cells.
    pub i: &'a [T],
    /// Total excitatory drive.
    pub drive: &'a [T],
    /// Inhibitory drive.
    pub h_in: &'a [T],
}

/// The kernel's loop, for every SIMD level (inlined into code built for it):
/// computes dE/dt and dI/dt of each cell `k` of the chunk and hands them to
/// `emit`, which the stepper uses to update its stage buffers in the same
/// pass. Where `M` asks for it ([`MulAdd::PACKS`]), cells are computed a
/// [`Real::Pack`] at a time (f64 on AVX-512), the rest one by one: the
/// same operations on each cell, so the same bits.
#[inline(always)]
pub(crate) fn kernel_each<M: MulAdd, T: Real>(
    c: &Coeffs,
    x: &ChunkIn<'_, T>,
    emit: &mut impl Emit<T>,
) {
    let model = Model::<T>::of(c);
    let n = x.e.len();
    let (nsum, nsum_ei, e, i, drive, h_in) = (
        &x.nsum[..n],
        &x.nsum_ei[..n],
        &x.e[..n],
        &x.i[..n],
        &x.drive[..n],
        &x.h_in[..n],
    );
    let mut first = 0;
    if M::PACKS && T::Pack::LANES > 1 {
        let lanes = T::Pack::LANES;
        while first + lanes <= n {
            let (de, di) = model.derivatives::<M, T::Pack>(
                T::Pack::load(&nsum[first..]),
                T::Pack::load(&nsum_ei[first..]),
                T::Pack::load(&e[first..]),
                T::Pack::load(&i[first..]),
                T::Pack::load(&drive[first..]),
                T::Pack::load(&h_in[first..]),
            );
            emit.emit(first, de, di);
            first += lanes;
        }
    }
    for k in first..n {
        let (de, di) =
            model.derivatives::<M, T>(nsum[k], nsum_ei[k], e[k], i[k], drive[k], h_in[k]);
        emit.emit(k, de, di);
    }
}

/// What a stage does with the derivatives of cells `k ..` (one cell, or a
/// pack's worth).
pub(crate) trait Emit<T: Real> {
    /// Takes dE/dt and dI/dt of the cells from `k` on, one per lane.
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L);
}

/// The model's constants in the engine's type (each rounded once; exact in
/// f64).
#[derive(Clone, Copy)]
struct Model<T> {
    self_weight: T,
    frac_ee: T,
    frac_ei: T,
    c_ee: T,
    c_ei: T,
    minus_c2: T,
    minus_c4: T,
    tau_ex: T,
    tau_in: T,
}

impl<T: Real> Model<T> {
    #[inline(always)]
    fn of(c: &Coeffs) -> Self {
        Self {
            self_weight: T::of(c.self_weight),
            frac_ee: T::of(c.frac_ee),
            frac_ei: T::of(c.frac_ei),
            c_ee: T::of(c.c_ee),
            c_ei: T::of(c.c_ei),
            minus_c2: T::of(-c.c2),
            minus_c4: T::of(-c.c4),
            tau_ex: T::of(c.tau_ex),
            tau_in: T::of(c.tau_in),
        }
    }

    /// dE/dt and dI/dt of a cell (or of each lane of a pack) from its
    /// coupling sums, its own E and I and its drives.
    #[inline(always)]
    fn derivatives<M: MulAdd, L: Lanes<Scalar = T>>(
        &self,
        nsum: L,
        nsum_ei: L,
        e: L,
        i: L,
        drive: L,
        h_in: L,
    ) -> (L, L) {
        let c = L::splat;
        let own = c(self.self_weight) * e;
        let u = M::mul_add(c(self.frac_ee), nsum, own);
        let v = M::mul_add(c(self.frac_ei), nsum_ei, own);
        let [ti, tu, tv] = tanh3::<M, L>(i, u, v);
        let de = M::mul_add(
            c(self.c_ee),
            tu,
            M::mul_add(c(self.minus_c2), ti, drive - e),
        ) * c(self.tau_ex);
        let di = M::mul_add(c(self.c_ei), tv, M::mul_add(c(self.minus_c4), ti, h_in - i))
            * c(self.tau_in);
        (de, di)
    }
}

/// [`kernel_each`] into `de` and `di`.
#[inline(always)]
fn kernel_body<M: MulAdd, T: Real>(c: &Coeffs, x: &ChunkIn<'_, T>, de: &mut [T], di: &mut [T]) {
    let n = x.e.len();
    kernel_each::<M, T>(c, x, &mut Derivatives(&mut de[..n], &mut di[..n]));
}

/// Derivatives into two slices, dE/dt and dI/dt.
struct Derivatives<'s, T>(&'s mut [T], &'s mut [T]);

impl<T: Real> Emit<T> for Derivatives<'_, T> {
    #[inline(always)]
    fn emit<L: Packed<T>>(&mut self, k: usize, de: L, di: L) {
        de.store(&mut self.0[k..]);
        di.store(&mut self.1[k..]);
    }
}

/// Portable kernel (SSE2 on x86-64), without fused multiply-adds.
pub fn kernel_generic<T: Real>(c: &Coeffs, x: &ChunkIn<'_, T>, de: &mut [T], di: &mut [T]) {
    kernel_body::<Unfused, T>(c, x, de, di)
}

/// The kernel with fused multiply-adds, for the SIMD levels that have them
/// (compiled for each level in [`crate::simd`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn kernel_fused<T: Real>(c: &Coeffs, x: &ChunkIn<'_, T>, de: &mut [T], di: &mut [T]) {
    kernel_body::<Fused, T>(c, x, de, di)
}

/// Neighbour sums of E for columns `c0 .. c0 + out.len()` of one row.
///
/// `up` and `down` are the rows above and below (or `None` at an open edge);
/// `row` is the row itself.
#[inline(always)]
pub fn neighbour_sums<T: Real>(
    boundary: Boundary,
    up: Option<&[T]>,
    down: Option<&[T]>,
    row: &[T],
    c0: usize,
    out: &mut [T],
) {
    let cols = row.len();
    let len = out.len();
    let c1 = c0 + len;
    // Interior columns of the row: both horizontal neighbours exist.
    let lo = c0.max(1);
    let hi = c1.min(cols.saturating_sub(1));
    // With both vertical neighbours (every row but an open edge's) the
    // interior takes one pass, `(up + down) + (left + right)`: the same
    // additions in the same order as the two passes of the other cases.
    let interior_done = match (up, down) {
        (Some(u), Some(d)) if lo < hi => {
            for c in (c0..lo).chain(hi..c1) {
                out[c - c0] = u[c] + d[c];
            }
            let (u, d) = (&u[lo..hi], &d[lo..hi]);
            let (left, right) = (&row[lo - 1..hi - 1], &row[lo + 1..hi + 1]);
            let interior = &mut out[lo - c0..hi - c0];
            for k in 0..interior.len() {
                interior[k] = (u[k] + d[k]) + (left[k] + right[k]);
            }
            true
        }
        (Some(u), Some(d)) => {
            for ((o, &a), &b) in out.iter_mut().zip(&u[c0..c1]).zip(&d[c0..c1]) {
                *o = a + b;
            }
            false
        }
        (Some(x), None) | (None, Some(x)) => {
            out.copy_from_slice(&x[c0..c1]);
            false
        }
        (None, None) => {
            out.fill(T::ZERO);
            false
        }
    };
    if !interior_done && lo < hi {
        let left = &row[lo - 1..hi - 1];
        let right = &row[lo + 1..hi + 1];
        for ((o, &l), &r) in out[lo - c0..hi - c0].iter_mut().zip(left).zip(right) {
            *o += l + r;
        }
    }
    // The first and last column of the row, if in this chunk.
    let periodic = boundary == Boundary::Periodic;
    let edges: &[usize] = if cols == 1 { &[0] } else { &[0, cols - 1] };
    for &c in edges {
        if c < c0 || c >= c1 {
            continue;
        }
        let left = if c > 0 {
            row[c - 1]
        } else if periodic {
            row[cols - 1]
        } else {
            T::ZERO
        };
        let right = if c + 1 < cols {
            row[c + 1]
        } else if periodic {
            row[0]
        } else {
            T::ZERO
        };
        out[c - c0] += left + right;
    }
}

/// The full right-hand side over the lattice, into `de` and `di` (all slices
/// as long as the lattice), with the coupling of `coupler`, in the code of
/// SIMD level `level` (one of [`SimdLevel::available`]): the stepper's bits.
#[allow(clippy::too_many_arguments)]
pub fn rhs<'a, T: Real>(
    coupler: &Coupler,
    coeffs: &Coeffs,
    level: SimdLevel,
    e: &[T],
    i: &[T],
    drive: impl Into<Cells<'a, T>>,
    h_in: impl Into<Cells<'a, T>>,
    de: &mut [T],
    di: &mut [T],
) {
    let drive: Cells<'a, T> = drive.into();
    let h_in: Cells<'a, T> = h_in.into();
    let (mut drive_run, mut h_in_run) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
    let n = coupler.grid().len();
    let mut nsum = [T::ZERO; CHUNK];
    let mut nsum_ei = [T::ZERO; CHUNK];
    let mut scratch = vec![T::ZERO; stencil_scratch(coupler.reach())];
    let two = coupler.has_two_sums();
    let code = LevelCode::<T>::of(level);
    let mut g0 = 0;
    while g0 < n {
        let len = CHUNK.min(n - g0);
        (code.sums)(
            coupler,
            e,
            g0,
            &mut nsum[..len],
            &mut nsum_ei[..len],
            &mut scratch,
        );
        let span = g0..g0 + len;
        (code.kernel)(
            coeffs,
            &ChunkIn {
                nsum: &nsum[..len],
                nsum_ei: if two { &nsum_ei[..len] } else { &nsum[..len] },
                e: &e[span.clone()],
                i: &i[span.clone()],
                drive: drive.span(span.clone(), &mut drive_run),
                h_in: h_in.span(span.clone(), &mut h_in_run),
            },
            &mut de[span.clone()],
            &mut di[span],
        );
        g0 += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::{Kernel, MatrixFile, Profile};
    use crate::grid::Grid;
    use crate::test_data::{coupler, pseudo_random};

    fn coeffs() -> Coeffs {
        Coeffs::from_scene(&FieldScene::default())
    }

    /// The dense coupling matrix `W[j][i]` (the weight with which cell `j`
    /// feeds cell `i`) of a kernel, written from the kernel's definition: the
    /// offsets of the 4 or 8 neighbours or of the disk, their weights from
    /// the profile's formula normalised over the whole disk to sum to 4,
    /// dropped past an open edge, wrapped on a periodic lattice.
    #[allow(clippy::needless_range_loop)] // w[j][i]: cell i's column of the matrix
    fn dense_by_definition(grid: &Grid, kernel: &Kernel) -> Vec<Vec<f64>> {
        let n = grid.len();
        let mut offsets: Vec<(isize, isize, f64)> = Vec::new();
        match kernel {
            Kernel::Nearest => {
                for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                    offsets.push((dr, dc, 1.0));
                }
            }
            Kernel::Moore { diagonal } => {
                for dr in -1isize..=1 {
                    for dc in -1isize..=1 {
                        if (dr, dc) != (0, 0) {
                            let w = if dr != 0 && dc != 0 { *diagonal } else { 1.0 };
                            offsets.push((dr, dc, w));
                        }
                    }
                }
            }
            Kernel::Disk { radius, profile } => {
                let reach = radius.floor() as isize;
                for dr in -reach..=reach {
                    for dc in -reach..=reach {
                        let d = ((dr * dr + dc * dc) as f64).sqrt();
                        if (dr, dc) == (0, 0) || d > *radius {
                            continue;
                        }
                        let g = |s: f64| (-d * d / (2.0 * s * s)).exp();
                        let w = match *profile {
                            Profile::Flat => 1.0,
                            Profile::Gaussian { sigma } => g(sigma),
                            Profile::MexicanHat {
                                sigma_center,
                                sigma_surround,
                                surround,
                            } => g(sigma_center) - surround * g(sigma_surround),
                        };
                        offsets.push((dr, dc, w));
                    }
                }
                let total: f64 = offsets.iter().map(|o| o.2).sum();
                for o in &mut offsets {
                    o.2 *= 4.0 / total;
                }
            }
            Kernel::Matrix { .. } => unreachable!("matrices are given densely"),
        }
        let mut w = vec![vec![0.0; n]; n];
        for i in 0..n {
            let (r, c) = grid.position(i);
            for &(dr, dc, weight) in &offsets {
                let (rr, cc) = (r as isize + dr, c as isize + dc);
                let (rows, cols) = (grid.rows as isize, grid.cols as isize);
                let j = match grid.boundary {
                    Boundary::Open => {
                        if rr < 0 || cc < 0 || rr >= rows || cc >= cols {
                            continue;
                        }
                        grid.index(rr as usize, cc as usize)
                    }
                    Boundary::Periodic => {
                        grid.index(rr.rem_euclid(rows) as usize, cc.rem_euclid(cols) as usize)
                    }
                };
                w[j][i] += weight;
            }
        }
        w
    }

    /// The right-hand side written out directly from DESIGN §1 with dense
    /// coupling matrices and `f64::tanh`.
    #[allow(clippy::too_many_arguments)]
    fn rhs_by_definition(
        w_ee: &[Vec<f64>],
        w_ei: &[Vec<f64>],
        c: &Coeffs,
        e: &[f64],
        i: &[f64],
        drive: &[f64],
        h_in: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let n = e.len();
        let mut de = vec![0.0; n];
        let mut di = vec![0.0; n];
        for k in 0..n {
            let s_ee: f64 = (0..n).map(|j| w_ee[j][k] * e[j]).sum();
            let s_ei: f64 = (0..n).map(|j| w_ei[j][k] * e[j]).sum();
            let u = c.self_weight * e[k] + c.frac_ee * s_ee;
            let v = c.self_weight * e[k] + c.frac_ei * s_ei;
            de[k] = (drive[k] - e[k] - c.c2 * i[k].tanh() + c.c_ee * u.tanh()) * c.tau_ex;
            di[k] = (h_in[k] - i[k] - c.c4 * i[k].tanh() + c.c_ei * v.tanh()) * c.tau_in;
        }
        (de, di)
    }

    /// Kernels for the definition tests: `(kernel, kernel_ei)`.
    fn kernels() -> Vec<(Kernel, Option<Kernel>)> {
        let disk = |radius, profile| Kernel::Disk { radius, profile };
        let hat = Profile::MexicanHat {
            sigma_center: 1.0,
            sigma_surround: 2.0,
            surround: 0.3,
        };
        vec![
            (Kernel::Nearest, None),
            (Kernel::Moore { diagonal: 0.7 }, None),
            (disk(1.0, Profile::Flat), None),
            (disk(2.5, Profile::Gaussian { sigma: 1.5 }), None),
            (disk(3.0, hat), Some(Kernel::Nearest)),
            (Kernel::Nearest, Some(disk(4.2, Profile::Flat))),
        ]
    }

    #[test]
    fn matches_the_definition_for_every_kernel_on_many_shapes() {
        let mut c = coeffs();
        c.frac_ei = 0.13;
        c.c4 = 0.7;
        for (kernel, kernel_ei) in kernels() {
            for boundary in [Boundary::Open, Boundary::Periodic] {
                for (rows, cols) in [
                    (1, 1),
                    (1, 2),
                    (2, 1),
                    (2, 2),
                    (3, 7),
                    (7, 3),
                    (9, 13),
                    (5, 300),
                    (4, 263),
                ] {
                    let grid = Grid::new(rows, cols, boundary);
                    let coupler = coupler(grid, &kernel, kernel_ei.as_ref());
                    let n = grid.len();
                    let e = pseudo_random(n, 1, 4.0);
                    let i = pseudo_random(n, 2, 4.0);
                    let drive = pseudo_random(n, 3, 4.0);
                    let h_in = pseudo_random(n, 4, 4.0);
                    let w_ee = dense_by_definition(&grid, &kernel);
                    let w_ei = dense_by_definition(&grid, kernel_ei.as_ref().unwrap_or(&kernel));
                    let (want_e, want_i) =
                        rhs_by_definition(&w_ee, &w_ei, &c, &e, &i, &drive, &h_in);
                    for level in SimdLevel::available() {
                        let mut de = vec![0.0; n];
                        let mut di = vec![0.0; n];
                        rhs(&coupler, &c, level, &e, &i, &drive, &h_in, &mut de, &mut di);
                        for k in 0..n {
                            let case = format!(
                                "{kernel:?}/{kernel_ei:?} {boundary:?} {rows}x{cols} {level:?}"
                            );
                            assert!((de[k] - want_e[k]).abs() < 1e-12, "{case} dE[{k}]");
                            assert!((di[k] - want_i[k]).abs() < 1e-12, "{case} dI[{k}]");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn single_precision_agrees_with_the_definition_for_every_kernel() {
        let mut c = coeffs();
        c.frac_ei = 0.13;
        c.c4 = 0.7;
        let mut worst = 0.0f64;
        for (kernel, kernel_ei) in kernels() {
            for boundary in [Boundary::Open, Boundary::Periodic] {
                let grid = Grid::new(9, 263, boundary);
                let coupler = coupler(grid, &kernel, kernel_ei.as_ref());
                let n = grid.len();
                // Inputs that f32 holds exactly, so that only the arithmetic differs.
                let exact = |seed| -> Vec<f64> {
                    pseudo_random(n, seed, 4.0)
                        .into_iter()
                        .map(|v| f64::from(v as f32))
                        .collect()
                };
                let (e, i, drive, h_in) = (exact(1), exact(2), exact(3), exact(4));
                let w_ee = dense_by_definition(&grid, &kernel);
                let w_ei = dense_by_definition(&grid, kernel_ei.as_ref().unwrap_or(&kernel));
                let (want_e, want_i) = rhs_by_definition(&w_ee, &w_ei, &c, &e, &i, &drive, &h_in);
                let single = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                let mut bits = Vec::new();
                for level in SimdLevel::available() {
                    let mut de = vec![0.0f32; n];
                    let mut di = vec![0.0f32; n];
                    let (e, i, drive, h_in) =
                        (single(&e), single(&i), single(&drive), single(&h_in));
                    rhs(&coupler, &c, level, &e, &i, &drive, &h_in, &mut de, &mut di);
                    for k in 0..n {
                        // Each term of dE/dt is at most about 16 in size
                        // (c_ee·tanh), and the sums add a few f32 roundings of it.
                        for (got, want) in [(de[k], want_e[k]), (di[k], want_i[k])] {
                            let err = (f64::from(got) - want).abs();
                            worst = worst.max(err);
                            assert!(
                                err < 2e-5,
                                "{kernel:?} {boundary:?} {level:?} cell {k}: {got} vs {want}"
                            );
                        }
                    }
                    if level != SimdLevel::Generic {
                        bits.push((level, de, di));
                    }
                }
                // The levels with FMA give the same f32 bits.
                for (level, de, di) in &bits {
                    assert!(de == &bits[0].1 && di == &bits[0].2, "{level:?} differs");
                }
            }
        }
        eprintln!("f32 right-hand side: max |error| {worst:e} against the f64 definition");
    }

    #[test]
    fn a_general_matrix_feeds_each_cell_by_its_column() {
        let c = coeffs();
        let grid = Grid::new(5, 7, Boundary::Open);
        let n = grid.len();
        // A sparse random matrix with a diagonal (the self weight) and
        // negative weights.
        let raw = pseudo_random(n * n, 9, 2.0);
        let m: Vec<f64> = raw
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                if k % (n + 1) == 0 || x.abs() > 0.7 {
                    x
                } else {
                    0.0
                }
            })
            .collect();
        let m_ei: Vec<f64> = m.iter().map(|x| 0.5 * x).collect();
        let dense = |m: &[f64]| -> Vec<Vec<f64>> { m.chunks(n).map(<[f64]>::to_vec).collect() };
        let file = |m: &[f64]| {
            MatrixFile::with_matrix(
                "m.npy",
                std::sync::Arc::new(crate::coupling::CouplingMatrix::from_dense(n, m)),
            )
        };
        let coupling = crate::scene::Coupling {
            kernel: Kernel::Matrix {
                ee: file(&m),
                ei: file(&m_ei),
            },
            ..Default::default()
        };
        let scene = FieldScene {
            coupling: coupling.clone(),
            ..FieldScene::default()
        };
        let coeffs = Coeffs::from_scene(&scene);
        let coupler = Coupler::build(&coupling, grid).unwrap();
        let e = pseudo_random(n, 1, 4.0);
        let i = pseudo_random(n, 2, 4.0);
        let drive = pseudo_random(n, 3, 4.0);
        let h_in = pseudo_random(n, 4, 4.0);
        // The definition: no separate self weight, no fractions.
        let def = Coeffs {
            frac_ee: 1.0,
            frac_ei: 1.0,
            self_weight: 0.0,
            ..c
        };
        let (want_e, want_i) =
            rhs_by_definition(&dense(&m), &dense(&m_ei), &def, &e, &i, &drive, &h_in);
        let mut de = vec![0.0; n];
        let mut di = vec![0.0; n];
        rhs(
            &coupler,
            &coeffs,
            SimdLevel::detect(),
            &e,
            &i,
            &drive,
            &h_in,
            &mut de,
            &mut di,
        );
        for k in 0..n {
            assert!((de[k] - want_e[k]).abs() < 1e-12, "dE[{k}]");
            assert!((di[k] - want_i[k]).abs() < 1e-12, "dI[{k}]");
        }
    }

    #[test]
    fn simd_levels_with_fma_give_identical_bits_and_agree_with_the_portable_kernel() {
        let grid = Grid::new(9, 700, Boundary::Periodic);
        let coupler = Coupler::nearest(grid);
        let n = grid.len();
        let e = pseudo_random(n, 5, 4.0);
        let i = pseudo_random(n, 6, 4.0);
        let drive = pseudo_random(n, 7, 4.0);
        let h_in = pseudo_random(n, 8, 4.0);
        let c = coeffs();
        let run = |level: SimdLevel| {
            let mut de = vec![0.0; n];
            let mut di = vec![0.0; n];
            rhs(&coupler, &c, level, &e, &i, &drive, &h_in, &mut de, &mut di);
            (de, di)
        };
        let portable = run(SimdLevel::Generic);
        let fused: Vec<_> = SimdLevel::available()
            .into_iter()
            .filter(|&l| l != SimdLevel::Generic)
            .map(|l| (l, run(l)))
            .collect();
        // Say what was compared, and compare something wherever the CPU can:
        // an x86-64 CPU with FMA and AVX2 has at least one fused level.
        let names: Vec<_> = fused.iter().map(|(l, _)| l.name()).collect();
        println!("compared the portable kernel with the fused levels {names:?}");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
        {
            assert!(
                !fused.is_empty(),
                "this CPU has AVX2 and FMA, yet no fused level was compared"
            );
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                assert_eq!(
                    fused.len(),
                    2,
                    "this CPU has AVX-512: both fused levels must be compared"
                );
            }
        }
        if fused.len() < 2 {
            println!(
                "fewer than two fused levels on this CPU: bit equality between them not checked"
            );
        }
        for (level, out) in &fused {
            assert_eq!(out, &fused[0].1, "{level:?} differs from {:?}", fused[0].0);
            // Fused and separate roundings agree to a few ulp of the terms.
            for (a, b) in out
                .0
                .iter()
                .chain(&out.1)
                .zip(portable.0.iter().chain(&portable.1))
            {
                assert!(
                    (a - b).abs() <= 1e-13 * (1.0 + b.abs()),
                    "{level:?}: {a} vs {b}"
                );
            }
        }
    }
}
