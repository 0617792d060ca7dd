#!/usr/bin/env bash
# Installs moto (an SQS + CloudWatch server for the AWS scalers' tests) into the test virtualenv.
# Idempotent: returns at once when moto_server and boto3 are already there.
set -euo pipefail

venv="${EBB_TEST_VENV:-/var/tmp/ebb-test-venv}"

if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, boto3' >/dev/null 2>&1; then
  echo "moto: present in $venv"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' boto3
"$venv/bin/moto_server" --help >/dev/null
echo "moto: installed into $venv ($("$venv/bin/python" -c 'import moto; print(moto.__version__)'))"
