#!/usr/bin/env bash
# The prepared GPU check (issue: real hardware), one script under ten minutes on a GPU machine:
#   1. train images/s at 256 px on the GPU vs the CPU (lwa_hand, batch 16, the same steps),
#   2. a 4-trial search with one GPU per trial on a local Ray,
#   3. supernet training on the GPU: the `short` recipe in bf16, then 60 steps of the lwa.yaml recipe (s/step,
#      against ~3.5 s/step on one 2-core CPU core), and DDP over every visible GPU with torchrun (nccl).
# Run from the repository root after the README's install: bash experiments/gpu_check.sh
set -euo pipefail
export HAND_NAS_HOME="${HAND_NAS_HOME:-$(mktemp -d)}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || { echo "no GPU visible"; exit 1; }
grep -m1 "model name" /proc/cpuinfo
for dev in cuda cpu; do
    steps=$([ "$dev" = cuda ] && echo 200 || echo 20)
    /usr/bin/time -f "$dev: %e s wall" hand-nas train lwa_hand --device "$dev" --steps "$steps" --resolution 256 \
        --batch 16 --eval-every 0 --quiet | grep -E "proxy:|MPJPE|baseline"
    echo "$dev: images/s = $steps steps x 16 / the 'proxy: ... s wall' figure above"
done
hand-nas search --space tiny --study gpu-check --storage "sqlite:///$HAND_NAS_HOME/gpu.db" --trials 4 --workers 4 \
    --gpus-per-trial 1 --cpus-per-trial 1 --out "$HAND_NAS_HOME/runs" --quiet
hand-nas trial show gpu-check 0 --storage "sqlite:///$HAND_NAS_HOME/gpu.db" | grep -E '"node"|"state"'
hand-nas supernet train --space tiny --recipe short --out "$HAND_NAS_HOME/sn-short" --device cuda --precision bf16 \
    --quiet | tail -3
/usr/bin/time -f "lwa supernet, 60 steps on cuda: %e s wall (incl. start-up, data)" hand-nas supernet train --space lwa \
    --recipe lwa --steps 60 --out "$HAND_NAS_HOME/sn-lwa" --device cuda --quiet | tail -2
gpus=$(nvidia-smi -L | wc -l)
[ "$gpus" -gt 1 ] && torchrun --standalone --nproc-per-node "$gpus" --no-python hand-nas supernet train --space lwa \
    --recipe lwa --steps 60 --out "$HAND_NAS_HOME/sn-lwa-ddp" --device cuda --quiet | tail -2 || true
