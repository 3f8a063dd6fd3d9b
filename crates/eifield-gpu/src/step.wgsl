// Stages FIRST..END of a step of the lattice ODE (RK4, Heun or Euler) per
// dispatch: all of them (the fused kernel), or one (for stencils too wide
// for it).
//
// Each workgroup loads a TILE × TILE square of the stage input, HALO cells
// wider than the square it writes on every side, into workgroup memory.
// Stage s needs the stage input of the cells its stencil reaches, so the
// valid part of the square shrinks by the stencil's reach per stage; with
// HALO = (END − FIRST) · reach the inner square is still valid after the
// last. The fused kernel reads and writes the lattice once per step.
//
// A batch of MEMBERS lattices of one grid runs in one dispatch: workgroup
// z works on member z, whose cells follow the previous members' in every
// buffer and whose constants are `params[z]` (an inactive member keeps its
// state).
//
// The preamble (written by shader.rs) defines `real`, the constants TILE,
// HALO, STAGES (of the method), FIRST, END, CELLS (cells per invocation),
// WG and MEMBERS, and the functions `tanh3(a, b, c) -> array<real, 3>` and
// `mul_add(a, b, c)`; after this file come `stage_input(k, y)`,
// `stored_slopes(k)` and `store(k, e, i, acc_e, acc_i)` (where a dispatch
// gets its inputs and leaves its results, with the bindings they use) and
// `coupling_sums(tr, tc) -> vec2<real>`, the kernel's sums.

struct Params {
    rows: i32,
    cols: i32,
    periodic: u32,
    // 0: the member keeps its state (it has reached its target time).
    running: u32,
    // Stage coefficients of the step: next = y + a_s·k (s < STAGES − 1),
    // new state = y + w·(acc + k) (or y + w·k for Euler).
    a0: real,
    a1: real,
    a2: real,
    w: real,
    tau_ex: real,
    tau_in: real,
    c2: real,
    c4: real,
    c_ee: real,
    c_ei: real,
    frac_ee: real,
    frac_ei: real,
    self_weight: real,
    // Pads the size to a multiple of 16 bytes (as uniform arrays need).
    _pad1: real,
    _pad2: real,
    _pad3: real,
}

@group(0) @binding(0) var<uniform> params: array<Params, MEMBERS>;
// This workgroup's member's constants.
var<private> p: Params;
@group(0) @binding(1) var<storage, read> e_in: array<real>;
@group(0) @binding(2) var<storage, read> i_in: array<real>;
@group(0) @binding(5) var<storage, read> drive: array<real>;
@group(0) @binding(6) var<storage, read> h_in: array<real>;

var<workgroup> tile_e: array<real, TILE_CELLS>;

// Row-major index of lattice cell (r, c), wrapped on a periodic lattice;
// −1 outside an open one.
fn lattice_index(r: i32, c: i32) -> i32 {
    if p.periodic != 0u {
        let rr = ((r % p.rows) + p.rows) % p.rows;
        let cc = ((c % p.cols) + p.cols) % p.cols;
        return rr * p.cols + cc;
    }
    if r < 0 || r >= p.rows || c < 0 || c >= p.cols {
        return -1;
    }
    return r * p.cols + c;
}

// Stage input of E at tile position (r, c); 0 beyond the tile (only cells
// whose results are thrown away read there).
fn tile_at(r: i32, c: i32) -> real {
    if r < 0 || r >= TILE || c < 0 || c >= TILE {
        return real(0.0);
    }
    return tile_e[r * TILE + c];
}

@compute @workgroup_size(WG, WG, 1)
fn step(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    p = params[group.z];
    let base = i32(group.z) * p.rows * p.cols;
    let out_side = TILE - 2 * HALO;
    let r0 = i32(group.y) * out_side - HALO;
    let c0 = i32(group.x) * out_side - HALO;

    var idx: array<i32, CELLS>;
    var ye: array<real, CELLS>;
    var yi: array<real, CELLS>;
    var si: array<real, CELLS>;
    var ne: array<real, CELLS>;
    var acc_e: array<real, CELLS>;
    var acc_i: array<real, CELLS>;
    var drv: array<real, CELLS>;
    var hin: array<real, CELLS>;

    for (var s = 0; s < CELLS; s++) {
        let tr = i32(local.y) + WG * (s / SPAN);
        let tc = i32(local.x) + WG * (s % SPAN);
        let k = lattice_index(r0 + tr, c0 + tc);
        idx[s] = k;
        var x = vec2<real>(real(0.0));
        var acc = vec2<real>(real(0.0));
        if k >= 0 {
            let g = base + k;
            ye[s] = e_in[g];
            yi[s] = i_in[g];
            drv[s] = drive[g];
            hin[s] = h_in[g];
            x = stage_input(g, vec2<real>(ye[s], yi[s]));
            acc = stored_slopes(g);
        } else {
            ye[s] = real(0.0);
            yi[s] = real(0.0);
            drv[s] = real(0.0);
            hin[s] = real(0.0);
        }
        tile_e[tr * TILE + tc] = x.x;
        si[s] = x.y;
        acc_e[s] = acc.x;
        acc_i[s] = acc.y;
    }
    workgroupBarrier();

    for (var stage = FIRST; stage < END; stage++) {
        var a = p.a0;
        if stage == 1 {
            a = p.a1;
        } else if stage == 2 {
            a = p.a2;
        }
        let last = stage == STAGES - 1;
        for (var s = 0; s < CELLS; s++) {
            let tr = i32(local.y) + WG * (s / SPAN);
            let tc = i32(local.x) + WG * (s % SPAN);
            let e = tile_e[tr * TILE + tc];
            // Missing neighbours are 0, so these are the CPU's sums.
            let sums = coupling_sums(tr, tc);
            let own = p.self_weight * e;
            let u = mul_add(p.frac_ee, sums.x, own);
            let v = mul_add(p.frac_ei, sums.y, own);
            let t = tanh3(si[s], u, v);
            let de = mul_add(p.c_ee, t[1], mul_add(-p.c2, t[0], drv[s] - e)) * p.tau_ex;
            let di = mul_add(p.c_ei, t[2], mul_add(-p.c4, t[0], hin[s] - si[s])) * p.tau_in;
            if STAGES == 1 {
                ne[s] = ye[s] + p.w * de;
                si[s] = yi[s] + p.w * di;
            } else if last {
                ne[s] = ye[s] + p.w * (acc_e[s] + de);
                si[s] = yi[s] + p.w * (acc_i[s] + di);
            } else {
                if stage == 0 {
                    acc_e[s] = de;
                    acc_i[s] = di;
                } else {
                    acc_e[s] += real(2.0) * de;
                    acc_i[s] += real(2.0) * di;
                }
                ne[s] = ye[s] + a * de;
                si[s] = yi[s] + a * di;
            }
        }
        if stage + 1 < END {
            workgroupBarrier();
            for (var s = 0; s < CELLS; s++) {
                let tr = i32(local.y) + WG * (s / SPAN);
                let tc = i32(local.x) + WG * (s % SPAN);
                // Cells beyond an open edge stay 0.
                if idx[s] >= 0 {
                    tile_e[tr * TILE + tc] = ne[s];
                }
            }
            workgroupBarrier();
        }
    }

    let keep = p.running == 0u;
    for (var s = 0; s < CELLS; s++) {
        let tr = i32(local.y) + WG * (s / SPAN);
        let tc = i32(local.x) + WG * (s % SPAN);
        let r = r0 + tr;
        let c = c0 + tc;
        let inner = tr >= HALO && tr < HALO + out_side && tc >= HALO && tc < HALO + out_side;
        // Each cell once: its own position, not a periodic copy.
        if inner && r >= 0 && r < p.rows && c >= 0 && c < p.cols {
            let e = select(ne[s], ye[s], keep);
            let i = select(si[s], yi[s], keep);
            store(base + r * p.cols + c, e, i, acc_e[s], acc_i[s]);
        }
    }
}
