# The archive service writes to S3 through a network that fails for longer than its
# retries (tests/faultproxy.py between it and radosgw, an Object Lock bucket,
# retries=2 and one-second time limits), with pushes recorded during each kind of
# outage: the store answers 503 to every segment, stalls (reads the upload and
# never answers), refuses connections for three seconds from a segment upload on. The
# segments go to the
# spool and up when the store answers again; every recorded state restores exactly
# with `restore --until`, no key gets a second version, and the audit is clean.
source "$(dirname "$0")/lib.sh"
seg='"method":"PUT","path":"\\.seg$"'
fault_archive \
  "status503=[{\"fault\":\"status\",\"status\":503,$seg,\"count\":4}]" \
  "stall=[{\"fault\":\"stall\",$seg,\"count\":3}]" \
  "refuse=[{\"fault\":\"refuse\",\"seconds\":3,$seg}]"
