// SGD parameter update, in place: one element per invocation (PyTorch semantics, dampening 0).
//
//   g' = g + weight_decay · p                      (L2 weight decay folded into the gradient)
//   without momentum:  p ← p − lr · g'
//   with momentum:     v ← momentum · v + g'
//                      p ← p − lr · v                 (classical / heavy ball)
//                      p ← p − lr · (g' + momentum · v)   (Nesterov, with the new v)
//
// MOMENTUM is an override because it decides whether the velocity buffer exists; without momentum the
// TypeScript side binds a 16-byte placeholder there that this kernel never touches. Everything that may
// change between steps (the learning rate above all) is in the uniform, so it never recompiles.

override MOMENTUM: bool = false;
override WG: u32 = 64u;

struct Params {
  n: u32,
  lr: f32,
  momentum: f32,
  weight_decay: f32,
  nesterov: u32,         // 1: Nesterov momentum; read only when MOMENTUM is true
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= u.n) { return; }
  let p = param[i];
  let g = grad[i] + u.weight_decay * p;
  if (!MOMENTUM) {
    param[i] = p - u.lr * g;
    return;
  }
  let v = u.momentum * velocity[i] + g;
  velocity[i] = v;
  let step = select(v, g + u.momentum * v, u.nesterov != 0u);
  param[i] = p - u.lr * step;
}
