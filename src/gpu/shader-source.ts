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

// shaders/ sits at the package root: two levels above src/gpu/, three above the compiled dist/src/gpu/.
const SHADER_DIRS = [new URL('../../shaders/', import.meta.url), new URL('../../../shaders/', import.meta.url)];
let shaderDir = SHADER_DIRS[0]!;

type NodeFs = { readFileSync(path: URL, encoding: 'utf8'): string; existsSync(path: URL): boolean };
let nodeFs: NodeFs | undefined;

/** Called once by the runtime: loads `fs` on Node (an async import in ESM) and finds shaders/. */
export async function prepareShaderLoader(): Promise<void> {
  const g = globalThis as { Deno?: { statSync(u: URL): unknown }; process?: { versions?: { node?: string } } };
  let exists: ((u: URL) => boolean) | undefined;
  if (g.Deno !== undefined) {
    const deno = g.Deno;
    exists = (u) => {
      try {
        deno.statSync(u);
        return true;
      } catch {
        return false;
      }
    };
  } else if (g.process?.versions?.node !== undefined) {
    nodeFs ??= (await import('node:fs')) as unknown as NodeFs;
    exists = (u) => nodeFs!.existsSync(u);
  }
  if (exists) shaderDir = SHADER_DIRS.find((d) => exists(new URL('unary.wgsl', d))) ?? shaderDir;
}

export function shaderSource(name: string): string {
  const hit = cache.get(name) ?? registered.get(name);
  if (hit !== undefined) return hit;
  const url = new URL(`${name}.wgsl`, shaderDir);
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
