/**
 * Conv2d version 'col2im', for dX only: the input gradient as one GEMM and a gather.
 *
 *   cols = dY · wᵀ        [N·OH·OW, F] · [KH·KW·C, F]ᵀ = [N·OH·OW, KH·KW·C]     matmul (v3 main_bt)
 *   dX   = col2im(cols)   each input element sums the columns of the windows that read it
 *                                                                              shaders/conv2d_col2im.wgsl
 *
 * Why: conv2d_v3's dX is a gather over dY, the forward kernel run backwards, and it multiplies the zeros of
 * the padding around dY like any other value. For a stride-1 convolution that padding is K − 1 wide on
 * each side, so for a large kernel on a small image most of the work is zeros: the 5×5 convolution of the
 * DANN paper's LeNet (12×12 → 8×8) does 2.25× its multiply-adds that way. The GEMM here does exactly the
 * convolution's multiply-adds, at the matmul kernel's rate; the price is the columns, KH·KW times the size
 * of dX, written once and read once. A cost model chooses between the two (`col2imIsCheaper`); where the
 * gather wastes little (a 3×3 stride-2 layer of ResNet50) the columns make col2im the slower one.
 *
 * The columns are allocated for the call and must fit one binding and COLUMN_BUDGET_BYTES; col2im does not
 * apply otherwise (and `forceConvVersion('col2im')` falls back to v3 there). Like v3, it needs C % 4 == 0.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { ArgumentError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { grid1d, launch, storageBindingLimit } from './kernel.js';
import { matmul } from './matmul.js';
import { inputGradAxis } from './conv-axes.js';
import type { ConvGeometry } from './conv-kernels.js';

const WG = 64;
/** The columns of one call take at most this many bytes. */
const COLUMN_BUDGET_BYTES = 64 * 2 ** 20;

/**
 * Costs in ns, measured on lavapipe. The GEMM kernels and conv2d_v3's gather run a multiply-add in about
 * 0.15 ns (0.146 in a ResNet50 forward pass, src/ops/conv-winograd.ts; 0.15 for the LeNet's 5×5 dX gather,
 * 354M multiply-adds, padding included, in 53 ms). A column value costs about 3.8 ns more: 1.9 for the GEMM
 * to write it (its [4096, 48]·[800, 48]ᵀ took 30 ms, 7.2 of the 9.1 ns per output being its 48
 * multiply-adds) and 1.9 for col2im to read it (3.3M values in 6.1 ms). With these, the LeNet's dX costs
 * 36 ms by col2im (measured: 30 + 6) against 53 ms by the gather.
 */
const NS_PER_MULTIPLY_ADD = 0.15;
const NS_PER_COLUMN_VALUE = 3.8;

/** Values in the columns of the whole batch: N·OH·OW·KH·KW·C. */
function columnValues(g: ConvGeometry): number {
  return g.N * g.OH * g.OW * g.KH * g.KW * g.C;
}

/** Whether dX of `g` can run as col2im: the columns fit the budget and one binding. */
export function col2imFits(g: ConvGeometry): boolean {
  const bytes = columnValues(g) * 4;
  return bytes > 0 && bytes <= Math.min(COLUMN_BUDGET_BYTES, storageBindingLimit());
}

/**
 * Multiply-adds of conv2d_v3's dX gather, padding included: per stride phase along an axis it runs the
 * phase's rows through all its filter taps (`inputGradAxis`, the geometry it dispatches with), every one of
 * them whether or not it lands in dY.
 */
export function gatherMultiplyAdds(g: ConvGeometry): number {
  const axis = (inSize: number, outSize: number, k: number, stride: number, padBefore: number): number => {
    let total = 0;
    for (let r = 0; r < stride; r++) {
      const a = inputGradAxis(inSize, outSize, k, stride, padBefore, r);
      total += a.rows * a.taps;
    }
    return total;
  };
  return g.N * axis(g.H, g.OH, g.KH, g.sh, g.pt) * axis(g.W, g.OW, g.KW, g.sw, g.pl) * g.C * g.F;
}

/** Estimated ns of dX by col2im and by the gather. */
export function col2imCost(g: ConvGeometry): { col2im: number; gather: number } {
  const multiplyAdds = g.N * g.OH * g.OW * g.F * g.KH * g.KW * g.C;
  return {
    col2im: multiplyAdds * NS_PER_MULTIPLY_ADD + columnValues(g) * NS_PER_COLUMN_VALUE,
    gather: gatherMultiplyAdds(g) * NS_PER_MULTIPLY_ADD,
  };
}

/** Whether col2im applies to `g` and the cost model expects it to beat the gather. */
export function col2imIsCheaper(g: ConvGeometry): boolean {
  if (!col2imFits(g)) return false;
  const cost = col2imCost(g);
  return cost.col2im < cost.gather;
}

/** dX [N, H, W, C] from the columns [N·OH·OW, KH·KW·C] (f32, C % 4 == 0), not recorded. */
export function col2imRaw(cols: Tensor, g: ConvGeometry): Tensor {
  if (g.C % 4 !== 0) throw new ArgumentError(`col2im: the kernel reads channels as vec4, so C must be a multiple of 4; got C = ${g.C}.`);
  const dx = Tensor.empty([g.N, g.H, g.W, g.C], 'f32', 'conv2d dX');
  if (dx.size === 0) return dx;
  const invocations = dx.size / 4;
  launch('conv2d dX col2im', {
    shader: 'conv2d_col2im',
    constants: { WG },
    uniforms: new Uniforms()
      .u32(invocations).u32(g.H).u32(g.W).u32(g.C)
      .u32(g.OH).u32(g.OW).u32(g.KH).u32(g.KW)
      .u32(g.sh).u32(g.sw).u32(g.pt).u32(g.pl),
    inputs: [cols],
    outputs: [dx],
    workgroups: grid1d(invocations, WG),
  });
  return dx;
}

/** dX [N, H, W, C] from dY [N, OH, OW, F] and w [KH, KW, C, F] (both f32), not recorded. */
export function conv2dCol2imInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const dym = dy.view([g.N * g.OH * g.OW, g.F]);
  const wm = w.view([g.KH * g.KW * g.C, g.F]);
  try {
    const cols = noGrad(() => matmul(dym, wm, { transposeB: true }));
    const dx = col2imRaw(cols, g);
    cols.dispose();
    return dx;
  } finally {
    dym.dispose();
    wm.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript reference (f64), used by the tests.

/** col2im of columns [N·OH·OW, KH·KW·C] into dX [N, H, W, C], as a scatter (the kernel gathers). */
export function col2imRef(cols: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const dx = new Float64Array(g.N * g.H * g.W * g.C);
  for (let n = 0; n < g.N; n++) {
    for (let oy = 0; oy < g.OH; oy++) {
      for (let ox = 0; ox < g.OW; ox++) {
        for (let ky = 0; ky < g.KH; ky++) {
          const iy = oy * g.sh - g.pt + ky;
          if (iy < 0 || iy >= g.H) continue;
          for (let kx = 0; kx < g.KW; kx++) {
            const ix = ox * g.sw - g.pl + kx;
            if (ix < 0 || ix >= g.W) continue;
            const from = (((n * g.OH + oy) * g.OW + ox) * g.KH * g.KW + ky * g.KW + kx) * g.C;
            const to = ((n * g.H + iy) * g.W + ix) * g.C;
            for (let c = 0; c < g.C; c++) dx[to + c]! += cols[from + c]!;
          }
        }
      }
    }
  }
  return dx;
}
