#!/usr/bin/env bash
# Issue 5's benchmark: train lwa_hand briefly, prune it to 0.25 GMACs, fine-tune, int8 QAT, export a bundle,
# then reload the bundle in a fresh process and check its MPJPE. Prints the fp32 / pruned / pruned+int8 table.
set -euo pipefail
out="${1:-runs/compress_lwa}"
[ -d runs/lwa_proxy ] || hand-nas train lwa_hand --data synthetic --steps 500 --eval-every 100 --out runs/lwa_proxy
hand-nas compress --checkpoint runs/lwa_proxy --target-gmacs 0.25 --bits 8 --finetune-steps 300 --qat-steps 60 \
  --out "$out" --overwrite
hand-nas evaluate --checkpoint "$out"
