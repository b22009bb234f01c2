/**
 * How the gather GEMM of conv2d_v2/v3 (src/ops/conv-kernels.ts) walks one spatial dimension, forward and
 * for dX, per stride phase. Pure geometry: conv-kernels.ts dispatches with it, and conv-col2im.ts counts the
 * gather's multiply-adds with it for its cost model.
 */

/** How one spatial dimension of the gather maps GEMM rows to source, filter and destination indices. */
export interface AxisMap {
  rows: number; src: number; dst: number; taps: number;
  srcRow: number; srcTap: number; srcOff: number;
  fStep: number; fOff: number;
  dstStep: number; dstOff: number;
}

/** Forward along one dimension: output o reads input o·stride − pad + k with filter tap k. */
export function forwardAxis(inSize: number, outSize: number, k: number, stride: number, padBefore: number): AxisMap {
  return { rows: outSize, src: inSize, dst: outSize, taps: k, srcRow: stride, srcTap: 1, srcOff: -padBefore, fStep: 1, fOff: 0, dstStep: 1, dstOff: 0 };
}

/**
 * dX along one dimension, stride phase r: the inputs i = q·stride + r − pad (q0 ≤ q ≤ q1) receive from
 * outputs o = q − j through filter taps k = r + j·stride, j < ⌈(K − r)/stride⌉.
 */
export function inputGradAxis(inSize: number, outSize: number, k: number, stride: number, padBefore: number, r: number): AxisMap {
  const q0 = Math.ceil((padBefore - r) / stride);
  const q1 = Math.floor((inSize - 1 + padBefore - r) / stride);
  return {
    rows: Math.max(0, q1 - q0 + 1), src: outSize, dst: inSize, taps: r < k ? Math.ceil((k - r) / stride) : 0,
    srcRow: 1, srcTap: -1, srcOff: q0, fStep: stride, fOff: r, dstStep: stride, dstOff: q0 * stride + r - padBefore,
  };
}
