"""The CRD types: Application, its schema and validation."""

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
