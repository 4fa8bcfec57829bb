#!/usr/bin/env bash
# Build the libFuzzer targets with clang in a separate build tree and run each
# for N seconds (default 30). Crashes are left in $OUT/<target>/ as crash-*.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: BUILD (build dir, default build/fuzz), OUT (artifacts and
# corpora, default $BUILD/runs), JOBS (parallel fuzzers, default 1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_manifest fuzz_idx fuzz_pack_header fuzz_layout fuzz_packed_refs fuzz_segment fuzz_time fuzz_odb fuzz_expire)
build=${BUILD:-$root/build/fuzz}
out=${OUT:-$build/runs}
jobs=${JOBS:-1}

if ! command -v clang > /dev/null; then
  echo "clang not found: installing it (apt-get install -y clang libclang-rt-14-dev)" >&2
  apt-get install -y clang libclang-rt-14-dev
fi

# Through the project when the top-level CMakeLists.txt has the hook
# (see README.md), otherwise standalone.
if grep -q 'add_subdirectory(tests/fuzz)' "$root/CMakeLists.txt"; then
  cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DGITWAL_SANITIZE=ON -DGITWAL_FUZZ=ON > /dev/null
  bindir=$build/tests/fuzz
else
  cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug > /dev/null
  bindir=$build
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

status=0
run_one() {
  local t=$1 dir=$out/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # Seed the corpus (tests/fuzz/seeds/<target>/), if there are seeds.
  if [ -d "$here/seeds/$t" ]; then cp -n "$here/seeds/$t"/* "$dir/corpus/" 2>/dev/null || true; fi
  echo "== $t: ${seconds}s" >&2
  if "$bindir/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/log" 2>&1; then
    echo "   $t: no crash ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | awk '{print $2}') runs)" >&2
  else
    echo "   $t: FAILED, see $dir/log and $dir/artifacts/" >&2
    tail -n 30 "$dir/log" >&2
    return 1
  fi
}
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
