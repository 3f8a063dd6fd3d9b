// The lattice surface: a flat grid mesh displaced in the vertex shader by the
// field values of a storage buffer (of a float texture with FIELD_TEXTURES,
// for WebGL2), coloured through a colour lookup table and
// lit with one directional light (unlit in the heat-map mode): diffuse and a
// soft specular highlight from the height field's normals, a cheap ambient
// occlusion that darkens valleys and low ground, and a subtle grid of cell
// edges that fades where cells are smaller than a few pixels.

#import bevy_pbr::{
    mesh_functions,
    mesh_view_bindings::view,
    view_transformations::position_world_to_clip
}

struct SurfaceParams {
    rows: u32,
    cols: u32,
    vertex_rows: u32,
    vertex_cols: u32,
    height_scale: f32,
    low: f32,
    high: f32,
    flat_shading: u32,
    light_direction: vec4<f32>,
}

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> params: SurfaceParams;
#ifdef FIELD_TEXTURES
// One texel per cell (cols × rows), and the colour table (entries × 1).
@group(#{MATERIAL_BIND_GROUP}) @binding(1) var field: texture_2d<f32>;
@group(#{MATERIAL_BIND_GROUP}) @binding(2) var lut: texture_2d<f32>;

fn field_value(row: u32, col: u32) -> f32 {
    return textureLoad(field, vec2<i32>(i32(col), i32(row)), 0).r;
}

fn lut_entries() -> u32 {
    return textureDimensions(lut).x;
}

fn lut_entry(index: u32) -> vec4<f32> {
    return textureLoad(lut, vec2<i32>(i32(index), 0), 0);
}
#else
@group(#{MATERIAL_BIND_GROUP}) @binding(1) var<storage, read> field: array<f32>;
@group(#{MATERIAL_BIND_GROUP}) @binding(2) var<storage, read> lut: array<vec4<f32>>;

fn field_value(row: u32, col: u32) -> f32 {
    return field[row * params.cols + col];
}

fn lut_entries() -> u32 {
    return arrayLength(&lut);
}

fn lut_entry(index: u32) -> vec4<f32> {
    return lut[index];
}
#endif

struct Vertex {
    @builtin(instance_index) instance_index: u32,
    @builtin(vertex_index) vertex_index: u32,
    @location(0) position: vec3<f32>,
};

struct VertexOutput {
    @builtin(position) clip_position: vec4<f32>,
    @location(0) color: vec4<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) world_position: vec3<f32>,
    // Cell coordinates: cell edges lie on whole numbers.
    @location(3) cell: vec2<f32>,
    // Ambient occlusion, 0 (dark) to 1.
    @location(4) occlusion: f32,
};

// The value shown at vertex (r, c): its cell's field value (clamped for
// one-cell-wide lattices, whose mesh is two vertices wide).
fn value_at(r: u32, c: u32) -> f32 {
    let row = min(r, params.rows - 1u);
    let col = min(c, params.cols - 1u);
    return field_value(row, col);
}

fn height_at(r: u32, c: u32) -> f32 {
    let v = value_at(r, c);
    // Non-finite values (a blown-up state) lie flat.
    if params.flat_shading != 0u || !(abs(v) < 3.0e38) {
        return 0.0;
    }
    return v * params.height_scale;
}

@vertex
fn vertex(vertex: Vertex) -> VertexOutput {
    let vc = params.vertex_cols;
    let vr = params.vertex_rows;
    let r = vertex.vertex_index / vc;
    let c = vertex.vertex_index % vc;
    let h = height_at(r, c);
    // Smooth normals from central differences of the heights.
    let c0 = select(c - 1u, 0u, c == 0u);
    let c1 = min(c + 1u, vc - 1u);
    let r0 = select(r - 1u, 0u, r == 0u);
    let r1 = min(r + 1u, vr - 1u);
    let dx = (height_at(r, c1) - height_at(r, c0)) / f32(max(c1 - c0, 1u));
    let dz = (height_at(r1, c) - height_at(r0, c)) / f32(max(r1 - r0, 1u));

    var out: VertexOutput;
    let world_from_local = mesh_functions::get_world_from_local(vertex.instance_index);
    let world_position = mesh_functions::mesh_position_local_to_world(
        world_from_local,
        vec4(vertex.position.x, h, vertex.position.z, 1.0),
    );
    out.clip_position = position_world_to_clip(world_position.xyz);
    out.normal = normalize(vec3(-dx, 1.0, -dz));
    out.world_position = world_position.xyz;
    out.cell = vertex.position.xz + 0.5 * vec2(f32(params.cols), f32(params.rows));
    // Valleys (a positive Laplacian of the heights) and low ground are darker.
    let laplacian = height_at(r, c0) + height_at(r, c1) + height_at(r0, c) + height_at(r1, c) - 4.0 * h;
    let span_h = max((params.high - params.low) * abs(params.height_scale), 1.0e-6);
    let valley = clamp(laplacian / span_h, 0.0, 1.0);
    let low = clamp((params.high * params.height_scale - h) / span_h, 0.0, 1.0);
    out.occlusion = 1.0 - 0.45 * valley - 0.12 * low;

    let v = value_at(r, c);
    // A reversed range (low > high) reverses the map; an empty one shows its middle.
    let span = params.high - params.low;
    let t = select(clamp((v - params.low) / span, 0.0, 1.0), 0.5, abs(span) < 1.0e-12);
    let n = lut_entries();
    let index = min(u32(t * f32(n - 1u) + 0.5), n - 1u);
    out.color = lut_entry(index);
    return out;
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    if params.flat_shading != 0u {
        return in.color;
    }
    var n = normalize(in.normal);
    let l = normalize(params.light_direction.xyz);
    let to_eye = normalize(view.world_position - in.world_position);
    // Two-sided: the underside is lit like the top.
    if dot(n, to_eye) < 0.0 {
        n = -n;
    }
    let diffuse = max(dot(n, l), 0.0);
    let half_way = normalize(l + to_eye);
    let specular = pow(max(dot(n, half_way), 0.0), 40.0) * 0.25;
    // Faces seen at a grazing angle are darker: a depth cue even on flat ground.
    let facing = 0.72 + 0.28 * dot(n, to_eye);
    let shade = (0.30 + 0.70 * diffuse) * in.occlusion * facing;
    // Cell edges, about a pixel wide, fading out where cells are small.
    let width = fwidth(in.cell);
    let edge = abs(fract(in.cell + 0.5) - 0.5) / max(width, vec2(1.0e-6));
    let line = 1.0 - clamp(min(edge.x, edge.y), 0.0, 1.0);
    let fade = clamp(1.0 / max(max(width.x, width.y), 1.0e-6) / 4.0 - 0.5, 0.0, 1.0);
    let grid = 1.0 - 0.14 * line * fade;
    return vec4((in.color.rgb * shade + vec3(specular)) * grid, in.color.a);
}
