#!/usr/bin/env bash
# ebb and KEDA side by side, in the same run: every scenario for ebb (its release binaries) and
# for KEDA 2.16.0 and 2.21.1 (built from their Go modules by bench/keda/build.sh, through
# ebb_testbackends::keda), each program out of cluster as a child process, on upstream
# Kubernetes (scripts/backends/kubernetes.sh; a fresh control plane per system and measurement)
# and on ebb's local control plane. Medians of --runs runs (default 3) and ratios ebb / KEDA;
# writes bench/vs-keda/RESULTS.md (every run's figures, the load average next to each) and
# prints the summary table.
#
# Usage: bash bench/vs-keda/run.sh [SCENARIO...] [OPTIONS]
#   SCENARIO: operator | hpas | lateness | metrics-api | webhook | activation | all (default)
#   --systems ebb,keda-2.16.0,keda-2.21.1   --control-planes upstream,local   --runs 3
#   --objects 1000   --large (adds the 10,000-object variants; slow and memory-heavy on 2 cores)
#   --window 60 (steady-state seconds)   --settle-minutes 20   --wrk-seconds 10   --requests 2000   --trials 20
# Quick check: bash bench/vs-keda/run.sh all --runs 1 --objects 200 --window 20
#
# Needs the README's set-up (Rust, Go, the test backends of scripts/backends/: upstream
# Kubernetes, moto, tansu); installs wrk with apt when missing. Not part of scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ebb-target}"
export EBB_TEST_VENV="${EBB_TEST_VENV:-/var/tmp/ebb-test-venv}"
step() { printf '\n== %s\n' "$*" >&2; }

step "tools (wrk from Debian; installed when missing)"
if ! command -v wrk >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
fi

step "backends: upstream Kubernetes, moto, tansu (idempotent; minutes the first time)"
for backend in kubernetes moto tansu; do
  bash "scripts/backends/$backend.sh"
done

step "release build of ebb's programs and of the driver (lto: minutes)"
cargo build --release -p ebb-operator -p ebb-metrics-apiserver -p ebb-webhook -p ebb-bench-vs-keda --bins

step "benchmark (KEDA is built by the driver on first use: bench/keda/build.sh, cached)"
exec "$CARGO_TARGET_DIR/release/bench-vs-keda" "$@"
