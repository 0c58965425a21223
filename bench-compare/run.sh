#!/usr/bin/env bash
# Run the peer comparison: setup (venv with pinned tools), data (if missing), then each script.
#   bench-compare/run.sh DATA_DIR [--quick]
# All JSON lines go to DATA_DIR/compare.jsonl (progress and tool chatter to DATA_DIR/compare.log),
# and a compact table is printed at the end.
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DATA_DIR [--quick]" >&2
  exit 2
fi
data="$1"; shift
quick=""
for arg in "$@"; do
  case "$arg" in
    --quick) quick="--quick" ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup.sh" || { echo "setup.sh failed" >&2; exit 1; }
py="$here/.venv/bin/python"
mkdir -p "$data"
data="$(cd "$data" && pwd)"
"$py" "$here/make_data.py" "$data" || { echo "make_data.py failed" >&2; exit 1; }
out="$data/compare.jsonl"
logf="$data/compare.log"
tmp="$out.partial"
: > "$tmp"
: > "$logf"
"$py" - "$quick" >> "$tmp" <<'PY'
import json, os, platform, sqlite3, sys, time
print(json.dumps({"system": "meta", "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "quick": sys.argv[1] == "--quick", "cpus": os.cpu_count(), "load1": os.getloadavg()[0],
                  "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}))
PY
start=$(date +%s)
for s in references mlflow tensorboard aim trackio; do
  echo "== bench_$s.py $quick ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$logf" >&2
  t0=$(date +%s)
  spy="$py"
  [ "$s" = trackio ] && spy="$here/.venv-trackio/bin/python"   # trackio has its own venv (setup.sh)
  "$spy" "$here/bench_$s.py" "$data" $quick >> "$tmp" 2>> "$logf"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "{\"system\": \"$s\", \"error\": \"bench_$s.py exited with status $rc, see compare.log\"}" >> "$tmp"
    echo "   bench_$s.py failed (status $rc), see $logf" >&2
  fi
  echo "   $(( $(date +%s) - t0 )) s" >&2
done
mv "$tmp" "$out"
rm -rf "$data/compare-work"
echo "== done in $(( $(date +%s) - start )) s: $out" >&2
"$py" "$here/summary.py" "$out"
