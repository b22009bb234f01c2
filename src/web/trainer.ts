/**
 * The trainer page's UI thread. It gathers images (the bundled subset, a dropped folder, or files per class)
 * and settings, sends them to the worker (trainer-worker.ts), and draws what comes back: progress, the
 * training-history plot after every epoch, the report and confusion matrix, predictions and the checkpoint.
 * Nothing heavy runs here, so the page stays responsive while the worker trains.
 */
import type { DroppedImage, FromWorker, ToWorker, TrainerSettings } from './trainer-protocol.js';
import { $, adapterLine, fmt, pngUrl } from './page.js';

const images = new Map<string, DroppedImage[]>(); // class name → images
let dataName = '';
const worker = new Worker(new URL('./trainer-worker.js', import.meta.url), { type: 'module' });
const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

// ---- base ----------------------------------------------------------------------------------------------

async function listBases(): Promise<void> {
  const select = $<HTMLSelectElement>('base');
  const weights = (await (await fetch('weights/index.json')).json()) as { name: string; bytes: number }[];
  const options: [string, string][] = [];
  for (const w of weights) {
    const base = w.name.startsWith('resnet50') ? 'resnet50' : w.name.startsWith('vgg16') ? 'vgg16' : null;
    if (base) options.push([`${base}|weights/${w.name}`, `${base === 'resnet50' ? 'ResNet50' : 'VGG16'}: ${w.name} (${fmt(w.bytes / 2 ** 20, 0)} MiB)`]);
  }
  options.push(['resnet50|', 'ResNet50: random weights (no download)']);
  select.replaceChildren(...options.map(([value, text]) => new Option(text, value)));
  $('base-note').textContent = weights.some((w) => w.name.startsWith('resnet50'))
    ? ''
    : 'No ImageNet weights on the server: run `npx graft weights fetch resnet50` where graft serve runs, then reload.';
}

// ---- images --------------------------------------------------------------------------------------------

function showClasses(): void {
  const rows = [...images.keys()].sort().map((c) => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td><b></b></td><td></td><td><label>add images <input type="file" accept="image/jpeg,image/png" multiple></label></td>`;
    tr.querySelector('b')!.textContent = c;
    tr.children[1]!.textContent = `${images.get(c)!.length} images`;
    tr.querySelector('input')!.addEventListener('change', async (e) => addFiles(c, [...((e.target as HTMLInputElement).files ?? [])]));
    tr.addEventListener('dragover', (e) => e.preventDefault());
    tr.addEventListener('drop', async (e) => {
      e.preventDefault();
      e.stopPropagation();
      await addFiles(c, [...(e.dataTransfer?.files ?? [])]);
    });
    return tr;
  });
  $('classes').replaceChildren(...rows);
  const total = [...images.values()].reduce((n, l) => n + l.length, 0);
  $('data-summary').textContent = total ? `${total} images in ${images.size} classes (${dataName || 'your images'}).` : 'No images yet.';
  ($('train') as HTMLButtonElement).disabled = images.size < 2 || total === 0;
}

async function addFiles(className: string, files: File[]): Promise<void> {
  const list = images.get(className) ?? [];
  for (const f of files) list.push({ name: `${className}/${f.name}`, className, bytes: await f.arrayBuffer() });
  images.set(className, list);
  dataName ||= 'dropped images';
  showClasses();
}

async function useBundled(name: string, classes: Record<string, string[]>): Promise<void> {
  images.clear();
  dataName = `bundled: ${name}`;
  $('data-summary').textContent = `Loading ${name}…`;
  for (const [c, files] of Object.entries(classes)) {
    images.set(c, await Promise.all(files.map(async (f) => ({ name: f, className: c, bytes: await (await fetch(`data/${name}/${f}`)).arrayBuffer() }))));
  }
  showClasses();
}

/** Every file under a dropped directory entry. */
async function filesUnder(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) return [await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail))];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: File[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) return out;
    for (const e of batch) out.push(...(await filesUnder(e)));
  }
}

/** A dropped folder: its sub-folders are the classes (or, if it has none, the dropped folders themselves are). */
async function dropFolder(entries: FileSystemEntry[]): Promise<void> {
  const dirs = entries.filter((e) => e.isDirectory) as FileSystemDirectoryEntry[];
  let classes: FileSystemDirectoryEntry[] = dirs;
  if (dirs.length === 1) {
    const inner = await new Promise<FileSystemEntry[]>((ok, fail) => dirs[0]!.createReader().readEntries(ok, fail));
    const sub = inner.filter((e) => e.isDirectory) as FileSystemDirectoryEntry[];
    if (sub.length >= 2) classes = sub;
    dataName = dirs[0]!.name;
  }
  images.clear();
  for (const c of classes) await addFiles(c.name, await filesUnder(c));
}

// ---- training ------------------------------------------------------------------------------------------

const num = (id: string) => Number(($(id) as HTMLInputElement).value);

function settings(): TrainerSettings {
  const [base, weights] = $<HTMLSelectElement>('base').value.split('|') as ['resnet50' | 'vgg16', string];
  return {
    base, weightsUrl: weights ? weights : null, imageSize: num('image-size'), batchSize: num('batch-size'), epochs: num('epochs'), lr: num('lr'),
    head: [num('head')], dropout: num('dropout'), fineTuneLayers: num('fine-tune-layers'), fineTuneEpochs: num('fine-tune-epochs'),
    fineTuneLr: num('fine-tune-lr'), validationSplit: num('validation-split'), flip: ($('flip') as HTMLInputElement).checked,
    cacheViews: num('cache-views'), seed: num('seed'), dataName: dataName || 'dropped images',
  };
}

function train(): void {
  for (const id of ['train', 'download', 'predict-files']) ($(id) as HTMLButtonElement).disabled = true;
  $('log').textContent = '';
  $('accuracy').textContent = '–';
  $('accuracy').className = 'muted';
  $('report').hidden = true;
  const list = [...images.values()].flat().map((i) => ({ ...i, bytes: i.bytes.slice(0) }));
  send({ type: 'train', settings: settings(), images: list }, list.map((i) => i.bytes));
  $('status').textContent = 'Starting…';
}

/** Shows PNG bytes in an <img>, releasing the previous object URL (plots are redrawn every second). */
function replaceImage(id: string, png: ArrayBuffer): void {
  const img = $<HTMLImageElement>(id);
  if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
  img.src = pngUrl(png);
}

const PHASES = { cache: 'caching base features', train: 'training', validate: 'validating' } as const;

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  if (m.type === 'log') $('log').textContent += `${m.text}\n`;
  else if (m.type === 'progress') {
    const p = $<HTMLProgressElement>('progress');
    p.value = m.total ? m.examples / m.total : 0;
    const where = m.phase === 'cache' ? (m.epoch < 0 ? 'validation set' : `view ${m.epoch + 1}`) : `epoch ${m.epoch + 1}/${m.totalEpochs}`;
    $('status').textContent = `${PHASES[m.phase]}, ${where}: ${m.examples}${m.total ? `/${m.total}` : ''} images${m.loss !== null ? `, loss ${fmt(m.loss, 4)}, accuracy ${fmt(m.accuracy!, 3)}` : ''}`;
  } else if (m.type === 'steps') {
    replaceImage('steps', m.png);
  } else if (m.type === 'epoch') {
    replaceImage('history', m.historyPng);
  } else if (m.type === 'loaded') {
    $('model-note').textContent = `Loaded ${m.name}: ${m.base} at ${m.imageSize}×${m.imageSize}, classes ${m.classNames.join(', ')}.`;
    for (const id of ['download', 'predict-files']) ($(id) as HTMLButtonElement).disabled = false;
  } else if (m.type === 'done') {
    const acc = $('accuracy');
    acc.textContent = `${fmt(m.report.accuracy, 4)} (loss ${fmt(m.report.loss, 4)})`;
    acc.className = m.report.accuracy > 1 / m.report.classNames.length ? 'ok' : 'bad';
    acc.dataset.value = String(m.report.accuracy);
    replaceImage('confusion', m.report.confusionPng);
    $('model-note').textContent = 'The model just trained.';
    $('report').textContent = m.report.markdown;
    $('report').hidden = false;
    $('status').textContent = `Done in ${fmt(m.seconds, 1)} s.`;
    for (const id of ['train', 'download', 'predict-files']) ($(id) as HTMLButtonElement).disabled = false;
  } else if (m.type === 'predictions') {
    $('predictions').replaceChildren(...m.results.map((r) => {
      const tr = document.createElement('tr');
      for (const text of [r.name, r.label, r.probabilities.map((p) => fmt(p, 3)).join(' / ')]) tr.appendChild(document.createElement('td')).textContent = text;
      return tr;
    }));
  } else if (m.type === 'checkpoint') {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([m.bytes], { type: 'application/octet-stream' }));
    a.download = m.name;
    a.click();
  } else if (m.type === 'error') {
    $('status').textContent = `Error: ${m.message}`;
    $('status').className = 'bad';
    ($('train') as HTMLButtonElement).disabled = false;
  }
};

// ---- wiring --------------------------------------------------------------------------------------------

async function start(): Promise<void> {
  $('adapter').textContent = await adapterLine();
  await listBases();
  const data = (await (await fetch('data/index.json')).json()) as Record<string, Record<string, string[]>>;
  const bundled = Object.keys(data)[0];
  const button = $<HTMLButtonElement>('use-bundled');
  if (bundled) {
    const count = Object.values(data[bundled]!).reduce((n, l) => n + l.length, 0);
    button.textContent = `Use the bundled subset: ${bundled} (${count} images)`;
    button.disabled = false;
    button.onclick = () => void useBundled(bundled, data[bundled]!);
  }
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const entries = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry()).filter((x): x is FileSystemEntry => x !== null);
    void dropFolder(entries);
  });
  $('add-class').onclick = () => {
    const name = ($('new-class') as HTMLInputElement).value.trim();
    if (name && !images.has(name)) images.set(name, []);
    showClasses();
  };
  $('train').onclick = train;
  $('download').onclick = () => send({ type: 'checkpoint' });
  $('load-checkpoint').addEventListener('change', async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) send({ type: 'load', name: file.name, bytes: await file.arrayBuffer() });
  });
  $('predict-files').addEventListener('change', async (e) => {
    const files = [...((e.target as HTMLInputElement).files ?? [])];
    send({ type: 'predict', images: await Promise.all(files.map(async (f) => ({ name: f.name, bytes: await f.arrayBuffer() }))) });
  });
  document.body.dataset.ready = 'true';
}

void start();
