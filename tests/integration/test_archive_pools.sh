# Object pools (DESIGN.md 19) archived by the running service: a source, a pool made from it the
# GitLab way (git clone --bare, refreshed by fetching from the source, repacked), two forks linked
# to it (a relative and an absolute alternates path) and repacked local-only. The archiver takes
# the pool as a repository of its own and the forks against it: their full backups and segments
# (header version 2) name the pool's full backup and hold only the forks' own objects; the pool's
# new generation makes the forks' next records full backups. At each step (pushes to source and
# forks, fetches into the pool and its repack, forks repacked local-only, a fork deleted) the time
# and every repository's refs and HEAD are noted; restore --until each time, of each fork alone
# (linked: the pool restored with it, relative alternates; --standalone: self-contained) and of
# everything at once, is exact and 'git fsck --connectivity-only' clean. audit --deep is clean.
source "$(dirname "$0")/lib.sh"

L=$T/ar.log
pool_network

# A pool's second segment makes its policy full backup due, so that its new generation is seen.
archiver_start "$L" --debounce 50 --full-every 2
ALL="$SRC $P $F1 $F2"
wait_archived 60 $ALL || fail "start-up: the archive does not reach the live state: $(cat "$L")"
grep -q 'event=refused' "$L" && fail "a fork was refused: $(grep refused "$L")"

declare -A AT STATE
n=0
# step NAME: once the archive holds every live state, note the time and each repository's state.
step() {
  local rel
  n=$((n + 1))
  wait_archived 60 $ALL || fail "step $n ($1): not archived: $(tail -5 "$L")"
  AT[$n]=$(pitr_now_us)
  for rel in $ALL; do
    STATE[$n,$rel]=$T/state.$n.${rel//\//_}
    live_state "$R/$rel" > "${STATE[$n,$rel]}"
  done
  pass "step $n ($1) archived by the service"
}

step "forks linked"
for f in "$F1" "$F2"; do
  m=$(ls "$(store_dir "$f")" | grep 'full\.manifest$' | head -1)
  python3 - "$(store_dir "$f")/$m" "$P" <<'PY' || fail "$f: its first full backup"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["version"] == 2 and m["pool"]["repository"] == sys.argv[2], m.get("pool")
assert m["pool"]["lsn"] == m["pool"]["base_lsn"], m["pool"]
assert m["parts"]["bundle"]["objects"] == 0, "objects the pool holds were stored: %d" % m["parts"]["bundle"]["objects"]
PY
done
pass "the forks' full backups are version 2, name the pool's full backup and store none of its objects"

push_to "$F1" main
push_to "$F1" feature
push_to "$F2" topic
git -C "$R/$F2" symbolic-ref HEAD refs/heads/topic
step "pushes to the forks"
# The fork's segments carry the pool (header version 2) and only the fork's own objects.
# seghdr.py SEG: a segment's header (JSON); seghdr.py SEG --pool REPO | --lsn N: rewrite its "pool"'s
# repository or LSN (the header stored uncompressed, the trailer's SHA-256 recomputed): damage for the readers.
cat > "$T/seghdr.py" <<'PY'
import hashlib, json, struct, sys
def lz4_block(src, size):  # the header may be an LZ4 block (DESIGN.md 10.1)
    out, i = bytearray(), 0
    while i < len(src):
        tok = src[i]; i += 1
        n = tok >> 4
        if n == 15:
            while True:
                b = src[i]; i += 1; n += b
                if b != 255: break
        out += src[i:i + n]; i += n
        if i >= len(src): break
        off = src[i] | src[i + 1] << 8; i += 2
        m = tok & 15
        if m == 15:
            while True:
                b = src[i]; i += 1; m += b
                if b != 255: break
        for _ in range(m + 4):
            out.append(out[-off])
    assert len(out) == size
    return bytes(out)
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"GWSEG\0" and struct.unpack(">H", b[6:8])[0] == 1
flags, stored, raw = struct.unpack(">III", b[8:20])
text = b[20:20 + stored]
h = json.loads(lz4_block(text, raw) if flags & 1 else text)
if len(sys.argv) == 2:
    print(json.dumps(h))
    sys.exit(0)
if sys.argv[2] == "--pool":
    h["pool"]["repository"] = sys.argv[3]
else:
    h["pool"]["lsn"] = int(sys.argv[3])
new = json.dumps(h, separators=(",", ":")).encode()
body = b[:8] + struct.pack(">III", 0, len(new), len(new)) + new + b[20 + stored:-48]
tail = b[-48:-32]
open(sys.argv[1], "wb").write(body + tail + hashlib.sha256(body + tail).digest())
PY
seg=$(grep -L '"full_backup"' "$(store_dir "$F1")"/*.seg | tail -1)
python3 - "$(python3 "$T/seghdr.py" "$seg")" "$P" <<'PY' || fail "$F1's segment $seg"
import json, sys
h = json.loads(sys.argv[1])
assert h["version"] == 2 and h["pool"]["repository"] == sys.argv[2], h
assert h["pool"]["lsn"] == h["pool"]["base_lsn"], h["pool"]
assert 0 < h["objects"] <= 3, "objects %d: more than the push's own" % h["objects"]
PY
pass "a fork's segment is header version 2 with its pool, and holds only the push's objects"

push_to "$SRC" main
git -C "$R/$P" fetch -q "$R/$SRC" '+refs/*:refs/*'
git -C "$R/$P" repack -q -a -d
step "a push to the source, fetched into the pool, the pool repacked"

# The pool first: a fork fetching the source's new commit (in the pool's archive since its segment)
# stores none of it, and names the pool's LSN of that segment.
git -C "$R/$F1" fetch -q "$R/$SRC" main:refs/heads/upstream
step "a fork fetching from the source what the pool has"
seg=$(grep -L '"full_backup"' "$(store_dir "$F1")"/*.seg | tail -1)
python3 - "$(python3 "$T/seghdr.py" "$seg")" "$(last_lsn "$L" "$P")" <<'PY' || fail "$F1's segment $seg"
import json, sys
h = json.loads(sys.argv[1])
assert h["pool"]["lsn"] == int(sys.argv[2]) > h["pool"]["base_lsn"], (h["pool"], sys.argv[2])
assert h["objects"] == 0, "objects %d: the pool's archive holds them" % h["objects"]
PY
pass "a fork's segment names the pool's last LSN, above its full backup, and stores nothing the pool archived"

push_to "$SRC" main
git -C "$R/$P" fetch -q "$R/$SRC" '+refs/*:refs/*'
# Its second segment: the pool's policy full backup (a new generation), then the forks'.
wait_log "$L" "event=full repo=$P .*reason=segments" 1 60 || fail "the pool's new generation: $(grep "repo=$P " "$L")"
wait_log "$L" "event=full repo=$F1 .*reason=pool_generation" 1 60 || fail "$F1 after the pool's new generation: $(grep "repo=$F1 " "$L")"
wait_log "$L" "event=full repo=$F2 .*reason=pool_generation" 1 60 || fail "$F2 after the pool's new generation: $(grep "repo=$F2 " "$L")"
step "the pool fetched again: its new generation, and the forks' full backups after it"

git -C "$R/$F1" fetch -q "$R/$SRC" main:refs/heads/upstream
git -C "$R/$F1" repack -q -a -d -l
git -C "$R/$F2" repack -q -a -d -l
push_to "$F2" topic
step "forks repacked local-only, a fork fetching from the source"

rm -rf "${R:?}/$F2"
step "a fork deleted"
grep -E 'event=(error|chain_break|refused)' "$L" && fail "errors logged (above)"
archiver_stop "$L"

# check_restored DIR REL STATE: REL under DIR has STATE's refs and HEAD, connectivity-clean; a
# linked fork through relative alternates naming the pool under DIR, a standalone one with none.
check_restored() {
  local dir=$1 rel=$2 state=$3 how=${4:-linked}
  diff <(cat "$state") <(repo_state "$dir/$rel") >&2 || fail "$rel in $dir: refs or HEAD differ"
  git -C "$dir/$rel" fsck --connectivity-only --no-progress >/dev/null 2>"$T/fsck.err" ||
    fail "$rel in $dir: fsck --connectivity-only: $(cat "$T/fsck.err")"
  if [ "$how" = standalone ]; then
    [ ! -e "$dir/$rel/objects/info/alternates" ] && [ ! -e "$dir/$P" ] || fail "$rel in $dir: not standalone"
  elif [ "$rel" = "$F1" ] || [ "$rel" = "$F2" ]; then
    [ "$(cat "$dir/$rel/objects/info/alternates")" = "../../../../../$P/objects" ] ||
      fail "$rel in $dir: alternates $(cat "$dir/$rel/objects/info/alternates")"
  fi
}

for i in $(seq 1 $n); do
  for rel in "$F1" "$F2"; do
    [ "$(cat "${STATE[$i,$rel]}")" = DELETED ] && continue
    d=$T/r.$i.linked
    restore_ok "$d" --repo "$rel" --until "$(pitr_at "${AT[$i]}")" >/dev/null
    check_restored "$d" "$rel" "${STATE[$i,$rel]}"
    rm -rf "$d"
    d=$T/r.$i.standalone
    restore_ok "$d" --repo "$rel" --standalone --until "$(pitr_at "${AT[$i]}")" >/dev/null
    check_restored "$d" "$rel" "${STATE[$i,$rel]}" standalone
    rm -rf "$d"
  done
  d=$T/r.$i.all
  out=$(restore_ok "$d" --until "$(pitr_at "${AT[$i]}")")
  [ "$(grep -c "^ok $P " <<<"$out")" -eq 1 ] || fail "step $i: the pool not restored once: $out"
  for rel in $ALL; do
    if [ "$(cat "${STATE[$i,$rel]}")" = DELETED ]; then
      [ ! -e "$d/$rel" ] || fail "step $i: the deleted $rel was restored"
      continue
    fi
    check_restored "$d" "$rel" "${STATE[$i,$rel]}"
  done
  rm -rf "$d"
  pass "step $i: each fork alone (linked and standalone) and everything at once restored exactly, connectivity-clean"
done

# Between the pool's new generation and the forks' full backups after it: the forks' records then
# name the pool's older generation up to a segment of it, which restore joins beside the pool
# restored in the newer one.
newest_full() { ls "$(store_dir "$1")" | sed -n 's/^0*\([0-9]*\)\.full\.manifest$/\1/p' | sort -n | tail -1; }
full_time() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["time_us"])' "$(store_dir "$1")/$(printf '%020d' "$2").full.manifest"; }
pool_gen=$(grep -E "event=full repo=$P .*reason=segments" "$L" | head -1 | sed -n 's/.* lsn=\([0-9]*\).*/\1/p')
tp=$(full_time "$P" "$pool_gen")
f1_gen=$(grep -E "event=full repo=$F1 .*reason=pool_generation" "$L" | head -1 | sed -n 's/.* lsn=\([0-9]*\).*/\1/p')
[ "$(full_time "$F1" "$f1_gen")" -gt "$tp" ] || fail "$F1's full backup for the pool's new generation is not after it"
for how in linked standalone; do
  d=$T/r.window.$how
  restore_ok "$d" --repo "$F1" $([ $how = standalone ] && echo --standalone) --until "$(pitr_at "$tp")" >/dev/null
  check_restored "$d" "$F1" "${STATE[4,$F1]}" $how
  [ $how = standalone ] || ls "$d/$P/objects/pack/"*.pack | wc -l | grep_all -qx 2 ||
    fail "the pool's older generation was not added beside its newer one: $(ls "$d/$P/objects/pack")"
  rm -rf "$d"
done
pass "between the pool's new generation and the fork's full backup after it: the fork restores exactly, its pool generation added"

out=$(gitwal audit --deep --root "$R" 2>&1) || fail "audit --deep: $out"
pass "audit --deep checks the forks with their pool: clean"

# A fork's last segment naming a pool that is not its generation's (the index rebuilt from the
# store as it is now): restore and the archiver's state load refuse it, naming the segment.
# archive --once (its policy's default: no full backup due) twice: the pool's new segment and the
# fork fetching it (pool first, as in the service), then a push to the fork, each a fork segment
# naming the pool's LSN of that segment.
push_to "$SRC" main
git -C "$R/$P" fetch -q "$R/$SRC" '+refs/*:refs/*'
git -C "$R/$F1" fetch -q "$R/$SRC" main:refs/heads/upstream
gitwal archive --once 2>"$T/once.log" >/dev/null || fail "archive --once: $(cat "$T/once.log")"
pool_seg=$(($(newest_full "$P") + 1))
grep -Eq "event=segment repo=$P .*lsn=$pool_seg " "$T/once.log" || fail "archive --once, the pool first: $(cat "$T/once.log")"
[ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pool"]["lsn"])' "$(python3 "$T/seghdr.py" "$(ls "$(store_dir "$F1")"/*.seg | tail -1)")")" = "$pool_seg" ] ||
  fail "archive --once: $F1's segment does not name the pool's segment archived first"
push_to "$F1" main
gitwal archive --once 2>"$T/once.log" >/dev/null || fail "archive --once: $(cat "$T/once.log")"
[ "$(count_log "$T/once.log" "event=segment repo=$F1 ")" -eq 1 ] || fail "archive --once, the push to $F1: $(cat "$T/once.log")"
wait_archived 60 "$F1" "$P" || fail "archive --once: the archive does not reach the live state"
d=$T/r.once
restore_ok "$d" --repo "$F1" >/dev/null
live_state "$R/$F1" > "$T/state.once"
check_restored "$d" "$F1" "$T/state.once"
rm -rf "$d"
pass "archive --once archives the pool first, then the fork's changes naming it; the fork restores exactly"

last=$(ls "$(store_dir "$F1")"/*.seg | tail -1)
grep -q '"full_backup"' "$last" && fail "$F1's last record is not a segment"
chmod u+w "$last"
key="repos/$(enc_rel "$F1" | sed 's/@/%40/g')/$(basename "$last")"
cp "$last" "$T/last.seg"
# A pool LSN the pool's archive does not hold (above its last record, in its generation).
python3 "$T/seghdr.py" "$last" --lsn 999
gitwal index rebuild >/dev/null 2>"$T/rebuild.err" || fail "index rebuild: $(cat "$T/rebuild.err")"
assert_fails "restore of a fork whose segment names a pool LSN the pool's archive lacks" \
  "repository $F1: its pool $P was restored at LSN [0-9]+; the member needs the pool's LSN 999" \
  gitwal restore --to "$T/r.bad" --repo "$F1"
[ ! -e "$T/r.bad/$F1" ] || fail "a failed fork restore left its target"
cp "$T/last.seg" "$last"
# A pool LSN lower than the record before it named (that record's is the pool's segment after
# its full backup): the archiver's state load refuses it; restore, which reads the last one, not.
prev=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pool"]["lsn"])' "$(python3 "$T/seghdr.py" "$(ls "$(store_dir "$F1")"/*.seg | tail -2 | head -1)")")
[ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pool"]["base_lsn"])' "$(python3 "$T/seghdr.py" "$last")")" -lt "$prev" ] ||
  fail "$F1's records name no pool segment"
python3 "$T/seghdr.py" "$last" --lsn $((prev - 1))
gitwal index rebuild >/dev/null 2>"$T/rebuild.err" || fail "index rebuild: $(cat "$T/rebuild.err")"
rc=0
gitwal archive --once 2>"$T/once.log" >/dev/null || rc=$?
[ $rc -eq 1 ] || fail "archive --once over a pool LSN going down: exit $rc: $(cat "$T/once.log")"
grep -Eq "event=error repo=$F1 .*segment $key names pool $P \(full backup [0-9]+, LSN $((prev - 1))\), the record before it $P \([0-9]+, $prev\)" "$T/once.log" ||
  fail "the archiver's state load does not name the segment whose pool LSN goes down: $(cat "$T/once.log")"
cp "$T/last.seg" "$last"
python3 "$T/seghdr.py" "$last" --pool @pools/00/00/other.git
gitwal index rebuild >/dev/null 2>"$T/rebuild.err" || fail "index rebuild: $(cat "$T/rebuild.err")"
assert_fails "restore of a fork whose segment names another pool" \
  "repository $F1: segment $key names pool @pools/00/00/other.git" gitwal restore --to "$T/r.bad" --repo "$F1"
[ ! -e "$T/r.bad/$F1" ] || fail "a failed fork restore left its target"
rc=0
gitwal archive --once 2>"$T/once.log" >/dev/null || rc=$?
[ $rc -eq 1 ] || fail "archive --once over the damaged segment: exit $rc: $(cat "$T/once.log")"
grep -Eq "event=error repo=$F1 .*segment $key names pool @pools/00/00/other.git" "$T/once.log" ||
  fail "the archiver's state load does not name the segment: $(cat "$T/once.log")"
pass "a fork's segment naming another pool than its generation's, a pool LSN not archived or going down, is refused, naming it"
