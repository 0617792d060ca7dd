#!/usr/bin/env bash
# Throughput and latency of ebb-metrics-apiserver answering a value request over TLS with
# keep-alive, side by side with nginx serving a static JSON document of the same size over TLS
# on the same machine, plus the server's idle RSS. Writes bench/metrics-apiserver/RESULTS.md.
#
# Set-up (all on 127.0.0.1):
#   - examples/bench_fixture: a local control plane (TokenReview, SubjectAccessReview, the
#     extension-apiserver-authentication ConfigMap) and a stand-in for the operator's internal
#     mTLS service answering every metric from its cache (value 3);
#   - ebb-metrics-apiserver (release build) in two modes: delegated auth with a bearer token
#     (TokenReview and SubjectAccessReview answers cached 10 s, so a steady client costs one
#     review of each per 10 s) and --insecure-skip-auth;
#   - nginx (Debian nginx-light) serving the server's own answer, saved to a file, with the same
#     certificate, keep-alive without a request limit and no access log.
# Load: wrk, HTTP/1.1 keep-alive, $CONNECTIONS connections, $THREADS threads, $DURATION per run,
# $RUNS runs per target interleaved; medians reported.
#
# Usage: bash bench/metrics-apiserver/run.sh        (env: DURATION, CONNECTIONS, THREADS, RUNS)
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ebb-target}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
LIGHT_CONNECTIONS="${LIGHT_CONNECTIONS:-4}"
RESULTS="bench/metrics-apiserver/RESULTS.md"

step() { printf '\n== %s\n' "$*" >&2; }

step "tools (wrk, nginx, curl from Debian; installed when missing)"
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk nginx-light curl
fi

step "release build"
cargo build --release -p ebb-metrics-apiserver --bin ebb-metrics-apiserver --example bench_fixture
BIN="$CARGO_TARGET_DIR/release/ebb-metrics-apiserver"
FIXTURE="$CARGO_TARGET_DIR/release/examples/bench_fixture"

WORK="$(mktemp -d /tmp/ebb-mas-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_until() { # description, command...
  local what="$1"; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $what" >&2
  exit 1
}

step "fixture: control plane and operator stand-in"
"$FIXTURE" "$WORK" >"$WORK/fixture.log" 2>&1 &
PIDS+=("$!")
wait_until "the fixture" grep -q '^ready' "$WORK/fixture.log"
TOKEN="$(cat "$WORK/token")"
OPERATOR_PORT="$(cat "$WORK/operator-port")"
VALUE_PATH="/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-bench?labelSelector=scaledobject.keda.sh%2Fname%3Dbench"

start_server() { # mode (token|insecure); sets SERVER_PID, SECURE_PORT, ADMIN_PORT
  local mode="$1" extra=()
  [ "$mode" = insecure ] && extra=(--insecure-skip-auth)
  SECURE_PORT="$(free_port)"
  ADMIN_PORT="$(free_port)"
  KUBECONFIG="$WORK/kubeconfig" "$BIN" \
    --secure-addr "127.0.0.1:$SECURE_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
    --tls-cert-file "$WORK/tls.crt" --tls-key-file "$WORK/tls.key" \
    --operator-url "https://127.0.0.1:$OPERATOR_PORT" --operator-ca-file "$WORK/ca.crt" \
    --operator-cert-file "$WORK/client.crt" --operator-key-file "$WORK/client.key" \
    --log-level warn "${extra[@]}" >"$WORK/server-$mode.log" 2>&1 &
  SERVER_PID="$!"
  PIDS+=("$SERVER_PID")
  wait_until "the $mode server to be ready" curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

step "metrics-apiserver (token mode)"
start_server token
TOKEN_PID="$SERVER_PID"; TOKEN_PORT="$SECURE_PORT"; TOKEN_ADMIN="$ADMIN_PORT"
curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$TOKEN_PORT$VALUE_PATH" >"$WORK/answer.json"
sleep 1
RSS_IDLE_TOKEN="$(rss_kb "$TOKEN_PID")"; ANON_IDLE_TOKEN="$(anon_kb "$TOKEN_PID")"
echo "answer ($(wc -c <"$WORK/answer.json") bytes): $(cat "$WORK/answer.json")" >&2

step "metrics-apiserver (--insecure-skip-auth)"
start_server insecure
INSECURE_PID="$SERVER_PID"; INSECURE_PORT="$SECURE_PORT"
curl -sfk "https://127.0.0.1:$INSECURE_PORT$VALUE_PATH" >/dev/null
sleep 1
RSS_IDLE_INSECURE="$(rss_kb "$INSECURE_PID")"; ANON_IDLE_INSECURE="$(anon_kb "$INSECURE_PID")"

step "nginx with the same certificate and a document of the same size"
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
cp "$WORK/answer.json" "$WORK/www/value.json"
chmod 755 "$WORK/www"; chmod 644 "$WORK/www/value.json"
NGINX_PORT="$(free_port)"
cat >"$WORK/nginx.conf" <<EOF
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $WORK/tls.crt;
    ssl_certificate_key $WORK/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type application/json; root $WORK/www; try_files /value.json =404; }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' 2>>"$WORK/nginx-error.log" &
PIDS+=("$!")
wait_until "nginx" curl -sfk "https://127.0.0.1:$NGINX_PORT$VALUE_PATH"
NGINX_BYTES="$(curl -sk "https://127.0.0.1:$NGINX_PORT$VALUE_PATH" | wc -c)"

to_ms() { # wrk duration (850.00us, 1.23ms, 1.01s) -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { printf "%s", v } }'
}

run_wrk() { # label, url, extra wrk args... -> "rps p50 p99" on stdout (env C: connections)
  local label="$1" url="$2"; shift 2
  local out connections="${C:-$CONNECTIONS}" threads="$THREADS"
  [ "$threads" -le "$connections" ] || threads="$connections"
  out="$(wrk -t"$threads" -c"$connections" -d"$DURATION" --latency "$@" "$url")"
  echo "$out" >"$WORK/wrk-$label-$(date +%s%N).txt"
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$label: wrk saw error answers:" >&2; echo "$out" >&2; exit 1
  fi
  local rps p50 p99
  rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  echo "$label: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
  echo "$rps $p50 $p99"
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

declare -A SAMPLES
step "load: $RUNS interleaved runs of $DURATION, $CONNECTIONS connections, $THREADS wrk threads"
for run in $(seq 1 "$RUNS"); do
  echo "-- run $run" >&2
  SAMPLES[nginx]+="$(run_wrk nginx "https://127.0.0.1:$NGINX_PORT$VALUE_PATH")"$'\n'
  SAMPLES[token]+="$(run_wrk token "https://127.0.0.1:$TOKEN_PORT$VALUE_PATH" -H "Authorization: Bearer $TOKEN")"$'\n'
  SAMPLES[insecure]+="$(run_wrk insecure "https://127.0.0.1:$INSECURE_PORT$VALUE_PATH")"$'\n'
done

step "latency under light load: one run of $DURATION, $LIGHT_CONNECTIONS connections"
LIGHT_nginx="$(C=$LIGHT_CONNECTIONS run_wrk nginx-light "https://127.0.0.1:$NGINX_PORT$VALUE_PATH")"
LIGHT_token="$(C=$LIGHT_CONNECTIONS run_wrk token-light "https://127.0.0.1:$TOKEN_PORT$VALUE_PATH" -H "Authorization: Bearer $TOKEN")"
light() { awk -v c="$2" '{print $c}' <<<"$1"; }

col() { awk -v c="$1" 'NF {print $c}' <<<"$2" | median; }
for target in nginx token insecure; do
  declare "RPS_$target=$(col 1 "${SAMPLES[$target]}")"
  declare "P50_$target=$(col 2 "${SAMPLES[$target]}")"
  declare "P99_$target=$(col 3 "${SAMPLES[$target]}")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# Every run, with the ratio to the nginx run just before it (the spread shows how noisy the
# machine was).
RUN_ROWS="$(paste -d' ' <(awk 'NF' <<<"${SAMPLES[nginx]}") <(awk 'NF' <<<"${SAMPLES[token]}") \
  <(awk 'NF' <<<"${SAMPLES[insecure]}") | awk '{printf "| %d | %s (p99 %s) | %s (p99 %s) | %.2f | %s (p99 %s) | %.2f |\n",
    NR, $1, $3, $4, $6, $4 / $1, $7, $9, $7 / $1}')"
RATIO_token="$(ratio "$RPS_token" "$RPS_nginx")"
RATIO_insecure="$(ratio "$RPS_insecure" "$RPS_nginx")"

sleep 2
RSS_AFTER_TOKEN="$(rss_kb "$TOKEN_PID")"; ANON_AFTER_TOKEN="$(anon_kb "$TOKEN_PID")"
RSS_AFTER_INSECURE="$(rss_kb "$INSECURE_PID")"; ANON_AFTER_INSECURE="$(anon_kb "$INSECURE_PID")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
BIN_MB="$(awk -v b="$(stat -c %s "$BIN")" 'BEGIN {printf "%.1f", b / 1048576}')"
reviews() { curl -s "http://127.0.0.1:$TOKEN_ADMIN/metrics" | awk -v k="$1" -v r="$2" \
  'index($0, "ebb_metrics_apiserver_auth_reviews_total{review=\"" k "\",result=\"" r "\"}") == 1 {print $2}'; }
SAR_CALLS="$(reviews access allowed)"; SAR_CACHED="$(reviews access cached)"
TR_CALLS="$(reviews token allowed)"; TR_CACHED="$(reviews token cached)"
counter() { curl -s "http://127.0.0.1:$TOKEN_ADMIN/metrics" | awk -v p="$1" 'index($0, p) == 1 {s += $2} END {print s + 0}'; }
SERVED="$(counter 'ebb_metrics_apiserver_requests_total{route="externalmetrics",code="200"}')"
QUERIES="$(counter 'ebb_metrics_apiserver_operator_queries_total{result="ok"}')"
BODY_BYTES="$(wc -c <"$WORK/answer.json")"
CPU="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"

mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cat >"$RESULTS" <<EOF
# ebb-metrics-apiserver benchmark

Produced by \`bash bench/metrics-apiserver/run.sh\` on $(date -u +%Y-%m-%d) — $(nproc) CPUs ($CPU),
$(nginx -v 2>&1 | sed 's/nginx version: //'), wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}').
Everything (wrk, nginx, the server, the operator stand-in, the control plane) shares the same
$(nproc) CPUs; load average before/after: $LOAD_BEFORE / $LOAD_AFTER (anything above ~0 is other
work on the machine competing for those CPUs). Load: wrk, HTTP/1.1 keep-alive over TLS, $CONNECTIONS connections, $THREADS threads,
$DURATION per run, $RUNS interleaved runs per target; medians.

Request: \`GET $VALUE_PATH\` — the server authenticates and authorizes it, asks the operator
stand-in for the value over its mutual-TLS HTTP/2 link (identical requests in flight share one
query), and answers an ExternalMetricValueList of $BODY_BYTES bytes. nginx serves that same answer
($NGINX_BYTES bytes) from a file with the same certificate.

| target | req/s | p50 (ms) | p99 (ms) | vs nginx |
|---|---:|---:|---:|---:|
| nginx, static file | $RPS_nginx | $P50_nginx | $P99_nginx | 1.00 |
| ebb-metrics-apiserver, bearer token (TokenReview + SubjectAccessReview, cached 10 s) | $RPS_token | $P50_token | $P99_token | $RATIO_token |
| ebb-metrics-apiserver, \`--insecure-skip-auth\` | $RPS_insecure | $P50_insecure | $P99_insecure | $RATIO_insecure |

Each run (req/s, p99 in ms; ratio to the nginx run just before):

| run | nginx | token | ratio | insecure | ratio |
|---:|---:|---:|---:|---:|---:|
$RUN_ROWS

Under light load ($LIGHT_CONNECTIONS connections, one run, the CPUs not saturated by the load itself):

| target | req/s | p50 (ms) | p99 (ms) |
|---|---:|---:|---:|
| nginx, static file | $(light "$LIGHT_nginx" 1) | $(light "$LIGHT_nginx" 2) | $(light "$LIGHT_nginx" 3) |
| ebb-metrics-apiserver, bearer token | $(light "$LIGHT_token" 1) | $(light "$LIGHT_token" 2) | $(light "$LIGHT_token" 3) |

During the whole token-mode run: $SERVED values served with $QUERIES queries to the operator
stand-in (its answers are cache-origin, reused for 1 s; identical requests in flight share one
query); SubjectAccessReview ${SAR_CALLS:-0} sent, ${SAR_CACHED:-0} answered from the cache; TokenReview
${TR_CALLS:-0} sent, ${TR_CACHED:-0} from the cache.

Resident memory (VmRSS, with its anonymous part RssAnon; the rest is pages of the $BIN_MB MiB
executable, shared and reclaimable) of the server:

| mode | idle after start and one request | idle after the load |
|---|---:|---:|
| bearer token | $(mb "$RSS_IDLE_TOKEN") MiB (anon $(mb "$ANON_IDLE_TOKEN") MiB) | $(mb "$RSS_AFTER_TOKEN") MiB (anon $(mb "$ANON_AFTER_TOKEN") MiB) |
| \`--insecure-skip-auth\` | $(mb "$RSS_IDLE_INSECURE") MiB (anon $(mb "$ANON_IDLE_INSECURE") MiB) | $(mb "$RSS_AFTER_INSECURE") MiB (anon $(mb "$ANON_AFTER_INSECURE") MiB) |

Reading: with wrk on the same CPUs the load itself saturates them, so p99 under 64 connections
measures CPU contention (nginx's too) more than the server; the light-load row is a single run and
swings by milliseconds between runs on a shared machine (repeat it before drawing conclusions). Anonymous memory is what the server itself allocates; glibc
keeps per-thread arenas after a load, hence the growth after it.

Targets: ≥ 0.7 × nginx's throughput with p99 < 2 ms; idle RSS < 15 MB.
EOF
cat "$RESULTS"
