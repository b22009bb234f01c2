/** `graft info [--json]`: the adapter, its optional features and the limits Graft runs under. */
import { init } from '../gpu/runtime.js';
import { adapterName } from '../gpu/device.js';
import type { CommandSpec, ParsedArgs } from './args.js';

export const infoCommand: CommandSpec = {
  name: 'info',
  summary: 'print the WebGPU adapter, its features and limits',
  usage: 'graft info [--json]',
  options: { json: { type: 'boolean', help: 'print JSON instead of text' } },
};

const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minUniformBufferOffsetAlignment',
] as const;

export async function runInfo(args: ParsedArgs): Promise<void> {
  const rt = await init();
  const { info, features, adapter, limits } = rt.gpu;
  const report = {
    adapter: adapterName(info),
    runtime: info.runtime,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    subgroupSize: info.subgroupMinSize === undefined ? null : { min: info.subgroupMinSize, max: info.subgroupMaxSize },
    enabled: features,
    adapterFeatures: [...adapter.features].sort(),
    limits: Object.fromEntries(LIMITS.map((k) => [k, limits[k]])),
  };
  if (args.options.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const mib = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(0)} MiB` : `${n}`);
  console.log(`adapter      ${report.adapter}`);
  console.log(`runtime      ${report.runtime}`);
  if (report.subgroupSize) console.log(`subgroups    ${report.subgroupSize.min}..${report.subgroupSize.max} lanes`);
  console.log(`enabled      shader-f16: ${features.f16}, subgroups: ${features.subgroups}, timestamp-query: ${features.timestampQuery}`);
  console.log(`features     ${report.adapterFeatures.join(', ')}`);
  console.log('limits');
  for (const k of LIMITS) console.log(`  ${k.padEnd(36)} ${k.endsWith('Size') ? mib(limits[k]) : limits[k]}`);
}
