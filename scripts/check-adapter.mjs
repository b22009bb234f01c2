// Exits 0 and names the adapter when WebGPU (through the npm `webgpu` package) finds one; exits 1 otherwise.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter().catch(() => null);
if (!adapter) {
  console.error('[check-adapter] no WebGPU adapter');
  process.exit(1);
}
console.log(`[check-adapter] ${adapter.info.description || adapter.info.device || adapter.info.vendor}`);
process.exit(0);
