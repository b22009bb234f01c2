/** Small helpers shared by the pages (UI thread only). */

/** The element with this id; throws if the page lacks it (a page and its script out of step). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el as T;
}

export const fmt = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** An object URL for PNG bytes (the plots are drawn by src/report, as `graft train` draws them). */
export function pngUrl(bytes: ArrayBuffer): string {
  return URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
}

/** "adapter: vendor architecture (description)", or why there is none. */
export async function adapterLine(): Promise<string> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return 'no WebGPU in this browser';
  const a = await gpu.requestAdapter();
  if (!a) return 'WebGPU: no adapter';
  const i = a.info;
  return `adapter: ${[i.vendor, i.architecture, i.description].filter(Boolean).join(' ')}${a.features.has('shader-f16') ? ', shader-f16' : ''}${a.features.has('subgroups') ? ', subgroups' : ''}${a.features.has('timestamp-query') ? ', timestamp-query' : ''}`;
}
