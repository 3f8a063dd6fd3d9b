//! The WGSL of the engine: a preamble written here for each precision and
//! method (the scalar type, tile constants and the `tanh` used), followed by
//! the step kernel (`step.wgsl`), the helper kernels (`util.wgsl`) or the
//! kernels that follow the state for a host (`watch.wgsl`).

use eifield_model::coupling::{Coupler, Operator};
use eifield_model::fastmath::{Q_IN_H, SATURATION, TWO_LOG2_E, TWO_P_IN_H};
use eifield_model::stepper::Method;

/// Floating-point precision of the state and the arithmetic on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Double precision (needs `wgpu::Features::SHADER_F64`).
    F64,
    /// Single precision (any adapter).
    F32,
}

impl Precision {
    /// `"f64"` or `"f32"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F64 => "f64",
            Self::F32 => "f32",
        }
    }

    /// Bytes of one value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
        }
    }

    /// `values` as this precision's little-endian bytes (f32 rounds).
    pub fn encode(self, values: &[f64]) -> Vec<u8> {
        match self {
            Self::F64 => bytemuck::cast_slice(values).to_vec(),
            Self::F32 => {
                let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
                bytemuck::cast_slice(&v).to_vec()
            }
        }
    }

    /// Values of this precision read from little-endian `bytes`, as f64.
    pub fn decode(self, bytes: &[u8]) -> Vec<f64> {
        match self {
            Self::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
            Self::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()) as f64)
                .collect(),
        }
    }
}

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

/// Cells each step workgroup writes along a side, for a tile side,
/// `method` and a stencil reaching `reach` rows (the halo is `reach` cells
/// per stage); 0 when the halo leaves nothing.
pub fn output_side(tile: usize, method: Method, reach: usize) -> usize {
    tile.saturating_sub(2 * method.stages() * reach)
}

/// The fewest cells along a side a step workgroup writes: a halo that
/// leaves fewer is too wide for the fused kernel.
pub const MIN_OUTPUT_SIDE: usize = 8;

/// The tile side to use when `requested` is asked for: `requested` itself
/// when its halo leaves at least half of its side to write; else the
/// smallest larger tile of [`TILES`] that does; else the largest tile if its
/// halo leaves at least [`MIN_OUTPUT_SIDE`] cells; `None` when even that
/// does not (a stencil too wide for the fused kernel).
pub fn tile_for(requested: usize, method: Method, reach: usize) -> Option<usize> {
    let efficient = |t: usize| output_side(t, method, reach) * 2 >= t;
    if efficient(requested) {
        return Some(requested);
    }
    if let Some(t) = TILES.into_iter().find(|&t| t > requested && efficient(t)) {
        return Some(t);
    }
    let largest = TILES[TILES.len() - 1].max(requested);
    (output_side(largest, method, reach) >= MIN_OUTPUT_SIDE).then_some(largest)
}

#[cfg(test)]
#[test]
fn wide_stencils_get_larger_tiles() {
    let rk4 = |reach| tile_for(DEFAULT_TILE, Method::Rk4, reach);
    assert_eq!(rk4(1), Some(32));
    assert_eq!(rk4(2), Some(32));
    assert_eq!(rk4(3), Some(48));
    assert_eq!(rk4(4), Some(64));
    assert_eq!(rk4(7), Some(64));
    assert_eq!(rk4(8), None);
    assert_eq!(tile_for(64, Method::Rk4, 1), Some(64));
    assert_eq!(tile_for(DEFAULT_TILE, Method::Euler, 8), Some(32));
}

/// The WGSL of `coupling_sums(tr, tc)`: the coupling sums of E (excitatory,
/// inhibitory) at tile position `(tr, tc)`, in the CPU engine's order: the
/// 4-neighbour stencil as `(up + down) + (left + right)`, other stencils tap
/// by tap, each adding `w · (pair sum at c − dc + pair sum at c + dc)` with
/// a fused multiply-add (as the CPU engine's fused SIMD levels do).
fn coupling_function(coupler: &Coupler) -> String {
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

/// The step kernel for a precision, method, tile side (one of [`TILES`])
/// and stencil coupling (not a matrix).
pub fn step_source(precision: Precision, method: Method, tile: usize, coupler: &Coupler) -> String {
    let span = tile / WORKGROUP_SIDE;
    format!(
        "{scalar}const WG: i32 = {wg};\nconst TILE: i32 = {tile};\nconst TILE_CELLS: i32 = {cells};\n\
         const SPAN: i32 = {span};\nconst CELLS: i32 = {per};\nconst HALO: i32 = {halo};\n\
         const STAGES: i32 = {stages};\n\n\
         fn mul_add(a: real, b: real, c: real) -> real {{\n    return fma(a, b, c);\n}}\n\n\
         {tanh}\n{body}\n{coupling}",
        scalar = scalar_preamble(precision),
        wg = WORKGROUP_SIDE,
        tile = tile,
        cells = tile * tile,
        per = span * span,
        halo = method.stages() * coupler.reach(),
        stages = method.stages(),
        tanh = tanh_functions(precision),
        body = include_str!("step.wgsl"),
        coupling = coupling_function(coupler),
    )
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
                        if output_side(tile, method, coupler.reach()) > 0 {
                            validate(&step_source(precision, method, tile, coupler));
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
