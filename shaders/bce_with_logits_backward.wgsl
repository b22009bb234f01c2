// Backward of binary cross-entropy on logits (bce_with_logits.wgsl): one invocation per element.
//   d loss / d x = σ(x) − t
// times the upstream gradient (one value per element for reduction 'none', a scalar otherwise) and
// `scale` (1/N for 'mean'). σ is evaluated without exp of a positive number.

override WG: u32 = 64u;

struct Params {
  n: u32,
  scale: f32,
  grad_per_element: u32,   // 1: g has the shape of x ('none'); 0: g is a scalar
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));   // in (0, 1]
  if (v >= 0.0) { return 1.0 / (1.0 + e); }
  return e / (1.0 + e);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  var upstream = g[0];
  if (p.grad_per_element == 1u) { upstream = g[i]; }
  dx[i] = (sigmoid(x[i]) - t[i]) * upstream * p.scale;
}
