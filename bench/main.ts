/**
 * Benchmark entry point: `npm run bench -- <name> [options]` runs bench/<name>.ts.
 *
 * A benchmark is a module in bench/ that exports `description` (one line) and `run(args)`. Adding one is
 * adding the file; `npm run bench` with no name lists them.
 */
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ArgumentError } from '../src/errors.js';
import { init, shutdown } from '../src/gpu/runtime.js';

export interface BenchModule {
  description: string;
  run(args: string[]): Promise<void>;
}

const dir = new URL('./', import.meta.url);

function available(): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && f !== 'main.ts')
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Runs the benchmark named by argv[0] with the remaining arguments; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const names = available();
  if (!name || name === '--help' || name === '-h') {
    console.log('usage: npm run bench -- <name> [options]\n\nbenchmarks:');
    for (const n of names) {
      const m = (await import(new URL(`${n}.ts`, dir).href)) as BenchModule;
      console.log(`  ${n.padEnd(12)} ${m.description}`);
    }
    return name ? 0 : 1;
  }
  if (!names.includes(name)) {
    console.error(`Unknown benchmark '${name}'. Available: ${names.join(', ')}.`);
    return 1;
  }
  const mod = (await import(new URL(`${name}.ts`, dir).href)) as BenchModule;
  await init();
  try {
    await mod.run(args);
  } finally {
    shutdown();
  }
  return 0;
}

// Run when executed directly (npm run bench); `graft bench` imports main() instead.
const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntry) main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    // A bad option is the user's mistake: say what it was, without a stack trace.
    console.error(e instanceof ArgumentError ? e.message : e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
