// Elementwise binary ops with NumPy broadcasting: out[i] = f(a[ia], b[ib]).
//
// With BROADCAST = false both inputs have the output's shape and ia = ib = i. Otherwise the flat output
// index is split into coordinates along `shape`, and each input's offset is the dot product of those
// coordinates with its strides, where a broadcast dimension has stride 0.

override OP: u32 = 0u;
override BROADCAST: bool = false;
override WG: u32 = 64u;
override RUN: u32 = 4u;   // vec4s per invocation in main_vec4

struct Params {
  n: u32,
  rank: u32,
  _pad0: u32,
  _pad1: u32,
  shape: array<vec4u, 2>,
  a_strides: array<vec4u, 2>,
  b_strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
// Storage is f32 or f16 (Elem, declared by the pipeline cache); the arithmetic is f32.
@group(0) @binding(1) var<storage, read> a: array<Elem>;
@group(0) @binding(2) var<storage, read> b: array<Elem>;
@group(0) @binding(3) var<storage, read_write> out: array<Elem>;
// The same buffers seen as vec4 (main_vec4; a binding number may be reused across entry points).
@group(0) @binding(1) var<storage, read> a4: array<vec4<Elem>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<Elem>>;

// Keep in sync with BINARY_OPS in src/ops/elementwise.ts.
fn apply(x: f32, y: f32) -> f32 {
  switch OP {
    case 0u: { return x + y; }                          // add
    case 1u: { return x - y; }                          // sub
    case 2u: { return x * y; }                          // mul
    case 3u: { return x / y; }                          // div
    case 4u: { return pow(x, y); }                      // pow (x > 0)
    case 5u: { return max(x, y); }                      // maximum
    case 6u: { return min(x, y); }                      // minimum
    case 7u: { return select(0.0, x, y > 0.0); }        // relu backward: grad x where output y > 0
    case 8u: { return x * y * (1.0 - y); }              // sigmoid backward: grad x, output y
    case 9u: { return x * (1.0 - y * y); }              // tanh backward: grad x, output y
    case 10u: { return select(0.0, 1.0, x == y); }      // equal (1.0 or 0.0)
    case 11u: { return select(0.0, 1.0, x > y); }       // greater (1.0 or 0.0)
    case 12u: { return x; }                             // first operand (broadcastTo)
    default: { return x; }
  }
}

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  if (!BROADCAST) {
    out[i] = Elem(apply(f32(a[i]), f32(b[i])));
    return;
  }
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let c = rest % size;
    rest = rest / size;
    ia += c * dim(p.a_strides, u32(d));
    ib += c * dim(p.b_strides, u32(d));
  }
  out[i] = Elem(apply(f32(a[ia]), f32(b[ib])));
}

/**
 * Without broadcasting and for n % 4 == 0: the inputs and the output read as vec4, RUN vec4s per
 * invocation, a workgroup's invocations taking WG adjacent vec4s at a time (as unary.wgsl's main_vec4).
 */
@compute @workgroup_size(WG)
fn main_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) nwg: vec3u) {
  let n4 = p.n / 4u;
  var v = (wid.x + wid.y * nwg.x) * WG * RUN + lane;
  for (var j = 0u; j < RUN; j++) {
    if (v < n4) {
      let x = vec4f(a4[v]);
      let y = vec4f(b4[v]);
      out4[v] = vec4<Elem>(vec4f(apply(x.x, y.x), apply(x.y, y.y), apply(x.z, y.z), apply(x.w, y.w)));
    }
    v += WG;
  }
}
