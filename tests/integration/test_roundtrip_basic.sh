# Full backup and restore of a small repository; the bundle alone restores with stock git.
source "$(dirname "$0")/lib.sh"

make_repo grp/a.git 5
gitwal backup grp/a.git > "$T/out.txt"
grep -q '^ok grp/a.git lsn=1 ' "$T/out.txt" || fail "backup line: $(cat "$T/out.txt")"
gitwal restore --to "$T/restored" > /dev/null
assert_same_repo "$T/root/grp/a.git" "$T/restored/grp/a.git"
pass "restore equals source"

bundle=$(ls "$T"/state/store/repos/*/00000000000000000001.full.bundle)
git clone -q --mirror "$bundle" "$T/cloned.git"
diff <(git -C "$T/root/grp/a.git" for-each-ref --format='%(objectname) %(refname)') \
     <(git -C "$T/cloned.git" for-each-ref --format='%(objectname) %(refname)') || fail "bundle clone differs"
pass "bundle restores with git clone --mirror"

gitwal backup grp/a.git | grep_all -q 'lsn=2' || fail "second backup should take LSN 2"
gitwal info | grep_all -q 'full lsn=2' || fail "info lists LSN 2"
gitwal info --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert [b["lsn"] for b in d["repositories"][0]["backups"]]==[1,2]'
pass "info"
