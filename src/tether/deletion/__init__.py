"""Deleting an Application and what it deployed: the policy it asks for (``policy``), the
order its objects go in (``plan``), the step-by-step cascade and its finalizers
(``cascade``), its PreDelete and PostDelete hooks (``hooks``), and ``tether app delete``
(``command``). The controller's side is
``tether.controller.finalizer``. See docs/deletion.md."""

from tether.deletion.policy import (
    DELETING_ANNOTATION,
    FINALIZER,
    POLICY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    being_deleted,
    deletion_changed,
    deletion_started,
    sync_running,
)

__all__ = [
    "DELETING_ANNOTATION",
    "FINALIZER",
    "POLICY_ANNOTATION",
    "REQUESTED_BY_ANNOTATION",
    "being_deleted",
    "deletion_changed",
    "deletion_started",
    "sync_running",
]
