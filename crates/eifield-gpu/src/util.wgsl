// Small kernels around the step: writing a few cells of a buffer (the drive
// of stimulated cells, edits of the state), finding the first non-finite
// value of the state, and the largest change between two states (the
// derivatives, while relaxing to rest). Each invocation walks the work with a grid stride, so
// any lattice size fits in one fixed dispatch. The preamble defines `real`
// and MAX_FINITE.

struct Counts {
    // Number of cells (check) or of values to write (scatter).
    n: u32,
    // Invocations in the whole dispatch.
    stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> counts: Counts;
@group(0) @binding(1) var<storage, read> cells: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<real>;
@group(0) @binding(3) var<storage, read_write> target_buffer: array<real>;

// target_buffer[cells[j]] = values[j] for j < n.
@compute @workgroup_size(256, 1, 1)
fn scatter(@builtin(global_invocation_id) id: vec3<u32>) {
    for (var j = id.x; j < counts.n; j += counts.stride) {
        target_buffer[cells[j]] = values[j];
    }
}

@group(1) @binding(0) var<storage, read> state_e: array<real>;
@group(1) @binding(1) var<storage, read> state_i: array<real>;
// The smallest index of a non-finite E and of a non-finite I (0xffffffff: none).
@group(1) @binding(2) var<storage, read_write> first_bad: array<atomic<u32>, 2>;

fn finite(x: real) -> bool {
    // False for NaN as well as for ±∞.
    return abs(x) <= MAX_FINITE;
}

@compute @workgroup_size(256, 1, 1)
fn check(@builtin(global_invocation_id) id: vec3<u32>) {
    var bad_e = 0xffffffffu;
    var bad_i = 0xffffffffu;
    for (var k = id.x; k < counts.n; k += counts.stride) {
        if !finite(state_e[k]) {
            bad_e = min(bad_e, k);
        }
        if !finite(state_i[k]) {
            bad_i = min(bad_i, k);
        }
    }
    if bad_e != 0xffffffffu {
        atomicMin(&first_bad[0], bad_e);
    }
    if bad_i != 0xffffffffu {
        atomicMin(&first_bad[1], bad_i);
    }
}

@group(1) @binding(3) var<storage, read> before_e: array<real>;
@group(1) @binding(4) var<storage, read> before_i: array<real>;
@group(1) @binding(5) var<storage, read> after_e: array<real>;
@group(1) @binding(6) var<storage, read> after_i: array<real>;
// The largest |after − before| of E and I per workgroup (−1: not finite).
@group(1) @binding(7) var<storage, read_write> largest_change: array<real>;

var<workgroup> largest: array<real, 256>;

@compute @workgroup_size(256, 1, 1)
fn residual(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    var m = real(0.0);
    var bad = false;
    for (var k = id.x; k < counts.n; k += counts.stride) {
        let de = abs(after_e[k] - before_e[k]);
        let di = abs(after_i[k] - before_i[k]);
        bad = bad || !finite(de) || !finite(di);
        m = max(m, max(de, di));
    }
    largest[lid] = select(m, real(-1.0), bad);
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lid < s {
            let a = largest[lid];
            let b = largest[lid + s];
            largest[lid] = select(max(a, b), real(-1.0), a < real(0.0) || b < real(0.0));
        }
        workgroupBarrier();
    }
    if lid == 0u {
        largest_change[group.x] = largest[0];
    }
}
