/**
 * Conv2d version 'winograd': a 3×3 stride-1 convolution by Winograd's minimal filtering, F(4×4, 3×3) or
 * F(2×2, 3×3). shaders/conv2d_winograd.wgsl derives it; in short, each m×m block of outputs is
 *
 *   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
 *
 * for the (m+2)×(m+2) input tile d_c of each channel c and the 3×3 filter g_c: (m+2)² multiplies per channel
 * and filter instead of 9m² (36 for 144 at m = 4, 16 for 36 at m = 2). The sum over channels at each of the
 * (m+2)² positions ξ of the transformed tile is a matrix product, so the forward pass is four dispatches:
 *
 *   U = filter_transform(w)        [(m+2)², C, F]
 *   V = input_transform(x)         [(m+2)², tiles, C]
 *   M = V · U                      [(m+2)², tiles, F]    one batched matmul (v3 where it runs)
 *   y = output_transform(M)        [N, OH, OW, F]        + bias, + residual, relu
 *
 * dX is the same pass over dY with the filter turned by 180° (below), dW the adjoint of the forward pass
 * (dU = Vᵀ · dM, then Gᵀ dU G).
 *
 * Why: on lavapipe the multiply-adds of the GEMM kernels are the whole cost of a network (88 % of a
 * ResNet50 forward pass before this), and half of ResNet50's are in its 3×3 convolutions; the transforms
 * only add and scale, and read and write each value a few times. The price is memory: V and M are
 * (m+2)²/m² = 2.25× (m = 4) or 4× (m = 2) the size of x and y, allocated for the call (over chunks of the
 * batch where they would not fit one binding) and released after it. The filter is transformed on every
 * call (no cache to keep coherent while weights train); the cost model below counts that. The transformed
 * tiles are f32 whatever the storage type, so f16 storage still rounds once, at the output.
 *
 * Exactness. In exact arithmetic this is the convolution; in f32 the transforms add roundings, more for
 * F(4×4) (its matrices hold 4, 5, 8 and 1/6): against PyTorch in f64, ResNet50's logits agree to 1.6e-6 of
 * their largest value (test/models/pytorch-parity.test.ts), as with the direct kernels.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor/tensor.js';
import { grid1d, launch, storageBindingLimit, storageOf } from './kernel.js';
import { batchedMatmulRaw } from './matmul.js';
import type { ConvActivation, ConvGeometry } from './conv-kernels.js';

/** Invocations per workgroup of the transforms. */
const WG = 64;

/** The output tile size m of F(m×m, 3×3): 2 or 4. */
export type WinogradTile = 2 | 4;

/** Positions of the transformed tile, (m + 2)². */
const positions = (m: WinogradTile) => (m + 2) ** 2;

/** Tiles of m×m outputs: [tiles along h, tiles along w, all tiles]. */
function tilesOf(g: ConvGeometry, m: WinogradTile): [number, number, number] {
  const th = Math.ceil(g.OH / m);
  const tw = Math.ceil(g.OW / m);
  return [th, tw, g.N * th * tw];
}

/**
 * What each step costs, in units of one multiply-add of the GEMM kernels, per value written: measured on
 * lavapipe from a ResNet50 forward pass at 224, batch 8 (the bench's per-kernel breakdown: the GEMMs ran at
 * 0.146 ns per multiply-add, the input transform took 3.0 ns per value of V, the output transform 3.3 ns per
 * value of M, the filter transform 2.0 ns per value of U). The direct kernel ran its multiply-adds at the
 * GEMMs' rate.
 */
const COST = { input: 20, output: 23, filter: 14 };

/** Estimated cost of the forward pass of `g` with tile size m, or directly (m = null), in GEMM multiply-adds. */
export function winogradCost(g: ConvGeometry, m: WinogradTile | null): number {
  if (m === null) return 9 * g.N * g.OH * g.OW * g.C * g.F;
  const n2 = positions(m), tiles = tilesOf(g, m)[2];
  return n2 * (tiles * g.C * g.F + COST.input * tiles * g.C + COST.output * tiles * g.F + COST.filter * g.C * g.F);
}

/**
 * The tile size m of F(m×m, 3×3) with the lowest estimated cost, or null where the direct kernel costs less
 * or Winograd does not apply. F(4×4) does 2.25 multiplies per output against F(2×2)'s 4, but rounds the
 * output up to multiples of 4 (on a 2×2 output it computes 4× too many), and both transform the whole
 * filter on every call, which costs more than it saves when the image is small and the filter large
 * (ResNet50's last blocks at 64×64). Winograd applies to a 3×3 filter with stride 1, channel counts in
 * multiples of 4 (the transforms move vec4s), and transformed tensors (at 4 bytes a value) that fit one
 * storage binding. With `evenIfSlower` (the version pinned), the cheaper tile size wherever it applies.
 */
export function winogradTile(g: ConvGeometry, evenIfSlower = false, wholeBatch = false): WinogradTile | null {
  if (g.KH !== 3 || g.KW !== 3 || g.sh !== 1 || g.sw !== 1 || g.C % 4 !== 0 || g.F % 4 !== 0 || g.N * g.OH * g.OW === 0) return null;
  const fits = (m: WinogradTile) =>
    imagesPerChunk(g, m) >= (wholeBatch ? g.N : 1) && positions(m) * g.C * g.F * 4 <= storageBindingLimit();
  const best = ([2, 4] as const).filter(fits).sort((a, b) => winogradCost(g, a) - winogradCost(g, b))[0] ?? null;
  return best !== null && (evenIfSlower || winogradCost(g, best) < winogradCost(g, null)) ? best : null;
}

/**
 * How many images the transformed tiles V and M of one pass may hold (at 4 bytes a value) and still fit one
 * storage binding: larger batches run the transforms and the GEMM chunk by chunk (VGG16's first block at
 * 224, batch 8, needs 2 chunks of 4 images within lavapipe's 128 MiB).
 */
function imagesPerChunk(g: ConvGeometry, m: WinogradTile): number {
  const [th, tw] = tilesOf(g, m);
  return Math.floor(storageBindingLimit() / (positions(m) * th * tw * Math.max(g.C, g.F) * 4));
}

/** The batch as chunks of at most `imagesPerChunk` images: [first image, the geometry of the chunk]. */
function chunks(g: ConvGeometry, m: WinogradTile): Array<[number, ConvGeometry]> {
  const per = imagesPerChunk(g, m);
  const out: Array<[number, ConvGeometry]> = [];
  for (let n0 = 0; n0 < g.N; n0 += per) out.push([n0, { ...g, N: Math.min(per, g.N - n0) }]);
  return out;
}

/**
 * Whether the forward pass of `g` can run as Winograd (see `winogradTile`), and is cheaper that way unless
 * pinned; `wholeBatch` for dW, which sums over the whole batch in one GEMM.
 */
export function winogradApplies(g: ConvGeometry, pinned = false, wholeBatch = false): boolean {
  return winogradTile(g, pinned, wholeBatch) !== null;
}

/** The uniform all the transforms read (see Params in the shader); g.N images from `firstImage` on. */
function params(g: ConvGeometry, m: WinogradTile, count: number, flip = false, firstImage = 0): Uniforms {
  const [th, tw, tiles] = tilesOf(g, m);
  return new Uniforms()
    .u32(g.N).u32(g.H).u32(g.W).u32(g.C / 4)
    .u32(g.OH).u32(g.OW).u32(g.F / 4).u32(th)
    .u32(tw).u32(tiles).i32(g.pt).i32(g.pl)
    .u32(count).u32(flip ? 1 : 0).u32(firstImage).u32(0);
}

/**
 * U [(m+2)², C, F] = G w Gᵀ for each (c, f) of w [3, 3, C, F] (C and F from g), in f32; with
 * `flip`, of the filter turned by 180° (w[2 − kh, 2 − kw]), which dX convolves with.
 */
export function winogradFilterRaw(w: Tensor, g: ConvGeometry, m: WinogradTile, flip = false): Tensor {
  const u = Tensor.empty([positions(m), g.C, g.F], 'f32', 'winograd U');
  const count = g.C * (g.F / 4);
  launch('conv2d winograd filter', {
    shader: 'conv2d_winograd', entry: `filter_transform_f${m}`, storage: storageOf(w), constants: { WG },
    uniforms: params(g, m, count, flip), inputs: [w], outputs: [u], alwaysF32: [u], workgroups: grid1d(count, WG),
  });
  return u;
}

/** V [(m+2)², tiles, C] = Bᵀ d B for each tile d of g.N images of x from `firstImage` (zero outside x), in f32. */
export function winogradInputRaw(x: Tensor, g: ConvGeometry, m: WinogradTile, firstImage = 0): Tensor {
  const tiles = tilesOf(g, m)[2];
  const v = Tensor.empty([positions(m), tiles, g.C], 'f32', 'winograd V');
  const count = tiles * (g.C / 4);
  launch('conv2d winograd input', {
    shader: 'conv2d_winograd', entry: `input_transform_f${m}`, storage: storageOf(x), constants: { WG },
    uniforms: params(g, m, count, false, firstImage), inputs: [x], outputs: [v], alwaysF32: [v], workgroups: grid1d(count, WG),
  });
  return v;
}

/**
 * y [N, OH, OW, F] = act(Aᵀ M A + bias + residual) for each tile of M [(m+2)², tiles, F], as a new f32
 * tensor; or, with `into`, the g.N images from `into.firstImage` on of an existing y (a chunk), in y's
 * storage type.
 */
export function winogradOutputRaw(
  mt: Tensor, g: ConvGeometry, m: WinogradTile, bias: Tensor | null, activation: ConvActivation, residual: Tensor | null,
  into: { y: Tensor; firstImage: number } | null = null,
): Tensor {
  const y = into?.y ?? Tensor.empty([g.N, g.OH, g.OW, g.F], 'f32', 'conv2d');
  const count = tilesOf(g, m)[2] * (g.F / 4);
  launch('conv2d winograd output', {
    shader: 'conv2d_winograd', entry: `output_transform_f${m}`, storage: storageOf(y),
    constants: { WG, HAS_BIAS: bias !== null, ACT: activation === 'relu' ? 1 : 0, HAS_RESIDUAL: residual !== null },
    uniforms: params(g, m, count, false, into?.firstImage ?? 0),
    inputs: [mt, bias ?? runtime().emptyBuffer, residual ?? runtime().emptyBuffer],   // placeholders when absent
    outputs: [y],
    alwaysF32: [mt],
    workgroups: grid1d(count, WG),
  });
  return y;
}

/**
 * y = act(conv(x, w) + bias + residual) where `winogradTile(g)` is not null, with its tile size or the one
 * given (the tests run both); not recorded.
 */
export function conv2dWinogradRaw(
  x: Tensor, w: Tensor, bias: Tensor | null, activation: ConvActivation, g: ConvGeometry, residual: Tensor | null, tile: WinogradTile | null = null,
): Tensor {
  const m = tile ?? winogradTile(g, true);
  if (m === null) throw new Error(`conv2d winograd: internal error: called for a convolution it does not apply to (${JSON.stringify(g)}).`);
  return winogradPass(x, winogradFilterRaw(w, g, m), g, m, { bias, activation, residual, storage: storageOf(x) });
}

/** The input transform, the GEMM with U (then released) and the output transform, chunk by chunk of the batch. */
function winogradPass(
  x: Tensor, u: Tensor, g: ConvGeometry, m: WinogradTile,
  out: { bias: Tensor | null; activation: ConvActivation; residual: Tensor | null; storage: 'f32' | 'f16'; transposeU?: boolean },
): Tensor {
  const y = Tensor.empty([g.N, g.OH, g.OW, g.F], out.storage, 'conv2d');
  try {
    for (const [firstImage, part] of chunks(g, m)) {
      const v = winogradInputRaw(x, part, m, firstImage);
      const mt = batchedMatmulRaw(v, u, { transposeB: out.transposeU ?? false });
      v.dispose();
      winogradOutputRaw(mt, part, m, out.bias, out.activation, out.residual, { y, firstImage });
      mt.dispose();
    }
  } finally {
    u.dispose();
  }
  return y;
}

// ---------------------------------------------------------------------------------------------------------
// dX: for stride 1 the input gradient is itself a 3×3 convolution,
//   dX[ih, iw, c] = Σ_{kh, kw, f} dY[ih + pt − kh, iw + pl − kw, f] · w[kh, kw, c, f]
//                 = Σ_{k'h, k'w, f} dY[ih − (2 − pt) + k'h, …, f] · w[2 − k'h, 2 − k'w, c, f],
// the correlation of dY with the filter turned by 180° and its channel dims swapped, with padding 2 − pt
// before and 2 − pb after (and likewise along w): exactly the forward pass above, with the turned filter's
// transform read transposed by the GEMM (U[ξ] is [C, F]; dX needs [F, C]: matmul v3's `main_bt`).

/** The geometry of dX as a forward convolution of dY [N, OH, OW, F] with [3, 3, F, C], or null where it is not one (stride 2, padding over 2). */
export function inputGradGeometry(g: ConvGeometry): ConvGeometry | null {
  if (g.KH !== 3 || g.KW !== 3 || g.sh !== 1 || g.sw !== 1 || Math.max(g.pt, g.pb, g.pl, g.pr) > 2) return null;
  return {
    N: g.N, H: g.OH, W: g.OW, C: g.F, KH: 3, KW: 3, F: g.C, OH: g.H, OW: g.W, sh: 1, sw: 1,
    pt: 2 - g.pt, pb: 2 - g.pb, pl: 2 - g.pl, pr: 2 - g.pr,
  };
}

/** dX [N, H, W, C] of a convolution where `inputGradGeometry(g)` has a Winograd tile; not recorded. */
export function conv2dWinogradInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeometry, tile: WinogradTile | null = null): Tensor {
  const gd = inputGradGeometry(g);
  const m = gd && (tile ?? winogradTile(gd, true));
  if (!gd || m === null) throw new Error(`conv2d winograd dX: internal error: called for a convolution it does not apply to (${JSON.stringify(g)}).`);
  return winogradPass(dy, winogradFilterRaw(w, g, m, true), gd, m, { bias: null, activation: 'none', residual: null, storage: 'f32', transposeU: true });
}

// ---------------------------------------------------------------------------------------------------------
// dW: the adjoint of the forward pass. From y = Aᵀ M A per tile and M[ξ] = V[ξ] · U[ξ] with U = G w Gᵀ:
//   dM = A dY Aᵀ,   dU[ξ] = V[ξ]ᵀ · dM[ξ]  (summed over the tiles: the GEMM's long dimension),   dW = Gᵀ dU G.
// V is the forward pass's input transform, recomputed from x.

/** dM [(m+2)², tiles, F] = A dY Aᵀ for each tile of dY [N, OH, OW, F] (zero past the output). */
export function winogradOutputAdjointRaw(dy: Tensor, g: ConvGeometry, m: WinogradTile): Tensor {
  const tiles = tilesOf(g, m)[2];
  const dm = Tensor.empty([positions(m), tiles, g.F], 'f32', 'winograd dM');
  const count = tiles * (g.F / 4);
  launch('conv2d winograd dW output adjoint', {
    shader: 'conv2d_winograd', entry: `output_adjoint_f${m}`, storage: storageOf(dy), constants: { WG },
    uniforms: params(g, m, count), inputs: [dy], outputs: [dm], alwaysF32: [dm], workgroups: grid1d(count, WG),
  });
  return dm;
}

/** dW [3, 3, C, F] = Gᵀ dU G for each (c, f) of dU [(m+2)², C, F]. */
export function winogradFilterAdjointRaw(du: Tensor, g: ConvGeometry, m: WinogradTile): Tensor {
  const dw = Tensor.empty([3, 3, g.C, g.F], 'f32', 'conv2d dW');
  const count = g.C * (g.F / 4);
  launch('conv2d winograd dW filter adjoint', {
    shader: 'conv2d_winograd', entry: `filter_adjoint_f${m}`, storage: 'f32', constants: { WG },
    uniforms: params(g, m, count), inputs: [du], outputs: [dw], alwaysF32: [du, dw], workgroups: grid1d(count, WG),
  });
  return dw;
}

/** dW [3, 3, C, F] of a convolution where `winogradTile(g, …, wholeBatch)` applies (no chunks); not recorded. */
export function conv2dWinogradFilterGradRaw(x: Tensor, dy: Tensor, g: ConvGeometry, tile: WinogradTile | null = null): Tensor {
  const m = tile ?? winogradTile(g, true, true);
  if (m === null) throw new Error(`conv2d winograd dW: internal error: called for a convolution it does not apply to (${JSON.stringify(g)}).`);
  const v = winogradInputRaw(x, g, m);
  const dm = winogradOutputAdjointRaw(dy, g, m);
  const du = batchedMatmulRaw(v, dm, { transposeA: true });
  v.dispose();
  dm.dispose();
  const dw = winogradFilterAdjointRaw(du, g, m);
  du.dispose();
  return dw;
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references of the three transforms (f64), used by the tests. Together with matmulRef
// they give the convolution again, which the tests check against conv2dRef.

/** Bᵀ, G and Aᵀ of F(m, 3) (shaders/conv2d_winograd.wgsl writes them out). */
const MATRICES: Record<WinogradTile, { BT: number[][]; G: number[][]; AT: number[][] }> = {
  2: {
    BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  4: {
    BT: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    G: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  },
};

/** L · T · Rᵀ for a small matrix T (rows × cols) and transforms L (a × rows), R (b × cols). */
function sandwich(L: number[][], T: number[][], R: number[][]): number[][] {
  return L.map((l) => R.map((r) => l.reduce((s, lv, i) => s + lv * r.reduce((t, rv, j) => t + rv * T[i]![j]!, 0), 0)));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** U [(m+2)², C, F] from w [3, 3, C, F]. */
export function winogradFilterRef(w: ArrayLike<number>, C: number, F: number, m: WinogradTile): Float64Array {
  const n = m + 2;
  const u = new Float64Array(n * n * C * F);
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) {
      const gk = range(3).map((kh) => range(3).map((kw) => w[((kh * 3 + kw) * C + c) * F + f]!));
      sandwich(MATRICES[m].G, gk, MATRICES[m].G).forEach((row, a) => row.forEach((val, b) => (u[((n * a + b) * C + c) * F + f] = val)));
    }
  }
  return u;
}

/** V [(m+2)², tiles, C] from x [N, H, W, C]. */
export function winogradInputRef(x: ArrayLike<number>, g: ConvGeometry, m: WinogradTile): Float64Array {
  const n = m + 2;
  const [th, tw, tiles] = tilesOf(g, m);
  const v = new Float64Array(n * n * tiles * g.C);
  for (let t = 0; t < tiles; t++) {
    const [img, i, j] = [Math.floor(t / (th * tw)), Math.floor(t / tw) % th, t % tw];
    for (let c = 0; c < g.C; c++) {
      const d = range(n).map((a) => range(n).map((b) => {
        const [ih, iw] = [m * i - g.pt + a, m * j - g.pl + b];
        return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[((img * g.H + ih) * g.W + iw) * g.C + c]! : 0;
      }));
      sandwich(MATRICES[m].BT, d, MATRICES[m].BT).forEach((row, a) => row.forEach((val, b) => (v[((n * a + b) * tiles + t) * g.C + c] = val)));
    }
  }
  return v;
}

/** y [N, OH, OW, F] from M [(m+2)², tiles, F], before bias and activation. */
export function winogradOutputRef(mt: ArrayLike<number>, g: ConvGeometry, m: WinogradTile): Float64Array {
  const n = m + 2;
  const [th, tw, tiles] = tilesOf(g, m);
  const y = new Float64Array(g.N * g.OH * g.OW * g.F);
  for (let t = 0; t < tiles; t++) {
    const [img, i, j] = [Math.floor(t / (th * tw)), Math.floor(t / tw) % th, t % tw];
    for (let f = 0; f < g.F; f++) {
      const block = range(n).map((a) => range(n).map((b) => mt[((n * a + b) * tiles + t) * g.F + f]!));
      sandwich(MATRICES[m].AT, block, MATRICES[m].AT).forEach((row, a) => row.forEach((val, b) => {
        const [oh, ow] = [m * i + a, m * j + b];
        if (oh < g.OH && ow < g.OW) y[((img * g.OH + oh) * g.OW + ow) * g.F + f] = val;
      }));
    }
  }
  return y;
}

/** dM [(m+2)², tiles, F] from dY [N, OH, OW, F]: A dY Aᵀ per tile. */
export function winogradOutputAdjointRef(dy: ArrayLike<number>, g: ConvGeometry, m: WinogradTile): Float64Array {
  const n = m + 2;
  const [th, tw, tiles] = tilesOf(g, m);
  const A = transpose(MATRICES[m].AT);
  const dm = new Float64Array(n * n * tiles * g.F);
  for (let t = 0; t < tiles; t++) {
    const [img, i, j] = [Math.floor(t / (th * tw)), Math.floor(t / tw) % th, t % tw];
    for (let f = 0; f < g.F; f++) {
      const block = range(m).map((a) => range(m).map((b) => {
        const [oh, ow] = [m * i + a, m * j + b];
        return oh < g.OH && ow < g.OW ? dy[((img * g.OH + oh) * g.OW + ow) * g.F + f]! : 0;
      }));
      sandwich(A, block, A).forEach((row, a) => row.forEach((val, b) => (dm[((n * a + b) * tiles + t) * g.F + f] = val)));
    }
  }
  return dm;
}

/** dW [3, 3, C, F] from dU [(m+2)², C, F]: Gᵀ dU G per (c, f). */
export function winogradFilterAdjointRef(du: ArrayLike<number>, C: number, F: number, m: WinogradTile): Float64Array {
  const n = m + 2;
  const GT = transpose(MATRICES[m].G);
  const dw = new Float64Array(9 * C * F);
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) {
      const block = range(n).map((a) => range(n).map((b) => du[((n * a + b) * C + c) * F + f]!));
      sandwich(GT, block, GT).forEach((row, kh) => row.forEach((val, kw) => (dw[((kh * 3 + kw) * C + c) * F + f] = val)));
    }
  }
  return dw;
}

function transpose(M: number[][]): number[][] {
  return M[0]!.map((_, j) => M.map((row) => row[j]!));
}
