/**
 * The browser pages in real Chromium (Debian's, driven by playwright-core), served by `graft serve`'s
 * server from a fresh browser build. Chromium's WebGPU runs on the CPU here (SwiftShader, Chromium's own
 * Vulkan; the flags below are the ones that give WebGPU on this machine).
 *
 * - explorer: three kernel cases run and check against the TypeScript reference, and conv2d's numbered
 *   versions are timed side by side;
 * - trainer: one epoch of head training on the bundled ants/bees subset with the fetched ImageNet ResNet50,
 *   accuracy above chance, predictions on two images, and the downloaded checkpoint loads back in Node and
 *   in the page.
 * Screenshots of both pages go to test-output/screenshots/.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildWeb } from '../../src/cli/web-build.js';
import { startServer, type RunningServer } from '../../src/cli/serve.js';
import { loadRunModel } from '../../src/cli/run-config.js';
import { fetchResnet50Imagenet } from '../../src/weights/fetch.js';
import { useGpu } from '../util/gpu.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=native', '--use-angle=vulkan',
  '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const SHOTS = join('test-output', 'screenshots');

useGpu();
let server: RunningServer;
let browser: Browser;
const scratch = mkdtempSync(join(tmpdir(), 'graft-browser-'));
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Chromium with \`sudo bash scripts/install-browser.sh\` (apt-get install chromium).`);
  await fetchResnet50Imagenet({ log: () => {} }); // skips when weights/resnet50-imagenet.safetensors is up to date
  const web = join(scratch, 'web');
  await buildWeb(web);
  server = await startServer({ port: 0, web });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function open(path: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  page.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  await page.goto(server.url + path);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return page;
}

describe('graft serve', () => {
  test('serves the pages, the weights index and the bundled data, and nothing outside them', async () => {
    const get = (p: string) => fetch(server.url + p);
    expect((await get('')).headers.get('content-type')).toMatch(/text\/html/);
    expect(await (await get('weights/index.json')).json()).toContainEqual(expect.objectContaining({ name: 'resnet50-imagenet.safetensors' }));
    const data = (await (await get('data/index.json')).json()) as Record<string, Record<string, string[]>>;
    expect(Object.keys(data['hymenoptera-mini']!)).toEqual(['ants', 'bees']);
    expect(Object.values(data['hymenoptera-mini']!).flat()).toHaveLength(130);
    expect((await get(`data/hymenoptera-mini/${data['hymenoptera-mini']!.ants![0]}`)).headers.get('content-type')).toBe('image/jpeg');
    // Raw request paths (fetch would normalise the dots away before sending).
    const rawStatus = (path: string) => new Promise<number>((resolve, reject) => {
      const u = new URL(server.url);
      request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end();
    });
    for (const bad of ['/../package.json', '/%2e%2e/package.json', '/weights/../package.json', '/weights/..%2fpackage.json', '/data/../../package.json', '/.gitignore', '/data/hymenoptera-mini/README.md']) {
      expect(await rawStatus(bad), bad).toBe(404);
    }
    expect(await rawStatus('/trainer.html')).toBe(200);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });
});

describe('graft serve from the command line', () => {
  test('builds the pages if needed, prints its URL, serves, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/graft.js', 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`graft serve printed no URL in 60 s: ${out}`)), 60_000);
      child.stdout.on('data', () => {
        const m = /graft serve: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) (clearTimeout(timer), resolve(m[1]!));
      });
    });
    expect(await (await fetch(`${url}trainer.html`)).text()).toMatch(/Graft trainer/);
    expect((await fetch(`${url}trainer-worker.js`)).status).toBe(200);
    const code = await new Promise<number | null>((resolve) => (child.once('exit', (c) => resolve(c)), child.kill('SIGTERM')));
    expect(code).toBe(0);
  }, 90_000);
});

describe('kernel explorer in Chromium', () => {
  test('three kernels check against the reference; conv2d versions are timed side by side', async () => {
    const page = await open('explorer.html');
    expect(await page.textContent('#adapter')).toMatch(/adapter: /);
    for (const id of ['matmul', 'softmax', 'pool2d']) {
      await page.selectOption('#case', id);
      await page.click('#run');
      await page.waitForSelector('body[data-busy="false"]');
      const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => [(tr as HTMLElement).dataset.check, tr.textContent]));
      expect(rows.length, id).toBe(1);
      expect(rows[0]![0], `${id}: ${rows[0]![1]}`).toBe('pass');
      expect(await page.textContent('#source')).toMatch(/@compute/);
    }
    await page.selectOption('#case', 'conv2d');
    // Tile constants chosen by the user: the run still checks, and the dispatch names the pinned shape.
    await page.selectOption('#param-WG_X', '32');
    await page.selectOption('#param-WG_Y', '2');
    await page.click('#run');
    await page.waitForSelector('body[data-busy="false"]');
    const pinned = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => [(tr as HTMLElement).dataset.check, tr.textContent ?? '']));
    expect(pinned).toHaveLength(1);
    expect(pinned[0]![0], pinned[0]![1]).toBe('pass');
    expect(pinned[0]![1]).toMatch(/WG_X=32,WG_Y=2/);
    await page.selectOption('#case', 'matmul'); // and back: a fresh table, the automatic shape
    await page.selectOption('#case', 'conv2d');
    await page.click('#compare');
    await page.waitForSelector('body[data-busy="false"]', { timeout: 120_000 });
    const checks = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.check));
    expect(checks, await page.textContent('#status') ?? '').toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
    await page.screenshot({ path: join(SHOTS, 'explorer.png'), fullPage: true });
    await page.close();
    expect(pageErrors).toEqual([]);
  }, 300_000);
});

describe('trainer in Chromium', () => {
  test('one epoch on the bundled subset: accuracy above chance, predictions, and a checkpoint that loads in Node', async () => {
    const page = await open('trainer.html');
    await page.click('#use-bundled');
    await page.waitForFunction(() => /130 images in 2 classes/.test(document.getElementById('data-summary')!.textContent ?? ''));
    await page.fill('#image-size', '96');
    await page.fill('#epochs', '1');
    await page.fill('#fine-tune-layers', '0');
    await page.click('#train');
    await page.waitForSelector('#accuracy[data-value]', { timeout: 900_000 });
    const accuracy = Number(await page.getAttribute('#accuracy', 'data-value'));
    console.log(`browser trainer: validation accuracy ${accuracy} after one epoch; ${await page.textContent('#status')}`);
    expect(accuracy).toBeGreaterThan(0.5);
    expect(await page.getAttribute('#history', 'src')).toMatch(/^blob:/);
    expect(await page.getAttribute('#steps', 'src')).toMatch(/^blob:/); // the live, step-by-step curve
    expect(await page.textContent('#report')).toMatch(/precision/);

    const imagesDir = join('examples', 'data', 'hymenoptera-mini', 'val');
    const two = ['ants', 'bees'].map((c) => join(imagesDir, c, readdirSync(join(imagesDir, c))[0]!));
    await page.setInputFiles('#predict-files', two);
    await page.waitForFunction(() => document.querySelectorAll('#predictions tr').length === 2);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const file = join(scratch, download.suggestedFilename());
    await download.saveAs(file);
    const { model, config } = loadRunModel(file);
    expect(config.classNames).toEqual(['ants', 'bees']);
    expect(config.imageSize).toBe(96);
    expect(readFileSync(file).length).toBeGreaterThan(1000);
    model.dispose();
    // …and back into a page: the checkpoint is a model to predict with, as after training.
    await page.setInputFiles('#load-checkpoint', file);
    await page.waitForFunction(() => /^Loaded .*ants, bees/.test(document.getElementById('model-note')!.textContent ?? ''));
    await page.screenshot({ path: join(SHOTS, 'trainer.png'), fullPage: true });
    await page.close();
    expect(pageErrors).toEqual([]);
  }, 1_200_000);
});
