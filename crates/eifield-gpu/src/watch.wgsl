// Kernels that follow the state for a host between readbacks: `gather`
// copies E and I of a few watched cells into one slot of a sample buffer,
// `activate` records the first upward crossing of a threshold by each
// cell's E. Each invocation walks its work with a grid stride. The preamble
// defines `real`.

struct Gather {
    // Watched cells.
    n: u32,
    // Invocations in the whole dispatch.
    stride: u32,
    // Where this slot starts in `samples` (2 values per cell: E, I).
    offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> gather_counts: Gather;
@group(0) @binding(1) var<storage, read> watched: array<u32>;
@group(0) @binding(2) var<storage, read> gather_e: array<real>;
@group(0) @binding(3) var<storage, read> gather_i: array<real>;
@group(0) @binding(4) var<storage, read_write> samples: array<real>;

@compute @workgroup_size(64, 1, 1)
fn gather(@builtin(global_invocation_id) id: vec3<u32>) {
    for (var j = id.x; j < gather_counts.n; j += gather_counts.stride) {
        let k = watched[j];
        samples[gather_counts.offset + 2u * j] = gather_e[k];
        samples[gather_counts.offset + 2u * j + 1u] = gather_i[k];
    }
}

struct Crossing {
    // Cells.
    n: u32,
    // Invocations in the whole dispatch.
    stride: u32,
    _pad0: u32,
    _pad1: u32,
    // Model time of `before_e` and of `now_e`.
    t0: real,
    t1: real,
    // The threshold E crosses upward.
    theta: real,
}

@group(0) @binding(5) var<uniform> crossing: Crossing;
@group(0) @binding(6) var<storage, read> now_e: array<real>;
@group(0) @binding(7) var<storage, read_write> before_e: array<real>;
// First activation time per cell; negative: not yet.
@group(0) @binding(8) var<storage, read_write> first_time: array<real>;

@compute @workgroup_size(256, 1, 1)
fn activate(@builtin(global_invocation_id) id: vec3<u32>) {
    let theta = crossing.theta;
    for (var k = id.x; k < crossing.n; k += crossing.stride) {
        let a = before_e[k];
        let b = now_e[k];
        if first_time[k] < real(0.0) && a < theta && theta <= b {
            first_time[k] = crossing.t0 + (theta - a) / (b - a) * (crossing.t1 - crossing.t0);
        }
        before_e[k] = b;
    }
}
