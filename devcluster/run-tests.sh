#!/usr/bin/env bash
# `make test`: lint, type-check, then every test against the real local control plane and
# git server. Stops the cluster at the end only if this run started it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
started=0
if ! $PY -c 'import sys; from devcluster.cluster import Cluster; c = Cluster(); sys.exit(0 if c.state and c.running() else 1)'; then
  started=1
fi
cleanup() { if ((started)); then $PY -m devcluster.cluster down || true; fi; }
trap cleanup EXIT
$PY -m devcluster.cluster up || exit 1
# `make demo` leaves its controller running. It watches only the demo's namespace, but it
# still competes for the CPU the tests' timeouts are measured on: stop it (make demo starts
# it again).
stopped=$($PY -m devcluster.demo stop-controller) || exit 1
if [[ -n $stopped ]]; then echo "[test] $stopped; 'make demo' starts it again" >&2; fi
# The tests start `tether` hundreds of times; with PYTHONDONTWRITEBYTECODE set each start
# would compile the package again.
$PY -m compileall -q -j 0 src >/dev/null || exit 1
make --no-print-directory lint || { echo "[test] lint or type check failed" >&2; exit 1; }
export KUBECONFIG="$PWD/.dev/kubeconfig"
.venv/bin/pytest -q -ra -p no:cacheprovider "$@"
