// Backward of the fused softmax cross-entropy (cross_entropy.wgsl): one invocation per logit.
//
// From loss_b = Σ_c q_c (lse_b − x_c):   d loss_b / d x_c = softmax(x)_c · Σq − q_c
// with softmax(x)_c = exp(x_c − lse_b), and lse_b and Σq read from the forward's `stats`. For class indices
// or targets summing to 1, Σq = 1 and this is the familiar softmax − onehot. The result is multiplied by the
// upstream gradient (one value per row for reduction 'none', one scalar otherwise) and by `scale` (1/B for
// 'mean'). A row whose class index was out of range has NaN stats, so its gradient is NaN too.

override SPARSE: bool = true;
override WG: u32 = 64u;

struct Params {
  rows: u32,
  classes: u32,
  scale: f32,
  smoothing: f32,
  grad_per_row: u32,   // 1: g has one value per row ('none'); 0: g is a scalar
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;   // i32 indices [B] or f32 targets [B, C]
@group(0) @binding(3) var<storage, read> stats: array<vec2f>;  // (lse, Σq) per row
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.classes) { return; }
  let b = i / p.classes;
  let c = i % p.classes;
  var t: f32;
  if (SPARSE) {
    t = select(0.0, 1.0, i32(c) == bitcast<i32>(labels[b]));
  } else {
    t = bitcast<f32>(labels[i]);
  }
  let q = (1.0 - p.smoothing) * t + p.smoothing / f32(p.classes);
  let lse_qsum = stats[b];
  var upstream = g[0];
  if (p.grad_per_row == 1u) { upstream = g[b]; }
  dx[i] = (exp(logits[i] - lse_qsum.x) * lse_qsum.y - q) * upstream * p.scale;
}
