#!/usr/bin/env bash
# LWA-HAND Table 1 (FLOPs): InterNet, IntagHand, LWA-HAND and, if the study exists, the best searched model.
set -euo pipefail
study="${1:-tiny}"
if hand-nas reproduce lwa-table1 --study "$study" --out runs/tables 2>/dev/null; then exit 0; fi
hand-nas reproduce lwa-table1 --out runs/tables
