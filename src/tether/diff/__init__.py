"""Drift detection: whether the cluster matches Git, per object, and how to show the difference.

The comparison (``diff_object``, and YAML and the ignore rules with it) and the text of a
diff load on first use: printing a diff the server computed does not bring the comparison.
``normalize`` and ``redact`` are imported here, as the functions they name shadow their
modules."""

from typing import TYPE_CHECKING

from tether.diff.normalize import fields_of, normalize, restrict_to
from tether.diff.redact import redact, redact_pair
from tether.lazy_names import lazy_names

if TYPE_CHECKING:
    from tether.diff.compare import diff_object
    from tether.diff.ignore import IgnoreRule, apply_ignores
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

__getattr__ = lazy_names(
    __name__,
    {
        "diff_object": "tether.diff.compare",
        "IgnoreRule": "tether.diff.ignore",
        "apply_ignores": "tether.diff.ignore",
        "render_diffs": "tether.diff.text",
    },
)
