"""Drift detection: whether the cluster matches Git, per object, and how to show the difference."""

from tether.diff.compare import diff_object
from tether.diff.ignore import IgnoreRule, apply_ignores
from tether.diff.normalize import fields_of, normalize, restrict_to
from tether.diff.redact import redact, redact_pair
from tether.diff.text import render_diffs

__all__ = [
    "IgnoreRule",
    "apply_ignores",
    "diff_object",
    "fields_of",
    "normalize",
    "redact",
    "redact_pair",
    "render_diffs",
    "restrict_to",
]
