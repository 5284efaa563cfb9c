#!/usr/bin/env bash
# Issue 31's benchmark: lwa_hand trained briefly at 256 px, pruned to 0.25 GMACs, compressed into a bundle with
# ExecuTorch programs (model.pte, model.int8.pte) and a LiteRT model (model.tflite), all for XNNPACK; then
# `hand-nas bench` on it: every engine's median, p90, x floor, XNNPACK partitions and portable ops, one thread,
# batch 1, 256 px. Needs the mobile extra and the LiteRT converter: pip install -e ".[mobile]" && hand-nas mobile
# setup-litert. Each step is skipped when its output exists (rerun after a kill to go on).
set -euo pipefail
out="${1:-runs/mobile_lwa}"
export OMP_NUM_THREADS=1
[ -f "$out/checkpoint/model.safetensors" ] || hand-nas train lwa_hand --data synthetic --steps 100 --resolution 256 \
  --batch 8 --eval-every 0 --out "$out/checkpoint" --quiet
[ -f "$out/bundle/manifest.json" ] || hand-nas compress --checkpoint "$out/checkpoint" --target-gmacs 0.25 \
  --finetune-steps 40 --qat-steps 10 --mobile all --out "$out/bundle" --overwrite
hand-nas bench "$out/bundle" --rounds 10
