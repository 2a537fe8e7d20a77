"""The Application API's names: its group, version and kind, the namespace Applications live
in by default, and the Project an Application names. Apart from ``tether.api.application`` and
``tether.api.project`` (which re-export them) so that a command that needs only a name does not
load the spec's parsers."""

from typing import Any

GROUP = "tether.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Application"
DEFAULT_NAMESPACE = "tether-system"
DEFAULT_PROJECT = "default"
HISTORY_LIMIT = 10
"""Syncs an Application's ``status.history`` keeps (the audit trail keeps every one)."""
FORWARDED_AUTH = "X-Tether-Authorization"
"""Where a client reaching tether's HTTP API through the Kubernetes API server's service proxy
puts its bearer token: the API server checks and then removes ``Authorization``."""


def project_name(app_obj: dict[str, Any]) -> str:
    """The Project an Application object names (``default`` when none)."""
    return str((app_obj.get("spec") or {}).get("project") or DEFAULT_PROJECT)
