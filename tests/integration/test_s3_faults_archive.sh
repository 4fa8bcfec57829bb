# The archive service writes to S3 through a network that fails (tests/faultproxy.py
# between it and radosgw, an Object Lock bucket), with pushes recorded during each
# kind of fault the driver's retries ride out: a reset in the middle of a segment's
# upload, its answer dropped after the server stored it, an HTTP 500 after the
# server stored it, and a server slower than usual (within the time limits). Every
# recorded state restores exactly with `restore --until`, no key gets a second
# version (a lost answer is looked up, never sent again blindly), and the audit is
# clean. test_s3_faults_outage does the same for faults that outlast the retries.
source "$(dirname "$0")/lib.sh"
seg='"method":"PUT","path":"\\.seg$"'
fault_archive \
  "reset=[{\"fault\":\"reset\",$seg,\"count\":1}]" \
  "drop=[{\"fault\":\"drop\",$seg,\"count\":1}]" \
  "status500=[{\"fault\":\"status\",\"status\":500,\"forward\":true,$seg,\"count\":1}]" \
  "delay=[{\"fault\":\"delay\",\"delay\":0.5,$seg,\"count\":2}]"
