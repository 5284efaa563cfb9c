#!/usr/bin/env bash
# Open a report page in headless Chromium (Debian's 'chromium' package) and save a screenshot.
# usage: experiments/report_screenshot.sh runs/demo/report [out.png]
set -euo pipefail
report="$(cd "$1" && pwd)"
png="${2:-$report/screenshot.png}"
command -v chromium >/dev/null || { echo "chromium not found: apt-get install chromium" >&2; exit 2; }
profile="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1280,1400 --virtual-time-budget=8000 --screenshot="$png" "file://$report/index.html" 2>/dev/null
rm -rf "$profile"
echo "wrote $png"
