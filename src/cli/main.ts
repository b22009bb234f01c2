/**
 * The `graft` command line. Each command is a module with a spec (options and help) and a run function.
 */
import { GraftError } from '../errors.js';
import { type CommandSpec, type ParsedArgs, helpText, parseArgs } from './args.js';
import { infoCommand, runInfo } from './info.js';
import { runWeights, weightsCommand } from './weights.js';
import { predictCommand, runPredict } from './predict.js';
import { runTrain, trainCommand } from './train.js';
import { evaluateCommand, runEvaluate } from './evaluate.js';
import { featuresCommand, runFeatures } from './features.js';
import { adaptCommand, runAdapt } from './adapt.js';
import { runServe, serveCommand } from './serve.js';
import { shutdown } from '../gpu/runtime.js';

interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, argv: string[]): Promise<void>;
}

const benchCommand: Command = {
  spec: {
    name: 'bench',
    summary: 'run a benchmark from bench/ (matmul, …) and print its table',
    usage: 'graft bench <name> [options of that benchmark]',
    options: {},
  },
  async run(_args, argv) {
    // bench/ lives beside src/ at the package root; the path is a variable so src/ compiles on its own.
    const benchMain = '../../bench/main.js';
    const bench = (await import(benchMain)) as { main(argv: string[]): Promise<number> };
    const code = await bench.main(argv);
    if (code !== 0) {
      throw new GraftError(argv[0] ? `benchmark '${argv[0]}' failed (exit code ${code}).` : 'name a benchmark from the list above.');
    }
  },
};

const commands: Record<string, Command> = {
  info: { spec: infoCommand, run: (a) => runInfo(a) },
  bench: benchCommand,
  weights: { spec: weightsCommand, run: (a) => runWeights(a) },
  train: { spec: trainCommand, run: (a, argv) => runTrain(a, argv) },
  evaluate: { spec: evaluateCommand, run: (a, argv) => runEvaluate(a, argv) },
  predict: { spec: predictCommand, run: (a) => runPredict(a) },
  features: { spec: featuresCommand, run: (a) => runFeatures(a) },
  adapt: { spec: adaptCommand, run: (a) => runAdapt(a) },
  serve: { spec: serveCommand, run: (a) => runServe(a) },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    'graft: transfer learning on WebGPU',
    '',
    'Usage: graft <command> [options]    (graft <command> --help for its options)',
    '',
    'Commands:',
    ...Object.values(commands).map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`graft: unknown command '${name}'.\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(cmd.spec));
    return 0;
  }
  try {
    // `bench` forwards its arguments to the benchmark, which parses them itself.
    const args = name === 'bench' ? { positionals: rest, options: {} } : parseArgs(cmd.spec, rest);
    await cmd.run(args, rest);
    return 0;
  } catch (e) {
    if (e instanceof GraftError) {
      console.error(e.message.startsWith('graft ') ? e.message : `graft ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    shutdown();
  }
}
