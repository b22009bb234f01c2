/**
 * `graft serve`: the browser pages (the kernel explorer and the trainer) on a small static server, built on
 * Node's own http module. It listens on loopback unless --host says otherwise, builds the pages first when
 * their sources changed (web-build.ts), and serves:
 *
 *   /                       the pages (dist/web/)
 *   /weights/index.json     the converted weights in weights/ (*.safetensors), with sizes
 *   /weights/NAME           one of them
 *   /data/index.json        the bundled image folders (examples/data/*), class by class
 *   /data/DATASET/PATH      one image (PATH as the index lists it)
 *
 * Only GET and HEAD; paths are resolved inside their folder (no `..`, no dot-files), so nothing else on the
 * machine is reachable.
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { ArgumentError } from '../errors.js';
import type { CommandSpec, ParsedArgs } from './args.js';
import { buildWeb, PACKAGE_ROOT, webBuildStale, WEB_OUT } from './web-build.js';

const ROOT = PACKAGE_ROOT;

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'serve the browser pages (kernel explorer, trainer) and the weights in weights/',
  usage: 'graft serve [--port 8080] [--host 127.0.0.1]',
  options: {
    port: { type: 'number', help: 'port to listen on (0: any free port)', default: 8080 },
    host: { type: 'string', help: 'address to listen on; the default serves this machine only', default: '127.0.0.1' },
    'no-build': { type: 'boolean', help: 'serve dist/web as it is, without rebuilding the pages' },
  },
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg',
  '.safetensors': 'application/octet-stream', '.wgsl': 'text/plain; charset=utf-8',
};

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Folders served: the pages, the weights and the bundled datasets. Defaults: dist/web, weights, examples/data. */
  web?: string;
  weights?: string;
  data?: string;
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** `rel` inside `folder`, or null if it would leave it or names a hidden file. */
function inside(folder: string, rel: string): string | null {
  const parts = rel.split('/').filter((p) => p !== '');
  if (parts.some((p) => p.startsWith('.') || p.includes('\\'))) return null;
  const full = resolve(folder, ...parts);
  return full === resolve(folder) || full.startsWith(resolve(folder) + sep) ? full : null;
}

const isImage = (f: string) => /\.(jpe?g|png)$/i.test(f);

/**
 * The bundled datasets: { name: { className: [path, ...] } }, paths relative to the dataset's folder. A dataset
 * is a folder of class folders, or has train/ and val/ folders of class folders (whose images are pooled;
 * the trainer page makes its own validation split).
 */
function dataIndex(folder: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  if (!existsSync(folder)) return out;
  const dirsIn = (d: string) => readdirSync(d).filter((n) => !n.startsWith('.') && statSync(join(d, n)).isDirectory()).sort();
  for (const ds of dirsIn(folder)) {
    const dsDir = join(folder, ds);
    const splits = dirsIn(dsDir).includes('train') ? dirsIn(dsDir).filter((s) => s === 'train' || s === 'val') : [''];
    const classes: Record<string, string[]> = {};
    for (const split of splits) {
      for (const c of dirsIn(join(dsDir, split))) {
        const files = readdirSync(join(dsDir, split, c)).filter(isImage).sort();
        (classes[c] ??= []).push(...files.map((f) => (split ? `${split}/${c}/${f}` : `${c}/${f}`)));
      }
    }
    if (Object.keys(classes).length > 0) out[ds] = classes;
  }
  return out;
}

function weightsIndex(folder: string): { name: string; bytes: number }[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder).filter((f) => f.endsWith('.safetensors') && !f.startsWith('.')).sort().map((name) => ({ name, bytes: statSync(join(folder, name)).size }));
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string | null): void {
  const stat = file ? statSync(file, { throwIfNoEntry: false }) : undefined;
  if (!file || !stat?.isFile()) return send(res, 404, 'not found\n');
  res.writeHead(200, { 'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', 'content-length': stat.size, 'cache-control': 'no-cache' });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file).pipe(res);
}

export function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const web = options.web ?? WEB_OUT;
  const weights = options.weights ?? join(ROOT, 'weights');
  const data = options.data ?? join(ROOT, 'examples', 'data');
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET and HEAD\n');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return send(res, 400, 'bad path\n');
    }
    if (path === '/weights/index.json') return send(res, 200, JSON.stringify(weightsIndex(weights)), TYPES['.json']);
    if (path === '/data/index.json') return send(res, 200, JSON.stringify(dataIndex(data)), TYPES['.json']);
    if (path.startsWith('/weights/')) return sendFile(req, res, path.endsWith('.safetensors') ? inside(weights, path.slice(9)) : null);
    if (path.startsWith('/data/')) return sendFile(req, res, isImage(path) ? inside(data, path.slice(6)) : null);
    return sendFile(req, res, inside(web, path === '/' ? 'index.html' : path));
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      const { port, address } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      resolveStart({ url: `http://${host}:${port}/`, server, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

export async function runServe(args: ParsedArgs): Promise<void> {
  const port = args.options.port as number;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`graft serve: --port must be an integer in [0, 65535], got ${port}.`);
  if (args.options['no-build'] !== true && webBuildStale()) {
    const b = await buildWeb();
    console.log(`built the pages into ${b.outDir} (${b.files.length} files) in ${(b.ms / 1000).toFixed(1)} s`);
  }
  if (!existsSync(join(WEB_OUT, 'index.html'))) throw new ArgumentError(`graft serve: ${WEB_OUT} holds no pages; run without --no-build.`);
  const s = await startServer({ port, host: args.options.host as string });
  console.log(`graft serve: ${s.url}  (kernel explorer: ${s.url}explorer.html, trainer: ${s.url}trainer.html); Ctrl-C stops`);
  await new Promise<void>((done) => {
    const stop = () => void s.close().then(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
