//! The WGSL of the engine: a preamble written here for each precision and
//! method (the scalar type, tile constants and the `tanh` used), followed by
//! the step kernel (`step.wgsl`), the helper kernels (`util.wgsl`) or the
//! kernels that follow the state for a host (`watch.wgsl`).

use eifield_model::coupling::{Coupler, Operator};
use eifield_model::fastmath::{Q_IN_H, SATURATION, TWO_LOG2_E, TWO_P_IN_H};
use eifield_model::stepper::Method;

/// Floating-point precision of the state and the arithmetic on the GPU: the
/// model crate's, so that the CPU and the GPU engines name it alike.
pub use eifield_model::Precision;

/// Invocations along each side of a workgroup.
pub const WORKGROUP_SIDE: usize = 16;
/// The default side of the square of cells a workgroup loads: it writes the
/// inner `tile − 2·halo` square, so larger tiles recompute fewer halo cells
/// (RK4: 27 % extra work at 32, 16 % at 48) but hold more values per
/// invocation.
pub const DEFAULT_TILE: usize = 32;
/// The tile sides a step kernel can be built with (multiples of
/// [`WORKGROUP_SIDE`]).
pub const TILES: [usize; 3] = [32, 48, 64];

/// Cells each step workgroup writes along a side, for a tile side and a
/// halo of `halo` cells (the stencil's reach times the stages a dispatch
/// computes); 0 when the halo leaves nothing.
pub fn output_side(tile: usize, halo: usize) -> usize {
    tile.saturating_sub(2 * halo)
}

/// The fewest cells along a side a step workgroup writes: a halo that
/// leaves fewer is too wide for the kernel.
pub const MIN_OUTPUT_SIDE: usize = 8;

/// The tile side to use when `requested` is asked for with a halo of `halo`
/// cells: `requested` itself when the halo leaves at least half of its side
/// to write; else the smallest larger tile of [`TILES`] that does; else the
/// largest tile if its halo leaves at least [`MIN_OUTPUT_SIDE`] cells;
/// `None` when even that does not (a halo too wide for the kernel).
pub fn tile_for(requested: usize, halo: usize) -> Option<usize> {
    let efficient = |t: usize| output_side(t, halo) * 2 >= t;
    if efficient(requested) {
        return Some(requested);
    }
    if let Some(t) = TILES.into_iter().find(|&t| t > requested && efficient(t)) {
        return Some(t);
    }
    let largest = TILES[TILES.len() - 1].max(requested);
    (output_side(largest, halo) >= MIN_OUTPUT_SIDE).then_some(largest)
}

/// How the step kernel runs a method with a stencil reaching `reach`
/// cells, from a requested tile side: fused where its halo fits a tile
/// (RK4 up to reach 7), else one dispatch per stage (every reach up to the
/// largest, 16, fits a tile then); with the tile side to use.
pub fn step_plan(requested: usize, method: Method, reach: usize) -> (bool, usize) {
    match tile_for(requested, method.stages() * reach) {
        Some(tile) => (false, tile),
        None => (true, per_stage_tile(requested, reach)),
    }
}

/// The tile side for one dispatch per stage with a stencil reaching
/// `reach` cells.
pub fn per_stage_tile(requested: usize, reach: usize) -> usize {
    tile_for(requested, reach).expect("every stencil reach fits a tile one stage at a time")
}

#[cfg(test)]
#[test]
fn wide_stencils_get_larger_tiles_then_one_dispatch_per_stage() {
    let rk4 = |reach| step_plan(DEFAULT_TILE, Method::Rk4, reach);
    assert_eq!(rk4(1), (false, 32));
    assert_eq!(rk4(2), (false, 32));
    assert_eq!(rk4(3), (false, 48));
    assert_eq!(rk4(4), (false, 64));
    assert_eq!(rk4(7), (false, 64));
    assert_eq!(rk4(8), (true, 32));
    assert_eq!(rk4(9), (true, 48));
    assert_eq!(rk4(16), (true, 64));
    assert_eq!(step_plan(64, Method::Rk4, 1), (false, 64));
    assert_eq!(step_plan(DEFAULT_TILE, Method::Euler, 8), (false, 32));
    assert_eq!(step_plan(DEFAULT_TILE, Method::Euler, 16), (false, 64));
    assert_eq!(
        step_plan(
            DEFAULT_TILE,
            Method::Heun,
            eifield_model::coupling::MAX_REACH
        ),
        (true, 64)
    );
}

/// The WGSL of `coupling_sums(tr, tc)`: the coupling sums of E (excitatory,
/// inhibitory) at tile position `(tr, tc)`, in the CPU engine's order: the
/// 4-neighbour stencil as `(up + down) + (left + right)`, other stencils tap
/// by tap, each adding `w · (pair sum at c − dc + pair sum at c + dc)` with
/// a fused multiply-add (as the CPU engine's fused SIMD levels do).
pub(crate) fn coupling_function(coupler: &Coupler) -> String {
    let sum = |op: &Operator| -> String {
        match op {
            Operator::Nearest => "    s = (tile_at(tr - 1, tc) + tile_at(tr + 1, tc)) \
                                  + (tile_at(tr, tc - 1) + tile_at(tr, tc + 1));\n"
                .to_string(),
            Operator::Stencil { taps, .. } => {
                let mut out = String::new();
                for t in taps {
                    let (dr, dc) = (t.dr, t.dc);
                    let pair = |c: String| {
                        if dr == 0 {
                            format!("tile_at(tr, {c})")
                        } else {
                            format!("(tile_at(tr - {dr}, {c}) + tile_at(tr + {dr}, {c}))")
                        }
                    };
                    let term = if dc == 0 {
                        pair("tc".into())
                    } else {
                        format!(
                            "({} + {})",
                            pair(format!("tc - {dc}")),
                            pair(format!("tc + {dc}"))
                        )
                    };
                    out.push_str(&format!(
                        "    s = fma(real({}), {term}, s);\n",
                        literal(t.weight)
                    ));
                }
                out
            }
            Operator::Matrix(_) => unreachable!("matrices have no GPU stencil"),
        }
    };
    let ei = if coupler.has_two_sums() {
        format!(
            "    let s_ee = s;\n    s = real(0.0);\n{}    return vec2<real>(s_ee, s);\n",
            sum(coupler.ei())
        )
    } else {
        "    return vec2<real>(s, s);\n".to_string()
    };
    format!(
        "fn coupling_sums(tr: i32, tc: i32) -> vec2<real> {{\n    var s = real(0.0);\n{}{ei}}}\n",
        sum(coupler.ee())
    )
}

/// A WGSL float literal that reads back as exactly `x` (Rust's shortest
/// round-trip form, in exponent notation so that it is never an integer).
fn literal(x: f64) -> String {
    format!("{x:e}")
}

/// The hyperbolic tangent of three arguments for `precision`. In f64 it is the
/// CPU engine's branch-free `tanh` (its fused-multiply-add form, with the
/// same constants), because WGSL's `tanh` has no f64 form on Vulkan; in f32
/// it is WGSL's own.
fn tanh_functions(precision: Precision) -> String {
    match precision {
        Precision::F32 => "fn tanh3(a: real, b: real, c: real) -> array<real, 3> {\n    \
                           return array<real, 3>(tanh(a), tanh(b), tanh(c));\n}\n"
            .to_string(),
        Precision::F64 => {
            let [p0, p1, p2] = TWO_P_IN_H.map(literal);
            let [q0, q1, q2, q3] = Q_IN_H.map(literal);
            format!(
                "// tanh(x) = num / den, num with the sign of x (see the CPU engine's fastmath).
fn tanh_fraction(x: real) -> vec2<real> {{
    var z = abs(x);
    z = select(z, real({saturation}), z > real({saturation}));
    // The CPU rounds with a shifter constant, (x + S) − S; shader compilers
    // may fold that to x, so round() it is (any nearby integer works).
    let n = round(z * real({two_log2_e}));
    let h = fma(-n, real({half_ln2}), z);
    let h2 = h * h;
    let two_p = h * fma(fma(real({p0}), h2, real({p1})), h2, real({p2}));
    let q = fma(fma(fma(real({q0}), h2, real({q1})), h2, real({q2})), h2, real({q3}));
    let scale = ldexp(real(1.0), i32(n));
    let d = fma(real(-0.5), two_p, q);
    let num = fma(scale - real(1.0), d, scale * two_p);
    let den = fma(real(2.0), d, num);
    return vec2<real>(select(num, -num, x < real(0.0)), den);
}}

// Three tangents sharing one division.
fn tanh3(a: real, b: real, c: real) -> array<real, 3> {{
    let fa = tanh_fraction(a);
    let fb = tanh_fraction(b);
    let fc = tanh_fraction(c);
    let dab = fa.y * fb.y;
    let r = real(1.0) / (dab * fc.y);
    let rab = r * fc.y;
    return array<real, 3>(fa.x * fb.y * rab, fb.x * fa.y * rab, fc.x * dab * r);
}}
",
                saturation = literal(SATURATION),
                two_log2_e = literal(TWO_LOG2_E),
                half_ln2 = literal(0.5 * std::f64::consts::LN_2),
            )
        }
    }
}

/// The scalar type and the largest finite value of a precision.
fn scalar_preamble(precision: Precision) -> String {
    let max = match precision {
        Precision::F64 => literal(f64::MAX),
        Precision::F32 => literal(f32::MAX as f64),
    };
    format!(
        "alias real = {};\nconst MAX_FINITE: real = {max};\n",
        precision.name()
    )
}

/// Which stages of a step one dispatch of the step kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stages {
    /// All of them, in workgroup memory: the lattice is read and written once
    /// per step, and the halo is `stages · reach` cells.
    Fused,
    /// Stage `s` alone: the stage input and the accumulated slopes go
    /// through buffers between dispatches, and the halo is `reach` cells.
    /// For stencils too wide for the fused kernel (same arithmetic, so the
    /// same bits as the fused kernel).
    One(usize),
}

impl Stages {
    /// The stages whose halo a dispatch needs.
    pub fn halo_stages(self, method: Method) -> usize {
        match self {
            Self::Fused => method.stages(),
            Self::One(_) => 1,
        }
    }
}

/// The step kernel for a precision, method, tile side (one of [`TILES`]),
/// stencil coupling (not a matrix), the stages one dispatch computes and
/// the lattices (members) one dispatch advances (1 for one lattice).
///
/// Bindings: 0 the step's constants, 1–2 E and I at the start of the step,
/// 5 the drive, 6 `h_in`; the dispatch that ends the step writes the new E
/// and I to 3–4. A single stage `s > 0` reads its input (E then I, one
/// array) from 7, one before the last writes its output to 8, and the
/// accumulated slopes (E then I) live in 9. Every buffer holds the
/// members one after the other (E of every member, then I, in 7–9), and
/// binding 0 one constant block per member.
pub fn step_source(
    precision: Precision,
    method: Method,
    tile: usize,
    coupler: &Coupler,
    stages: Stages,
    members: usize,
) -> String {
    let span = tile / WORKGROUP_SIDE;
    let count = method.stages();
    let (first, end) = match stages {
        Stages::Fused => (0, count),
        Stages::One(s) => (s, s + 1),
    };
    format!(
        "{scalar}const WG: i32 = {wg};\nconst TILE: i32 = {tile};\nconst TILE_CELLS: i32 = {cells};\n\
         const SPAN: i32 = {span};\nconst CELLS: i32 = {per};\nconst HALO: i32 = {halo};\n\
         const STAGES: i32 = {count};\nconst FIRST: i32 = {first};\nconst END: i32 = {end};\n\
         const MEMBERS: i32 = {members};\n\n\
         fn mul_add(a: real, b: real, c: real) -> real {{\n    return fma(a, b, c);\n}}\n\n\
         {tanh}\n{body}\n{exchange}\n{coupling}",
        scalar = scalar_preamble(precision),
        wg = WORKGROUP_SIDE,
        cells = tile * tile,
        per = span * span,
        halo = stages.halo_stages(method) * coupler.reach(),
        tanh = tanh_functions(precision),
        body = include_str!("step.wgsl"),
        exchange = exchange_functions(first, end, count),
        coupling = coupling_function(coupler),
    )
}

/// The WGSL through which a dispatch running stages `first..end` of
/// `count` gets its inputs and leaves its results: `stage_input(k, y)` (E
/// and I that the first stage reads at cell `k`, whose step started from
/// `y`), `stored_slopes(k)` (the slopes accumulated before it) and
/// `store(k, e, i, acc_e, acc_i)` (what the last stage leaves).
fn exchange_functions(first: usize, end: usize, count: usize) -> String {
    let binding = |b: u32, access: &str, name: &str| {
        format!("@group(0) @binding({b}) var<storage, {access}> {name}: array<real>;\n")
    };
    let mut out = String::new();
    if first == 0 {
        out.push_str("fn stage_input(k: i32, y: vec2<real>) -> vec2<real> {\n    return y;\n}\n");
        out.push_str(
            "fn stored_slopes(k: i32) -> vec2<real> {\n    return vec2<real>(real(0.0));\n}\n",
        );
    } else {
        out.push_str(&binding(7, "read", "stage_in"));
        out.push_str(
            "fn stage_input(k: i32, y: vec2<real>) -> vec2<real> {\n    \
             return vec2<real>(stage_in[k], stage_in[MEMBERS * p.rows * p.cols + k]);\n}\n\
             fn stored_slopes(k: i32) -> vec2<real> {\n    \
             return vec2<real>(slopes[k], slopes[MEMBERS * p.rows * p.cols + k]);\n}\n",
        );
    }
    let ends_step = end == count;
    if count > 1 && (first > 0 || !ends_step) {
        let access = if ends_step { "read" } else { "read_write" };
        out.push_str(&binding(9, access, "slopes"));
    }
    if ends_step {
        out.push_str(&binding(3, "read_write", "e_out"));
        out.push_str(&binding(4, "read_write", "i_out"));
        out.push_str(
            "fn store(k: i32, e: real, i: real, acc_e: real, acc_i: real) {\n    \
             e_out[k] = e;\n    i_out[k] = i;\n}\n",
        );
    } else {
        out.push_str(&binding(8, "read_write", "stage_out"));
        out.push_str(
            "fn store(k: i32, e: real, i: real, acc_e: real, acc_i: real) {\n    \
             let n = MEMBERS * p.rows * p.cols;\n    stage_out[k] = e;\n    stage_out[n + k] = i;\n    \
             slopes[k] = acc_e;\n    slopes[n + k] = acc_i;\n}\n",
        );
    }
    out
}

/// The helper kernels (`scatter`, `check`, `residual`) for a precision.
pub fn util_source(precision: Precision) -> String {
    format!(
        "{}\n{}",
        scalar_preamble(precision),
        include_str!("util.wgsl")
    )
}

/// The kernels that follow the state for a host (`gather`, `activate`) for
/// a precision.
pub fn watch_source(precision: Precision) -> String {
    format!(
        "{}\n{}",
        scalar_preamble(precision),
        include_str!("watch.wgsl")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates a module with naga as wgpu would, with f64 allowed.
    fn validate(source: &str) {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::FLOAT64,
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
    }

    #[test]
    fn every_kernel_is_valid_wgsl_in_both_precisions() {
        for precision in [Precision::F64, Precision::F32] {
            let grid = eifield_model::Grid::new(5, 6, eifield_model::Boundary::Open);
            let disk = eifield_model::scene::Coupling {
                kernel: eifield_model::scene::Kernel::Disk {
                    radius: 2.5,
                    profile: eifield_model::scene::Profile::Gaussian { sigma: 1.2 },
                },
                kernel_ei: Some(eifield_model::scene::Kernel::Nearest),
                ..Default::default()
            };
            let couplers = [Coupler::nearest(grid), Coupler::build(&disk, grid).unwrap()];
            for method in [Method::Rk4, Method::Heun, Method::Euler] {
                for tile in TILES {
                    for coupler in &couplers {
                        if output_side(tile, method.stages() * coupler.reach()) > 0 {
                            for members in [1, 3] {
                                validate(&step_source(
                                    precision,
                                    method,
                                    tile,
                                    coupler,
                                    Stages::Fused,
                                    members,
                                ));
                            }
                        }
                        for s in 0..method.stages() {
                            validate(&step_source(
                                precision,
                                method,
                                tile,
                                coupler,
                                Stages::One(s),
                                2,
                            ));
                        }
                    }
                }
            }
            validate(&util_source(precision));
            validate(&watch_source(precision));
        }
    }

    #[test]
    fn literals_read_back_exactly() {
        for x in [TWO_LOG2_E, f64::MAX, 0.1, TWO_P_IN_H[0]] {
            let text = literal(x);
            assert_eq!(text.parse::<f64>().unwrap(), x, "{text}");
        }
    }
}
