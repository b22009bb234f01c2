/**
 * The browser build: src/web/'s pages bundled with esbuild (a dev dependency) into dist/web/. The pages use
 * the same src/ as Node and Deno; three things differ in a page, and the build handles each here, in one
 * place:
 *
 * 1. Shaders. A page has no file system, so every shaders/*.wgsl is inlined into a generated module that
 *    registers them (`registerShaderSources`, src/gpu/shader-source.ts) before anything runs.
 * 2. Node built-ins (node:fs, node:path, ...) and the `webgpu` npm package. A page never calls the code
 *    that uses them (it passes bytes: `parseSafetensors`, `imageDatasetFromFiles`, `loadPretrained` with
 *    in-memory weights, and the device comes from `navigator.gpu`), but the modules are imported. Each is
 *    replaced by a stub whose every export throws an error naming the Node-only function, so a page that
 *    reaches one fails with that name instead of a bundling error or a silent undefined.
 * 3. pngjs resolves to its own browser bundle (pngjs/browser.js), which carries its zlib and Buffer.
 */
import { readdirSync, readFileSync, existsSync, mkdirSync, copyFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraftError } from '../errors.js';

// The package root: two levels above src/cli/, three above the compiled dist/src/cli/.
const here = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_ROOT = [join(here, '..', '..'), join(here, '..', '..', '..')].find((d) => existsSync(join(d, 'shaders'))) ?? join(here, '..', '..');
const ROOT = PACKAGE_ROOT;
export const WEB_SOURCE = join(ROOT, 'src', 'web');
export const WEB_OUT = join(ROOT, 'dist', 'web');

/** The pages' scripts (bundled) and static files (copied). */
const ENTRIES = ['explorer.ts', 'trainer.ts', 'trainer-worker.ts'];
const STATIC = /\.(html|css)$/;

export interface WebBuild {
  outDir: string;
  files: string[];
  ms: number;
}

type Esbuild = typeof import('esbuild');

async function loadEsbuild(): Promise<Esbuild> {
  try {
    return await import('esbuild');
  } catch {
    throw new GraftError('The browser build needs esbuild, a dev dependency of Graft: run `npm ci` in the Graft checkout.');
  }
}

/** The module that registers every shader of shaders/ with the engine. */
function shaderModule(): string {
  const dir = join(ROOT, 'shaders');
  const sources: Record<string, string> = {};
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.wgsl')).sort()) sources[f.slice(0, -5)] = readFileSync(join(dir, f), 'utf8');
  return `import { registerShaderSources } from ${JSON.stringify(join(ROOT, 'src', 'gpu', 'shader-source.ts'))};\n` +
    `export const SHADERS = ${JSON.stringify(sources)};\nregisterShaderSources(SHADERS);\n`;
}

/** A module with every export of Node's `name` module, each throwing when used in a page. */
async function nodeStub(name: string): Promise<string> {
  const real = name === 'webgpu' ? { create: 0, globals: 0 } : ((await import(name)) as Record<string, unknown>);
  const names = Object.keys(real).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
  const lines = [
    `const unavailable = (what) => function () { throw new Error(what + ' is Node-only and not available in a browser page; pass bytes (fetch, File) to the byte-level API instead.'); };`,
    ...names.map((k) => `export const ${k} = unavailable(${JSON.stringify(`${name} ${k}`)});`),
    `export default new Proxy({}, { get: (_, k) => unavailable(${JSON.stringify(name)} + ' ' + String(k)) });`,
  ];
  return lines.join('\n');
}

/** Builds the pages into dist/web/ (minified off, with source maps, so that the kernels read as written). */
export async function buildWeb(outDir = WEB_OUT): Promise<WebBuild> {
  const started = performance.now();
  const esbuild = await loadEsbuild();
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'webgpu']);
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: ENTRIES.map((e) => join(WEB_SOURCE, e)),
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'silent',
    metafile: true,
    alias: { pngjs: join(ROOT, 'node_modules', 'pngjs', 'browser.js') },
    plugins: [
      {
        name: 'graft-browser',
        setup(build) {
          build.onResolve({ filter: /^graft:shaders$/ }, () => ({ path: 'shaders', namespace: 'graft-shaders' }));
          build.onLoad({ filter: /.*/, namespace: 'graft-shaders' }, () => ({ contents: shaderModule(), loader: 'js', resolveDir: ROOT }));
          build.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$|^webgpu$/ }, (args) =>
            builtins.has(args.path) ? { path: args.path, namespace: 'node-stub' } : undefined,
          );
          build.onLoad({ filter: /.*/, namespace: 'node-stub' }, async (args) => ({ contents: await nodeStub(args.path), loader: 'js' }));
        },
      },
    ],
  }).catch((e: { errors?: { text: string; location?: { file: string; line: number } | null }[] }) => {
    const where = (x: { location?: { file: string; line: number } | null }) => (x.location ? `${x.location.file}:${x.location.line}: ` : '');
    throw new GraftError(`browser build failed:\n${(e.errors ?? [{ text: String(e) }]).map((x) => `  ${where(x)}${x.text}`).join('\n')}`);
  });
  const files = Object.keys(result.metafile!.outputs).map((f) => f.split('/').pop()!);
  for (const f of readdirSync(WEB_SOURCE).filter((n) => STATIC.test(n))) {
    copyFileSync(join(WEB_SOURCE, f), join(outDir, f));
    files.push(f);
  }
  return { outDir, files, ms: performance.now() - started };
}

/** True when dist/web is missing or older than any source it is built from. */
export function webBuildStale(outDir = WEB_OUT): boolean {
  const marker = join(outDir, 'trainer.js');
  if (!existsSync(marker)) return true;
  const built = statSync(marker).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((d) => (d.isDirectory() ? newer(join(dir, d.name)) : statSync(join(dir, d.name)).mtimeMs > built));
  return newer(join(ROOT, 'src')) || newer(join(ROOT, 'shaders'));
}
