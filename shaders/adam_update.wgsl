// Adam / AdamW parameter update, in place: one element per invocation (PyTorch semantics).
//
//   g' = g + l2_decay · p                           (Adam's L2 weight decay; 0 for AdamW)
//   m ← β1 · m + (1 − β1) · g'                      (first moment: a running mean of the gradient)
//   v ← β2 · v + (1 − β2) · g'²                     (second moment: a running mean of its square)
//   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)        (bias correction: m and v start at zero)
//   p ← p − lr · decoupled_decay · p − lr · m̂ / (sqrt(v̂) + ε)   (decoupled_decay: AdamW's; 0 for Adam)
//
// The step count t lives on the CPU, which passes the corrections as their reciprocals inv_bc1 and
// inv_bc2. It also passes 1 − β1 and 1 − β2, computed in f64: in f32, 0.999 is 0.99900001287, so
// 1 − β2 formed here would be off by 1.3e-5 relative, and v̂ (hence every step) by as much.
//
// Adam and AdamW differ only in which decay is non-zero, so both share one pipeline; and as every
// hyper-parameter is in the uniform, changing the learning rate each step never recompiles.

override WG: u32 = 64u;

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  epsilon: f32,
  l2_decay: f32,
  decoupled_decay: f32,
  inv_bc1: f32,          // 1 / (1 − β1^t)
  inv_bc2: f32,          // 1 / (1 − β2^t)
  _pad0: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m2: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= u.n) { return; }
  let p = param[i];
  let g = grad[i] + u.l2_decay * p;
  let m = u.beta1 * m1[i] + u.one_minus_beta1 * g;
  let v = u.beta2 * m2[i] + u.one_minus_beta2 * g * g;
  m1[i] = m;
  m2[i] = v;
  let m_hat = m * u.inv_bc1;
  let v_hat = v * u.inv_bc2;
  param[i] = p - u.lr * u.decoupled_decay * p - u.lr * m_hat / (sqrt(v_hat) + u.epsilon);
}
