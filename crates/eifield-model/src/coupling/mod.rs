//! The coupling: which cells feed a cell's sigmoids and with what weights.
//! One type, [`Coupler`], built from the scene's kernels, that every engine
//! and every reader of the neighbourhood asks: the stencil sums of the CPU
//! stage loops, the taps of the GPU kernel, the cells that the analysis
//! joins and the inputs that the nullclines freeze.
//!
//! Kernels ([`Kernel`]): the 4-neighbour stencil (`Nearest`, the default),
//! the 8-neighbour `Moore`, isotropic `Disk` kernels (flat, Gaussian or
//! Mexican hat, normalised to sum to 4) and general `Matrix` couplings
//! (sparse, by receiving cell). Stencils follow the lattice's boundary: open
//! drops the weights that fall outside, periodic wraps them (offsets taken
//! modulo the lattice's size, as a sum of `numpy.roll`-shifted copies does,
//! so on a lattice narrower than the stencil a cell can be counted twice).

mod kernel;
mod matrix;

use std::path::Path;
use std::sync::Arc;

pub use kernel::*;
pub use matrix::CouplingMatrix;

use crate::fastmath::MulAdd;
use crate::grid::{Boundary, Grid};
use crate::real::Real;
use crate::rhs::{CHUNK, neighbour_sums};

/// The largest row or column reach of a stencil.
pub const MAX_REACH: usize = MAX_DISK_RADIUS as usize;
/// Rows of a [`RowWindow`]: the row itself and [`MAX_REACH`] on each side.
pub(crate) const WINDOW: usize = 2 * MAX_REACH + 1;
/// Scratch values the stencil sums of one chunk need at reach `reach`:
/// the pair sums of `reach + 1` row offsets, each `reach` columns wider than
/// the chunk on both sides.
pub(crate) fn stencil_scratch(reach: usize) -> usize {
    (reach + 1) * (CHUNK + 2 * reach)
}

/// One sum of the coupling: how the weighted sum of the neighbours' E is
/// formed.
#[derive(Clone, Debug, PartialEq)]
pub enum Operator {
    /// The 4-neighbour stencil (its own loop, today's bits and speed).
    Nearest,
    /// Any other symmetric stencil of the given reach.
    Stencil {
        /// Row and column reach.
        reach: usize,
        /// The weights over one quadrant.
        taps: Vec<Tap>,
    },
    /// A general matrix.
    Matrix(Arc<CouplingMatrix>),
}

impl Operator {
    fn of_stencil(kernel: &Kernel) -> Self {
        match kernel {
            Kernel::Nearest => Self::Nearest,
            _ => Self::Stencil {
                reach: kernel.reach().expect("a stencil kernel"),
                taps: kernel.taps().expect("a stencil kernel"),
            },
        }
    }

    fn reach(&self) -> usize {
        match self {
            Self::Nearest => 1,
            Self::Stencil { reach, .. } => *reach,
            Self::Matrix(_) => 0,
        }
    }

    /// The weights over one quadrant (`None` for a matrix).
    pub fn taps(&self) -> Option<Vec<Tap>> {
        match self {
            Self::Nearest => Kernel::Nearest.taps(),
            Self::Stencil { taps, .. } => Some(taps.clone()),
            Self::Matrix(_) => None,
        }
    }
}

/// The coupling of a lattice, ready to compute with: the excitatory sum's
/// operator and, when it differs, the inhibitory one's.
#[derive(Clone, Debug, PartialEq)]
pub struct Coupler {
    grid: Grid,
    ee: Operator,
    ei: Option<Operator>,
}

/// The coupling could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid value for `{field}`: {message}")]
pub struct CouplingError {
    /// The scene field (`coupling.kernel.ee`, …).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Coupler {
    /// The 4-neighbour coupling of a lattice.
    pub fn nearest(grid: Grid) -> Self {
        Self {
            grid,
            ee: Operator::Nearest,
            ei: None,
        }
    }

    /// The coupling of the scene's kernels on `grid`. Matrices that are not
    /// read yet are read now (relative paths from the working folder).
    pub fn build(coupling: &crate::scene::Coupling, grid: Grid) -> Result<Self, CouplingError> {
        if let Kernel::Matrix { ee, ei } = &coupling.kernel {
            let n = grid.len();
            let read = |file: &MatrixFile,
                        name: &str|
             -> Result<Arc<CouplingMatrix>, CouplingError> {
                let m = match &file.matrix {
                    Some(m) => m.clone(),
                    None => Arc::new(read_matrix(&file.path, n, name)?),
                };
                if m.n != n {
                    return Err(CouplingError {
                        field: format!("coupling.kernel.{name}"),
                        message: format!(
                            "the matrix is {0} × {0}; the lattice has n = rows × cols = {n} cells",
                            m.n
                        ),
                    });
                }
                Ok(m)
            };
            return Ok(Self {
                grid,
                ee: Operator::Matrix(read(ee, "ee")?),
                ei: Some(Operator::Matrix(read(ei, "ei")?)),
            });
        }
        let ee = Operator::of_stencil(&coupling.kernel);
        let ei = coupling
            .kernel_ei
            .as_ref()
            .map(Operator::of_stencil)
            .filter(|op| *op != ee);
        Ok(Self { grid, ee, ei })
    }

    /// The lattice.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The same coupling with another boundary (the shape must not change).
    pub fn set_boundary(&mut self, boundary: Boundary) {
        self.grid.boundary = boundary;
    }

    /// The excitatory sum's operator.
    pub fn ee(&self) -> &Operator {
        &self.ee
    }

    /// The inhibitory sum's operator.
    pub fn ei(&self) -> &Operator {
        self.ei.as_ref().unwrap_or(&self.ee)
    }

    /// True when the two sums differ (two sums per cell).
    pub fn has_two_sums(&self) -> bool {
        self.ei.is_some()
    }

    /// True for the 4-neighbour stencil in both sums (the stepper's own
    /// loops).
    pub fn is_nearest(&self) -> bool {
        self.ei.is_none() && matches!(self.ee, Operator::Nearest)
    }

    /// The 4-neighbour sums of E of cells `g0 .. g0 + out.len()` (flattened
    /// index; the cells may span rows).
    #[inline(always)]
    pub(crate) fn nearest_sums_of_cells<T: Real>(&self, e: &[T], g0: usize, out: &mut [T]) {
        let grid = &self.grid;
        let cols = grid.cols;
        let row_of = |r: usize| &e[r * cols..(r + 1) * cols];
        for (r, c0, span) in row_pieces(cols, g0, out.len()) {
            neighbour_sums(
                grid.boundary,
                grid.row_above(r).map(row_of),
                grid.row_below(r).map(row_of),
                row_of(r),
                c0,
                &mut out[span],
            );
        }
    }

    /// True for general matrices (no stencil: the schedules run stage by stage).
    pub fn is_matrix(&self) -> bool {
        matches!(self.ee, Operator::Matrix(_))
    }

    /// The row reach of the stencils (the larger of the two); 0 for matrices.
    pub fn reach(&self) -> usize {
        self.ee
            .reach()
            .max(self.ei.as_ref().map_or(0, Operator::reach))
    }

    /// The cells that feed cell `i` with their excitatory and inhibitory
    /// weights `(j, w_ee, w_ei)`, by cell index; a cell reached through
    /// several offsets (on a small periodic lattice) gets their sum.
    pub fn inputs_of(&self, i: usize) -> Vec<(usize, f64, f64)> {
        let mut out = std::collections::BTreeMap::<usize, (f64, f64)>::new();
        let ops: &[(&Operator, bool, bool)] = match &self.ei {
            None => &[(&self.ee, true, true)],
            Some(ei) => &[(&self.ee, true, false), (ei, false, true)],
        };
        for &(op, to_ee, to_ei) in ops {
            let mut add = |j: usize, w: f64| {
                let entry = out.entry(j).or_default();
                if to_ee {
                    entry.0 += w;
                }
                if to_ei {
                    entry.1 += w;
                }
            };
            match op {
                Operator::Matrix(m) => m.inputs_of(i).for_each(|(j, w)| add(j, w)),
                _ => {
                    let (row, col) = self.grid.position(i);
                    for t in op.taps().expect("a stencil") {
                        for (dr, dc) in offsets(&t) {
                            if let Some(j) = self.offset_cell(row, col, dr, dc) {
                                add(j, t.weight);
                            }
                        }
                    }
                }
            }
        }
        out.into_iter().map(|(j, (a, b))| (j, a, b)).collect()
    }

    /// The cells each cell feeds (through either sum), for walking the
    /// lattice along the coupling.
    pub fn fed_cells(&self) -> FedCells<'_> {
        match (&self.ee, self.ei()) {
            (Operator::Matrix(ee), Operator::Matrix(ei)) => {
                let n = self.grid.len();
                let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
                for m in [ee, ei] {
                    for i in 0..n {
                        for (j, w) in m.inputs_of(i) {
                            if w != 0.0 && j != i {
                                out[j].push(i);
                            }
                        }
                    }
                }
                for list in &mut out {
                    list.sort_unstable();
                    list.dedup();
                }
                FedCells::Lists(out)
            }
            _ => {
                let mut offsets: Vec<(isize, isize)> = [&self.ee, self.ei()]
                    .into_iter()
                    .flat_map(|op| op.taps().unwrap_or_default())
                    .flat_map(|t| offsets(&t))
                    .collect();
                offsets.sort_unstable();
                offsets.dedup();
                FedCells::Offsets {
                    coupler: self,
                    offsets,
                }
            }
        }
    }

    /// The cell at `(row + dr, col + dc)`, wrapped on a periodic lattice;
    /// `None` past an open edge.
    pub fn offset_cell(&self, row: usize, col: usize, dr: isize, dc: isize) -> Option<usize> {
        let g = &self.grid;
        let (r, c) = (row as isize + dr, col as isize + dc);
        match g.boundary {
            Boundary::Open => ((0..g.rows as isize).contains(&r)
                && (0..g.cols as isize).contains(&c))
            .then(|| g.index(r as usize, c as usize)),
            Boundary::Periodic => Some(g.index(
                r.rem_euclid(g.rows as isize) as usize,
                c.rem_euclid(g.cols as isize) as usize,
            )),
        }
    }

    /// The coupling sums of the cells `g0 .. g0 + ee.len()` (flattened
    /// index, possibly over several rows) of the E field `e`: `ee` gets the
    /// excitatory sum, `ei` the inhibitory one when the two differ.
    #[inline(always)]
    pub(crate) fn sums_of_cells<M: MulAdd, T: Real>(
        &self,
        e: &[T],
        g0: usize,
        ee: &mut [T],
        ei: &mut [T],
        scratch: &mut [T],
    ) {
        let len = ee.len();
        if let Operator::Matrix(m) = &self.ee {
            m.inflow(e, g0, ee);
            if let Some(Operator::Matrix(m)) = &self.ei {
                m.inflow(e, g0, &mut ei[..len]);
            }
            return;
        }
        for (r, c0, span) in row_pieces(self.grid.cols, g0, len) {
            let window = RowWindow::around(&self.grid, e, r as isize, self.reach());
            self.row_sums::<M, T>(&window, c0, &mut ee[span.clone()], &mut ei[span], scratch);
        }
    }

    /// The coupling sums of columns `c0 .. c0 + ee.len()` of the row at the
    /// centre of `window` (stencils only).
    #[inline(always)]
    pub(crate) fn row_sums<M: MulAdd, T: Real>(
        &self,
        window: &RowWindow<'_, T>,
        c0: usize,
        ee: &mut [T],
        ei: &mut [T],
        scratch: &mut [T],
    ) {
        operator_sums::<M, T>(&self.ee, self.grid.boundary, window, c0, ee, scratch);
        if let Some(op) = &self.ei {
            let len = ee.len();
            operator_sums::<M, T>(op, self.grid.boundary, window, c0, &mut ei[..len], scratch);
        }
    }
}

/// The cells each cell feeds: by offsets for a stencil (stencils are
/// symmetric), by lists for matrices.
pub enum FedCells<'a> {
    /// A stencil's offsets on its lattice.
    Offsets {
        /// The coupling.
        coupler: &'a Coupler,
        /// Every offset with a weight.
        offsets: Vec<(isize, isize)>,
    },
    /// The cells each cell feeds, by index.
    Lists(Vec<Vec<usize>>),
}

impl FedCells<'_> {
    /// The cells that cell `k` feeds (other than itself).
    pub fn of(&self, k: usize) -> Vec<usize> {
        match self {
            Self::Offsets { coupler, offsets } => {
                let (row, col) = coupler.grid.position(k);
                offsets
                    .iter()
                    .filter_map(|&(dr, dc)| coupler.offset_cell(row, col, dr, dc))
                    .filter(|&j| j != k)
                    .collect()
            }
            Self::Lists(lists) => lists[k].clone(),
        }
    }
}

/// The distinct offsets a tap stands for.
fn offsets(t: &Tap) -> Vec<(isize, isize)> {
    let (dr, dc) = (t.dr as isize, t.dc as isize);
    let mut out = vec![(dr, dc), (-dr, dc), (dr, -dc), (-dr, -dc)];
    out.sort_unstable();
    out.dedup();
    out
}

/// The rows of one E field around a row: `rows[MAX_REACH + d]` is the row
/// `d` rows below (negative: above), `None` past an open edge or beyond
/// the reach in use.
pub(crate) struct RowWindow<'a, T> {
    pub(crate) rows: [Option<&'a [T]>; WINDOW],
}

impl<'a, T> RowWindow<'a, T> {
    /// The rows of the row-major field `e` within `reach` of row `r`.
    pub(crate) fn around(grid: &Grid, e: &'a [T], r: isize, reach: usize) -> Self {
        let cols = grid.cols;
        Self::from_fn(reach, |d| {
            physical_row(grid, r + d).map(|p| &e[p * cols..(p + 1) * cols])
        })
    }

    /// A window whose row at offset `d` (within `reach`) is `row(d)`.
    #[inline(always)]
    pub(crate) fn from_fn(reach: usize, mut row: impl FnMut(isize) -> Option<&'a [T]>) -> Self {
        let mut rows = [None; WINDOW];
        for d in -(reach as isize)..=reach as isize {
            rows[(MAX_REACH as isize + d) as usize] = row(d);
        }
        Self { rows }
    }

    /// The row at offset `d`.
    #[inline(always)]
    pub(crate) fn at(&self, d: isize) -> Option<&'a [T]> {
        self.rows[(MAX_REACH as isize + d) as usize]
    }
}

/// The pieces of the run of cells `g0 .. g0 + len` (flattened index) of a
/// lattice `cols` wide that lie in one row each: `(row, first column,
/// positions within the run)`.
#[inline(always)]
fn row_pieces(
    cols: usize,
    g0: usize,
    len: usize,
) -> impl Iterator<Item = (usize, usize, std::ops::Range<usize>)> {
    let mut g = g0;
    std::iter::from_fn(move || {
        (g < g0 + len).then(|| {
            let (r, c0) = (g / cols, g % cols);
            let piece = (cols - c0).min(g0 + len - g);
            let span = g - g0..g - g0 + piece;
            g += piece;
            (r, c0, span)
        })
    })
}

/// The physical row of a row index that may lie past the edges, or `None`
/// past an open edge.
#[inline(always)]
pub(crate) fn physical_row(grid: &Grid, v: isize) -> Option<usize> {
    let rows = grid.rows as isize;
    match grid.boundary {
        Boundary::Open => (0..rows).contains(&v).then_some(v as usize),
        Boundary::Periodic => Some(v.rem_euclid(rows) as usize),
    }
}

#[inline(always)]
fn operator_sums<M: MulAdd, T: Real>(
    op: &Operator,
    boundary: Boundary,
    window: &RowWindow<'_, T>,
    c0: usize,
    out: &mut [T],
    scratch: &mut [T],
) {
    let row = window.at(0).expect("the centre row exists");
    match op {
        Operator::Nearest => {
            neighbour_sums(boundary, window.at(-1), window.at(1), row, c0, out);
        }
        Operator::Stencil { reach, taps } => {
            stencil_sums::<M, T>(taps, *reach, boundary, window, c0, out, scratch)
        }
        Operator::Matrix(_) => unreachable!("matrices have no rows"),
    }
}

/// The stencil sums of one chunk: first the pair sums
/// `p_dr[x] = E[r − dr][x] + E[r + dr][x]` over the chunk's columns and
/// `reach` more on each side (wrapped, or zero past an open edge), then
/// each tap adds `w · (p_dr[c − dc] + p_dr[c + dc])` with a multiply-add
/// (fused where the SIMD level has it, as the GPU kernel's `fma`).
#[inline(always)]
fn stencil_sums<M: MulAdd, T: Real>(
    taps: &[Tap],
    reach: usize,
    boundary: Boundary,
    window: &RowWindow<'_, T>,
    c0: usize,
    out: &mut [T],
    scratch: &mut [T],
) {
    let row = window.at(0).expect("the centre row exists");
    let cols = row.len();
    let len = out.len();
    let width = len + 2 * reach;
    let start = c0 as isize - reach as isize;
    for dr in 0..=reach {
        let p = &mut scratch[dr * width..(dr + 1) * width];
        let (a, b) = if dr == 0 {
            (Some(row), None)
        } else {
            (window.at(-(dr as isize)), window.at(dr as isize))
        };
        fill_padded(a, b, boundary, start, cols, p);
    }
    out.fill(T::ZERO);
    for t in taps {
        let p = &scratch[t.dr * width..(t.dr + 1) * width];
        let w = T::of(t.weight);
        if t.dc == 0 {
            for (o, x) in out.iter_mut().zip(&p[reach..reach + len]) {
                *o = M::mul_add(w, *x, *o);
            }
        } else {
            let left = &p[reach - t.dc..reach - t.dc + len];
            let right = &p[reach + t.dc..reach + t.dc + len];
            for ((o, &l), &r) in out.iter_mut().zip(left).zip(right) {
                *o = M::mul_add(w, l + r, *o);
            }
        }
    }
}

/// `p[x] = a[col] + b[col]` for the columns `col = start + x` (either row
/// may be missing), wrapped on a periodic lattice, zero past an open edge.
#[inline(always)]
fn fill_padded<T: Real>(
    a: Option<&[T]>,
    b: Option<&[T]>,
    boundary: Boundary,
    start: isize,
    cols: usize,
    p: &mut [T],
) {
    let lo = (-start).clamp(0, p.len() as isize) as usize;
    let hi = (cols as isize - start).clamp(lo as isize, p.len() as isize) as usize;
    let inner = (start + lo as isize) as usize..(start + hi as isize) as usize;
    match (a, b) {
        (Some(a), Some(b)) => {
            for ((o, &x), &y) in p[lo..hi].iter_mut().zip(&a[inner.clone()]).zip(&b[inner]) {
                *o = x + y;
            }
        }
        (Some(x), None) | (None, Some(x)) => p[lo..hi].copy_from_slice(&x[inner]),
        (None, None) => p[lo..hi].fill(T::ZERO),
    }
    let outside = (0..lo).chain(hi..p.len());
    for x in outside {
        let col = start + x as isize;
        p[x] = match boundary {
            Boundary::Open => T::ZERO,
            Boundary::Periodic => {
                let c = col.rem_euclid(cols as isize) as usize;
                a.map_or(T::ZERO, |a| a[c]) + b.map_or(T::ZERO, |b| b[c])
            }
        };
    }
}

/// Reads the `ee` or `ei` matrix of a `Matrix` kernel for `n` cells; an
/// error names the field.
fn read_matrix(path: &Path, n: usize, name: &str) -> Result<CouplingMatrix, CouplingError> {
    CouplingMatrix::read(path, n).map_err(|message| CouplingError {
        field: format!("coupling.kernel.{name}"),
        message,
    })
}

/// Reads the matrices of a `Matrix` kernel that are not read yet, relative
/// to `base` (the scene file's folder), for a lattice of `n` cells.
pub fn read_matrices(kernel: &mut Kernel, base: &Path, n: usize) -> Result<(), CouplingError> {
    if let Kernel::Matrix { ee, ei } = kernel {
        for (file, name) in [(ee, "ee"), (ei, "ei")] {
            if file.matrix.is_some() {
                continue;
            }
            if file.path.is_relative() {
                file.path = base.join(&file.path);
            }
            file.matrix = Some(Arc::new(read_matrix(&file.path, n, name)?));
        }
    }
    Ok(())
}

/// Puts the matrices of a `Matrix` kernel into the folder `dir` as
/// `coupling_ee.*` and `coupling_ei.*` (a copy of each file as it is, or,
/// for a matrix given in memory, a CSC `.npz`) and points the kernel at
/// them by relative path, so that a scene written into `dir` reruns from
/// there. Other kernels are left as they are.
pub fn store_matrices(kernel: &mut Kernel, dir: &Path) -> Result<(), String> {
    let Kernel::Matrix { ee, ei } = kernel else {
        return Ok(());
    };
    for (file, name) in [(ee, "coupling_ee"), (ei, "coupling_ei")] {
        let source = file.path.clone();
        let from_file = source.is_file();
        let ext = match source.extension().and_then(|e| e.to_str()) {
            Some(ext @ ("npy" | "npz")) if from_file => ext,
            _ if from_file => "npy",
            _ => "npz",
        };
        let target = dir.join(format!("{name}.{ext}"));
        if from_file {
            let same = std::fs::canonicalize(&source).ok() == std::fs::canonicalize(&target).ok();
            if !same {
                std::fs::copy(&source, &target).map_err(|e| {
                    format!(
                        "cannot copy {} to {}: {e}",
                        source.display(),
                        target.display()
                    )
                })?;
            }
        } else {
            let m = file.matrix.as_ref().ok_or_else(|| {
                format!(
                    "the coupling matrix {} is neither read nor a file",
                    source.display()
                )
            })?;
            m.write_npz(&target)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        }
        file.path = target
            .file_name()
            .map(std::path::PathBuf::from)
            .unwrap_or(target);
    }
    Ok(())
}
