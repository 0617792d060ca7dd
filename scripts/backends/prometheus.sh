#!/usr/bin/env bash
# Installs Prometheus (Debian's package, 2.42) for the prometheus scaler's tests. Idempotent: does
# nothing when a prometheus binary is already on PATH. The package's service is not started; the
# tests run their own instance on 127.0.0.1 (see testbackends/src/prometheus.rs).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus is missing and apt-get is not available; install Prometheus 2.x and put it on PATH" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Packaged services must not start during installation (no init system in CI containers anyway).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus
fi
echo "prometheus: $(prometheus --version 2>&1 | head -n 1)"
