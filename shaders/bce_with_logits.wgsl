// Binary cross-entropy on logits, in the stable form
//   loss(x, t) = −t·log σ(x) − (1 − t)·log(1 − σ(x)) = max(x, 0) − x·t + log(1 + exp(−|x|))
// which never evaluates exp of a positive number, so it is finite for logits of any size.
// log(1 + u) for small u uses Goldberg's correction (there is no log1p in WGSL): when 1 + u rounds to w,
// log(w)·u/(w − 1) is accurate to a few ulps, where log(w) alone would lose u entirely for u < 2⁻²⁴.
//
// Entry points:
//   per_element  reduction 'none': loss[i] = loss(x_i, t_i);
//   total        reduction 'mean' or 'sum': one workgroup strides over all elements and tree-reduces,
//                loss[0] = scale · Σ_i loss(x_i, t_i), scale = 1/N or 1.

override WG: u32 = 64u;   // a power of two

struct Params {
  n: u32,
  scale: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

fn log1p(u: f32) -> f32 {
  let w = 1.0 + u;
  if (w == 1.0) { return u; }
  return log(w) * u / (w - 1.0);
}

fn element_loss(i: u32) -> f32 {
  let v = x[i];
  return max(v, 0.0) - v * t[i] + log1p(exp(-abs(v)));
}

@compute @workgroup_size(WG)
fn per_element(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  loss[i] = element_loss(i);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn total(@builtin(local_invocation_id) lid: vec3u) {
  let lane = lid.x;
  var acc = 0.0;
  for (var i = lane; i < p.n; i += WG) {
    acc += element_loss(i);
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
