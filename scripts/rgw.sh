#!/usr/bin/env bash
# A throw-away single-node Ceph radosgw (S3 with versioning and Object Lock) on
# 127.0.0.1 for the S3 tests and benchmarks. Debian 12, run as root.
#   scripts/rgw.sh install   Debian packages (idempotent)
#   scripts/rgw.sh start     one monitor, one memstore OSD, radosgw; ~12 s; prints the endpoint
#   scripts/rgw.sh stop      stops the three daemons by PID and deletes all state
#   scripts/rgw.sh kill-rgw  kills only radosgw (for failure tests); start-rgw brings it back
#
# No authentication between the daemons, data in RAM (memstore), one S3 user
# with access key testkey and secret testsecret (overridable). State lives under
# $GITWAL_RGW_DIR (default ${TMPDIR:-/tmp}/gitwal-rgw).
set -euo pipefail
CD=${GITWAL_RGW_DIR:-${TMPDIR:-/tmp}/gitwal-rgw}
PORT=${GITWAL_RGW_PORT:-7480}
AK=${GITWAL_RGW_ACCESS_KEY:-testkey}
SK=${GITWAL_RGW_SECRET_KEY:-testsecret}
START_TIMEOUT=${GITWAL_RGW_START_TIMEOUT:-120}
C=(-c "$CD/ceph.conf")
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common curl)

install() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "rgw: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() {
  local fsid=$1
  cat > "$CD/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = 127.0.0.1:6789
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr2 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $CD/run
pid_file = $CD/run/\$name.pid
admin_socket = $CD/run/\$name.asok
log_file = $CD/log/\$name.log
mon_cluster_log_file = $CD/log/cluster.log
crash_dir = $CD/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon]
mon_data = $CD/mon.a
[osd]
osd_data = $CD/osd.0
osd_objectstore = memstore
# Placed by 'ceph osd crush add' below: updating on start sometimes failed with 'wrong fsid'.
osd_crush_update_on_start = false
osd_class_update_on_start = false
memstore_device_bytes = 4294967296
osd_memory_target = 1073741824
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_data = $CD/rgw
rgw_dns_name = 127.0.0.1
CONF
}

rgw_up() { curl -fs -o /dev/null "http://127.0.0.1:$PORT/"; }

start_rgw() {
  radosgw "${C[@]}" -n client.rgw.a
  for _ in $(seq 240); do rgw_up && return 0; sleep 0.25; done
  echo "rgw: radosgw did not answer on 127.0.0.1:$PORT; logs in $CD/log" >&2
  return 1
}

start_all() {
  local fsid ouuid id
  rm -rf "$CD"
  mkdir -p "$CD"/{run,log,mon.a,osd.0,rgw}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  monmaptool --create --fsid "$fsid" --add a "127.0.0.1:6789" "$CD/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$CD/monmap"
  ceph-mon "${C[@]}" -i a
  ouuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph "${C[@]}" osd new "$ouuid")
  ceph "${C[@]}" osd crush add "osd.$id" 1.0 root=default >/dev/null 2>&1
  ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$ouuid" >>"$CD/log/osd-mkfs.log" 2>&1
  ceph-osd "${C[@]}" -i "$id" 2>>"$CD/log/osd-stderr.log"
  for _ in $(seq 240); do ceph "${C[@]}" osd stat 2>/dev/null | grep -q ' 1 up' && break; sleep 0.25; done
  start_rgw
  radosgw-admin "${C[@]}" user create --uid=gitwal-test --display-name=gitwal-test \
    --access-key="$AK" --secret-key="$SK" >/dev/null
  echo "rgw: S3 endpoint http://127.0.0.1:$PORT region us-east-1 (state $CD)"
}

stop_one() {
  local n=$1 p
  [ -f "$CD/run/$n.pid" ] || return 0
  p=$(cat "$CD/run/$n.pid")
  kill "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$p" 2>/dev/null || true
  rm -f "$CD/run/$n.pid"
}

case "${1:-}" in
  install) install ;;
  start)
    # A second start would collide on the ports: stop what a previous run left.
    [ -d "$CD/run" ] && for n in client.rgw.a osd.0 mon.a; do stop_one "$n"; done
    # ceph-osd waits for its daemon to boot; a stuck start must not hang the test run.
    export -f start_all start_rgw rgw_up write_conf
    export CD PORT AK SK
    export C_CONF="$CD/ceph.conf"
    timeout "$START_TIMEOUT" bash -c 'set -euo pipefail; C=(-c "$C_CONF"); start_all' ;;
  stop) for n in client.rgw.a osd.0 mon.a; do stop_one "$n"; done; rm -rf "$CD" ;;
  kill-rgw)
    [ -f "$CD/run/client.rgw.a.pid" ] && kill -9 "$(cat "$CD/run/client.rgw.a.pid")" 2>/dev/null || true
    rm -f "$CD/run/client.rgw.a.pid" ;;
  start-rgw) rgw_up || start_rgw ;;
  *) echo "usage: scripts/rgw.sh install|start|stop|kill-rgw|start-rgw" >&2; exit 2 ;;
esac
