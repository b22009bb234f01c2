// Conv2d by Winograd's minimal filtering, F(2×2, 3×3) and F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016): the transforms around a batched GEMM. src/ops/conv-winograd.ts
// runs them.
//
// In one dimension, m outputs of a 3-tap correlation, y_i = Σ_k d_{i+k}·g_k, take 3m multiplies directly
// but only m + 2 as
//   y = Aᵀ [(G g) ⊙ (Bᵀ d)]
// with d the m + 2 inputs, g the 3 taps, and for m = 2 (points 0, 1, −1, ∞):
//   Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
//        | 0 −1  1  0 |         | ½   −½    ½  |
//        | 0  1  0 −1 |         | 0    0    1  |
// and for m = 4 (points 0, 1, −1, 2, −2, ∞):
//   Bᵀ = | 4  0 −5  0  1  0 |     G = |  ¼     0     0  |     Aᵀ = | 1  1  1  1  1  0 |
//        | 0 −4 −4  1  1  0 |         | −⅙    −⅙    −⅙  |          | 0  1 −1  2 −2  0 |
//        | 0  4 −4 −1  1  0 |         | −⅙     ⅙    −⅙  |          | 0  1  1  4  4  0 |
//        | 0 −2 −1  2  1  0 |         | 1/24  1/12  ⅙  |          | 0  1 −1  8 −8  1 |
//        | 0  2 −1 −2  1  0 |         | 1/24 −1/12  ⅙  |
//        | 0  4  0 −5  0  1 |         |  0     0     1  |
// Nested over both dimensions, an m×m block of outputs of a 3×3 filter reads an (m+2)×(m+2) tile d:
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
// (m+2)² multiplies instead of 9m²: 16 for 36 (2.25× fewer) at m = 2, 36 for 144 (4×) at m = 4. Over
// channels the ⊙ becomes a sum, so at each position ξ of the transformed tile it is a matrix product:
//   M[ξ] (tiles × F) = V[ξ] (tiles × C) · U[ξ] (C × F),   V[ξ] = (Bᵀ d B)[ξ],  U[ξ] = (G g Gᵀ)[ξ]
// The multiplies run in matmul v3 ((m+2)² GEMMs in one batched dispatch); the transforms run here:
//   filter_transform_fm   w [3, 3, C, F]        → U [(m+2)², C, F]       one (c, 4 filters) per invocation
//   input_transform_fm    x [N, H, W, C]        → V [(m+2)², tiles, C]   one (tile, 4 channels) each
//   output_transform_fm   M [(m+2)², tiles, F]  → y [N, OH, OW, F]       one (tile, 4 filters) each,
//                                                                        with bias, residual, relu fused
// Tile t = (n, th, tw) of the images first_image, first_image + 1, … covers outputs (m·th .. m·th + m − 1, m·tw .. m·tw + m − 1) and reads the inputs
// from (m·th − pad_t, m·tw − pad_l), zero outside x (the padding). Outputs past OH or OW are computed and
// dropped. Every array is read and written as vec4 along channels: C % 4 == 0 and F % 4 == 0. x, w and y
// are f32 or f16 (Elem, declared by the pipeline cache); the transformed tiles and the arithmetic are f32.
// ξ = (m+2)·a + b, with a along the height and b along the width.

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;                 // 0 none, 1 relu
override HAS_RESIDUAL: bool = false;    // output transforms: add residual[pixel, filters] before the activation

struct Params {
  n: u32, h: u32, w: u32, c4: u32,           // x [n, h, w, 4·c4]
  oh: u32, ow: u32, f4: u32, tiles_h: u32,   // y [n, oh, ow, 4·f4]; tiles_h = ⌈oh / m⌉
  tiles_w: u32, tiles: u32,                  // tiles_w = ⌈ow / m⌉; tiles = n · tiles_h · tiles_w
  pad_t: i32, pad_l: i32,
  count: u32,                                // invocations with work in this dispatch
  flip: u32,                                 // filter transforms: 1 reads the taps in reverse (kh → 2 − kh, kw → 2 − kw)
  first_image: u32,                          // the image of x and y that tile row 0 belongs to (a chunk of the batch)
  _pad0: u32,
}

// The transformed tensors U, V, M (and dM, dU) are always f32, whatever the storage type of x, w and y: with
// f16 storage the values are rounded once, when y is stored, as in the direct kernels.
@group(0) @binding(0) var<uniform> p: Params;
// filter and input transforms, output adjoint: x, w or dY in, transformed tiles out
@group(0) @binding(1) var<storage, read> src: array<vec4<Elem>>;
@group(0) @binding(2) var<storage, read_write> transformed: array<vec4f>;
// output transforms and filter adjoint: transformed tiles (M or dU) in
@group(0) @binding(1) var<storage, read> tiles_in: array<vec4f>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<Elem>>;   // shaped as y
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<Elem>>;

// ---------------------------------------------------------------------------------------------------------
// The 1-D transforms, on vec4s of channels (rows of the matrices above)

fn bt_f2(d: array<vec4f, 4>) -> array<vec4f, 4> {
  return array<vec4f, 4>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
}

fn g_f2(g: array<vec4f, 3>) -> array<vec4f, 4> {
  let half_sum = 0.5 * (g[0] + g[2]);
  return array<vec4f, 4>(g[0], half_sum + 0.5 * g[1], half_sum - 0.5 * g[1], g[2]);
}

fn at_f2(m: array<vec4f, 4>) -> array<vec4f, 2> {
  return array<vec4f, 2>(m[0] + m[1] + m[2], m[1] - m[2] - m[3]);
}

fn bt_f4(d: array<vec4f, 6>) -> array<vec4f, 6> {
  let s = d[4] - 4.0 * d[2];   // shared by rows 1 and 2
  let t = d[4] - d[2];         // shared by rows 3 and 4
  return array<vec4f, 6>(
    4.0 * d[0] - 5.0 * d[2] + d[4],
    s - 4.0 * d[1] + d[3],
    s + 4.0 * d[1] - d[3],
    t - 2.0 * d[1] + 2.0 * d[3],
    t + 2.0 * d[1] - 2.0 * d[3],
    4.0 * d[1] - 5.0 * d[3] + d[5],
  );
}

fn g_f4(g: array<vec4f, 3>) -> array<vec4f, 6> {
  let even6 = (g[0] + g[2]) / 6.0;
  let even24 = g[0] / 24.0 + g[2] / 6.0;
  return array<vec4f, 6>(
    0.25 * g[0],
    -even6 - g[1] / 6.0,
    -even6 + g[1] / 6.0,
    even24 + g[1] / 12.0,
    even24 - g[1] / 12.0,
    g[2],
  );
}

fn at_f4(m: array<vec4f, 6>) -> array<vec4f, 4> {
  let s1 = m[1] + m[2];
  let d1 = m[1] - m[2];
  let s2 = m[3] + m[4];
  let d2 = m[3] - m[4];
  return array<vec4f, 4>(m[0] + s1 + s2, d1 + 2.0 * d2, s1 + 4.0 * s2, d1 + 8.0 * d2 + m[5]);
}

// ---------------------------------------------------------------------------------------------------------
// Indexing shared by both sizes

/**
 * The invocation's index k. The tile transforms number their work k = t · groups + group (tile t, a vec4
 * group of channels), which is also the vec4 index of (t, group) within one position ξ's plane of V, M or dM.
 */
fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

/** Tile t's image and tile row and column: (n, th, tw). */
fn tile_of(t: u32) -> vec3u {
  return vec3u(t / (p.tiles_w * p.tiles_h), (t / p.tiles_w) % p.tiles_h, t % p.tiles_w);
}

/** The 3 taps of filter row kh at (ci, f4) index k, reversed (and the row mirrored) when p.flip is set. */
fn filter_row(kh: u32, tap: u32, k: u32) -> array<vec4f, 3> {
  if (p.flip != 0u) {
    let row = (2u - kh) * 3u * tap + k;
    return array<vec4f, 3>(vec4f(src[row + 2u * tap]), vec4f(src[row + tap]), vec4f(src[row]));
  }
  let row = kh * 3u * tap + k;
  return array<vec4f, 3>(vec4f(src[row]), vec4f(src[row + tap]), vec4f(src[row + 2u * tap]));
}

/** x[n, ih, iw, 4·c4 ..], zero outside x. */
fn load_x(n: u32, ih: i32, iw: i32, c4: u32) -> vec4f {
  let inside = ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w);
  let i = select(0u, (((p.first_image + n) * p.h + u32(ih)) * p.w + u32(iw)) * p.c4 + c4, inside);
  return select(vec4f(0.0), vec4f(src[i]), inside);
}

/** y[n, oh, ow, 4·f4 ..] = act(v + bias + residual), where (oh, ow) lies inside y. */
fn store_y(n: u32, oh: u32, ow: u32, f4: u32, v: vec4f) {
  if (oh >= p.oh || ow >= p.ow) { return; }
  let o = (((p.first_image + n) * p.oh + oh) * p.ow + ow) * p.f4 + f4;
  var r = v;
  if (HAS_BIAS) { r += vec4f(bias[f4]); }
  if (HAS_RESIDUAL) { r += vec4f(residual[o]); }
  if (ACT == 1u) { r = max(r, vec4f(0.0)); }
  dst[o] = vec4<Elem>(r);
}

// ---------------------------------------------------------------------------------------------------------
// F(2×2, 3×3)

/** x [n, h, w, c] → V [16, tiles, c]. */
@compute @workgroup_size(WG)
fn input_transform_f2(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let c4 = k % p.c4;
  let t = k / p.c4;
  let tile = tile_of(t);
  let ih0 = i32(2u * tile.y) - p.pad_t;
  let iw0 = i32(2u * tile.z) - p.pad_l;
  // Each row of the tile transformed along its columns: r[i][b] = (d B)[i][b]; then down each column.
  var r: array<array<vec4f, 4>, 4>;
  for (var i = 0; i < 4; i++) {
    let ih = ih0 + i;
    r[i] = bt_f2(array<vec4f, 4>(load_x(tile.x, ih, iw0, c4), load_x(tile.x, ih, iw0 + 1, c4), load_x(tile.x, ih, iw0 + 2, c4), load_x(tile.x, ih, iw0 + 3, c4)));
  }
  let plane = p.tiles * p.c4;
  for (var b = 0u; b < 4u; b++) {
    let v = bt_f2(array<vec4f, 4>(r[0][b], r[1][b], r[2][b], r[3][b]));
    for (var a = 0u; a < 4u; a++) { transformed[(4u * a + b) * plane + k] = v[a]; }
  }
}

/** w [3, 3, c, f] → U [16, c, f]. */
@compute @workgroup_size(WG)
fn filter_transform_f2(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);       // (ci, f4) flattened
  if (k >= p.count) { return; }
  let tap = 4u * p.c4 * p.f4;         // vec4s per tap of w, and per position ξ of U
  var r: array<array<vec4f, 4>, 3>;
  for (var kh = 0u; kh < 3u; kh++) {
    r[kh] = g_f2(filter_row(kh, tap, k));
  }
  for (var b = 0u; b < 4u; b++) {
    let u = g_f2(array<vec4f, 3>(r[0][b], r[1][b], r[2][b]));
    for (var a = 0u; a < 4u; a++) { transformed[(4u * a + b) * tap + k] = u[a]; }
  }
}

/** M [16, tiles, f] → y [n, oh, ow, f]. */
@compute @workgroup_size(WG)
fn output_transform_f2(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let f4 = k % p.f4;
  let t = k / p.f4;
  let tile = tile_of(t);
  let plane = p.tiles * p.f4;
  var r: array<array<vec4f, 2>, 4>;
  for (var a = 0u; a < 4u; a++) {
    let row = 4u * a * plane + k;
    r[a] = at_f2(array<vec4f, 4>(tiles_in[row], tiles_in[row + plane], tiles_in[row + 2u * plane], tiles_in[row + 3u * plane]));
  }
  for (var j = 0u; j < 2u; j++) {
    let y = at_f2(array<vec4f, 4>(r[0][j], r[1][j], r[2][j], r[3][j]));
    for (var i = 0u; i < 2u; i++) { store_y(tile.x, 2u * tile.y + i, 2u * tile.z + j, f4, y[i]); }
  }
}

// ---------------------------------------------------------------------------------------------------------
// F(4×4, 3×3): the same steps on 6×6 tiles

/** x [n, h, w, c] → V [36, tiles, c]. */
@compute @workgroup_size(WG)
fn input_transform_f4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let c4 = k % p.c4;
  let t = k / p.c4;
  let tile = tile_of(t);
  let ih0 = i32(4u * tile.y) - p.pad_t;
  let iw0 = i32(4u * tile.z) - p.pad_l;
  var r: array<array<vec4f, 6>, 6>;
  for (var i = 0; i < 6; i++) {
    let ih = ih0 + i;
    r[i] = bt_f4(array<vec4f, 6>(
      load_x(tile.x, ih, iw0, c4), load_x(tile.x, ih, iw0 + 1, c4), load_x(tile.x, ih, iw0 + 2, c4),
      load_x(tile.x, ih, iw0 + 3, c4), load_x(tile.x, ih, iw0 + 4, c4), load_x(tile.x, ih, iw0 + 5, c4)));
  }
  let plane = p.tiles * p.c4;
  for (var b = 0u; b < 6u; b++) {
    let v = bt_f4(array<vec4f, 6>(r[0][b], r[1][b], r[2][b], r[3][b], r[4][b], r[5][b]));
    for (var a = 0u; a < 6u; a++) { transformed[(6u * a + b) * plane + k] = v[a]; }
  }
}

/** w [3, 3, c, f] → U [36, c, f]. */
@compute @workgroup_size(WG)
fn filter_transform_f4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let tap = 4u * p.c4 * p.f4;
  var r: array<array<vec4f, 6>, 3>;
  for (var kh = 0u; kh < 3u; kh++) {
    r[kh] = g_f4(filter_row(kh, tap, k));
  }
  for (var b = 0u; b < 6u; b++) {
    let u = g_f4(array<vec4f, 3>(r[0][b], r[1][b], r[2][b]));
    for (var a = 0u; a < 6u; a++) { transformed[(6u * a + b) * tap + k] = u[a]; }
  }
}

/** M [36, tiles, f] → y [n, oh, ow, f]. */
@compute @workgroup_size(WG)
fn output_transform_f4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let f4 = k % p.f4;
  let t = k / p.f4;
  let tile = tile_of(t);
  let plane = p.tiles * p.f4;
  var r: array<array<vec4f, 4>, 6>;
  for (var a = 0u; a < 6u; a++) {
    let row = 6u * a * plane + k;
    r[a] = at_f4(array<vec4f, 6>(
      tiles_in[row], tiles_in[row + plane], tiles_in[row + 2u * plane],
      tiles_in[row + 3u * plane], tiles_in[row + 4u * plane], tiles_in[row + 5u * plane]));
  }
  for (var j = 0u; j < 4u; j++) {
    let y = at_f4(array<vec4f, 6>(r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]));
    for (var i = 0u; i < 4u; i++) { store_y(tile.x, 4u * tile.y + i, 4u * tile.z + j, f4, y[i]); }
  }
}

// ---------------------------------------------------------------------------------------------------------
// dW: the adjoints of the output and filter transforms. From y = Aᵀ M A and M[ξ] = V[ξ] · U[ξ]:
//   dM = A dY Aᵀ (per tile),   dU[ξ] = V[ξ]ᵀ · dM[ξ] (a batched matmul over tiles),   dW = Gᵀ dU G.

/** A (= (Aᵀ)ᵀ) applied to m values: the adjoint of at_fm. */
fn a_f2(y: array<vec4f, 2>) -> array<vec4f, 4> {
  return array<vec4f, 4>(y[0], y[0] + y[1], y[0] - y[1], -y[1]);
}

fn a_f4(y: array<vec4f, 4>) -> array<vec4f, 6> {
  let even = y[0] + 4.0 * y[2];
  let odd = 2.0 * y[1] + 8.0 * y[3];
  return array<vec4f, 6>(y[0], y[0] + y[1] + y[2] + y[3], y[0] - y[1] + y[2] - y[3], even + odd, even - odd, y[3]);
}

/** Gᵀ applied to m + 2 values: the adjoint of g_fm. */
fn gt_f2(u: array<vec4f, 4>) -> array<vec4f, 3> {
  let s = 0.5 * (u[1] + u[2]);
  return array<vec4f, 3>(u[0] + s, 0.5 * (u[1] - u[2]), s + u[3]);
}

fn gt_f4(u: array<vec4f, 6>) -> array<vec4f, 3> {
  let s12 = (u[1] + u[2]) / 6.0;
  let d12 = (u[2] - u[1]) / 6.0;
  let s34 = u[3] + u[4];
  let d34 = u[3] - u[4];
  return array<vec4f, 3>(0.25 * u[0] - s12 + s34 / 24.0, d12 + d34 / 12.0, -s12 + s34 / 6.0 + u[5]);
}

/** dY[n, oh, ow, 4·f4 ..], zero past the output (the outputs a tile computes and drops). */
fn load_dy(n: u32, oh: u32, ow: u32, f4: u32) -> vec4f {
  let inside = oh < p.oh && ow < p.ow;
  let i = select(0u, (((p.first_image + n) * p.oh + oh) * p.ow + ow) * p.f4 + f4, inside);
  return select(vec4f(0.0), vec4f(src[i]), inside);
}

/** dY [n, oh, ow, f] → dM [16, tiles, f]. */
@compute @workgroup_size(WG)
fn output_adjoint_f2(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let f4 = k % p.f4;
  let t = k / p.f4;
  let tile = tile_of(t);
  let oh0 = 2u * tile.y;
  let ow0 = 2u * tile.z;
  var r: array<array<vec4f, 4>, 2>;
  for (var i = 0u; i < 2u; i++) {
    r[i] = a_f2(array<vec4f, 2>(load_dy(tile.x, oh0 + i, ow0, f4), load_dy(tile.x, oh0 + i, ow0 + 1u, f4)));
  }
  let plane = p.tiles * p.f4;
  for (var b = 0u; b < 4u; b++) {
    let v = a_f2(array<vec4f, 2>(r[0][b], r[1][b]));
    for (var a = 0u; a < 4u; a++) { transformed[(4u * a + b) * plane + k] = v[a]; }
  }
}

/** dU [16, c, f] → dW [3, 3, c, f]. */
@compute @workgroup_size(WG)
fn filter_adjoint_f2(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let tap = 4u * p.c4 * p.f4;
  var r: array<array<vec4f, 3>, 4>;
  for (var a = 0u; a < 4u; a++) {
    let row = 4u * a * tap + k;
    r[a] = gt_f2(array<vec4f, 4>(tiles_in[row], tiles_in[row + tap], tiles_in[row + 2u * tap], tiles_in[row + 3u * tap]));
  }
  for (var kw = 0u; kw < 3u; kw++) {
    let col = gt_f2(array<vec4f, 4>(r[0][kw], r[1][kw], r[2][kw], r[3][kw]));
    for (var kh = 0u; kh < 3u; kh++) { transformed[(3u * kh + kw) * tap + k] = col[kh]; }
  }
}

/** dY [n, oh, ow, f] → dM [36, tiles, f]. */
@compute @workgroup_size(WG)
fn output_adjoint_f4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let f4 = k % p.f4;
  let t = k / p.f4;
  let tile = tile_of(t);
  let oh0 = 4u * tile.y;
  let ow0 = 4u * tile.z;
  var r: array<array<vec4f, 6>, 4>;
  for (var i = 0u; i < 4u; i++) {
    let oh = oh0 + i;
    r[i] = a_f4(array<vec4f, 4>(load_dy(tile.x, oh, ow0, f4), load_dy(tile.x, oh, ow0 + 1u, f4), load_dy(tile.x, oh, ow0 + 2u, f4), load_dy(tile.x, oh, ow0 + 3u, f4)));
  }
  let plane = p.tiles * p.f4;
  for (var b = 0u; b < 6u; b++) {
    let v = a_f4(array<vec4f, 4>(r[0][b], r[1][b], r[2][b], r[3][b]));
    for (var a = 0u; a < 6u; a++) { transformed[(6u * a + b) * plane + k] = v[a]; }
  }
}

/** dU [36, c, f] → dW [3, 3, c, f]. */
@compute @workgroup_size(WG)
fn filter_adjoint_f4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = flat_index(gid, nwg);
  if (k >= p.count) { return; }
  let tap = 4u * p.c4 * p.f4;
  var r: array<array<vec4f, 3>, 6>;
  for (var a = 0u; a < 6u; a++) {
    let row = 6u * a * tap + k;
    r[a] = gt_f4(array<vec4f, 6>(
      tiles_in[row], tiles_in[row + tap], tiles_in[row + 2u * tap],
      tiles_in[row + 3u * tap], tiles_in[row + 4u * tap], tiles_in[row + 5u * tap]));
  }
  for (var kw = 0u; kw < 3u; kw++) {
    let col = gt_f4(array<vec4f, 6>(r[0][kw], r[1][kw], r[2][kw], r[3][kw], r[4][kw], r[5][kw]));
    for (var kh = 0u; kh < 3u; kh++) { transformed[(3u * kh + kw) * tap + k] = col[kh]; }
  }
}
