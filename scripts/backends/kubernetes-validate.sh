#!/usr/bin/env bash
# Installs kubernetes-validate (schema validation of Kubernetes manifests, with the schemas of
# every Kubernetes release bundled, so no network at validation time) into the test virtualenv,
# for the deployment manifests' tests (e2e/tests/deploy.rs). Idempotent: returns at once when
# the tool is already there.
set -euo pipefail

venv="${EBB_TEST_VENV:-/var/tmp/ebb-test-venv}"

if [ -x "$venv/bin/kubernetes-validate" ] && "$venv/bin/python" -c 'import kubernetes_validate' >/dev/null 2>&1; then
  echo "kubernetes-validate: present in $venv"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate>=1.30'
"$venv/bin/kubernetes-validate" --help >/dev/null
echo "kubernetes-validate: installed into $venv ($("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))'))"
