# The S3 store is unreachable when the archive service starts: it starts
# anyway (the bucket checks wait for the store), loads what it archived
# before from the index and its local copy of the manifest, spools the
# segments of new changes, and uploads them when the store comes back; a
# one-shot `archive --once` fails at once with a clear error. The repository's files as last
# archived (a segment carrying them) are known offline from the index: a push spools no copy. The store is
# reached through a TCP relay (started and stopped here), so the shared
# radosgw is never stopped.
source "$(dirname "$0")/lib.sh"
s3_require

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RELAY_PID=
relay_up() {
  python3 - "$PORT" "${GITWAL_TEST_S3_ENDPOINT#http://}" <<'PY' &
import asyncio, sys
port = int(sys.argv[1]); host, tport = sys.argv[2].rsplit(":", 1)
async def pipe(r, w):
    try:
        while (data := await r.read(65536)):
            w.write(data); await w.drain()
    finally:
        w.close()
async def handle(r, w):
    tr, tw = await asyncio.open_connection(host, int(tport))
    await asyncio.gather(pipe(r, tw), pipe(tr, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
  RELAY_PID=$!
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0; sleep 0.05; done
  fail "the relay did not start"
}
relay_down() { kill "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=; }
trap 'rc=$?; [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null; (exit $rc); _gw_arch_exit' EXIT

bucket=$(s3_bucket)
export GITWAL_STORE="s3://$bucket/p?endpoint=http://127.0.0.1:$PORT&region=us-east-1&path_style=true&retries=1"
make_repo a.git 2
relay_up
gitwal archive --once 2>"$T/once.log" || fail "archive --once with the store up: $(cat "$T/once.log")"
printf 'Project A\n' > "$T/root/a.git/description"
gitwal archive --once 2>"$T/once.log" || fail "archive --once with the store up: $(cat "$T/once.log")"
grep -q 'event=spooled repo=a.git lsn=2 updates=0 .* files=1' "$T/once.log" || fail "no files segment: $(cat "$T/once.log")"
relay_down

# A one-shot command fails at once, naming the store.
rc=0; gitwal archive --once 2>"$T/once.log" || rc=$?
[ $rc -ne 0 ] || fail "archive --once succeeded with the store away"
grep -q "gitwal archive: .*s3://$bucket/p" "$T/once.log" || fail "the error does not name the store: $(cat "$T/once.log")"
pass "archive --once with the store away fails at once: $(head -c 200 "$T/once.log")"

# The service starts, and spools a change.
archiver_start "$T/svc.log" --debounce 20
wait_log "$T/svc.log" 'event=offline_load repo=a.git lsn=2' 1 60 || fail "no offline load: $(cat "$T/svc.log")"
echo change >> "$T/work/a.git/file.txt"
git -C "$T/work/a.git" commit -qam change
git -C "$T/work/a.git" push -q origin main
wait_log "$T/svc.log" 'event=spooled repo=a.git lsn=3 ' 1 60 || fail "no spooled segment: $(cat "$T/svc.log")"
grep -q 'event=spooled repo=a.git lsn=3 .*files=1' "$T/svc.log" && fail "offline, the files were taken as changed: $(cat "$T/svc.log")"
# A repository new to the archive needs a full backup: it waits for the store, and says so.
make_repo b.git 1
wait_log "$T/svc.log" 'event=error repo=b.git retry_ms=[0-9]* error=".*has no full backup yet: it waits for the store' 1 60 ||
  fail "no error for b.git: $(cat "$T/svc.log")"
pass "the service started with the store away and spooled the change; a new repository waits"

relay_up
wait_log "$T/svc.log" 'event=segment repo=a.git lsn=3 ' 1 120 || fail "spool not uploaded: $(cat "$T/svc.log")"
archiver_stop "$T/svc.log"
GITWAL_STATE_DIR=$T/state2 gitwal restore --to "$T/r" >/dev/null 2>"$T/restore.err" || fail "restore: $(cat "$T/restore.err")"
assert_same_repo "$T/root/a.git" "$T/r/a.git"
cmp -s "$T/root/a.git/description" "$T/r/a.git/description" || fail "the restored description differs"
pass "the spool was uploaded once the store came back; a fresh restore equals the live repository"
