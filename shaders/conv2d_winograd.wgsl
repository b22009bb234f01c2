// Conv2d by Winograd's minimal filtering, F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016): the three transforms around a batched GEMM. src/ops/conv-winograd.ts runs them.
//
// In one dimension, two outputs of a 3-tap correlation, y_i = Σ_k d_{i+k}·g_k, take 6 multiplies directly
// but only 4 as
//   y = Aᵀ [(G g) ⊙ (Bᵀ d)]
// with d 4 inputs, g 3 taps and
//   Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
//        | 0 −1  1  0 |         | ½   −½    ½  |
//        | 0  1  0 −1 |         | 0    0    1  |
// Nested over both dimensions, a 2×2 block of outputs of a 3×3 filter reads a 4×4 tile of the input:
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
// 16 multiplies instead of 36 (2.25× fewer). Over channels the ⊙ becomes a sum, so for each of the 16
// positions ξ of the 4×4 transformed tile it is a matrix product:
//   M[ξ] (tiles × F) = V[ξ] (tiles × C) · U[ξ] (C × F),   V[ξ] = (Bᵀ d B)[ξ],  U[ξ] = (G g Gᵀ)[ξ]
// so the multiplies run in matmul v3 (16 GEMMs in one batched dispatch), and the transforms, which only add
// and subtract (and halve, for the filter), run here:
//   filter_transform   w [3, 3, C, F]        → U [16, C, F]       one (c, 4 filters) per invocation
//   input_transform    x [N, H, W, C]        → V [16, tiles, C]   one (tile, 4 channels) per invocation
//   output_transform   M [16, tiles, F]      → y [N, OH, OW, F]   one (tile, 4 filters) per invocation,
//                                                                 with bias, residual and relu fused
// Tile t = (n, th, tw) covers outputs (2·th .. 2·th+1, 2·tw .. 2·tw+1) and reads inputs from
// (2·th − pad_t, 2·tw − pad_l), 4×4, zero outside x (the padding). Outputs past OH or OW (an odd size) are
// computed and dropped. Every array is read and written as vec4 along channels: C % 4 == 0 and F % 4 == 0.
// Storage is f32 or f16 (Elem, declared by the pipeline cache); the arithmetic is f32.

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;                 // 0 none, 1 relu
override HAS_RESIDUAL: bool = false;    // output_transform: add residual[pixel, filters] before the activation

struct Params {
  n: u32, h: u32, w: u32, c4: u32,           // x [n, h, w, 4·c4]
  oh: u32, ow: u32, f4: u32, tiles_h: u32,   // y [n, oh, ow, 4·f4]; tiles_h = ⌈oh / 2⌉
  tiles_w: u32, tiles: u32,                  // tiles_w = ⌈ow / 2⌉; tiles = n · tiles_h · tiles_w
  pad_t: i32, pad_l: i32,
  count: u32, _pad0: u32, _pad1: u32, _pad2: u32,   // invocations with work in this dispatch
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<Elem>>;
// filter_transform and input_transform:
@group(0) @binding(2) var<storage, read_write> transformed: array<vec4<Elem>>;
// output_transform:
@group(0) @binding(2) var<storage, read> bias: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<Elem>>;   // shaped as y
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<Elem>>;

/** Bᵀ applied to 4 values (each a vec4 of channels). */
fn bt(d: array<vec4f, 4>) -> array<vec4f, 4> {
  return array<vec4f, 4>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
}

/** G applied to 3 taps. */
fn gt(g: array<vec4f, 3>) -> array<vec4f, 4> {
  let half_sum = 0.5 * (g[0] + g[2]);
  return array<vec4f, 4>(g[0], half_sum + 0.5 * g[1], half_sum - 0.5 * g[1], g[2]);
}

/** Aᵀ applied to 4 values. */
fn at(m: array<vec4f, 4>) -> array<vec4f, 2> {
  return array<vec4f, 2>(m[0] + m[1] + m[2], m[1] - m[2] - m[3]);
}

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

/** src: x [n, h, w, c]; dst: V [16, tiles, c]. */
@compute @workgroup_size(WG)
fn input_transform(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let c4 = k % p.c4;
  let t = k / p.c4;
  let tw = t % p.tiles_w;
  let th = (t / p.tiles_w) % p.tiles_h;
  let n = t / (p.tiles_w * p.tiles_h);
  let ih0 = i32(2u * th) - p.pad_t;
  let iw0 = i32(2u * tw) - p.pad_l;

  // Rows of the tile, each transformed along its 4 columns: r[i][b] = (d B)[i][b].
  var r: array<array<vec4f, 4>, 4>;
  for (var i = 0; i < 4; i++) {
    let ih = ih0 + i;
    var d: array<vec4f, 4>;
    for (var j = 0; j < 4; j++) {
      let iw = iw0 + j;
      let inside = ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w);
      let at_x = select(0u, ((n * p.h + u32(ih)) * p.w + u32(iw)) * p.c4 + c4, inside);
      d[j] = select(vec4f(0.0), vec4f(src[at_x]), inside);
    }
    r[i] = bt(d);
  }
  // Then down each column: V[a][b] = (Bᵀ d B)[a][b], stored at ξ = 4a + b.
  let plane = p.tiles * p.c4;
  let base = t * p.c4 + c4;
  for (var b = 0u; b < 4u; b++) {
    let v = bt(array<vec4f, 4>(r[0][b], r[1][b], r[2][b], r[3][b]));
    for (var a = 0u; a < 4u; a++) {
      transformed[(4u * a + b) * plane + base] = vec4<Elem>(v[a]);
    }
  }
}

/** src: w [3, 3, c, f] (as vec4 along f); transformed: U [16, c, f]. */
@compute @workgroup_size(WG)
fn filter_transform(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let ci_f = k;                   // (ci, f4) flattened
  let tap = 4u * p.c4 * p.f4;     // vec4s per tap of w, and per position ξ of U

  var r: array<array<vec4f, 4>, 3>;
  for (var kh = 0u; kh < 3u; kh++) {
    let row = kh * 3u * tap + ci_f;
    r[kh] = gt(array<vec4f, 3>(vec4f(src[row]), vec4f(src[row + tap]), vec4f(src[row + 2u * tap])));
  }
  for (var b = 0u; b < 4u; b++) {
    let u = gt(array<vec4f, 3>(r[0][b], r[1][b], r[2][b]));
    for (var a = 0u; a < 4u; a++) {
      transformed[(4u * a + b) * tap + ci_f] = vec4<Elem>(u[a]);
    }
  }
}

/** src: M [16, tiles, f]; dst: y [n, oh, ow, f] = act(Aᵀ M A + bias + residual). */
@compute @workgroup_size(WG)
fn output_transform(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let f4 = k % p.f4;
  let t = k / p.f4;
  let tw = t % p.tiles_w;
  let th = (t / p.tiles_w) % p.tiles_h;
  let n = t / (p.tiles_w * p.tiles_h);
  let plane = p.tiles * p.f4;
  let base = t * p.f4 + f4;

  // Rows a of M, each reduced along b by Aᵀ: r[a][j].
  var r: array<array<vec4f, 2>, 4>;
  for (var a = 0u; a < 4u; a++) {
    let row = 4u * a * plane + base;
    r[a] = at(array<vec4f, 4>(vec4f(src[row]), vec4f(src[row + plane]), vec4f(src[row + 2u * plane]), vec4f(src[row + 3u * plane])));
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[f4]); }
  for (var j = 0u; j < 2u; j++) {
    let y = at(array<vec4f, 4>(r[0][j], r[1][j], r[2][j], r[3][j]));
    let ow = 2u * tw + j;
    for (var i = 0u; i < 2u; i++) {
      let oh = 2u * th + i;
      if (oh < p.oh && ow < p.ow) {
        let o = ((n * p.oh + oh) * p.ow + ow) * p.f4 + f4;
        var v = y[i] + bias_v;
        if (HAS_RESIDUAL) { v += vec4f(residual[o]); }
        if (ACT == 1u) { v = max(v, vec4f(0.0)); }
        dst[o] = vec4<Elem>(v);
      }
    }
  }
}
