"""Git sources: which commit a revision names, and the files of a path at that commit.

The Git half (and pygit2) is loaded on first use: reading credentials, redacting a URL or
naming a failure needs neither.
"""

import importlib
from typing import TYPE_CHECKING, Any

from tether.source.credentials import (
    RepoCredentials,
    from_secret_data,
    match_credentials,
    normalize_url,
    redact,
    secret_entry,
)
from tether.source.failures import (
    REASON_AUTH,
    REASON_GIT,
    REASON_HOST_KEY,
    REASON_NOT_FOUND,
    REASON_PATH,
    REASON_REVISION,
    REASON_TIMEOUT,
    REASON_UNREACHABLE,
    source_error,
)

if TYPE_CHECKING:
    from tether.source.git import CommitInfo, GitCache
    from tether.source.git_tree import TreeContent

__all__ = [
    "REASON_AUTH",
    "REASON_GIT",
    "REASON_HOST_KEY",
    "REASON_NOT_FOUND",
    "REASON_PATH",
    "REASON_REVISION",
    "REASON_TIMEOUT",
    "REASON_UNREACHABLE",
    "CommitInfo",
    "GitCache",
    "RepoCredentials",
    "TreeContent",
    "from_secret_data",
    "match_credentials",
    "normalize_url",
    "redact",
    "secret_entry",
    "source_error",
]


_GIT_NAMES = {"CommitInfo": "git", "GitCache": "git", "TreeContent": "git_tree"}
"""What is loaded with pygit2, on first use: name → module of this package."""


def __getattr__(name: str) -> Any:
    module = _GIT_NAMES.get(name)
    if module is not None:
        return getattr(importlib.import_module(f"tether.source.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
