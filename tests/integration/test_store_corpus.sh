# The crafted-store corpus (issue: trust): a real archive (a full backup and segments of one
# repository, a healthy second repository beside it), then, one at a time, every damage a
# store can hold: each key deleted, truncated, a byte flipped (with and without every
# checksum recomputed), structure damage with checksums recomputed (fanout of 2^32-1,
# shifted offsets, CRC32s, unsorted ids, a shifted pack_offset, a manifest naming another
# LSN or an unsafe path), a FIFO, symlink or directory where a key is, and stray keys. For
# each, on a fresh machine (no index): restore ends in a named error or the exact truth,
# never a broken repository with exit 0, never a crash or a half-made directory, and the
# healthy repository is restored; 'restore --until' the same for a past state; 'audit
# --read-data' finds it. Run under the AddressSanitizer build by the test command.
source "$(dirname "$0")/lib.sh"

make_repo a.git 3
make_repo b.git 2
git -C "$T/work/a.git" tag -a v1 -m v1 && git -C "$T/work/a.git" push -q origin v1
archive_once
push_commit a.git main; archive_once
past=$(pitr_now_us); repo_state "$T/root/a.git" > /dev/null
python3 - "$T/root/a.git" "$T/past.json" <<'PY'
import json, sys
sys.path.insert(0, __import__("os").environ["GITWAL_SOURCE_DIR"] + "/tests/integration")
from pitr_check import live_state
json.dump(live_state(sys.argv[1]), open(sys.argv[2], "w"))
PY
# Later: a branch, a force-push and a bigger push (a segment with a real pack and index).
git -C "$T/work/a.git" push -q origin main:refs/heads/dev; archive_once
for i in $(seq 1 40); do echo "line $i $RANDOM" >> "$T/work/a.git/big.txt"; done
git -C "$T/work/a.git" add big.txt && git -C "$T/work/a.git" commit -qm big && git -C "$T/work/a.git" push -q origin main
archive_once
gitwal audit --read-data >/dev/null || fail "the pristine archive does not audit clean"

mkdir -p "$T/index_state" && cp "$GITWAL_STATE_DIR/index.db" "$T/index_state/"
python3 - "$T/root" "$past" "$T/past.json" "$T/truth.json" "$T/index_state" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["GITWAL_SOURCE_DIR"] + "/tests/integration")
from pitr_check import live_state
root, past, past_state, out, index_state = sys.argv[1:6]
us = int(past)
json.dump({"damaged": "a.git", "healthy": "b.git", "index_state": index_state,
           "latest": {r: live_state(os.path.join(root, r)) for r in ("a.git", "b.git")},
           "past": {"until": "@%d.%06d" % (us // 1000000, us % 1000000), "state": json.load(open(past_state))}},
          open(out, "w"))
PY
mkdir -p "$T/corpus"
python3 "$GITWAL_SOURCE_DIR/tests/integration/store_corpus.py" "$GITWAL_STATE_DIR/store" "$T/truth.json" "$T/corpus" ||
  fail "the crafted-store corpus"
pass "crafted stores"
