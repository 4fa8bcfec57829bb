# scripts/run.sh without a ROOT: the newcomer's demo (generated repositories, as without
# ../shared/data; then with a small bundle in place of libgit2's) runs the real service,
# pushes, restores --until the time it noted, audits, stops the service, and ends with a
# one-line verdict; a wrong restore or a service that will not start ends in 'demo: FAIL'
# with the reason, exit 1, and no service left running; a demo directory the demo did not
# make is never emptied.
source "$(dirname "$0")/lib.sh"

RUN=$GITWAL_SOURCE_DIR/scripts/run.sh

# demo NAME BIN [BUNDLE]: run the demo with gitwal BIN in $T/NAME (with BUNDLE for libgit2's;
# none by default); output in $T/NAME.out.
demo() {
  local rc=0
  GITWAL_BIN=$2 LIBGIT2_BUNDLE=${3:-$T/no-such.bundle} GITWAL_DEMO_DIR=$T/$1 GITWAL_DEMO_CACHE=$T/cache \
    bash "$RUN" > "$T/$1.out" 2>&1 || rc=$?
  return $rc
}
# service_gone OUT: the service the demo started (its pid is in OUT) is no longer running.
service_gone() {
  local pid
  pid=$(sed -n 's/^  service: pid \([0-9]*\),.*/\1/p' "$1")
  [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || fail "the demo left its service (pid $pid) running"
}

demo ok "$GITWAL_BIN" || fail "the demo failed: $(tail -20 "$T/ok.out")"
last=$(tail -1 "$T/ok.out")
[[ $last == "demo: PASS: "* ]] || fail "the demo's last line is not its verdict: $last"
for what in 'HEAD -> main' 'event=start' 'event=full repo=shop/app.git lsn=1' 'event=segment repo=shop/app.git' \
            '^== T = ' 'gitwal restore --until ' 'rewound (force-push)' 'deleted' 'created' 'fast-forward' \
            'restored = at T for all' 'clean: no problems found' '3 repositories, 3 full backups' \
            'service: exit 0 after 3 full backups'; do
  grep -qe "$what" "$T/ok.out" "$T/ok/archive.log" || fail "the demo does not show '$what': $(cat "$T/ok.out")"
done
grep -q 'event=stop' "$T/ok/archive.log" || fail "the service did not log event=stop"
service_gone "$T/ok.out"
echo "$last"
pass "the demo: service, pushes, restore --until T, audit, info, clean stop, PASS verdict"

# A bundle (as ../shared/data/libgit2.bundle) without HEAD: its mirror clone gets HEAD on a
# branch, is kept in the cache for the next run, and one of its branches is deleted after T.
git init -q "$T/small"
for i in 1 2 3; do echo "$i" > "$T/small/f"; git -C "$T/small" add f; git -C "$T/small" commit -qm "small $i"; done
git -C "$T/small" branch -q -m dev; git -C "$T/small" branch -q topic HEAD~1
git -C "$T/small" bundle create -q "$T/small.bundle" refs/heads/dev refs/heads/topic
demo bundle "$GITWAL_BIN" "$T/small.bundle" || fail "the demo with a bundle failed: $(tail -20 "$T/bundle.out")"
last=$(tail -1 "$T/bundle.out")
[[ $last == "demo: PASS: "* ]] || fail "the demo with a bundle: verdict '$last'"
grep -Eq '^  small.git +3 commits, +2 refs, HEAD -> dev$' "$T/bundle.out" ||
  fail "the bundle's repository is not in the demo root as expected: $(head -8 "$T/bundle.out")"
grep -q '^cloning .*small.bundle' "$T/bundle.out" || fail "the bundle was not cloned"
grep -Eq '^  small.git +refs/heads/topic .* deleted$' "$T/bundle.out" || fail "no branch of the bundle deleted after T"
[ -f "$T/cache/small.git.from" ] || fail "the mirror clone of the bundle was not kept in GITWAL_DEMO_CACHE"
service_gone "$T/bundle.out"
pass "the demo with a bundle without HEAD: HEAD -> dev, a branch deleted after T, PASS"

# demo_fails NAME BIN WHAT VERDICT: the demo run NAME with BIN exits 1 and its last line ($last)
# matches the pattern VERDICT; WHAT names the case in a failure.
demo_fails() {
  local rc=0
  demo "$1" "$2" || rc=$?
  [ $rc -eq 1 ] || fail "$3: the demo exited $rc: $(tail -5 "$T/$1.out")"
  last=$(tail -1 "$T/$1.out")
  # shellcheck disable=SC2053 # VERDICT is a pattern
  [[ $last == $4 ]] || fail "$3: verdict '$last'"
}

# A restore that ignores --until (the newest state instead of T's): the demo must notice.
cat > "$T/gw-no-until" <<EOF
#!/usr/bin/env bash
if [ "\$1" = restore ]; then
  args=(); skip=0
  for a in "\$@"; do
    if [ \$skip = 1 ]; then skip=0; elif [ "\$a" = --until ]; then skip=1; else args+=("\$a"); fi
  done
  exec "$GITWAL_BIN" "\${args[@]}"
fi
exec "$GITWAL_BIN" "\$@"
EOF
chmod +x "$T/gw-no-until"
demo_fails wrong "$T/gw-no-until" "a restore of the wrong state" \
  'demo: FAIL: the restored refs differ from the state at T in: *shop/app.git*'
service_gone "$T/wrong.out"
pass "a restore of the wrong state: $last"

# A service that cannot start.
cat > "$T/gw-no-archive" <<EOF
#!/usr/bin/env bash
[ "\$1" = archive ] && { echo "gitwal archive: cannot start (test)" >&2; exit 1; }
exec "$GITWAL_BIN" "\$@"
EOF
chmod +x "$T/gw-no-archive"
demo_fails nostart "$T/gw-no-archive" "a service that cannot start" \
  'demo: FAIL: the service exited at start-up: gitwal archive: cannot start (test)'
pass "a service that cannot start: $last"

# GITWAL_DEMO_DIR naming a directory the demo did not make: refused, nothing in it touched.
mkdir -p "$T/precious"; echo keep > "$T/precious/file"
demo_fails precious "$GITWAL_BIN" "a foreign GITWAL_DEMO_DIR" \
  "demo: FAIL: $T/precious is not empty and is not a directory the demo made*"
[ "$(ls -A "$T/precious")" = file ] && [ "$(cat "$T/precious/file")" = keep ] || fail "the demo touched $T/precious"
pass "a foreign GITWAL_DEMO_DIR is refused and left alone"
