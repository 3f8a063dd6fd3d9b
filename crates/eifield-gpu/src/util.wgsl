// Small kernels around the step: writing a few cells of a buffer (the drive
// of stimulated cells, edits of the state) and finding the first non-finite
// value of the state. Each invocation walks the work with a grid stride, so
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
