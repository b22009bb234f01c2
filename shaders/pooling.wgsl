// 2-D max and average pooling over NHWC tensors, forward and backward.
//
// Geometry (the TypeScript side computes it, with TensorFlow's rules for 'valid' and 'same'):
// output pixel (oh, ow) reads the window of pool_h × pool_w input pixels whose top-left corner is
// (oh·stride_h − pad_top, ow·stride_w − pad_left). Positions outside the input are padding: max pooling
// ignores them, and average pooling divides by the number of valid positions only, as TensorFlow does.
// Every window holds at least one valid position (TensorFlow's 'same' pads less than a window).
//
// Entry points. Each invocation takes a run of up to RUN consecutive channels of one pixel (of the output
// going forward, of the input going backward) and decodes that pixel's coordinates once for the run:
//   max_forward          y[o] = max over o's window
//   max_forward_argmax   the same, and argmax[o] = ky·pool_w + kx of the first maximum in row-major
//                        window order (a strict `>` keeps the first on ties, as TensorFlow)
//   avg_forward          y[o] = Σ window / (number of valid positions)
//   max_backward         dx[i] = Σ g[o] over the windows o that contain i and chose i as their arg-max
//   avg_backward         dx[i] = Σ g[o] / count(o) over the windows o that contain i
//   max_backward_tiled   max_backward where the windows tile the input (below); runs over output pixels
//
// The backward passes are gathers over input positions rather than scatters from outputs: windows overlap
// when stride < pool size (ResNet's 3×3/2), so a scatter would need atomic float adds. Input row py (in
// padded coordinates, py = iy + pad_top) lies in window row oh exactly when oh·stride_h ≤ py < oh·stride_h
// + pool_h, i.e. for oh from ceil((py − pool_h + 1) / stride_h) to floor(py / stride_h); likewise columns.
// Where the windows tile the input exactly (stride = pool size, no padding, input = output · stride: the
// 2×2/2 pools of VGG16 and LeNet at even sizes), every input lies in exactly one window, and the scatter
// is safe: max_backward_tiled writes each window's inputs from its output, g[o] at the arg-max and 0
// elsewhere, reading g and the arg-max once per window instead of once per input.

override WG: u32 = 64u;
override RUN: u32 = 8u;   // channels per invocation

struct Params {
  n: u32,          // invocations: runs of channels of output pixels (forward) or of input pixels (backward)
  channels: u32,
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  pool_h: u32,
  pool_w: u32,
  stride_h: u32,
  stride_w: u32,
  pad_top: u32,
  pad_left: u32,
  runs_per_pixel: u32,   // ceil(channels / RUN)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Forward bindings. Storage is f32 or f16 (Elem, declared by the pipeline cache); the arithmetic is f32.
@group(0) @binding(1) var<storage, read> x: array<Elem>;
@group(0) @binding(2) var<storage, read_write> y: array<Elem>;
@group(0) @binding(3) var<storage, read_write> argmax_out: array<u32>;

// Backward bindings (other entry points; a binding number may be reused across entry points).
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> argmax_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx_avg: array<f32>;

fn flat_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

/** Invocation r's pixel as (batch, row, column, first channel) in an image of height h and width w. */
fn run_start(r: u32, h: u32, w: u32) -> vec4u {
  let pixel = r / p.runs_per_pixel;
  let c0 = (r % p.runs_per_pixel) * RUN;
  let col = pixel % w;
  let rest = pixel / w;
  return vec4u(rest / h, rest % h, col, c0);
}

/** How many channels invocation r handles: RUN, or fewer in the last run of a pixel. */
fn run_count(c0: u32) -> u32 {
  return min(RUN, p.channels - c0);
}

/** Top-left corner of output pixel (oh, ow)'s window, in input coordinates (negative inside the padding). */
fn corner(oh: u32, ow: u32) -> vec2i {
  return vec2i(i32(oh * p.stride_h) - i32(p.pad_top), i32(ow * p.stride_w) - i32(p.pad_left));
}

/** The window clipped to the input: rows [r.x, r.y) and columns [r.z, r.w). */
fn window(oh: u32, ow: u32) -> vec4i {
  let tl = corner(oh, ow);
  return vec4i(max(tl.x, 0), min(tl.x + i32(p.pool_h), i32(p.in_h)),
               max(tl.y, 0), min(tl.y + i32(p.pool_w), i32(p.in_w)));
}

fn x_index(b: u32, row: u32, col: u32, c: u32) -> u32 {
  return ((b * p.in_h + row) * p.in_w + col) * p.channels + c;
}

fn y_index(b: u32, oh: u32, ow: u32, c: u32) -> u32 {
  return ((b * p.out_h + oh) * p.out_w + ow) * p.channels + c;
}

struct WindowMax {
  value: f32,
  offset: u32,   // ky·pool_w + kx of the (first) maximum
}

/** The maximum of channel c over a window (corner tl, clipped rectangle r), and where in the window it is. */
fn window_max(b: u32, c: u32, tl: vec2i, r: vec4i) -> WindowMax {
  var best = f32(x[x_index(b, u32(r.x), u32(r.z), c)]);
  var best_k = u32(r.x - tl.x) * p.pool_w + u32(r.z - tl.y);
  for (var row = r.x; row < r.y; row++) {
    for (var col = r.z; col < r.w; col++) {
      let v = f32(x[x_index(b, u32(row), u32(col), c)]);
      if (v > best) {
        best = v;
        best_k = u32(row - tl.x) * p.pool_w + u32(col - tl.y);
      }
    }
  }
  return WindowMax(best, best_k);
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.out_h, p.out_w);
  let tl = corner(at.y, at.z);
  let win = window(at.y, at.z);
  let o = y_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    y[o + j] = Elem(window_max(at.x, at.w + j, tl, win).value);
  }
}

@compute @workgroup_size(WG)
fn max_forward_argmax(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.out_h, p.out_w);
  let tl = corner(at.y, at.z);
  let win = window(at.y, at.z);
  let o = y_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    let m = window_max(at.x, at.w + j, tl, win);
    y[o + j] = Elem(m.value);
    argmax_out[o + j] = m.offset;
  }
}

@compute @workgroup_size(WG)
fn avg_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.out_h, p.out_w);
  let win = window(at.y, at.z);
  let count = f32((win.y - win.x) * (win.w - win.z));
  let o = y_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    var total = 0.0;
    for (var row = win.x; row < win.y; row++) {
      for (var col = win.z; col < win.w; col++) {
        total += f32(x[x_index(at.x, u32(row), u32(col), at.w + j)]);
      }
    }
    y[o + j] = Elem(total / count);
  }
}

/** The output rows [x, y] and columns [z, w] (inclusive) whose windows contain input pixel (iy, ix). */
fn windows_containing(iy: u32, ix: u32) -> vec4i {
  let py = iy + p.pad_top;
  let px = ix + p.pad_left;
  // ceil((py − pool_h + 1) / stride_h), clamped at 0, in unsigned arithmetic.
  let first_row = (max(py + 1u, p.pool_h) - p.pool_h + p.stride_h - 1u) / p.stride_h;
  let first_col = (max(px + 1u, p.pool_w) - p.pool_w + p.stride_w - 1u) / p.stride_w;
  return vec4i(i32(first_row), min(i32(py / p.stride_h), i32(p.out_h) - 1),
               i32(first_col), min(i32(px / p.stride_w), i32(p.out_w) - 1));
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.in_h, p.in_w);
  let py = i32(at.y + p.pad_top);
  let px = i32(at.z + p.pad_left);
  let outs = windows_containing(at.y, at.z);
  let i = x_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    var total = 0.0;
    for (var oh = outs.x; oh <= outs.y; oh++) {
      for (var ow = outs.z; ow <= outs.w; ow++) {
        // This input's offset within window (oh, ow).
        let k = u32(py - oh * i32(p.stride_h)) * p.pool_w + u32(px - ow * i32(p.stride_w));
        let o = y_index(at.x, u32(oh), u32(ow), at.w + j);
        if (argmax_in[o] == k) { total += g[o]; }
      }
    }
    dx[i + j] = total;
  }
}

@compute @workgroup_size(WG)
fn avg_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.in_h, p.in_w);
  let outs = windows_containing(at.y, at.z);
  let i = x_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    var total = 0.0;
    for (var oh = outs.x; oh <= outs.y; oh++) {
      for (var ow = outs.z; ow <= outs.w; ow++) {
        let win = window(u32(oh), u32(ow));
        total += g[y_index(at.x, u32(oh), u32(ow), at.w + j)] / f32((win.y - win.x) * (win.w - win.z));
      }
    }
    dx_avg[i + j] = total;
  }
}

@compute @workgroup_size(WG)
fn max_backward_tiled(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat_id(gid, nwg);
  if (r >= p.n) { return; }
  let at = run_start(r, p.out_h, p.out_w);
  let top = at.y * p.stride_h;
  let left = at.z * p.stride_w;
  let o = y_index(at.x, at.y, at.z, at.w);
  for (var j = 0u; j < run_count(at.w); j++) {
    let grad = g[o + j];
    let chosen = argmax_in[o + j];
    for (var ky = 0u; ky < p.pool_h; ky++) {
      for (var kx = 0u; kx < p.pool_w; kx++) {
        dx[x_index(at.x, top + ky, left + kx, at.w + j)] = select(0.0, grad, ky * p.pool_w + kx == chosen);
      }
    }
  }
}
