// Softmax cross-entropy of logits [B, C] against targets, fused into one dispatch.
//
// For one row of logits x and a target distribution q over the C classes:
//   loss = −Σ_c q_c · log_softmax(x)_c = Σ_c q_c · (lse − x_c),     lse = log Σ_c exp(x_c)
// The targets t are either class indices (SPARSE: t = onehot(label)) or rows of probabilities, and label
// smoothing ε mixes in the uniform distribution: q = (1 − ε)·t + ε/C.
//
// Stability: with the row max m and z_c = x_c − m ≤ 0, lse = m + log_s where log_s = log Σ exp(z_c), and
//   loss = Σq · log_s − Σ_c q_c z_c,   Σq = (1 − ε)·Σt + ε,   Σ q z = (1 − ε)·Σ t z + (ε/C)·Σ z.
// exp never overflows, and subtracting in z rather than x avoids cancelling two large numbers (lse and
// x_label) when logits are large. Σq is 1 for class indices and for targets that sum to 1; keeping it
// keeps the loss and its gradient consistent for targets that do not.
//
// Besides the loss, each row's (lse, Σq) goes to `stats` for the backward kernel.
// A class index outside [0, C) makes its row's loss and stats NaN: the labels are on the GPU, so the CPU
// cannot check them, and a NaN loss is the loudest signal available here.
//
// Labels: a buffer of 32-bit words, read as i32 class indices [B] when SPARSE, else as f32 targets [B, C]
// (bitcast), so that one binding serves both forms.
//
// Entry points:
//   per_row   reduction 'none': one invocation per row, loss[b] = row loss;
//   total     reduction 'mean' or 'sum': a single workgroup, each invocation takes rows lane, lane + WG, …,
//             and a tree reduction gives loss[0] = scale · Σ_b row loss (scale = 1/B or 1). One dispatch
//             instead of a per-row pass plus a separate sum; on lavapipe workgroups run one after another
//             anyway, so a single workgroup loses little.

override SPARSE: bool = true;
override WG: u32 = 64u;   // a power of two

struct Params {
  rows: u32,
  classes: u32,
  scale: f32,       // 1/B for 'mean', else 1
  smoothing: f32,   // ε
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<vec2f>;   // (lse, Σq) per row

const LOWEST = -3.402823466e+38;

fn nan() -> f32 {
  var bits = 0x7fc00000u;   // a `var`, so it is not constant-folded (a NaN constant is a WGSL error)
  return bitcast<f32>(bits);
}

struct RowLoss {
  loss: f32,
  lse: f32,
  q_sum: f32,
}

fn row_loss(b: u32) -> RowLoss {
  let base = b * p.classes;
  var m = LOWEST;
  for (var c = 0u; c < p.classes; c++) {
    m = max(m, logits[base + c]);
  }
  // Row sums (Σ exp z, Σ z, Σ t·z, Σ t), added up in blocks of 32 classes. Smoothed or soft targets are
  // often many equal small values; added one by one to a large running sum, their rounding errors all
  // lean the same way (for 1000 classes Σt drifted by 3e-5, which shows in the loss as Σq·log_s and in
  // the gradient). Summing each block first keeps the running sums accurate to about 1e-7.
  var sums = vec4f(0.0);
  var block = vec4f(0.0);
  for (var c = 0u; c < p.classes; c++) {
    let z = logits[base + c] - m;
    var t = 0.0;
    if (!SPARSE) { t = bitcast<f32>(labels[base + c]); }
    block += vec4f(exp(z), z, t * z, t);
    if (c % 32u == 31u) {
      sums += block;
      block = vec4f(0.0);
    }
  }
  sums += block;
  let exp_sum = sums.x;
  let z_sum = sums.y;
  var tz_sum = sums.z;
  var t_sum = sums.w;
  if (SPARSE) {
    let label = bitcast<i32>(labels[b]);
    if (label < 0 || label >= i32(p.classes)) {
      return RowLoss(nan(), nan(), nan());
    }
    tz_sum = logits[base + u32(label)] - m;
    t_sum = 1.0;
  }
  let keep = 1.0 - p.smoothing;
  let q_sum = keep * t_sum + p.smoothing;
  let qz_sum = keep * tz_sum + p.smoothing / f32(p.classes) * z_sum;
  let log_s = log(exp_sum);
  return RowLoss(q_sum * log_s - qz_sum, m + log_s, q_sum);
}

@compute @workgroup_size(WG)
fn per_row(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = gid.x + gid.y * nwg.x * WG;
  if (b >= p.rows) { return; }
  let r = row_loss(b);
  loss[b] = r.loss * p.scale;
  stats[b] = vec2f(r.lse, r.q_sum);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn total(@builtin(local_invocation_id) lid: vec3u) {
  let lane = lid.x;
  var acc = 0.0;
  for (var b = lane; b < p.rows; b += WG) {
    let r = row_loss(b);
    stats[b] = vec2f(r.lse, r.q_sum);
    acc += r.loss;
  }
  partial[lane] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      partial[lane] += partial[lane + stride];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    loss[0] = partial[0] * p.scale;
  }
}
