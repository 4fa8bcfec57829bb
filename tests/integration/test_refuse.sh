# Repositories gitwal cannot archive faithfully are refused, with a one-line reason naming
# them, by backup (named and --all) and by the archiver (--once and the service), and the
# others are archived: reftable (made by hand: git 2.39 cannot create one), shallow and
# partial clones (real git clones), an object format git does not know (sha512), unknown
# extensions and format versions, and a fork whose alternates leave the root (a fork
# linked to a pool under the root is archived, by backup and by the archiver: DESIGN.md 19). The audit --deep --root names each as lagging with the reason. The service
# says so once per repository (event=refused, errors{kind="unsupported"}), does not retry
# it on every event, and archives it once it is fixed.
source "$(dirname "$0")/lib.sh"

R=$T/root L=$T/ar.log
make_repo src.git 3
git -C "$R/src.git" config uploadpack.allowFilter true
git -C "$R/src.git" config uploadpack.allowAnySHA1InWant true
mkdir -p "$T/clones"
git clone -q --bare --depth 1 "file://$R/src.git" "$R/shallow.git" 2>/dev/null
[ -s "$R/shallow.git/shallow" ] || fail "setup: the --depth 1 clone has no shallow file"
git clone -q --bare --filter=blob:none "file://$R/src.git" "$R/partial.git" 2>/dev/null
ls "$R/partial.git/objects/pack/"*.promisor >/dev/null 2>&1 || fail "setup: the partial clone has no .promisor pack"
# A partial clone known only by its .promisor pack (its config forgotten).
git clone -q --bare --filter=blob:none "file://$R/src.git" "$R/promisorpack.git" 2>/dev/null
git -C "$R/promisorpack.git" config --unset remote.origin.promisor
git -C "$R/promisorpack.git" config --unset-all extensions.partialclone 2>/dev/null || true
# extensions.partialclone, as older git writes it.
make_repo partialext.git 1
git -C "$R/partialext.git" config core.repositoryformatversion 1
git -C "$R/partialext.git" config extensions.partialClone origin
# reftable, as git 2.45+ lays it out: HEAD and refs/heads only there for older tools.
git init -q --bare "$R/reftable.git"
git -C "$R/reftable.git" config core.repositoryformatversion 1
git -C "$R/reftable.git" config extensions.refStorage reftable
printf 'ref: refs/heads/.invalid\n' > "$R/reftable.git/HEAD"
rm -rf "$R/reftable.git/refs"; mkdir "$R/reftable.git/refs"
echo 'this repository uses the reftable format' > "$R/reftable.git/refs/heads"
mkdir "$R/reftable.git/reftable"; : > "$R/reftable.git/reftable/tables.list"
# An object format no git knows (set by hand: git refuses to touch the repository afterwards).
make_repo sha512.git 1
git -C "$R/sha512.git" config core.repositoryformatversion 1
git config -f "$R/sha512.git/config" extensions.objectFormat sha512
make_repo unknown.git 2
git -C "$R/unknown.git" config core.repositoryformatversion 1
git -C "$R/unknown.git" config extensions.fancyRefs yes
make_repo v2.git 1
git -C "$R/v2.git" config core.repositoryformatversion 2
# Accepted: what gitwal reads (sha1, files refs), and extensions that change nothing it reads.
make_repo sha1.git 2
git -C "$R/sha1.git" config core.repositoryformatversion 1
git -C "$R/sha1.git" config extensions.objectFormat sha1
git -C "$R/sha1.git" config extensions.worktreeConfig true
make_repo files.git 1   # refStorage=files is what gitwal reads (git 2.39 does not know the key: set last)
git -C "$R/files.git" config core.repositoryformatversion 1
git config -f "$R/files.git/config" extensions.refStorage files
make_repo plain.git 2
# Alternates (DESIGN.md 19): a fork linked to a pool under the root, one whose alternate leaves it.
git clone -q --bare --shared "$R/src.git" "$R/pooled.git"
git clone -q --bare "$R/src.git" "$T/outside.git"
git clone -q --bare "$R/src.git" "$R/escape.git"
echo "../../../outside.git/objects" > "$R/escape.git/objects/info/alternates"

declare -A WHY=(
  [shallow.git]="is a shallow clone \(it has a 'shallow' file\)"
  [partial.git]="is a partial clone \((remote\.origin\.promisor=true|extensions\.partialclone=origin)\)"
  [promisorpack.git]="is a partial clone \(objects/pack/pack-[0-9a-f]+\.promisor\)"
  [partialext.git]="is a partial clone \(extensions\.partialclone=origin\)"
  [reftable.git]="keeps its refs in reftable \(extensions\.refstorage=reftable\)"
  [sha512.git]="uses object format sha512"
  [unknown.git]="sets extensions\.fancyrefs=yes, a Git extension gitwal does not understand"
  [v2.git]="has core\.repositoryformatversion=2"
  [escape.git]="alternate \.\./\.\./\.\./outside\.git/objects \(.* line 1\) leaves the root"
)
GOOD="files.git plain.git sha1.git src.git"
# The archiver refuses the same (a pooled fork it archives too, its records naming the pool).
declare -A WHY_ARCH
for rel in "${!WHY[@]}"; do WHY_ARCH[$rel]=${WHY[$rel]}; done

# ---- backup, named: one refusal, one line, nothing stored ----
for rel in "${!WHY[@]}"; do
  rc=0
  gitwal backup "$rel" >"$T/named.out" 2>"$T/named.err" || rc=$?
  [ $rc -eq 1 ] || fail "backup $rel: exit $rc, expected 1: $(cat "$T/named.err")"
  grep -Eq "^failed $rel: repository $rel:? ${WHY[$rel]}" "$T/named.out" || fail "backup $rel: $(cat "$T/named.out")"
  [ "$(grep -vc '^gitwal backup: [0-9]* repositories' "$T/named.err")" -eq 1 ] || fail "backup $rel: not one line: $(cat "$T/named.err")"
  [ -z "$(arch_keys "$rel")" ] || fail "backup $rel stored something: $(arch_keys "$rel")"
done
pass "backup REL refuses each kind with its reason and stores nothing"

# ---- backup --all: the refused ones fail, the others are backed up ----
rc=0
gitwal backup --all >"$T/all.out" 2>"$T/all.err" || rc=$?
[ $rc -eq 1 ] || fail "backup --all: exit $rc, expected 1: $(cat "$T/all.err")"
for rel in "${!WHY[@]}"; do
  grep -Eq "^failed $rel: repository $rel:? ${WHY[$rel]}" "$T/all.out" || fail "backup --all, $rel: $(cat "$T/all.out")"
done
for rel in $GOOD pooled.git; do
  # src.git is pooled.git's pool: backed up first with it too, so its LSN depends on the order.
  grep -Eq "^ok $rel lsn=[0-9]+ " "$T/all.out" || fail "backup --all did not back up $rel: $(cat "$T/all.out")"
done
grep -q "14 repositories, 9 failed" "$T/all.err" || fail "backup --all summary: $(cat "$T/all.err")"
restore_ok "$T/restored" --repo sha1.git --repo files.git >/dev/null
assert_same_repo "$R/sha1.git" "$T/restored/sha1.git"
# The restored config is the repository's own, refStorage=files included: git 2.39 reads neither with it.
cmp "$R/files.git/config" "$T/restored/files.git/config" || fail "files.git: the restored config is not the repository's"
git config -f "$R/files.git/config" --unset extensions.refStorage
git config -f "$T/restored/files.git/config" --unset extensions.refStorage
assert_same_repo "$R/files.git" "$T/restored/files.git"
git config -f "$R/files.git/config" extensions.refStorage files
restore_ok "$T/restored" --repo pooled.git >/dev/null
assert_same_repo "$R/pooled.git" "$T/restored/pooled.git"
pass "backup --all: 9 refused with their reasons, the 5 others (a pooled fork too) backed up and restored"

# ---- audit --deep --root: each refused live repository lags, with its reason ----
rc=0
gitwal audit --deep --root "$R" >"$T/audit.out" 2>"$T/audit.err" || rc=$?
[ $rc -eq 1 ] || fail "audit --deep --root: exit $rc, expected 1: $(cat "$T/audit.out" "$T/audit.err")"
for rel in "${!WHY[@]}"; do
  [ "$(grep -Ec "^problem repo=$rel lsn=- key=- kind=lag detail=\"the live repository under $R has no full backup in the archive: repository $rel:? ${WHY[$rel]}" "$T/audit.out")" -eq 1 ] ||
    fail "audit, $rel: $(cat "$T/audit.out")"
done
for rel in $GOOD pooled.git; do
  grep -q "^problem repo=$rel " "$T/audit.out" && fail "audit reports archived $rel: $(cat "$T/audit.out")"
done
pass "audit --deep --root: the 9 refused repositories lag, each naming its reason; the pooled fork is checked with its pool"

# ---- archive --once: event=refused once each, the others archived ----
rm -rf "$GITWAL_STATE_DIR"
rc=0
gitwal archive --once 2>"$T/once.log" >/dev/null || rc=$?
[ $rc -eq 1 ] || fail "archive --once: exit $rc, expected 1 (refused repositories): $(cat "$T/once.log")"
for rel in "${!WHY_ARCH[@]}"; do
  [ "$(count_log "$T/once.log" "event=refused repo=$rel reason=\"repository $rel:? ${WHY_ARCH[$rel]}")" -eq 1 ] ||
    fail "archive --once, $rel: $(cat "$T/once.log")"
  [ -z "$(arch_keys "$rel")" ] || fail "archive --once stored $rel: $(arch_keys "$rel")"
done
grep -q 'event=error' "$T/once.log" && fail "refusals logged as errors too: $(cat "$T/once.log")"
for rel in $GOOD pooled.git; do
  [ "$(count_log "$T/once.log" "event=full repo=$rel lsn=1 ")" -eq 1 ] || fail "archive --once did not archive $rel: $(cat "$T/once.log")"
done
grep -q '14 repositories, 0 segments, 5 full backups, 9 failed' "$T/once.log" || fail "archive --once summary: $(cat "$T/once.log")"
pass "archive --once: 9 event=refused lines, the 5 others (the pooled fork too) archived"

# ---- the service: refused once, not retried on every change, archived once fixed ----
archiver_start "$L" --debounce 20 --metrics-addr 127.0.0.1:0
port=$(sed -n 's/.*event=metrics .*port=\([0-9]*\).*/\1/p' "$L")
wait_log "$L" 'event=refused ' 9 60 || fail "service: refusals: $(cat "$L")"
wait_archived 60 plain.git || fail "service: plain.git not archived at start-up: $(cat "$L")"
grep -Eq 'event=(error|full)' "$L" && fail "service start-up: $(cat "$L")"
metric() { curl -sf "http://127.0.0.1:$port/metrics" | sed -n "s/^gitwal_errors_total{kind=\"$1\"} //p"; }
[ "$(metric unsupported)" = 9 ] || fail "errors{kind=unsupported} is $(metric unsupported), expected 9"
[ "$(metric repository)" = 0 ] || fail "errors{kind=repository} is $(metric repository), expected 0"
# Changes to refused repositories (watched: refs and HEAD) say nothing more; the others go on.
for i in 1 2 3; do
  git -C "$R/shallow.git" update-ref "refs/heads/s$i" HEAD
  git -C "$R/partial.git" update-ref "refs/heads/p$i" HEAD
  cp "$R/unknown.git/refs/heads/main" "$R/unknown.git/refs/heads/u$i"   # git refuses the repository too
done
push_commit plain.git main
wait_log "$L" 'event=segment repo=plain.git ' 1 30 || fail "service: plain.git not archived: $(tail -5 "$L")"
wait_archived 60 plain.git || fail "service: plain.git not archived"
[ "$(count_log "$L" 'event=refused ')" -eq 9 ] || fail "refused repositories reported again: $(grep refused "$L")"
[ "$(metric unsupported)" = 9 ] || fail "errors{kind=unsupported} moved to $(metric unsupported)"
pass "service: 9 refusals logged and counted once, changes to them ignored, plain.git archived"
# Fixed: the extension removed, the next change archives it (a full backup of its state then).
git config -f "$R/unknown.git/config" --unset extensions.fancyRefs
git -C "$R/unknown.git" update-ref refs/heads/after-fix HEAD
wait_log "$L" 'event=full repo=unknown.git lsn=1 ' 1 30 || fail "fixed unknown.git not archived: $(tail -5 "$L")"
wait_archived 60 unknown.git || fail "fixed unknown.git: the archive does not reach its live state"
archiver_stop "$L"
restore_ok "$T/fixed" --repo unknown.git >/dev/null
assert_same_repo "$R/unknown.git" "$T/fixed/unknown.git"
pass "service: a refused repository, once fixed, is archived"
