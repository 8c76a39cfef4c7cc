#!/usr/bin/env bash
# Read-API latency over loopback on a large cache. Needs `cargo build --release` and curl.
# Usage: benches/api.sh  (N=200000 services by default; ports 18638 and 19638 must be free)
set -u
BIN=${BIN:-$(dirname "$0")/../target/release/ses-inventory}
N=${N:-200000}
$BIN sim --listen 127.0.0.1:18638 --services $N --carriers 10 --resources 10 >/dev/null 2>&1 &
SIM=$!
sleep 1
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18638/ && break; sleep 0.2; done
env SES_INVENTORY_CONFIG= \
  SES_INVENTORY__TMF638__ENDPOINT=http://127.0.0.1:18638/gstm/dataminer/tmf/api/v1/tmf638 \
  SES_INVENTORY__TMF638__USERNAME=svc-user SES_INVENTORY__TMF638__PASSWORD=svc-pass \
  SES_INVENTORY__TMF639__ENDPOINT=http://127.0.0.1:18638/gstm/dataminer/tmf/api/v1/tmf639 \
  SES_INVENTORY__TMF639__USERNAME=res-user SES_INVENTORY__TMF639__PASSWORD=res-pass \
  SES_INVENTORY__HTTP__BYPASS_PROXY=true SES_INVENTORY__POLL__RECORDS_PER_PAGE=1000 SES_INVENTORY__POLL__MAX_PAGES=100000 \
  SES_INVENTORY__API__LISTEN=127.0.0.1:19638 SES_INVENTORY__LOG__LEVEL=warn \
  $BIN run 2>/tmp/bench-daemon.err &
D=$!
for i in $(seq 1 600); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19638/readyz)" = 200 ] && break; sleep 0.5; done
curl -s http://127.0.0.1:19638/metrics | grep -E '^ses_inventory_(items|full_pass_duration_seconds)\{inventory="services"'
ID=$(curl -s 'http://127.0.0.1:19638/api/v1/services?limit=1&offset=5000&fields=id' | sed 's/.*"id":"\([^"]*\)".*/\1/')
# The first request of a kind after a poll builds its index (an order, postings, the search text).
for path in "/api/v1/services?sort=name&limit=100" "/api/v1/services?status=Operational&limit=100" \
  "/api/v1/services?q=astra&limit=100"; do
  echo "first: $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:19638$path")s  GET $path"
done
for path in "/api/v1/services?limit=100" "/api/v1/services?limit=1000" "/api/v1/services?sort=-last_update&limit=100" \
  "/api/v1/services?q=astra&limit=100" "/api/v1/services?status=Operational&type=CFS&limit=100" \
  "/api/v1/services/$ID" "/api/v1/status" "/metrics"; do
  t=$(for k in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:19638$path"; done | sort -n | sed -n 3p)
  echo "median of 5: ${t}s  GET $path"
done
grep VmHWM /proc/$D/status
kill -TERM $D; wait $D; kill $SIM; wait $SIM 2>/dev/null
