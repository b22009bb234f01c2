// Batched 2-D transpose through a tile in workgroup memory: x[b, r, c] → out[b, c, r].
//
// This is version 2 of transpose; version 1 is the general gather `strided` in shape.wgsl, which handles
// any permutation but reads x with a stride of `rows` words between neighbouring invocations. Here a
// T×T workgroup first loads a T×T block of x along its rows into workgroup memory, then writes the
// transposed block to out, again along rows. The tile has T + 1 columns so that a column of the tile
// falls in different memory banks on GPUs that have them.
//
// Workgroups: x covers the columns of x in steps of T, y its rows, z the batch.

override T: u32 = 16u;

struct Params {
  rows: u32,
  cols: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> tile: array<u32, T * (T + 1u)>;

@compute @workgroup_size(T, T)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let base = wid.z * p.rows * p.cols;
  let r = wid.y * T + lid.y;
  let c = wid.x * T + lid.x;
  if (r < p.rows && c < p.cols) {
    tile[lid.y * (T + 1u) + lid.x] = x[base + r * p.cols + c];
  }
  workgroupBarrier();
  // This invocation writes row (wid.x·T + lid.y) of out, which is column c of x, at column (wid.y·T + lid.x).
  let out_r = wid.x * T + lid.y;
  let out_c = wid.y * T + lid.x;
  if (out_r < p.cols && out_c < p.rows) {
    out[base + out_r * p.rows + out_c] = tile[lid.x * (T + 1u) + lid.y];
  }
}
