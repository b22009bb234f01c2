#!/usr/bin/env node
// The `graft` executable. In a development checkout (tsx installed) it runs the TypeScript sources, so an
// edit takes effect at once; an installed package without tsx runs the compiled dist/ (npm run build).
import { existsSync } from 'node:fs';

let cli;
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch {
  register = null;
}
if (register) {
  register();
  cli = await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
  if (!existsSync(compiled)) {
    console.error('graft: neither tsx (a dev dependency) nor the compiled dist/ was found; run `npm ci` or `npm run build`.');
    process.exit(1);
  }
  cli = await import(compiled.href);
}
process.exitCode = await cli.main(process.argv.slice(2));
