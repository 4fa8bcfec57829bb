#!/usr/bin/env bash
# Full backup of the libgit2 history to S3 (a local radosgw) and to a file
# store, side by side, several rounds:
#   scripts/bench-s3.sh [ROUNDS]     (default 3)
# Prints a table of the median wall time and the largest peak RSS of each (and
# the time of a plain curl PUT of the same bundle: what the server allows), the
# ratio S3/file (bar: at most 1.5) and whether the S3 peak RSS, multipart
# buffers included, stays within 64 MiB. Starts radosgw (scripts/rgw.sh) unless
# one already answers on 127.0.0.1:7480, and stops only the one it started.
# Skips (exit 0) when ../shared/data/libgit2.bundle is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
rounds=${1:-3}
bundle=$src/../shared/data/libgit2.bundle
if [ ! -f "$bundle" ]; then
  echo "bench-s3: $bundle not found; nothing to measure (skipped)"
  exit 0
fi

scripts/deps.sh
scripts/rgw.sh install
scripts/build.sh release
bin=$src/build/release/gitwal
endpoint=http://127.0.0.1:7480
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testkey} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testsecret}

work=$(mktemp -d "${TMPDIR:-/tmp}/gitwal-bench-s3.XXXXXX")
started=0
cleanup() {
  [ $started -eq 1 ] && scripts/rgw.sh stop
  rm -rf "$work"
}
trap cleanup EXIT
if ! curl -fs -o /dev/null "$endpoint/"; then
  scripts/rgw.sh start >/dev/null
  started=1
fi

git clone -q --mirror "$bundle" "$work/root/libgit2.git"
bucket=bench-$$-$(date +%s)
printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
  curl -fsS -K - --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT -o /dev/null \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$endpoint/$bucket"

# measure NAME STORE: one full backup in a fresh state directory; appends "seconds kib" to $work/NAME.
measure() {
  local name=$1 store=$2 state
  state=$(mktemp -d "$work/state.XXXXXX")
  GITWAL_STATE_DIR=$state /usr/bin/time -o "$work/time.txt" -f '%e %M' \
    "$bin" backup --root "$work/root" --store "$store" --jobs 1 libgit2.git > "$work/out.txt" 2>/dev/null ||
    { echo "bench-s3: $name backup failed: $(cat "$work/out.txt")" >&2; exit 1; }
  grep -q '^ok libgit2.git ' "$work/out.txt" || { echo "bench-s3: $name: $(cat "$work/out.txt")" >&2; exit 1; }
  cat "$work/time.txt" >> "$work/$name"
}

# The server's own limit: one curl PUT of the same bundle bytes (no gitwal at all).
curl_put() {
  local f
  f=$(find "$work/file-store-1" -name '*.full.bundle' | head -1)
  printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
    curl -fsS -K - --aws-sigv4 "aws:amz:us-east-1:s3" -o /dev/null -w '%{time_total} 0\n' \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$f" "$endpoint/$bucket/curl-$1" >> "$work/curl"
}

for i in $(seq "$rounds"); do
  measure file "file://$work/file-store-$i"
  measure s3 "s3://$bucket/round-$i?endpoint=$endpoint&region=us-east-1&path_style=true"
  curl_put "$i"
done

python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    rows = [tuple(map(float, l.split())) for l in open(f"{work}/{name}") if l.strip()]
    return statistics.median(r[0] for r in rows), max(r[1] for r in rows) / 1024, [r[0] for r in rows]
ft, fm, fall = load("file")
st, sm, sall = load("s3")
ct, _, call = load("curl")
ratio = st / ft if ft > 0 else float("inf")
print(f"full backup of libgit2 (76 MiB pack, 134,603 objects), median of {rounds} rounds, side by side")
print(f"| store | time (s) | each round (s) | peak RSS (MiB) |")
print(f"|---|---|---|---|")
print(f"| file  | {ft:.2f} | {' '.join(f'{x:.2f}' for x in fall)} | {fm:.1f} |")
print(f"| s3    | {st:.2f} | {' '.join(f'{x:.2f}' for x in sall)} | {sm:.1f} |")
print(f"| curl PUT of the bundle alone (the server's limit) | {ct:.2f} | {' '.join(f'{x:.2f}' for x in call)} | - |")
print(f"ratio s3/file: {ratio:.2f}x (bar: at most 1.5x) {'PASS' if ratio <= 1.5 else 'FAIL'}")
print(f"s3 peak RSS: {sm:.1f} MiB (bar: at most 64 MiB) {'PASS' if sm <= 64 else 'FAIL'}")
PY
