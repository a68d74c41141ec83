#!/usr/bin/env bash
# Same-run comparison of batched generation: llamaj's `bench --parallel` against llama.cpp's (node-llama-cpp's
# prebuilt build, scripts/llamacpp/batched-bench.mjs) on the same GGUF file, printing for each number of
# simultaneous streams N the aggregate generation speed (tokens/s over all streams), the speed of one stream, and
# llamaj/llama.cpp ratios, with the load average before and after.
#   scripts/compare-batched.sh path/to/llama.jar model.gguf      (env: THREADS=2 PARALLEL=1,2,4,8 TG=64 PP=32 REPS=2)
# Both sides first decode N prompts of PP tokens, then time TG greedy tokens on every stream. llamaj's figures are
# the `parallel` rows of `bench -o json` (tg_ts, tg_per_stream_ts, tokens_per_step; without them, the avg_ts of
# its tg<TG>@<N> tests); llama.cpp's are `batched-bench.mjs --json` (results[N]). The first run installs
# node-llama-cpp (the version pinned in scripts/llamacpp/package.json) with npm. Run it on a quiet machine:
# llama.cpp's waiting threads collapse under load.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 path/to/llama.jar model.gguf   (env: THREADS=2 PARALLEL=1,2,4,8 TG=64 PP=32 REPS=2)" >&2
  exit 2
fi
jar=$1 model=$2
T=${THREADS:-2}; P=${PARALLEL:-1,2,4,8}; TG=${TG:-64}; PP=${PP:-32}; R=${REPS:-2}
for f in "$jar" "$model"; do [ -f "$f" ] || { echo "compare-batched.sh: no such file: $f" >&2; exit 2; }; done
[[ $P =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "compare-batched.sh: PARALLEL must be a list like 1,2,4,8, got '$P'" >&2; exit 2; }
for v in T TG PP R; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "compare-batched.sh: $v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/llamacpp/node_modules/node-llama-cpp" ]; then
  (cd "$here/llamacpp" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm i -s --no-audit --no-fund >/dev/null)
fi
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
lj_err=$(mktemp); lc_err=$(mktemp); trap 'rm -f "$lj_err" "$lc_err"' EXIT
lj=$("$java" -jar "$jar" bench -m "$model" -p "$PP" -n "$TG" --parallel "$P" -t "$T" -r "$R" -o json 2>"$lj_err" \
  | grep '^{' | tail -1 || true)
lc=$(node "$here/llamacpp/batched-bench.mjs" "$model" --parallel "$P" --threads "$T" --pp "$PP" --tg "$TG" --reps "$R" \
  --json 2>"$lc_err" | grep '^{' | tail -1 || true)
[ -n "$lj" ] || echo "llamaj bench gave no result: $(grep -v -e '^\s*$' -e '^WARNING' "$lj_err" | head -1)"
[ -n "$lc" ] || echo "llama.cpp batched-bench gave no result: $(grep -v -e '^\s*$' -e '^WARNING' "$lc_err" | head -1)"
python3 - "$model" "$P" "$TG" "$lj" "$lc" <<'PY'
import json, os, sys
model, parallel, tg, lj, lc = sys.argv[1:6]
nan = float('nan')
def load(text):
    try: return json.loads(text)
    except Exception: return {}
lj, lc = load(lj), load(lc)
def ours(n):  # aggregate, per stream, tokens per batched step
    row = next((r for r in lj.get('parallel', []) if r.get('sequences') == n), None)
    if row: return row['tg_ts'], row['tg_per_stream_ts'], row.get('tokens_per_step', nan)
    agg = next((t['avg_ts'] for t in lj.get('tests', []) if t['name'] == f'tg{tg}@{n}'), nan)
    return agg, agg / n, nan
def theirs(n):
    r = lc.get('results', {}).get(str(n), {})
    tpd = r.get('tokens_per_decode')
    return r.get('aggregate', nan), r.get('per_stream', nan), nan if tpd is None else tpd
def ratio(a, b): return a / b if b == b and b != 0 else nan
print(f'{os.path.basename(model)}, tg{tg}, tokens/s')
print('| streams | aggregate llamaj | aggregate llama.cpp | ratio | per stream llamaj | per stream llama.cpp | ratio | tokens per step: llamaj (prompts included) / llama.cpp (generation) |')
print('|---:|---:|---:|---:|---:|---:|---:|---:|')
for n in map(int, parallel.split(',')):
    (a, c, s), (b, d, t) = ours(n), theirs(n)
    print(f'| {n} | {a:.2f} | {b:.2f} | {ratio(a, b):.2f} | {c:.2f} | {d:.2f} | {ratio(c, d):.2f} | {s:.2f} / {t:.2f} |')
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
