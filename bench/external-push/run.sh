#!/usr/bin/env bash
# Activation latency of the external-push trigger against the external trigger polled every
# second: time from the external scaler's push (ebb_testbackends::external_scaler, gRPC on
# 127.0.0.1) to the Deployment's spec.replicas 0→1 written by the in-process operator and seen
# by a watch on the local control plane; median and p99 over $EBB_BENCH_TRIALS (default 50)
# trials each. The scenario is the ignored test push_vs_poll_latency in
# operator/tests/e2e_external_push.rs; it never runs in the test command.
#
# Usage: bash bench/external-push/run.sh [--release]   (env: EBB_BENCH_TRIALS)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=()
if [[ "${1:-}" == "--release" ]]; then profile=(--release); fi
cargo test "${profile[@]}" -p ebb-operator --test e2e_external_push -- --ignored --nocapture push_vs_poll_latency 2>&1 \
  | grep -E 'push → /scale|test result'
