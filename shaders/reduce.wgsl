// Reductions (sum or max) over any set of axes.
//
// The TypeScript side splits the input's dimensions into kept ones (which index the output) and reduced
// ones, merging neighbours that are contiguous, so most reductions arrive here with a single reduced
// dimension of some stride. Output element o reads input offset base(o) + offset(r) for r in [0, n_red).
//
// Two entry points:
//   main      one invocation per output element: good when there are many outputs (e.g. per-row sums);
//   main_wg   one workgroup per output element, WG invocations striding over r, then a tree reduction in
//             workgroup memory: good when there are few outputs and long rows (e.g. a loss's mean).
//   columns   the first pass of a column reduction of an f32 [R, C] matrix over its rows (C % 4 == 0):
//             a bias gradient, Σ over N·H·W pixels per channel. Invocation (s, cg) combines rows
//             [s·L, (s+1)·L) of the vec4 of columns cg into partial[s, cg]; `main` then reduces the S rows
//             of partials. main_wg would give each channel a workgroup whose lanes read one value per
//             cache line, C values apart; here each row's vec4s are read by adjacent lanes, once.

override OP: u32 = 0u;   // 0 sum, 1 max
override WG: u32 = 64u;

struct Params {
  n_out: u32,
  n_red: u32,
  kept_rank: u32,
  red_rank: u32,
  scale: f32,            // multiplies the result (1/n_red for mean)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  kept_shape: array<vec4u, 2>,
  kept_strides: array<vec4u, 2>,
  red_shape: array<vec4u, 2>,
  red_strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
// Storage is f32 or f16 (Elem, declared by the pipeline cache); sums are f32.
@group(0) @binding(1) var<storage, read> x: array<Elem>;
@group(0) @binding(2) var<storage, read_write> y: array<Elem>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn base_offset(o: u32) -> u32 {
  var rest = o;
  var off = 0u;
  for (var d = i32(p.kept_rank) - 1; d >= 0; d--) {
    let size = dim(p.kept_shape, u32(d));
    off += (rest % size) * dim(p.kept_strides, u32(d));
    rest = rest / size;
  }
  return off;
}

fn red_offset(r: u32) -> u32 {
  if (p.red_rank == 1u) { return r * p.red_strides[0].x; }
  var rest = r;
  var off = 0u;
  for (var d = i32(p.red_rank) - 1; d >= 0; d--) {
    let size = dim(p.red_shape, u32(d));
    off += (rest % size) * dim(p.red_strides, u32(d));
    rest = rest / size;
  }
  return off;
}

fn identity() -> f32 {
  if (OP == 1u) { return -3.402823466e+38; }
  return 0.0;
}

fn combine(a: f32, b: f32) -> f32 {
  if (OP == 1u) { return max(a, b); }
  return a + b;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= p.n_out) { return; }
  let base = base_offset(o);
  var acc = identity();
  for (var r = 0u; r < p.n_red; r++) {
    acc = combine(acc, f32(x[base + red_offset(r)]));
  }
  y[o] = Elem(acc * p.scale);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main_wg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
           @builtin(num_workgroups) nwg: vec3u) {
  let o = wid.x + wid.y * nwg.x;   // uniform across the workgroup
  var acc = identity();
  if (o < p.n_out) {
    let base = base_offset(o);
    for (var r = lid.x; r < p.n_red; r += WG) {
      acc = combine(acc, f32(x[base + red_offset(r)]));
    }
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid.x < stride) {
      partial[lid.x] = combine(partial[lid.x], partial[lid.x + stride]);
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && o < p.n_out) {
    y[o] = Elem(partial[0] * p.scale);
  }
}

struct ColumnParams {
  rows: u32,              // R
  columns4: u32,          // C / 4
  rows_per: u32,          // L
  invocations: u32,       // S · C/4
}

@group(0) @binding(0) var<uniform> pc: ColumnParams;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> partial4: array<vec4f>;

fn combine4(a: vec4f, b: vec4f) -> vec4f {
  if (OP == 1u) { return max(a, b); }
  return a + b;
}

@compute @workgroup_size(WG)
fn columns(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= pc.invocations) { return; }
  let cg = i % pc.columns4;
  let s = i / pc.columns4;
  let first = s * pc.rows_per;
  var acc = vec4f(identity());
  for (var r = first; r < min(first + pc.rows_per, pc.rows); r++) {
    acc = combine4(acc, x4[r * pc.columns4 + cg]);
  }
  partial4[i] = acc;
}
