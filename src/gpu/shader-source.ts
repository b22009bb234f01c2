/**
 * WGSL sources live in shaders/*.wgsl, one kernel family per file, and are read at first use.
 *
 * Node and Deno read the file next to the package; a browser build registers the sources up front with
 * `registerShaderSources`, since a page has no file system.
 */
import { GraftError } from '../errors.js';

const registered = new Map<string, string>();
const cache = new Map<string, string>();

/** Used by bundles that inline the shaders (the browser build). */
export function registerShaderSources(sources: Record<string, string>): void {
  for (const [name, src] of Object.entries(sources)) registered.set(name, src);
}

const SHADER_DIR = new URL('../../shaders/', import.meta.url);

type NodeFs = { readFileSync(path: URL, encoding: 'utf8'): string };
let nodeFs: NodeFs | undefined;

/** Called once by the runtime on Node, where `fs` must be imported asynchronously in ESM. */
export async function prepareShaderLoader(): Promise<void> {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno === undefined && g.process?.versions?.node !== undefined && !nodeFs) {
    nodeFs = (await import('node:fs')) as unknown as NodeFs;
  }
}

export function shaderSource(name: string): string {
  const hit = cache.get(name) ?? registered.get(name);
  if (hit !== undefined) return hit;
  const url = new URL(`${name}.wgsl`, SHADER_DIR);
  const deno = (globalThis as { Deno?: { readTextFileSync(u: URL): string } }).Deno;
  let src: string;
  try {
    if (deno) src = deno.readTextFileSync(url);
    else if (nodeFs) src = nodeFs.readFileSync(url, 'utf8');
    else throw new Error('no file system in this runtime; call registerShaderSources() first');
  } catch (e) {
    throw new GraftError(`Cannot read shader '${name}' from ${url.pathname}: ${(e as Error).message}`);
  }
  cache.set(name, src);
  return src;
}
