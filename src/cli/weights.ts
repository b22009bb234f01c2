/**
 * `graft weights fetch resnet50` | `graft weights convert IN --out OUT.safetensors` | `graft weights inspect FILE`:
 * download and convert pretrained weights, convert other formats to safetensors, list what a file holds.
 */
import { ArgumentError } from '../errors.js';
import { FETCHABLE, convertWeightsFile, fetchResnet50Imagenet, readSafetensorsHeaderFile } from '../weights/index.js';
import type { CommandSpec, ParsedArgs } from './args.js';

export const weightsCommand: CommandSpec = {
  name: 'weights',
  summary: 'fetch pretrained weights (resnet50), convert weights to safetensors, inspect a file',
  usage: [
    'graft weights fetch resnet50 [--out FILE] [--cache DIR] [--force]',
    '       graft weights convert IN --out OUT.safetensors [--architecture vgg16|resnet50-v1]',
    '                                  (IN: .safetensors, Keras .h5, TF.js model.json, or .tgz of one)',
    '       graft weights inspect FILE.safetensors [--tensors]',
  ].join('\n'),
  options: {
    out: { type: 'string', help: 'output file (fetch: default weights/resnet50-imagenet.safetensors)' },
    cache: { type: 'string', help: 'fetch: folder for the downloaded tarball (default weights/cache)' },
    force: { type: 'boolean', help: 'fetch: convert again even if the output is up to date' },
    tensors: { type: 'boolean', help: 'inspect: list every tensor' },
    architecture: { type: 'string', help: 'convert, Keras .h5: vgg16 or resnet50-v1 (default: recognised by the weight names)' },
  },
};

const SUBCOMMANDS = ['fetch', 'convert', 'inspect'];

/** Options that only some subcommands take; any other use is an error rather than silently ignored. */
const OPTION_OWNERS: Record<string, string[]> = { out: ['fetch', 'convert'], cache: ['fetch'], force: ['fetch'], tensors: ['inspect'], architecture: ['convert'] };

export async function runWeights(args: ParsedArgs): Promise<void> {
  const [sub, ...rest] = args.positionals;
  if (!sub || !SUBCOMMANDS.includes(sub)) {
    throw new ArgumentError(`graft weights: ${sub ? `unknown subcommand '${sub}'` : 'name a subcommand'} (one of: ${SUBCOMMANDS.join(', ')}). See graft weights --help.`);
  }
  for (const [option, owners] of Object.entries(OPTION_OWNERS)) {
    if (args.options[option] !== undefined && !owners.includes(sub)) throw new ArgumentError(`graft weights ${sub}: --${option} applies to ${owners.join(' and ')} only.`);
  }
  const one = (what: string) => {
    if (rest.length !== 1) throw new ArgumentError(`graft weights ${sub}: expected one ${what}, got ${rest.length ? rest.join(' ') : 'none'}.`);
    return rest[0]!;
  };

  if (sub === 'fetch') {
    const model = one(`model name (${FETCHABLE.join(', ')})`);
    if (!(FETCHABLE as readonly string[]).includes(model)) throw new ArgumentError(`graft weights fetch: unknown model '${model}' (known: ${FETCHABLE.join(', ')}).`);
    await fetchResnet50Imagenet({
      ...(args.options.out !== undefined ? { out: String(args.options.out) } : {}),
      ...(args.options.cache !== undefined ? { cacheDir: String(args.options.cache) } : {}),
      force: args.options.force === true,
    });
  } else if (sub === 'convert') {
    const input = one('input file');
    if (args.options.out === undefined) throw new ArgumentError('graft weights convert: --out OUT.safetensors is required.');
    const architecture = args.options.architecture === undefined ? {} : { architecture: String(args.options.architecture) };
    convertWeightsFile(input, String(args.options.out), console.log, architecture);
  } else {
    const file = one('safetensors file');
    const header = readSafetensorsHeaderFile(file);
    const bytes = header.entries.reduce((n, e) => n + e.end - e.begin, 0);
    const dtypes = [...new Set(header.entries.map((e) => e.dtype))].join(', ') || 'none';
    console.log(`${file}: ${header.entries.length} tensors, ${(bytes / 1e6).toFixed(1)} MB of data, dtypes ${dtypes}`);
    if (args.options.tensors) for (const e of header.entries) console.log(`  ${e.name.padEnd(40)} ${e.dtype.padEnd(4)} [${e.shape.join(', ')}]`);
    const keys = Object.keys(header.metadata).sort();
    if (keys.length > 0) console.log('metadata');
    for (const k of keys) {
      const v = header.metadata[k]!;
      console.log(`  ${k.padEnd(24)} ${v.length > 100 ? `${v.slice(0, 97)}... (${v.length} characters)` : v}`);
    }
  }
}
