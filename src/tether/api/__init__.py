"""The CRD types: Application, its schema and validation.

Names load on first use (``tether.api.application`` brings the spec's parsers), so importing
``tether.api.names`` costs nothing more."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.api.application import (
        API_VERSION,
        APP_LABEL,
        DEFAULT_NAMESPACE,
        KIND,
        TRACKING_ANNOTATION,
        Application,
        crd_manifests,
        new_application,
    )

__all__ = [
    "API_VERSION",
    "APP_LABEL",
    "DEFAULT_NAMESPACE",
    "KIND",
    "TRACKING_ANNOTATION",
    "Application",
    "crd_manifests",
    "new_application",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tether.api import application

        return getattr(application, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
