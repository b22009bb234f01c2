/**
 * The MNIST ↔ USPS domain-adaptation table: source-only, DANN and Deep CORAL in both directions, 3 seeds each,
 * every run a separate `graft adapt` process (so each gets a fresh GPU device and its own report folder).
 *
 *   npx tsx examples/digits-adaptation.ts                 # all 18 runs, then the table
 *   npx tsx examples/digits-adaptation.ts --table-only    # only re-read runs/digits/*\/report.json
 *   npx tsx examples/digits-adaptation.ts --seeds 1 --methods dann --directions mnist-usps
 *   npx tsx examples/digits-adaptation.ts --protocol scale   # the source zoomed and shifted (below), 18 runs
 *
 * A run whose report.json exists is not run again (delete the folder to redo it), so an interrupted table
 * resumes where it stopped. Runs go seed by seed, and within a seed direction by direction, so that each
 * finished seed has every method of both directions.
 *
 * Protocol (Tzeng et al., CVPR 2017): 2,000 MNIST training images (sampled from the 10,000 of mnist@1.1.0) and
 * 1,800 USPS training images (zip.train.gz, resized to 28×28), a LeNet-style extractor; target accuracy on
 * the target's TEST split (MNIST t10k, USPS zip.test.gz), whose labels are used only for that score.
 * Hyper-parameters are the same for every direction and seed (see HYPER below).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * Three protocols, each with its own run folder:
 * - plain: the settings of the first table (6 epochs, no batch norm, λ ≤ 1);
 * - scale: each source image with 4 extra views zoomed towards the target's digit size (MNIST→USPS zooms in by
 *   [1, 1.45], USPS→MNIST out by [0.69, 1]: the ratio of the two datasets' digit sizes, a prior about the
 *   target domain, not its labels) and shifted by up to ±2 px; batch norm (per-domain statistics for adabn
 *   and dann, the source's for source-only); λ ≤ 0.3; 4 epochs of 5 × the source's images (624 steps
 *   MNIST→USPS, 560 USPS→MNIST);
 * - scale2: scale, plus a domain classifier with two hidden layers of 500 (the paper's MNIST head has one of 100)
 *   and 4 extra views of every unlabelled target image shifted by up to ±2 px (at the target's own scale), both
 *   chosen in MNIST→USPS trials scored on held-out USPS training images (`graft adapt --validation 1000`), not
 *   on the test split. Source-only computes exactly what it computes under scale: neither change reaches its
 *   features (the domain classifier is a probe there, and the target passes in inference mode).
 */
const PROTOCOLS: Record<string, { root: string; methods: string; hyper: string[]; perDirection: Record<string, string[]> }> = {
  plain: {
    root: 'runs/digits',
    methods: 'source-only,dann,coral',
    hyper: ['--epochs', '6', '--batch-size', '128', '--optimizer', 'sgd', '--lr', '0.03', '--coral-weight', '100'],
    perDirection: {},
  },
  scale: {
    root: 'runs/digits-scale',
    methods: 'source-only,adabn,dann',
    hyper: ['--epochs', '4', '--batch-size', '128', '--optimizer', 'sgd', '--lr', '0.03', '--batch-norm', '--lambda-max', '0.3', '--coral-weight', '100', '--augment-views', '5', '--augment-shift', '2'],
    perDirection: { 'mnist-usps': ['--augment-zoom', '1,1.45'], 'usps-mnist': ['--augment-zoom', '0.69,1'] },
  },
  scale2: {
    root: 'runs/digits-scale2',
    methods: 'source-only,adabn,dann',
    hyper: ['--epochs', '4', '--batch-size', '128', '--optimizer', 'sgd', '--lr', '0.03', '--batch-norm', '--lambda-max', '0.3', '--coral-weight', '100', '--augment-views', '5', '--augment-shift', '2',
      '--domain-hidden', '500,500', '--augment-target-views', '5', '--augment-target-shift', '2'],
    perDirection: { 'mnist-usps': ['--augment-zoom', '1,1.45'], 'usps-mnist': ['--augment-zoom', '0.69,1'] },
  },
};

const { values: opt } = parseArgs({
  options: {
    'table-only': { type: 'boolean', default: false },
    protocol: { type: 'string', default: 'plain' },
    seeds: { type: 'string', default: '1,2,3' },
    methods: { type: 'string' },
    directions: { type: 'string', default: 'mnist-usps,usps-mnist' },
    root: { type: 'string' },
  },
});
const protocol = PROTOCOLS[opt.protocol!];
if (!protocol) throw new Error(`--protocol must be one of ${Object.keys(PROTOCOLS).join(', ')}; got '${opt.protocol}'.`);
const seeds = opt.seeds!.split(',').map(Number);
const methods = (opt.methods ?? protocol.methods).split(',');
const directions = opt.directions!.split(',').map((d) => d.split('-') as [string, string]);
const root = opt.root ?? protocol.root;

const folder = (src: string, tgt: string, method: string, seed: number) => join(root, `${src}-${tgt}-${method}-seed${seed}`);

if (!opt['table-only']) {
  for (const seed of seeds) {
    for (const [src, tgt] of directions) {
      for (const method of methods) {
        const out = folder(src, tgt, method, seed);
        if (existsSync(join(out, 'report.json'))) {
          console.log(`\n${out}: done before (report.json), not run again`);
          continue;
        }
        const args = ['bin/graft.js', 'adapt', '--source', src, '--target', tgt, '--method', method, '--seed', String(seed), '--out', out, ...protocol.hyper, ...(protocol.perDirection[`${src}-${tgt}`] ?? [])];
        console.log(`\n$ node ${args.join(' ')}`);
        const r = spawnSync('node', args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
        process.stdout.write(r.stdout);
        if (r.status !== 0) throw new Error(`run failed (exit ${r.status}): ${out}`);
        writeFileSync(join(out, 'progress.log'), r.stdout);
      }
    }
  }
}

/** A finished run's report.json, or null where the run is missing. */
function report(src: string, tgt: string, method: string, seed: number): { targetAccuracy: number; domainAccuracy: number; seconds: number } | null {
  const file = join(folder(src, tgt, method, seed), 'report.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

// The table: mean ± sample standard deviation over the seeds found.
const anchors: Record<string, Record<string, string>> = {
  'mnist-usps': { 'source-only': '0.752', adabn: '–', dann: '0.771', coral: '–', adda: '0.894' },
  'usps-mnist': { 'source-only': '0.571', adabn: '–', dann: '0.730', coral: '–', adda: '0.901' },
};
const stat = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, s };
};
const rows: string[] = [
  '| method | MNIST→USPS | USPS→MNIST | Tzeng et al. 2017 (M→U / U→M) | domain-classifier acc., last epoch (M→U / U→M) | seconds per run |',
  '|---|---:|---:|---:|---:|---:|',
];
for (const method of methods) {
  const cells: string[] = [];
  const domains: string[] = [];
  const secs: number[] = [];
  for (const [src, tgt] of directions) {
    const accs: number[] = [];
    const doms: number[] = [];
    for (const seed of seeds) {
      const r = report(src, tgt, method, seed);
      if (!r) continue;
      accs.push(r.targetAccuracy);
      doms.push(r.domainAccuracy);
      secs.push(r.seconds);
    }
    const { m, s } = stat(accs);
    cells.push(accs.length ? `${m.toFixed(3)} ± ${s.toFixed(3)} (n=${accs.length})` : '–');
    domains.push(doms.length ? stat(doms).m.toFixed(3) : '–');
  }
  const a = (d: string) => anchors[d]?.[method] ?? '–';
  const { m: sm } = stat(secs);
  rows.push(`| ${method} | ${cells.join(' | ')} | ${a('mnist-usps')} / ${a('usps-mnist')} | ${domains.join(' / ')} | ${secs.length ? `${sm.toFixed(0)} (${Math.min(...secs).toFixed(0)}–${Math.max(...secs).toFixed(0)})` : '–'} |`);
}
rows.push('| ADDA (for reference) | – | – | 0.894 / 0.901 | – | – |');
console.log(`\n${rows.join('\n')}`);

// Paired differences: the same seed draws the same subsets, views, initial weights and batch order for every
// method, so "method − baseline" seed by seed removes the part of the spread that the seed causes.
const accuracy = (src: string, tgt: string, method: string, seed: number) => report(src, tgt, method, seed)?.targetAccuracy ?? null;
const pairs = [...methods.filter((m) => m !== 'source-only').map((m) => [m, 'source-only']), ...(methods.includes('dann') && methods.includes('adabn') ? [['dann', 'adabn']] : [])];
if (methods.includes('source-only') && pairs.length) {
  const diffRows = ['| difference (paired by seed) | MNIST→USPS | USPS→MNIST |', '|---|---:|---:|'];
  for (const [method, base] of pairs) {
    const cells = directions.map(([src, tgt]) => {
      const ds = seeds.flatMap((seed) => {
        const [a, b] = [accuracy(src, tgt, method!, seed), accuracy(src, tgt, base!, seed)];
        return a === null || b === null ? [] : [a - b];
      });
      const { m, s } = stat(ds);
      return ds.length ? `${m >= 0 ? '+' : ''}${m.toFixed(3)} ± ${s.toFixed(3)} (${ds.map((d) => `${d >= 0 ? '+' : ''}${d.toFixed(3)}`).join(', ')})` : '–';
    });
    diffRows.push(`| ${method} − ${base} | ${cells.join(' | ')} |`);
  }
  console.log(`\n${diffRows.join('\n')}`);
}
