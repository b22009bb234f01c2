/**
 * A small, strict command-line parser: `--name value`, `--name=value`, boolean `--flag`, positionals.
 * Unknown options are errors that list the known ones, so a typo is never silently ignored.
 */
import { ArgumentError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'number' | 'boolean';
  help: string;
  default?: string | number | boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
}

export type ParsedArgs = { positionals: string[]; options: Record<string, string | number | boolean | undefined> };

export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: ParsedArgs['options'] = {};
  for (const [k, o] of Object.entries(spec.options)) options[k] = o.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const o = spec.options[name];
    if (!o) {
      const known = Object.keys(spec.options).map((k) => `--${k}`).join(', ') || 'none';
      throw new ArgumentError(`graft ${spec.name}: unknown option --${name} (known options: ${known}).`);
    }
    if (o.type === 'boolean') {
      if (eq >= 0) throw new ArgumentError(`graft ${spec.name}: --${name} is a flag and takes no value.`);
      options[name] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ArgumentError(`graft ${spec.name}: --${name} needs a value.`);
    if (o.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new ArgumentError(`graft ${spec.name}: --${name} expects a number, got '${value}'.`);
      options[name] = n;
    } else {
      options[name] = value;
    }
  }
  return { positionals, options };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`graft ${spec.name}: ${spec.summary}`, '', `Usage: ${spec.usage}`];
  const rows: Array<[string, string]> = Object.entries(spec.options).map(([k, o]) => [
    `--${k}${o.type === 'boolean' ? '' : ` <${o.type === 'number' ? 'n' : 'value'}>`}`,
    `${o.help}${o.default !== undefined && o.type !== 'boolean' ? ` (default: ${o.default})` : ''}`,
  ]);
  rows.push(['--help', 'show this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  lines.push('', 'Options:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`));
  return lines.join('\n');
}
