/**
 * Conv2d version 'winograd': a 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3), the
 * forward pass only. shaders/conv2d_winograd.wgsl derives it; in short, each 2×2 block of outputs is
 *
 *   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
 *
 * for the 4×4 input tile d_c of each channel c and the 3×3 filter g_c, which takes 16 multiplies per
 * channel and filter instead of 36. The sum over channels at each of the 16 positions ξ of the transformed
 * tile is a matrix product, so the work is four dispatches:
 *
 *   U = filter_transform(w)        [16, C, F]
 *   V = input_transform(x)         [16, tiles, C]
 *   M = V · U                      [16, tiles, F]    16 GEMMs, one batched matmul v3 dispatch
 *   y = output_transform(M)        [N, OH, OW, F]    + bias, + residual, relu
 *
 * Why: on lavapipe the multiply-adds of the GEMM kernels are the whole cost of a network (88 % of a
 * ResNet50 forward pass), and half of ResNet50's are in its 3×3 convolutions; the transforms only add, and
 * read and write each value a few times. The price is memory: V and M are 16/4 = 4× the size of x and y
 * (tiles of 2×2 outputs each hold 16 values), allocated for the call and released after it. The filter is
 * transformed on every call (a few MB of arithmetic-free traffic; no cache to keep coherent while weights
 * train).
 *
 * Exactness. In exact arithmetic this is the convolution; in f32 the transforms add a few roundings
 * (the tests hold it to the same tolerance as the direct kernels). Only the forward pass: dX and dW run on
 * the direct kernels (src/ops/conv-kernels.ts), which is correct whichever way y was computed.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor/tensor.js';
import { grid1d, launch, storageBindingLimit, storageOf } from './kernel.js';
import { batchedMatmulRaw } from './matmul.js';
import type { ConvActivation, ConvGeometry } from './conv-kernels.js';

/** Invocations per workgroup of the three transforms. */
const WG = 64;

/** Tiles of 2×2 outputs: [tiles along h, tiles along w, all tiles]. */
function tilesOf(g: ConvGeometry): [number, number, number] {
  const th = Math.ceil(g.OH / 2);
  const tw = Math.ceil(g.OW / 2);
  return [th, tw, g.N * th * tw];
}

/**
 * Whether the forward pass of `g` can run as Winograd F(2×2, 3×3): a 3×3 filter, stride 1, channel counts
 * in multiples of 4 (the transforms move vec4s), and transformed tensors (4× the input and output, at 4
 * bytes) that fit one storage binding.
 */
export function winogradApplies(g: ConvGeometry): boolean {
  if (g.KH !== 3 || g.KW !== 3 || g.sh !== 1 || g.sw !== 1 || g.C % 4 !== 0 || g.F % 4 !== 0) return false;
  const tiles = tilesOf(g)[2];
  const limit = storageBindingLimit();
  return tiles > 0 && 16 * tiles * Math.max(g.C, g.F) * 4 <= limit && 16 * g.C * g.F * 4 <= limit;
}

/** The uniform all three transforms read (see Params in the shader). */
function params(g: ConvGeometry, count: number): Uniforms {
  const [th, tw, tiles] = tilesOf(g);
  return new Uniforms()
    .u32(g.N).u32(g.H).u32(g.W).u32(g.C / 4)
    .u32(g.OH).u32(g.OW).u32(g.F / 4).u32(th)
    .u32(tw).u32(tiles).i32(g.pt).i32(g.pl)
    .u32(count).u32(0).u32(0).u32(0);
}

/** U [16, C, F] = G w Gᵀ for each (c, f), in w's storage type. */
export function winogradFilterRaw(w: Tensor, g: ConvGeometry): Tensor {
  const u = Tensor.empty([16, g.C, g.F], storageOf(w), 'winograd U');
  const count = g.C * (g.F / 4);
  launch('conv2d winograd filter', {
    shader: 'conv2d_winograd', entry: 'filter_transform', storage: storageOf(w), constants: { WG },
    uniforms: params(g, count), inputs: [w], outputs: [u], workgroups: grid1d(count, WG),
  });
  return u;
}

/** V [16, tiles, C] = Bᵀ d B for each tile d of x (zero outside x), in x's storage type. */
export function winogradInputRaw(x: Tensor, g: ConvGeometry): Tensor {
  const tiles = tilesOf(g)[2];
  const v = Tensor.empty([16, tiles, g.C], storageOf(x), 'winograd V');
  const count = tiles * (g.C / 4);
  launch('conv2d winograd input', {
    shader: 'conv2d_winograd', entry: 'input_transform', storage: storageOf(x), constants: { WG },
    uniforms: params(g, count), inputs: [x], outputs: [v], workgroups: grid1d(count, WG),
  });
  return v;
}

/** y [N, OH, OW, F] = act(Aᵀ M A + bias + residual) for each tile of M [16, tiles, F]. */
export function winogradOutputRaw(m: Tensor, g: ConvGeometry, bias: Tensor | null, activation: ConvActivation, residual: Tensor | null): Tensor {
  const storage = storageOf(m);
  const y = Tensor.empty([g.N, g.OH, g.OW, g.F], storage, 'conv2d');
  const count = tilesOf(g)[2] * (g.F / 4);
  launch('conv2d winograd output', {
    shader: 'conv2d_winograd', entry: 'output_transform', storage,
    constants: { WG, HAS_BIAS: bias !== null, ACT: activation === 'relu' ? 1 : 0, HAS_RESIDUAL: residual !== null },
    uniforms: params(g, count),
    inputs: [m, bias ?? runtime().emptyBuffer, residual ?? runtime().emptyBuffer],   // placeholders when absent
    outputs: [y],
    workgroups: grid1d(count, WG),
  });
  return y;
}

/** y = act(conv(x, w) + bias + residual) for a geometry where `winogradApplies`; not recorded. */
export function conv2dWinogradRaw(x: Tensor, w: Tensor, bias: Tensor | null, activation: ConvActivation, g: ConvGeometry, residual: Tensor | null): Tensor {
  const u = winogradFilterRaw(w, g);
  const v = winogradInputRaw(x, g);
  const m = batchedMatmulRaw(v, u);
  v.dispose();
  u.dispose();
  const y = winogradOutputRaw(m, g, bias, activation, residual);
  m.dispose();
  return y;
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references of the three transforms (f64), used by the tests. Together with matmulRef
// they give the convolution again, which the tests check against conv2dRef.

const BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]];
const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
const AT = [[1, 1, 1, 0], [0, 1, -1, -1]];

/** L · T · Rᵀ for a small matrix T (rows × cols) and transforms L (a × rows), R (b × cols). */
function sandwich(L: number[][], T: number[][], R: number[][]): number[][] {
  return L.map((l) => R.map((r) => l.reduce((s, lv, i) => s + lv * r.reduce((t, rv, j) => t + rv * T[i]![j]!, 0), 0)));
}

/** U [16, C, F] from w [3, 3, C, F]. */
export function winogradFilterRef(w: ArrayLike<number>, C: number, F: number): Float64Array {
  const u = new Float64Array(16 * C * F);
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) {
      const gk = [0, 1, 2].map((kh) => [0, 1, 2].map((kw) => w[((kh * 3 + kw) * C + c) * F + f]!));
      sandwich(G, gk, G).forEach((row, a) => row.forEach((val, b) => (u[((4 * a + b) * C + c) * F + f] = val)));
    }
  }
  return u;
}

/** V [16, tiles, C] from x [N, H, W, C]. */
export function winogradInputRef(x: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const [th, tw, tiles] = tilesOf(g);
  const v = new Float64Array(16 * tiles * g.C);
  for (let t = 0; t < tiles; t++) {
    const [n, i, j] = [Math.floor(t / (th * tw)), Math.floor(t / tw) % th, t % tw];
    for (let c = 0; c < g.C; c++) {
      const d = [0, 1, 2, 3].map((a) => [0, 1, 2, 3].map((b) => {
        const [ih, iw] = [2 * i - g.pt + a, 2 * j - g.pl + b];
        return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[((n * g.H + ih) * g.W + iw) * g.C + c]! : 0;
      }));
      sandwich(BT, d, BT).forEach((row, a) => row.forEach((val, b) => (v[((4 * a + b) * tiles + t) * g.C + c] = val)));
    }
  }
  return v;
}

/** y [N, OH, OW, F] from M [16, tiles, F], before bias and activation. */
export function winogradOutputRef(m: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const [th, tw, tiles] = tilesOf(g);
  const y = new Float64Array(g.N * g.OH * g.OW * g.F);
  for (let t = 0; t < tiles; t++) {
    const [n, i, j] = [Math.floor(t / (th * tw)), Math.floor(t / tw) % th, t % tw];
    for (let f = 0; f < g.F; f++) {
      const mt = [0, 1, 2, 3].map((a) => [0, 1, 2, 3].map((b) => m[((4 * a + b) * tiles + t) * g.F + f]!));
      sandwich(AT, mt, AT).forEach((row, a) => row.forEach((val, b) => {
        const [oh, ow] = [2 * i + a, 2 * j + b];
        if (oh < g.OH && ow < g.OW) y[((n * g.OH + oh) * g.OW + ow) * g.F + f] = val;
      }));
    }
  }
  return y;
}
