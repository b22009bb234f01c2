/**
 * The kernel explorer: pick a kernel case (kernel-cases.ts), set its parameters, and run it on this
 * browser's adapter. Each run is checked against the op family's plain-TypeScript reference (largest
 * error shown), then timed with timestamp queries (GPU milliseconds and GFLOP/s per run; wall-clock where
 * the adapter lacks timestamp-query). "Time every version" runs the same problem with each numbered kernel
 * version (conv2d, matmul) side by side. The WGSL of every shader the case dispatches is shown with line
 * numbers, as the pipeline cache prints it in a compile error.
 */
import { SHADERS } from 'graft:shaders';
import { init, runtime } from '../gpu/runtime.js';
import { KERNEL_CASES, kernelCase } from './kernel-cases.js';
import { type KernelCase, maxError, type Params, resolveParams } from './kernel-case.js';
import { $, adapterLine, fmt } from './page.js';

interface Measured {
  version: string;
  describe: string;
  error: number;
  tolerance: number;
  ms: number;
  timer: 'gpu' | 'wall';
  gflops: number | null;
  kernels: string[];
}

/** Checks one run against the reference, then times `runs` more. */
async function measure(c: KernelCase, params: Params, runs: number, version?: string): Promise<Measured> {
  const prep = c.prepare(params, version);
  try {
    const out = prep.execute();
    const got = out.dtype === 'f16' ? await out.floats() : await out.data(); // f16 storage: widened values, not bits
    out.dispose();
    const error = maxError(got, prep.reference());
    const profiler = runtime().profiler;
    let ms: number;
    let kernels: string[] = [];
    const timer = profiler.available ? 'gpu' : 'wall';
    if (profiler.available) {
      profiler.start();
      for (let r = 0; r < runs; r++) prep.execute().dispose();
      const records = await profiler.stop();
      ms = records.reduce((s, r) => s + r.ms, 0) / runs;
      kernels = [...new Set(records.map((r) => r.kernel))];
    } else {
      const t = performance.now();
      for (let r = 0; r < runs; r++) prep.execute().dispose();
      await runtime().sync();
      ms = (performance.now() - t) / runs;
    }
    return { version: version ?? 'automatic', describe: prep.describe, error, tolerance: prep.tolerance, ms, timer, gflops: prep.flops > 0 ? prep.flops / (ms * 1e6) : null, kernels };
  } finally {
    prep.dispose();
  }
}

function addRow(m: Measured): void {
  const pass = m.error <= m.tolerance;
  const tr = document.createElement('tr');
  tr.dataset.check = pass ? 'pass' : 'fail';
  const cells = [m.version, m.describe, pass ? 'pass' : 'FAIL', m.error.toExponential(2), m.tolerance.toExponential(1), `${fmt(m.ms, 3)}${m.timer === 'wall' ? ' (wall)' : ''}`, m.gflops === null ? '–' : fmt(m.gflops, 2), m.kernels.join(', ')];
  cells.forEach((text, i) => {
    const td = tr.appendChild(document.createElement('td'));
    td.textContent = text;
    if (i === 2) td.className = pass ? 'ok' : 'bad';
  });
  $('results').querySelector('tbody')!.appendChild(tr);
}

function current(): KernelCase {
  return kernelCase($<HTMLSelectElement>('case').value);
}

function readParams(c: KernelCase): Params {
  const given: Params = {};
  for (const p of c.params) given[p.name] = ($(`param-${p.name}`) as HTMLInputElement | HTMLSelectElement).value;
  return resolveParams(c, given);
}

function showSource(name: string): void {
  const lines = (SHADERS[name] ?? `(no shader ${name})`).split('\n');
  const width = String(lines.length).length;
  const pre = $('source');
  pre.replaceChildren();
  lines.forEach((line, i) => {
    const ln = pre.appendChild(document.createElement('span'));
    ln.className = 'ln';
    ln.textContent = `${String(i + 1).padStart(width)}  `;
    pre.appendChild(document.createTextNode(`${line}\n`));
  });
}

function showCase(c: KernelCase): void {
  $('case-title').textContent = c.title;
  const box = $('params');
  box.replaceChildren();
  for (const p of c.params) {
    const label = box.appendChild(document.createElement('label'));
    label.append(`${p.name} `);
    if (p.help) label.title = p.help;
    if (p.choices) {
      const s = label.appendChild(document.createElement('select'));
      s.id = `param-${p.name}`;
      for (const v of p.choices) s.appendChild(new Option(String(v), String(v), false, v === p.default));
    } else {
      const input = label.appendChild(document.createElement('input'));
      Object.assign(input, { id: `param-${p.name}`, type: 'number', value: String(p.default) });
      if (p.min !== undefined) input.min = String(p.min);
      if (p.max !== undefined) input.max = String(p.max);
    }
  }
  ($('compare') as HTMLButtonElement).disabled = !c.versions?.length;
  const shader = $<HTMLSelectElement>('shader');
  shader.replaceChildren(...c.shaders.map((s) => new Option(`${s}.wgsl`, s)));
  showSource(c.shaders[0]!);
  $('results').querySelector('tbody')!.replaceChildren();
}

async function run(versions: (string | undefined)[]): Promise<void> {
  const status = $('status');
  const buttons = ['run', 'compare'].map((id) => $<HTMLButtonElement>(id));
  buttons.forEach((b) => (b.disabled = true));
  try {
    const c = current();
    const params = readParams(c);
    const runs = Math.max(1, Math.round(Number(($('runs') as HTMLInputElement).value)));
    const failed: string[] = [];
    for (const v of versions) {
      status.textContent = `running ${c.id}${v ? ` ${v}` : ''}…`;
      // A version that cannot run these parameters (e.g. v1 with f16 storage) says why; the others still run.
      try {
        addRow(await measure(c, params, runs, v));
      } catch (e) {
        if (versions.length === 1) throw e;
        failed.push(`${v}: ${(e as Error).message}`);
      }
    }
    status.textContent = failed.length ? `${c.id}: done; not run: ${failed.join('; ')}` : `${c.id}: done.`;
    status.className = failed.length ? 'bad' : 'muted';
  } catch (e) {
    status.textContent = `Error: ${(e as Error).message}`;
    status.className = 'bad';
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    ($('compare') as HTMLButtonElement).disabled = !current().versions?.length;
    document.body.dataset.busy = 'false';
  }
}

async function start(): Promise<void> {
  $('adapter').textContent = await adapterLine();
  await init();
  const select = $<HTMLSelectElement>('case');
  select.replaceChildren(...KERNEL_CASES.map((c) => new Option(`${c.id} (${c.shaders.join(', ')})`, c.id)));
  const wanted = location.hash.slice(1);
  if (KERNEL_CASES.some((c) => c.id === wanted)) select.value = wanted;
  select.onchange = () => {
    location.hash = select.value;
    showCase(current());
  };
  $<HTMLSelectElement>('shader').onchange = (e) => showSource((e.target as HTMLSelectElement).value);
  $('run').onclick = () => ((document.body.dataset.busy = 'true'), void run([undefined]));
  $('compare').onclick = () => ((document.body.dataset.busy = 'true'), void run([...(current().versions ?? [])]));
  showCase(current());
  document.body.dataset.ready = 'true';
}

start().catch((e: unknown) => {
  $('status').textContent = `Error: ${(e as Error).message}`;
  $('status').className = 'bad';
});
