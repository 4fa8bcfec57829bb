#!/usr/bin/env bash
# A damaged store: keys deleted or corrupted by hand in a real file store.
# Exit statuses tell the truth (missing or damaged data is "failed", named,
# and the exit is non-zero; "skipped" only for what the archive proves absent
# at the time asked for), and one damaged repository never blocks the others:
# restore, info, log and index rebuild on a fresh machine (no index) go on
# past a damaged key, restore or list every healthy repository and name each
# damaged key in one line (repository, key, reason).
source "$(dirname "$0")/lib.sh"

# a.git: full backup at LSN 1 (its claim at 1.seg), then segments 2, 3, 4; b.git and c.git: full backups.
make_repo a.git 2
make_repo b.git 2
make_repo c.git 2
backup_ok --all >/dev/null
for i in 1 2 3; do push_commit a.git; archive_once; done
PRISTINE=$T/pristine
cp -a "$GITWAL_STATE_DIR/store" "$PRISTINE"
ls "$PRISTINE/repos/a.git/00000000000000000004.seg" >/dev/null || fail "setup: a.git has no segment at LSN 4"
# The times of LSN 1 (the full backup) and LSN 2 of a.git.
lsn_time() { gitwal log --repo a.git --json | python3 -c 'import json,sys; print([r["time"] for r in json.load(sys.stdin)["records"] if r["lsn"]=='"$1"'][0])'; }
T1=$(lsn_time 1)
T2=$(lsn_time 2)

# fresh NAME: a copy of the pristine store and no index (another machine); sets S (store dir) and G (options).
fresh() {
  S=$T/$1/store
  mkdir -p "$T/$1"
  cp -a "$PRISTINE" "$S"
  chmod -R u+w "$S"
  G=(--store "file://$S" --index "$T/$1/index.db")
}
seg() { printf '%s/repos/%s/%020d.seg' "$S" "$(enc_rel "$1")" "$2"; }
full() { printf '%s/repos/%s/%020d.full.%s' "$S" "$(enc_rel "$1")" "$2" "$3"; }

# run_cmd NAME CMD...: run CMD, keep stdout in $T/NAME.out, stderr in $T/NAME.err and the status in RC.
run_cmd() {
  local name=$1; shift
  RC=0
  "$@" >"$T/$name.out" 2>"$T/$name.err" || RC=$?
}
expect_rc() { [ "$RC" -eq "$1" ] || fail "$2: exit $RC, expected $1: $(cat "$T/$3.out" "$T/$3.err")"; }
has() { grep -Eq -- "$2" "$T/$1" || fail "$3: $1 does not match '$2': $(cat "$T/$1")"; }
hasnt() { ! grep -Eq -- "$2" "$T/$1" || fail "$3: $1 matches '$2': $(cat "$T/$1")"; }
healthy_restored() {
  local dir=$1 what=$2 r
  for r in b.git c.git; do
    [ -d "$dir/$r" ] || fail "$what: healthy $r was not restored"
    assert_same_repo "$T/root/$r" "$dir/$r"
  done
}

# --- a deleted bundle: failed, never skipped ----------------------------------------------------
for idx in kept fresh; do
  fresh "nobundle-$idx"
  [ "$idx" = kept ] && gitwal index rebuild "${G[@]}" >/dev/null
  rm -f "$(full a.git 1 bundle)"
  run_cmd nobundle gitwal restore --to "$T/nobundle-$idx/out" "${G[@]}"
  expect_rc 1 "restore, bundle deleted ($idx index)" nobundle
  has nobundle.out "^failed a.git: .*00000000000000000001\.full\.bundle.*not found" "bundle deleted ($idx index)"
  hasnt nobundle.out "^skipped" "bundle deleted ($idx index)"
  has nobundle.err "3 repositories, 1 failed, 0 skipped" "bundle deleted ($idx index)"
  healthy_restored "$T/nobundle-$idx/out" "bundle deleted ($idx index)"
done
pass "a deleted full-backup bundle fails its repository (exit 1), with or without an index; the others are restored"

# --- a deleted middle segment ----------------------------------------------------------------------
fresh noseg
rm -f "$(seg a.git 3)"
run_cmd noseg gitwal restore --to "$T/noseg/out" "${G[@]}"
expect_rc 1 "restore, segment 3 deleted" noseg
has noseg.out "^failed a.git: .*LSN 3 is missing" "segment 3 deleted"
hasnt noseg.out "^skipped" "segment 3 deleted"
healthy_restored "$T/noseg/out" "segment 3 deleted"
# At LSN 2's time the missing LSN 3 might be owed (its time is unknown): failed. At LSN 1's, LSN 2 (later) is there: ok.
run_cmd noseg2 gitwal restore --to "$T/noseg/out2" --repo a.git --until "$T2" "${G[@]}"
expect_rc 1 "restore --until right before the hole" noseg2
has noseg2.out "^failed a.git: .*LSN 3 is missing" "restore --until right before the hole"
run_cmd noseg1 gitwal restore --to "$T/noseg/out1" --repo a.git --until "$T1" "${G[@]}"
expect_rc 0 "restore --until before the hole" noseg1
pass "a deleted middle segment fails its repository and names the LSN"

# --- a deleted manifest, segments left: never silently left out --------------------------------------
fresh noman
rm -f "$(full a.git 1 manifest)"
run_cmd noman gitwal restore --to "$T/noman/out" "${G[@]}"
expect_rc 1 "restore, manifest deleted" noman
has noman.out "^failed a.git: .*no full backup" "manifest deleted"
has noman.err "3 repositories, 1 failed" "manifest deleted"
healthy_restored "$T/noman/out" "manifest deleted"
run_cmd noman-info gitwal info "${G[@]}"
expect_rc 1 "info, manifest deleted" noman-info
has noman-info.err "^gitwal info: damaged a.git: key repos/a.git/00000000000000000001.seg: LSN 1 holds a full backup.s claim but no manifest" "info, manifest deleted"
has noman-info.out "^b.git$" "info, manifest deleted"
has noman-info.out "^c.git$" "info, manifest deleted"
pass "a repository whose manifest is gone but whose segments remain is listed as failed, not left out"

# --- a damaged segment on a fresh machine -------------------------------------------------------------
fresh badseg
bad=$(seg a.git 4)
echo "not a segment" > "$bad"
key=${bad#"$S/"}
run_cmd badseg gitwal restore --to "$T/badseg/out" "${G[@]}"
expect_rc 1 "restore, damaged segment" badseg
has badseg.out "^failed a.git: .*$key" "damaged segment"
healthy_restored "$T/badseg/out" "damaged segment"
[ "$(grep -c "$key" "$T/badseg.err")" -eq 1 ] || fail "damaged segment: not named exactly once: $(cat "$T/badseg.err")"
# restore --until of everything: the same.
rm -f "$T/badseg/index.db"
run_cmd badseg-until gitwal restore --to "$T/badseg/out-until" --until "$(pitr_rfc "$(pitr_now_us)")" "${G[@]}"
expect_rc 1 "restore --until, damaged segment" badseg-until
healthy_restored "$T/badseg/out-until" "restore --until, damaged segment"
# A time the damaged key cannot matter to (LSN 3 is after it): a.git is restored, the damage still named, exit 1.
rm -f "$T/badseg/index.db"
run_cmd badseg-t2 gitwal restore --to "$T/badseg/out-t2" --repo a.git --until "$T2" "${G[@]}"
expect_rc 1 "restore --until before the damage" badseg-t2
has badseg-t2.out "^ok a.git lsn=2 " "restore --until before the damage"
has badseg-t2.err "^gitwal restore: damaged a.git: key $key: " "restore --until before the damage"
# info, log, index rebuild: everything healthy, the damaged key in one line, exit 1.
rm -f "$T/badseg/index.db"
run_cmd badseg-info gitwal info "${G[@]}"
expect_rc 1 "info, damaged segment" badseg-info
has badseg-info.out "^3 repositories, 3 full backups" "info, damaged segment"
has badseg-info.err "^gitwal info: damaged a.git: key $key: " "info, damaged segment"
rm -f "$T/badseg/index.db"
run_cmd badseg-log gitwal log --repo a.git "${G[@]}"
expect_rc 1 "log, damaged segment" badseg-log
has badseg-log.out "^3 segment " "log, damaged segment"
has badseg-log.err "^gitwal log: damaged a.git: key $key: " "log, damaged segment"
rm -f "$T/badseg/index.db"
run_cmd badseg-rebuild gitwal index rebuild "${G[@]}"
expect_rc 1 "index rebuild, damaged segment" badseg-rebuild
has badseg-rebuild.out ": 3 full backups, 2 segments, 3 repositories$" "index rebuild, damaged segment"
has badseg-rebuild.err "^gitwal index: damaged a.git: key $key: " "index rebuild, damaged segment"
run_cmd badseg-nosync gitwal info --no-sync "${G[@]}"
expect_rc 0 "info --no-sync after the rebuild" badseg-nosync
has badseg-nosync.out "^3 repositories, 3 full backups" "the rebuilt index holds every healthy record"
pass "a damaged segment: restore, restore --until, info, log and index rebuild go on past it, name it once, exit 1"

# --- a damaged manifest on a fresh machine -----------------------------------------------------------
fresh badman
bad=$(full b.git 1 manifest)
echo '{"magic":"gitwal-full-backup",' > "$bad"
key=${bad#"$S/"}
run_cmd badman gitwal restore --to "$T/badman/out" "${G[@]}"
expect_rc 1 "restore, damaged manifest" badman
has badman.out "^failed b.git: .*$key.*JSON" "damaged manifest"
has badman.out "^ok a.git " "damaged manifest"
has badman.out "^ok c.git " "damaged manifest"
[ "$(grep -c "$key" "$T/badman.err")" -eq 1 ] || fail "damaged manifest: not named exactly once: $(cat "$T/badman.err")"
rm -f "$T/badman/index.db"
run_cmd badman-info gitwal info "${G[@]}"
expect_rc 1 "info, damaged manifest" badman-info
has badman-info.out "^2 repositories, 2 full backups" "info, damaged manifest"
has badman-info.err "^gitwal info: damaged b.git: key $key: " "info, damaged manifest"
[ "$(wc -l <"$T/badman-info.err")" -eq 1 ] || fail "info, damaged manifest: more than one line: $(cat "$T/badman-info.err")"
rm -f "$T/badman/index.db"
run_cmd badman-rebuild gitwal index rebuild "${G[@]}"
expect_rc 1 "index rebuild, damaged manifest" badman-rebuild
has badman-rebuild.err "^gitwal index: damaged b.git: key $key: " "index rebuild, damaged manifest"
pass "a damaged manifest: the other repositories are restored and listed, the key named, exit 1"

# --- a newer full backup whose manifest is lost: never a silent older state ----------------------------
fresh lostnewer
# b.git gets a second full backup (LSN 2) in this store alone; then its manifest goes.
push_commit b.git
gitwal backup --store "file://$S" --index "$T/lostnewer/other.db" b.git >/dev/null
chmod -R u+w "$S"
rm -f "$(full b.git 2 manifest)"
run_cmd lostnewer gitwal restore --to "$T/lostnewer/out" "${G[@]}"
expect_rc 1 "restore, newer manifest lost" lostnewer
has lostnewer.out "^failed b.git: " "newer manifest lost"
pass "a full backup whose manifest is lost is not replaced by an older state in silence"

# --- skipped only when the archive proves it: a deleted repository, a time before the first record ----------
fresh proven
proven_archive() {
  GITWAL_STATE_DIR=$T/proven/state gitwal archive --once --store "file://$S" --index "$T/proven/index.db" \
    >/dev/null 2>"$T/proven.log" || fail "archive --once: $(cat "$T/proven.log")"
}
proven_archive                   # the archiver learns of c.git
mv "$T/root/c.git" "$T/c.git.away"
proven_archive                   # and records its deletion
mv "$T/c.git.away" "$T/root/c.git"
run_cmd proven gitwal restore --to "$T/proven/out" "${G[@]}"
has proven.out "^skipped c.git: .*deleted" "deleted repository"
has proven.out "^ok a.git " "deleted repository"
expect_rc 0 "restore of everything with a deleted repository" proven
# Before every full backup: nothing older is stored, so each is skipped, and the exit is 0.
run_cmd proven-early gitwal restore --to "$T/proven/early" --until @1000 "${G[@]}"
has proven-early.out "^skipped a.git: .*before its first full backup" "before the first full backup"
expect_rc 0 "restore --until before every record" proven-early
pass "a repository deleted before the time, or not yet archived then, is skipped (exit 0)"

# An older key with no full backup below the first one: not proven, failed.
fresh older
gitwal backup --store "file://$S" --index "$T/older/other.db" b.git >/dev/null   # b.git LSN 2
chmod -R u+w "$S"
rm -f "$(full b.git 1 manifest)"
run_cmd older gitwal restore --to "$T/older/out" --until "$T2" "${G[@]}"
expect_rc 1 "restore --until before the first full backup left" older
has older.out "^failed b.git: .*older key of it" "an older key without a full backup"
pass "a time before the first full backup left, with older keys stored, fails (not skipped)"

# --- options --------------------------------------------------------------------------------------------
fresh opts
assert_fails "restore --to ''" "option --to" gitwal restore --to "" "${G[@]}"
run_cmd twice gitwal restore --to "$T/opts/out" --repo b.git --repo b.git "${G[@]}"
expect_rc 0 "restore --repo twice" twice
[ "$(grep -c '^ok b.git ' "$T/twice.out")" -eq 1 ] || fail "restore --repo twice: not restored once: $(cat "$T/twice.out")"
has twice.err "1 repositories, 0 failed" "restore --repo twice"
assert_fails "log --repo unknown" "nonexistent.git.*not in the archive" gitwal log --repo nonexistent.git "${G[@]}"
assert_fails "info --repo unknown" "nonexistent.git.*not in the archive" gitwal info --repo nonexistent.git "${G[@]}"
assert_fails "info --repo ../x" "option --repo.*\.\./x" gitwal info --repo ../x "${G[@]}"
assert_fails "log --repo ../x" "option --repo.*\.\./x" gitwal log --repo ../x "${G[@]}"
run_cmd known gitwal info --repo b.git "${G[@]}"
expect_rc 0 "info --repo b.git" known
pass "option checks: --to '', a repeated --repo, an unknown or invalid --repo"

# --- a manifest over the size cap is refused from its size, never read into memory --------------------------
fresh huge
mkdir -p "$S/repos/h.git"
truncate -s 300M "$S/repos/h.git/00000000000000000001.full.manifest"
run_cmd huge /usr/bin/time -f 'maxrss_kb=%M' "$GITWAL_BIN" restore --to "$T/huge/out" --repo h.git "${G[@]}"
expect_rc 1 "restore of a 300 MB manifest" huge
has huge.err "h.git.*more than the [0-9]+ allowed" "a 300 MB manifest"
rss=$(sed -n 's/^maxrss_kb=//p' "$T/huge.err")
[ "$rss" -lt 65536 ] || fail "a 300 MB manifest: peak RSS ${rss} kB (it was read into memory)"
run_cmd huge-info gitwal info "${G[@]}"
expect_rc 1 "info with a 300 MB manifest" huge-info
has huge-info.err "^gitwal info: damaged h.git: key repos/h.git/00000000000000000001.full.manifest: " "info, 300 MB manifest"
pass "a manifest over the cap is refused from its size (peak RSS ${rss} kB)"
