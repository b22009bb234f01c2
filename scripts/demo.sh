#!/usr/bin/env bash
# The main job on the bundled default (README): transfer learning on the ants/bees subset committed in
# examples/data/hymenoptera-mini, with the ImageNet ResNet50 from `graft weights fetch` (fetched once, then
# reused): features cached once, a new head trained on the frozen base, the last residual block fine-tuned,
# then the validation report and plots, all in a new folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f weights/resnet50-imagenet.safetensors ]; then
  node bin/graft.js weights fetch resnet50
fi
out="runs/demo-$(date +%Y%m%d-%H%M%S)"
node bin/graft.js train --data examples/data/hymenoptera-mini --base resnet50 \
  --image-size 160 --batch-size 16 --epochs 5 --fine-tune-layers 10 --fine-tune-epochs 3 \
  --cache-views 1 --out "$out" "$@"
echo "demo: the report, plots and model are in $out"
