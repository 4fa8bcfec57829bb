#!/usr/bin/env bash
# Point-in-time restore, the correctness bar: a scripted history across three
# repositories driven with real git (pushes, force-pushes, branch and tag
# deletions, tag moves, HEAD changes, gc, pack-refs, a repository deleted and
# created again), archived with 'gitwal archive --once' after every step. The
# truth (refs and HEAD) is recorded after each step; then 'restore --until' at
# many times (each record's exact time, one microsecond before it, after
# steps, in several TIME spellings) must reproduce it exactly, pass fsck, and
# leave one pack. No background service and no sleeps: every time compared is
# ordered by construction (a step's archive run ends before the next step
# starts, and the truth's time is taken in between).
source "$(dirname "$0")/lib.sh"

REPOS=(a.git g/b.git c.git)
NSTEPS=0
declare -A STEP_OF   # "rel lsn" -> the step whose archive run wrote that record
declare -A TRUTH     # "step rel" -> repo_state of rel after that step, or ABSENT
declare -a TS_US     # step -> a time after its archive run, before the next step

# snap REL...: archive, then record the truth of every repository after this step (REL...: the
# repositories the step touched; the others keep their state).
snap() {
  local rel rec
  NSTEPS=$((NSTEPS + 1))
  archive_once
  while read -r rec; do
    [[ $rec =~ \ event=(segment|full)\ repo=([^ ]+)\ lsn=([0-9]+) ]] || continue
    STEP_OF["${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"]=$NSTEPS
  done < "$T/archive.log"
  for rel in "${REPOS[@]}"; do
    if [[ " $* " != *" $rel "* ]] && [ "$NSTEPS" -gt 1 ]; then
      TRUTH["$NSTEPS $rel"]=${TRUTH["$((NSTEPS - 1)) $rel"]}
    elif [ -d "$T/root/$rel" ]; then
      TRUTH["$NSTEPS $rel"]=$(repo_state "$T/root/$rel")
    else
      TRUTH["$NSTEPS $rel"]=ABSENT
    fi
  done
  TS_US[$NSTEPS]=$(pitr_now_us)
}

n=0
commit() { # commit REL: a new commit on the checked-out branch of REL's working clone
  n=$((n + 1))
  echo "change $n" >> "$T/work/$1/file.txt"
  git -C "$T/work/$1" add file.txt
  git -C "$T/work/$1" commit -qm "change $n"
}
wa() { git -C "$T/work/a.git" "$@"; }
wb() { git -C "$T/work/g/b.git" "$@"; }
wc_() { git -C "$T/work/c.git" "$@"; }
ra() { git --git-dir="$T/root/a.git" "$@"; }
rb() { git --git-dir="$T/root/g/b.git" "$@"; }

# ---- the history ----
# 1: a and b first seen (full backups)
make_repo a.git 3; make_repo g/b.git 2; snap a.git g/b.git
# 2: a: a push and a new branch
commit a.git; wa push -q origin main; wa push -q origin main:refs/heads/dev; snap a.git
# 3: a: force-push (history rewritten); b: a feature branch; c first seen
wa reset -q --hard HEAD~2; commit a.git; wa push -q -f origin main
wb checkout -q -b feature; commit g/b.git; wb push -q origin feature
make_repo c.git 1; snap a.git g/b.git c.git
# 4: a: a lightweight and an annotated tag; b: a tag
wa tag v1 HEAD~1; wa tag -a -m "release 2" v2; wa push -q origin v1 v2; rb tag t1 main; snap a.git g/b.git
# 5: a: branch deleted; b: tag deleted; c: a push
wa push -q origin :refs/heads/dev; rb tag -d t1 >/dev/null; commit c.git; wc_ push -q origin main
snap a.git g/b.git c.git
# 6: a: tag moved (deleted and created again at another commit); b: the deleted tag created elsewhere
wa push -q origin :refs/tags/v1; wa tag -f v1 main >/dev/null; wa push -q origin v1; rb tag t1 feature
snap a.git g/b.git
# 7: a: HEAD to a branch that no longer exists; c deleted
ra symbolic-ref HEAD refs/heads/dev; rm -rf "$T/root/c.git"; snap a.git c.git
# 8: a: HEAD back; b: HEAD to feature, main deleted, gc
ra symbolic-ref HEAD refs/heads/main
rb symbolic-ref HEAD refs/heads/feature; rb update-ref -d refs/heads/main; rb gc -q --prune=now
snap a.git g/b.git
# 9: a: gc and pack-refs, no ref changed: no segment
ra gc -q --prune=now; ra pack-refs --all; snap a.git
! grep -q 'event=segment' "$T/archive.log" || fail "git gc (no ref changed) gave a segment: $(cat "$T/archive.log")"
# 10: a: a push onto packed refs; c created again (a new generation, full backup)
commit a.git; wa push -q origin main; rm -rf "$T/work/c.git"; make_repo c.git 2; snap a.git c.git
# 11: several refs at once in a and b
wb checkout -q -b x1; commit g/b.git; wb checkout -q -b x2; commit g/b.git; wb push -q origin x1 x2
commit a.git; wa push -q origin main:refs/heads/dev main; snap a.git g/b.git
# 12: a: annotated tag moved
wa tag -d v2 >/dev/null; wa tag -a -m "release 2 again" v2 HEAD~1; wa push -q -f origin v2; snap a.git
pass "history of $NSTEPS steps archived"

# ---- records: exact times, and the step each one belongs to ----
declare -A FULLS
declare -A REC   # rel -> "time_us:step time_us:step ..." in LSN order
while read -r rel lsn kind tus; do
  step=${STEP_OF["$rel $lsn"]:-}
  [ -n "$step" ] || fail "$rel: record LSN $lsn ($kind) was not reported by any archive run"
  REC[$rel]+="$tus:$step "
  [ "$kind" = full ] && FULLS[$rel]=$((${FULLS[$rel]:-0} + 1))
done < <(log_records "${REPOS[@]}")
[ "${FULLS[c.git]:-0}" -eq 2 ] || fail "c.git: expected two full backups (created, deleted, created again), got ${FULLS[c.git]:-0}"

# expected REL TIME_US: sets WANT to the step of REL's newest record at or before that time,
# or NONE before its first record.
expected() {
  local r
  WANT=NONE
  for r in ${REC[$1]}; do
    [ "${r%%:*}" -le "$2" ] && WANT=${r#*:}
  done
  return 0
}

# The archive saw every state: after each step, the state of the newest record is the truth.
for k in $(seq 1 "$NSTEPS"); do
  for rel in "${REPOS[@]}"; do
    expected "$rel" "${TS_US[$k]}"
    if [ "$WANT" = NONE ]; then
      [ "${TRUTH["$k $rel"]}" = ABSENT ] || fail "$rel exists after step $k but has no record by then"
    else
      [ "${TRUTH["$WANT $rel"]}" = "${TRUTH["$k $rel"]}" ] ||
        fail "$rel after step $k: the newest record (from step $WANT) is not the truth"
    fi
  done
done
pass "every step's state is the state of the newest record"

# ---- restores ----
restores=0 running=0
declare -A FSCKED
# check_at TIME_US SPELLING [REL...]: restore at SPELLING (which means TIME_US) every repository, or
# just the ones named (with --repo: a repository deleted or not yet backed up then is an error), and
# compare each with the truth. Runs in the background, two at a time; 'check_wait' collects them.
check_at() {
  local t=$1 spec=$2 dst rel fsck="" rels
  shift 2
  restores=$((restores + 1))
  dst=$T/r/$restores
  rels=("$@"); [ $# -gt 0 ] || rels=("${REPOS[@]}")
  # The same plan (the same records of a repository) builds the same repository: fsck it once.
  for rel in "${rels[@]}"; do
    expected "$rel" "$t"
    if [ -z "${FSCKED["$WANT $rel"]:-}" ]; then FSCKED["$WANT $rel"]=1; fsck+=" $rel "; fi
  done
  if [ "$running" -ge 2 ]; then wait -n || fail "a restore check failed (see above)"; running=$((running - 1)); fi
  check_one "$t" "$spec" "$dst" "$fsck" "$@" &
  running=$((running + 1))
}
check_wait() {
  local pid
  for pid in $(jobs -p); do wait "$pid" || fail "a restore check failed (see above)"; done
  running=0
}
check_one() {
  local t=$1 spec=$2 dst=$3 fsck=$4 out rc=0 rel args=() rels why got packs
  shift 4
  rels=("$@")
  if [ ${#rels[@]} -eq 0 ]; then rels=("${REPOS[@]}"); else for rel in "${rels[@]}"; do args+=(--repo "$rel"); done; fi
  # Under AddressSanitizer the leak check at exit costs about as much as a small restore: keep it
  # for the first restore of each plan, skip it when every plan was already restored once.
  local asan=${ASAN_OPTIONS:-}
  [ -n "$fsck" ] || asan=${asan:+$asan:}detect_leaks=0
  out=$(ASAN_OPTIONS=$asan gitwal restore --to "$dst" --until "$spec" "${args[@]}" 2>"$dst.err") || rc=$?
  for rel in "${rels[@]}"; do
    expected "$rel" "$t"
    if [ "$WANT" = NONE ] || [ "${TRUTH["$WANT $rel"]}" = ABSENT ]; then
      why=deleted
      [ "$WANT" = NONE ] && why="before its first full backup"
      if [ ${#args[@]} -eq 0 ]; then
        [[ $'\n'$out =~ $'\n'"skipped $rel: "[^$'\n']*"$why" ]] ||
          fail "restore --until $spec: $rel should be listed as skipped ($why): $out"
      else
        [ $rc -ne 0 ] && [[ $(<"$dst.err") == *"$why"* ]] ||
          fail "restore --repo $rel --until $spec: expected an error '$why', got exit $rc: $out $(cat "$dst.err")"
      fi
      [ ! -e "$dst/$rel" ] || fail "restore --until $spec: $rel was created ($why)"
    else
      [[ $'\n'$out == *$'\n'"ok $rel "* ]] || fail "restore --until $spec: no 'ok $rel' line: $out $(cat "$dst.err")"
      got=$(repo_state "$dst/$rel")
      [ "$got" = "${TRUTH["$WANT $rel"]}" ] ||
        fail "restore --until $spec ($t): $rel differs from the truth after step $WANT:
$(diff <(echo "${TRUTH["$WANT $rel"]}") <(echo "$got"))"
      if [[ $fsck == *" $rel "* ]]; then
        git -C "$dst/$rel" fsck --full --no-progress >/dev/null 2>"$dst.fsck" ||
          fail "restore --until $spec: fsck of $rel: $(cat "$dst.fsck")"
      fi
      packs=("$dst/$rel"/objects/pack/pack-*.pack)
      [ ${#packs[@]} -eq 1 ] && [ -f "${packs[0]}" ] || fail "restore --until $spec: $rel has ${#packs[@]} packs, not 1"
    fi
  done
  [ ${#args[@]} -gt 0 ] || [ $rc -eq 0 ] || fail "restore --until $spec (every repository) exited $rc: $out $(cat "$dst.err")"
}

# Rotate TIME spellings: @s.micro, RFC 3339 Z, +01:00, -05:30, nanoseconds.
spell() {
  case $(($2 % 5)) in
    0) pitr_at "$1" ;;
    1) pitr_rfc "$1" ;;
    2) pitr_rfc "$1" 60 ;;
    3) pitr_rfc "$1" -330 ;;
    4) echo "$(pitr_at "$1")000" ;;
  esac
}

mkdir -p "$T/r"
i=0
for rel in "${REPOS[@]}"; do
  for r in ${REC[$rel]}; do
    tus=${r%%:*}
    check_at "$tus" "$(spell "$tus" $i)" "$rel"; i=$((i + 1))              # exactly at the record
    check_at $((tus - 1)) "$(spell $((tus - 1)) $i)" "$rel"; i=$((i + 1))  # just before it: between updates
  done
done
for k in $(seq 1 2 "$NSTEPS"); do   # every repository at once, some skipped (not yet created, deleted)
  check_at "${TS_US[$k]}" "$(spell "${TS_US[$k]}" $i)"; i=$((i + 1))
done

# Millisecond and whole-second spellings mean the start of that millisecond or second.
recs=(${REC[a.git]}); tus=${recs[2]%%:*}
TZ=UTC0 printf -v day '%(%Y-%m-%dT%H:%M:%S)T' $((tus / 1000000))
check_at $((tus / 1000 * 1000)) "$day.$(printf %03d $((tus / 1000 % 1000)))Z" a.git
check_at $((tus / 1000000 * 1000000)) "${day}Z"
# Before the first full backup of all, and long after the last update.
first=${recs[0]%%:*}
check_at $((first - 1)) "$(pitr_at $((first - 1)))"
check_at "${TS_US[$NSTEPS]}" "@$(($(pitr_now_us) / 1000000 + 86400 * 365))"
check_wait
pass "$restores point-in-time restores match the truth (at, just before and between records, after steps)"

# Before the first full backup: an error naming it, never the earliest state.
assert_fails "restore --repo a.git --until before its first full backup" "before its first full backup" \
  gitwal restore --to "$T/early" --repo a.git --until "$(pitr_at $((first - 1)))"
[ ! -e "$T/early/a.git" ] || fail "a restore before the first full backup created a.git"
# The epoch and earlier are times like any other (not "no time given", which means the newest state).
for t in @0 1970-01-01T00:00:00Z 1969-12-31T23:59:59Z; do
  assert_fails "restore --until $t" "before its first full backup" gitwal restore --to "$T/epoch" --repo a.git --until "$t"
  [ ! -e "$T/epoch/a.git" ] || fail "restore --until $t created a.git"
done

# c.git between its deletion (step 7) and its second life: deleted, an error when asked for by name.
del=""
for r in ${REC[c.git]}; do if [ "${r#*:}" = 7 ]; then del=${r%%:*}; fi; done
[ -n "$del" ] || fail "c.git has no record from step 7 (its deletion)"
assert_fails "restore --repo c.git --until after its deletion" "deleted" \
  gitwal restore --to "$T/del" --repo c.git --until "$(pitr_at "$del")"
[ ! -e "$T/del/c.git" ] || fail "restore of deleted c.git created it"

# Now: the live repositories.
restore_ok "$T/now" --until "$(pitr_rfc "$(pitr_now_us)")" >/dev/null
for rel in "${REPOS[@]}"; do
  assert_same_repo "$T/root/$rel" "$T/now/$rel"
  assert_single_pack "$T/now/$rel"
done
pass "restore at now equals the live repositories"

# No --until and no --lsn: the newest state archived (the latest full backup and every segment
# after it), the same as at now: never the latest full backup alone.
restore_ok "$T/default" >/dev/null
for rel in "${REPOS[@]}"; do
  assert_same_repo "$T/root/$rel" "$T/default/$rel"
  assert_single_pack "$T/default/$rel"
done
pass "restore without --until gives the newest state archived"
# The object format the history ran in (GITWAL_TEST_OBJECT_FORMAT: test_pitr_history_sha256.sh), restored as it was.
fmt=${GITWAL_TEST_OBJECT_FORMAT:-sha1}
for d in "$T/root/a.git" "$T/default/a.git"; do
  [ "$(git --git-dir="$d" rev-parse --show-object-format)" = "$fmt" ] || fail "$d is not a $fmt repository"
done
grep -q "\"object_format\":\"$fmt\"" "$(full_key a.git 1 manifest)" || fail "a.git's manifest is not $fmt"
pass "the history ran and was restored in object format $fmt"
