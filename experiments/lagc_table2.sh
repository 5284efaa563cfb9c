#!/usr/bin/env bash
# hand-nas reproduce lagc-table2 under a named proxy budget (default: quick; also standard, full on a GPU machine).
# Proxy runs are cached under $HAND_NAS_HOME/proxy_runs, so a re-run only trains what changed.
set -euo pipefail
proxy="${1:-quick}"
hand-nas reproduce lagc-table2 --proxy "$proxy" --out runs/tables
