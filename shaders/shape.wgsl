// Data movement without arithmetic: the kernels behind transpose, slice, concat, and slice's gradient.
//
// Elements move as Elem, which the pipeline cache declares: u32 for every 32-bit dtype (raw words, so one
// kernel serves f32, i32 and u32 tensors and never alters a bit pattern: a NaN keeps its payload), or f16
// for f16 tensors (two elements per word).
//
// Entry points:
//   strided  For every coordinate c of `shape`:
//              out[out_base + Σ c_d·out_strides_d] = x[in_base + Σ c_d·in_strides_d].
//            With row-major out strides this is a gather (transpose, slice); with row-major in strides a
//            scatter (one input of concat into its place in the output). Each invocation moves a run of up
//            to `run` consecutive elements along the last dim, so the coordinate arithmetic (integer
//            division, which lavapipe does one lane at a time) is paid once per run, not per element.
//   pad      For every element i of out, which has shape `shape`, at coordinate c (again in runs):
//              out[i] = x[Σ (c_d − lo_d)·in_strides_d] if lo ≤ c < lo + inner, else 0,
//            i.e. x (of shape `inner`) placed at offset `lo` in a tensor of zeros: the gradient of slice.
//
// The TypeScript side first merges dimensions that stay adjacent in both layouts and drops size-1 ones,
// so a typical call arrives here with rank 1 to 3 and the per-element loop is short.

override WG: u32 = 64u;

struct Params {
  n: u32,                          // invocations: runs (strided) or elements (pad)
  rank: u32,
  in_base: u32,
  out_base: u32,
  run: u32,                        // strided: elements per invocation along the last dim
  runs_per_row: u32,               // strided: ceil(shape[rank − 1] / run)
  _pad0: u32,
  _pad1: u32,
  shape: array<vec4u, 2>,
  in_strides: array<vec4u, 2>,
  out_strides: array<vec4u, 2>,
  lo: array<vec4u, 2>,             // pad only
  inner: array<vec4u, 2>,          // pad only
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<Elem>;
@group(0) @binding(2) var<storage, read_write> out: array<Elem>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

@compute @workgroup_size(WG)
fn strided(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.n) { return; }
  let last = p.rank - 1u;
  let first = (r % p.runs_per_row) * p.run;        // coordinate along the last dim where this run starts
  let count = min(p.run, dim(p.shape, last) - first);
  var rest = r / p.runs_per_row;                   // index of the row among the other dims
  var src = p.in_base + first * dim(p.in_strides, last);
  var dst = p.out_base + first * dim(p.out_strides, last);
  for (var d = i32(last) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let c = rest % size;
    rest = rest / size;
    src += c * dim(p.in_strides, u32(d));
    dst += c * dim(p.out_strides, u32(d));
  }
  let in_step = dim(p.in_strides, last);
  let out_step = dim(p.out_strides, last);
  for (var j = 0u; j < count; j++) {
    out[dst + j * out_step] = x[src + j * in_step];
  }
}

@compute @workgroup_size(WG)
fn pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.n) { return; }
  let last = p.rank - 1u;
  let first = (r % p.runs_per_row) * p.run;
  let count = min(p.run, dim(p.shape, last) - first);
  var rest = r / p.runs_per_row;
  var dst = first;
  var src = 0u;
  var inside = true;                               // whether the row lies inside x, in all but the last dim
  var dst_stride = dim(p.shape, last);
  for (var d = i32(last) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let c = rest % size;
    rest = rest / size;
    dst += c * dst_stride;
    dst_stride *= size;
    // Unsigned arithmetic: a coordinate below lo wraps to a huge k and fails the `k < inner` test.
    let k = c - dim(p.lo, u32(d));
    inside = inside && k < dim(p.inner, u32(d));
    src += k * dim(p.in_strides, u32(d));
  }
  let lo = dim(p.lo, last);
  let inner = dim(p.inner, last);
  for (var j = 0u; j < count; j++) {
    let k = first + j - lo;
    var v = Elem(0);
    if (inside && k < inner) { v = x[src + k]; }
    out[dst + j] = v;
  }
}
