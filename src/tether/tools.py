"""Where the external tools are: one lookup for helm and kubectl (kustomize), used everywhere.

Order: the environment override (``TETHER_HELM``, ``TETHER_KUBECTL``), then the binary
installed beside tether's Python (the versions the project pins and tests), then PATH.
The pinned one comes before PATH on purpose: another kubectl or helm on the machine would
render differently, and its output would be cached under another tool's version.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tether.sandbox import ToolError

OVERRIDES = {"helm": "TETHER_HELM", "kubectl": "TETHER_KUBECTL"}
_WHAT = {
    "helm": "helm renders Helm charts",
    "kubectl": "kubectl runs kustomize",
}


def tool_path(name: str, *, tool: str = "") -> str:
    """The path of tool ``name`` (``helm`` or ``kubectl``); ToolError if there is none,
    named ``tool`` (what the user knows it as: kubectl runs ``kustomize``)."""
    variable = OVERRIDES[name]
    override = os.environ.get(variable, "")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise ToolError(
                tool or name,
                f"{variable} names {override}, which is not an executable file",
                hint=f"point {variable} at a {name} binary, or unset it",
            )
        return override
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            tool or name,
            f"{name} is not installed ({_WHAT[name]})",
            hint=f"install tether's tools (make venv, or the container image) or set {variable}",
        )
    return found
