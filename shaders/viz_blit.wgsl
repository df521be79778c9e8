// viz_blit.wgsl: draws the live window's CPU-rendered plot image over the
// whole render target. It is a render shader (package viz), not a compute
// kernel: one full-screen triangle, and a fragment stage that copies texel
// (x, y) of the image to pixel (x, y) of the target. The image has the
// target's size, so no sampler and no filtering: the pixels arrive exactly.
// With an sRGB image texture and an sRGB target the colours round-trip
// unchanged (decoded on load, encoded on store).

@group(0) @binding(0) var image: texture_2d<f32>; // (H, W) RGBA, the plot

struct VertexOut {
    @builtin(position) pos: vec4<f32>,
};

// Vertices 0, 1, 2 at (-1,-1), (3,-1), (-1,3): one triangle that covers the
// viewport.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VertexOut {
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    var out: VertexOut;
    out.pos = vec4<f32>(x, y, 0.0, 1.0);
    return out;
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let size = vec2<i32>(textureDimensions(image));
    let p = clamp(vec2<i32>(pos.xy), vec2<i32>(0, 0), size - vec2<i32>(1, 1));
    return vec4<f32>(textureLoad(image, p, 0).rgb, 1.0);
}
