# The index is a cache of the store: losing it loses nothing (info, restore
# and index rebuild recreate it from the store alone), and it never hides
# backups another machine (another index) wrote. Configuration: root, store
# and index come from the command line, then the environment, then the
# config file, then defaults.
source "$(dirname "$0")/lib.sh"

# Failures that should not hide the checks after them: reported at the end.
DEFERRED=()
deferred() { echo "FAIL (deferred): $*" >&2; DEFERRED+=("$*"); }

info_json() { gitwal info --json "$@" 2>"$T/info.err" || fail "gitwal info --json $*: $(cat "$T/info.err")"; }
# backups_of JSON REL: "lsn objects refs bundle_bytes manifest_key" per backup of REL.
backups_of() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for r in d["repositories"]:
    if r["repository"] == sys.argv[2]:
        for b in r["backups"]:
            print(b["lsn"], b["objects"], b["refs"], b["bundle_bytes"], b["idx_bytes"], b["time_us"], b["manifest_key"])
' "$1" "$2"
}

make_repo a.git 3
make_repo grp/sub/b.git 2
git init -q --bare "$T/root/empty.git"
backup_ok a.git grp/sub/b.git empty.git >/dev/null
git -C "$T/work/a.git" commit -q --allow-empty -m more && git -C "$T/work/a.git" push -q origin main
backup_ok a.git >/dev/null
before=$(info_json)
[ "$(backups_of "$before" a.git | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 " ] || fail "info: a.git LSNs: $before"
[ "$(backups_of "$before" grp/sub/b.git | cut -d' ' -f1)" = 1 ] || fail "info: grp/sub/b.git"
info_text=$(gitwal info 2>/dev/null)

# --- losing the index ------------------------------------------------------------------------
rm -f "$GITWAL_STATE_DIR/index.db"
after=$(info_json)
[ "$before" = "$after" ] || fail "info --json differs after losing the index:
$before
$after"
[ -e "$GITWAL_STATE_DIR/index.db" ] || fail "info did not recreate the index"
[ "$(gitwal info 2>/dev/null)" = "$info_text" ] || fail "info text differs after losing the index"
pass "info after losing the index"

rm -f "$GITWAL_STATE_DIR/index.db"
restore_ok "$T/all" >/dev/null
for rel in a.git grp/sub/b.git empty.git; do assert_same_repo "$T/root/$rel" "$T/all/$rel"; done
pass "restore of everything after losing the index"

rm -f "$GITWAL_STATE_DIR/index.db"
restore_ok "$T/one" --repo a.git --lsn 1 | grep_all -q '^ok a.git lsn=1 ' || fail "restore --lsn 1 after losing the index"
[ "$(git -C "$T/one/a.git" rev-parse main)" = "$(git -C "$T/root/a.git" rev-parse main~1)" ] || fail "LSN 1 content"
rm -f "$GITWAL_STATE_DIR/index.db"
restore_ok "$T/two" --repo grp/sub/b.git | grep_all -q '^ok grp/sub/b.git lsn=1 ' || fail "restore --repo after losing the index"
assert_same_repo "$T/root/grp/sub/b.git" "$T/two/grp/sub/b.git"
pass "restore --repo [--lsn] after losing the index"

# A fresh machine: only --store, a new index elsewhere.
restore_ok "$T/fresh" --store "file://$GITWAL_STATE_DIR/store" --index "$T/elsewhere/new.db" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/fresh/a.git"
[ -s "$T/elsewhere/new.db" ] || fail "the new index was not created"
pass "restore on a fresh machine with --store and a new --index"

# The next backup after losing the index still takes the next LSN.
rm -f "$GITWAL_STATE_DIR/index.db"
backup_ok a.git | grep_all -q '^ok a.git lsn=3 ' || fail "backup after losing the index is not LSN 3"
pass "LSNs continue after losing the index"

# --- index rebuild ---------------------------------------------------------------------------
out=$(gitwal index rebuild 2>&1) || fail "index rebuild: $out"
grep -Eq ': 5 full backups, 0 segments, ' <<<"$out" || fail "index rebuild: expected 5 full backups: $out"
out=$(gitwal index rebuild 2>&1) || fail "index rebuild (again): $out"
grep -Eq ': 5 full backups, 0 segments, ' <<<"$out" || fail "index rebuild twice: $out"
rm -f "$GITWAL_STATE_DIR/index.db"
out=$(gitwal index rebuild 2>&1) || fail "index rebuild without an index: $out"
grep -Eq ': 5 full backups, 0 segments, ' <<<"$out" || fail "index rebuild without an index: $out"
[ "$(backups_of "$(info_json)" a.git | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 3 " ] || fail "info after rebuild"
# Rebuild forgets what the store no longer holds (here: a backup removed by hand).
chmod -R u+w "$GITWAL_STATE_DIR/store"
rm -f "$GITWAL_STATE_DIR/store/repos/empty.git/"*
out=$(gitwal index rebuild 2>&1) || fail "index rebuild: $out"
grep -Eq ': 4 full backups, 0 segments, 2 repositories$' <<<"$out" || fail "index rebuild after removing a backup: $out"
info_json | grep_all -q '"empty.git"' && fail "info still lists the removed backup after index rebuild"
# An index that is not a database: a clear error, and rebuild-by-deletion works.
echo "not a database" > "$GITWAL_STATE_DIR/index.db"
rc=0; gitwal info >/dev/null 2>"$T/err" || rc=$?
if [ $rc -ne 0 ]; then
  grep -q 'index.db' "$T/err" || fail "a garbage index: the error does not name the index: $(cat "$T/err")"
fi
rm -f "$GITWAL_STATE_DIR/index.db"
pass "index rebuild"

# --- another index (another machine) wrote newer backups -------------------------------------
gitwal info >/dev/null 2>&1        # the default index knows LSNs 1..3 of a.git
git -C "$T/work/a.git" commit -q --allow-empty -m "from elsewhere" && git -C "$T/work/a.git" push -q origin main
gitwal backup --index "$T/other.db" a.git 2>/dev/null | grep_all -q '^ok a.git lsn=4 ' || fail "backup through another index"
cp "$GITWAL_STATE_DIR/index.db" "$T/stale.db"
restore_ok "$T/at4" --index "$T/stale.db" --repo a.git --lsn 4 | grep_all -q '^ok a.git lsn=4 ' || fail "restore --lsn 4 with a stale index"
assert_same_repo "$T/root/a.git" "$T/at4/a.git"
pass "restore --lsn N finds a backup the index did not know"
line=$(restore_ok "$T/latest" --repo a.git)
if [ "$(field "$line" lsn)" = 4 ]; then
  assert_same_repo "$T/root/a.git" "$T/latest/a.git"
  pass "restore takes the latest backup in the store, not the latest the index knew"
else
  deferred "restore --repo a.git with a stale index restored LSN $(field "$line" lsn), not the latest backup in the store (LSN 4)"
fi
info_json --repo a.git | grep_all -q '"lsn":4\|"lsn": 4' || fail "info does not show LSN 4 written through another index"
pass "info shows backups written through another index"

# --- configuration precedence ------------------------------------------------------------------
make_repo c.git 2
mkdir -p "$T/root2"; git clone -q --bare "$T/root/c.git" "$T/root2/c.git"
git -C "$T/root2/c.git" update-ref refs/heads/only-in-root2 main
cat > "$T/cfg" <<EOF
[gitwal]
	root = $T/root2
	store = file://$T/cfgstore
	index = $T/cfg.db
EOF
# stored_in DIR REL: REL has a backup in store DIR, and print its newest LSN.
has_backup() { ls "$1/repos/$(enc_rel "$2")/" 2>/dev/null | grep_all -q '\.full\.manifest$'; }

# Config file alone (no GITWAL_ROOT): root, store and index all come from it.
env -u GITWAL_ROOT "$GITWAL_BIN" backup --config "$T/cfg" c.git >"$T/o" 2>"$T/e" || fail "config backup: $(cat "$T/e")"
has_backup "$T/cfgstore" c.git || fail "config: gitwal.store not used"
[ -s "$T/cfg.db" ] || fail "config: gitwal.index not used"
has_backup "$GITWAL_STATE_DIR/store" c.git && fail "config: the default store was used"
env -u GITWAL_ROOT "$GITWAL_BIN" restore --config "$T/cfg" --to "$T/cfgout" --repo c.git >/dev/null 2>&1 || fail "config restore"
git -C "$T/cfgout/c.git" rev-parse -q --verify refs/heads/only-in-root2 >/dev/null || fail "config: gitwal.root not used"
pass "config file: root, store, index"

# GITWAL_CONFIG names the config file; --config wins over it.
env -u GITWAL_ROOT GITWAL_CONFIG="$T/cfg" "$GITWAL_BIN" info --json >"$T/o" 2>&1 || fail "GITWAL_CONFIG: $(cat "$T/o")"
grep -q "cfgstore" "$T/o" || fail "GITWAL_CONFIG not honoured: $(cat "$T/o")"
printf '[gitwal]\n\tstore = file://%s/cfgstore2\n' "$T" > "$T/cfg2"
env GITWAL_CONFIG="$T/cfg" "$GITWAL_BIN" info --json --config "$T/cfg2" >"$T/o" 2>&1 || fail "--config: $(cat "$T/o")"
grep -q "cfgstore2" "$T/o" || fail "--config does not win over GITWAL_CONFIG: $(cat "$T/o")"
# $XDG_CONFIG_HOME/gitwal/config is the default config file.
mkdir -p "$XDG_CONFIG_HOME/gitwal"; cp "$T/cfg2" "$XDG_CONFIG_HOME/gitwal/config"
gitwal info --json >"$T/o" 2>&1 || fail "XDG config: $(cat "$T/o")"
grep -q "cfgstore2" "$T/o" || fail "\$XDG_CONFIG_HOME/gitwal/config not read: $(cat "$T/o")"
rm "$XDG_CONFIG_HOME/gitwal/config"
pass "GITWAL_CONFIG, --config, \$XDG_CONFIG_HOME/gitwal/config"

# Environment over config.
git -C "$T/root/c.git" update-ref refs/heads/only-in-root main
GITWAL_STORE="file://$T/envstore" GITWAL_INDEX="$T/env.db" gitwal backup --config "$T/cfg" c.git >/dev/null 2>"$T/e" ||
  fail "env backup: $(cat "$T/e")"
has_backup "$T/envstore" c.git || fail "env: GITWAL_STORE does not win over gitwal.store"
[ -s "$T/env.db" ] || fail "env: GITWAL_INDEX does not win over gitwal.index"
[ "$(ls "$T/cfgstore/repos/c.git" | wc -l)" = 4 ] || fail "env: the config's store was written"
gitwal restore --store "file://$T/envstore" --index "$T/env.db" --to "$T/envout" --repo c.git >/dev/null 2>&1 || fail "env restore"
git -C "$T/envout/c.git" rev-parse -q --verify refs/heads/only-in-root >/dev/null ||
  fail "env: GITWAL_ROOT does not win over gitwal.root"
pass "environment over config"

# Command line over environment and config.
GITWAL_STORE="file://$T/envstore" GITWAL_INDEX="$T/env.db" \
  gitwal backup --config "$T/cfg" --store "file://$T/clistore" --index "$T/cli.db" --root "$T/root2" c.git \
  >/dev/null 2>"$T/e" || fail "cli backup: $(cat "$T/e")"
has_backup "$T/clistore" c.git || fail "cli: --store does not win"
[ -s "$T/cli.db" ] || fail "cli: --index does not win"
[ "$(ls "$T/envstore/repos/c.git" | wc -l)" = 4 ] || fail "cli: the environment's store was written"
GITWAL_STORE="file://$T/envstore" gitwal restore --store "file://$T/clistore" --index "$T/cli2.db" --to "$T/cliout" --repo c.git \
  >/dev/null 2>&1 || fail "cli restore"
git -C "$T/cliout/c.git" rev-parse -q --verify refs/heads/only-in-root2 >/dev/null || fail "cli: --root does not win"
pass "command line over environment"

# Defaults: $GITWAL_STATE_DIR/store and $GITWAL_STATE_DIR/index.db, else $XDG_STATE_HOME/gitwal.
env -u GITWAL_STATE_DIR XDG_STATE_HOME="$T/xdgstate" "$GITWAL_BIN" backup c.git >/dev/null 2>"$T/e" || fail "xdg state: $(cat "$T/e")"
has_backup "$T/xdgstate/gitwal/store" c.git || fail "default store under \$XDG_STATE_HOME/gitwal"
[ -s "$T/xdgstate/gitwal/index.db" ] || fail "default index under \$XDG_STATE_HOME/gitwal"
pass "defaults"

# A bad config file is an error naming it.
printf '[gitwal\n' > "$T/badcfg"
assert_fails "unparsable config file" 'badcfg' gitwal info --config "$T/badcfg"
assert_fails "missing config file" 'nosuchcfg' gitwal info --config "$T/nosuchcfg"
printf '[gitwal]\n\tjobs = lots\n' > "$T/jobscfg"
assert_fails "bad gitwal.jobs" 'jobs' gitwal backup --config "$T/jobscfg" c.git

[ ${#DEFERRED[@]} -eq 0 ] || fail "${#DEFERRED[@]} deferred failure(s): ${DEFERRED[*]}"
