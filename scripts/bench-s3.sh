#!/usr/bin/env bash
# S3 against the server's own line rate: the libgit2 history backed up to and
# restored from a local radosgw, side by side with curl moving the same pack
# and with a file store, several rounds:
#   scripts/bench-s3.sh [ROUNDS]     (default 3)
#
# First ONE warm-up PUT of the pack's size (memstore allocates on its first
# large write), then per round, in this order:
#   curl PUT    one PUT of the pack (what the server accepts in one stream)
#   curl GET    one GET of it to /dev/null
#   s3 backup   gitwal backup --store s3://... --jobs 1 (fresh state)
#   s3 restore  gitwal restore from that store into a fresh directory
#   file backup / file restore   the same on a file store (the local work alone)
# Prints the median wall time and peak RSS (/usr/bin/time) of each, and the
# bars: s3 backup at most 1.3x curl's PUT (goal 1.0x); s3 restore at most
# 1.2x curl's GET plus the file restore (its local work) (goal 1.0x); peak RSS
# of the s3 commands at most 64 MiB. GITWAL_S3_PARAMS adds URL parameters to
# the s3 store (e.g. "&parallel=1" to compare). Starts radosgw (scripts/rgw.sh)
# unless one already answers on 127.0.0.1:7480, and stops only the one it
# started. Skips (exit 0) when ../shared/data/libgit2.bundle is absent.
# Exit status: 0 when every bar passes, 1 otherwise.
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
endpoint=http://127.0.0.1:7480
empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testkey} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testsecret}

work=$(mktemp -d "${TMPDIR:-/tmp}/gitwal-bench-s3.XXXXXX")
started=0
bucket=
cleanup() {
  # The bucket goes (the test server keeps everything in a few GiB of RAM).
  if [ -n "$bucket" ] && [ $started -eq 0 ] && [ -f "$work/curl.cfg" ]; then
    local k
    for k in $("${s3curl[@]}" -H "x-amz-content-sha256: $empty" "$endpoint/$bucket?list-type=2" 2>/dev/null |
      grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'); do
      "${s3curl[@]}" -X DELETE -H "x-amz-content-sha256: $empty" "$endpoint/$bucket/$k" 2>/dev/null || true
    done
    "${s3curl[@]}" -X DELETE -H "x-amz-content-sha256: $empty" "$endpoint/$bucket" 2>/dev/null || true
    # radosgw frees deleted multipart data only in its garbage collection (hours later): now.
    rgw_conf=${GITWAL_RGW_DIR:-${TMPDIR:-/tmp}/gitwal-rgw}/ceph.conf
    [ -f "$rgw_conf" ] && timeout 120 radosgw-admin -c "$rgw_conf" gc process --include-all >/dev/null 2>&1 || true
  fi
  [ $started -eq 1 ] && scripts/rgw.sh stop
  rm -rf "$work"
}
trap cleanup EXIT
if ! curl -fs -o /dev/null "$endpoint/"; then
  scripts/rgw.sh start >/dev/null
  started=1
fi
# A private copy: a rebuild during the run must not change the binary measured.
cp build/release/gitwal "$work/gitwal"
bin=$work/gitwal

git clone -q --mirror "$bundle" "$work/root/libgit2.git"
pack=$(ls "$work"/root/libgit2.git/objects/pack/*.pack | head -1)
# curl's credentials in a file only we read (never on a command line).
(umask 077 && printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/curl.cfg")
s3curl=(curl -fsS -K "$work/curl.cfg" --aws-sigv4 "aws:amz:us-east-1:s3")
bucket=bench-$$-$(date +%s)
"${s3curl[@]}" -X PUT -o /dev/null -H "x-amz-content-sha256: $empty" \
  "$endpoint/$bucket"
store_s3="s3://$bucket/PREFIX?endpoint=$endpoint&region=us-east-1&path_style=true${GITWAL_S3_PARAMS:-}"

# The warm-up: one PUT of the same size.
"${s3curl[@]}" -o /dev/null -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$pack" "$endpoint/$bucket/warm-up"

# timed NAME CMD...: appends "seconds kib" to $work/NAME.
timed() {
  local name=$1
  shift
  /usr/bin/time -o "$work/time.txt" -f '%e %M %U %S' "$@" >"$work/out.txt" 2>&1 ||
    { echo "bench-s3: $name failed: $(tail -n 5 "$work/out.txt")" >&2; exit 1; }
  cat "$work/time.txt" >>"$work/$name"
}
backup() { # NAME STORE STATE
  GITWAL_STATE_DIR=$3 timed "$1" "$bin" backup --root "$work/root" --store "$2" --jobs 1 --quiet libgit2.git
  grep -q '^ok libgit2.git ' "$work/out.txt" || { echo "bench-s3: $1: $(cat "$work/out.txt")" >&2; exit 1; }
}
restore() { # NAME STORE STATE
  rm -rf "$work/to"
  GITWAL_STATE_DIR=$3 timed "$1" "$bin" restore --store "$2" --to "$work/to" --jobs 1 --quiet
  [ "$(git --git-dir "$work/to/libgit2.git" for-each-ref | wc -l)" = \
    "$(git --git-dir "$work/root/libgit2.git" for-each-ref | wc -l)" ] ||
    { echo "bench-s3: $1: the restored repository's refs differ" >&2; exit 1; }
}

for i in $(seq "$rounds"); do
  timed curl-put "${s3curl[@]}" -o /dev/null -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$pack" "$endpoint/$bucket/curl-$i"
  timed curl-get "${s3curl[@]}" -o /dev/null -H "x-amz-content-sha256: $empty" \
    "$endpoint/$bucket/curl-$i"
  backup s3-backup "${store_s3/PREFIX/round-$i}" "$work/state-s3-$i"
  restore s3-restore "${store_s3/PREFIX/round-$i}" "$work/state-s3-$i"
  backup file-backup "file://$work/file-store-$i" "$work/state-file-$i"
  restore file-restore "file://$work/file-store-$i" "$work/state-file-$i"
done

python3 - "$work" "$rounds" "$(stat -c %s "$pack")" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import statistics, sys
work, rounds, size, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def load_rows(name):
    rows = [tuple(map(float, l.split())) for l in open(f"{work}/{name}") if l.strip()]
    return (statistics.median(r[0] for r in rows), max(r[1] for r in rows) / 1024, [r[0] for r in rows],
            statistics.median(r[2] + r[3] for r in rows))
m = {n: load_rows(n) for n in ("curl-put", "curl-get", "s3-backup", "s3-restore", "file-backup", "file-restore")}
print(f"libgit2 ({size / 2**20:.1f} MiB pack), median of {rounds} rounds after one warm-up PUT; load at end {load}")
print("| what | time (s) | each round (s) | MiB/s | CPU user+sys (s) | peak RSS (MiB) |")
print("|---|---|---|---|---|---|")
for n, (t, rss, each, cpu) in m.items():
    rate = size / 2**20 / t if t > 0 else float("inf")
    print(f"| {n} | {t:.2f} | {' '.join(f'{x:.2f}' for x in each)} | {rate:.0f} | {cpu:.2f} | {rss:.1f} |")
fails = 0
def bar(what, value, limit, goal, unit="x"):
    global fails
    ok = value <= limit
    fails += not ok
    print(f"{what}: {value:.2f}{unit} (bar: at most {limit}{unit}, goal {goal}{unit}) {'PASS' if ok else 'FAIL'}")
bar("s3 backup / curl PUT", m["s3-backup"][0] / m["curl-put"][0], 1.3, 1.0)
ref = m["curl-get"][0] + m["file-restore"][0]
bar(f"s3 restore / (curl GET + file restore = {ref:.2f} s)", m["s3-restore"][0] / ref, 1.2, 1.0)
bar("s3 peak RSS", max(m["s3-backup"][1], m["s3-restore"][1]), 64, 64, " MiB")
print(f"(for reference: s3 backup / file backup {m['s3-backup'][0] / m['file-backup'][0]:.2f}x, "
      f"s3 restore / file restore {m['s3-restore'][0] / m['file-restore'][0]:.2f}x)")
sys.exit(1 if fails else 0)
PY
