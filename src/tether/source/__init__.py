"""Git sources: which commit a revision names, and the files of a path at that commit.

The Git half (and pygit2) is loaded on first use: reading credentials, redacting a URL or
naming a failure needs neither.
"""

from typing import TYPE_CHECKING

from tether.lazy_names import lazy_names
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


_GIT_NAMES = {
    "CommitInfo": "tether.source.git",
    "GitCache": "tether.source.git",
    "TreeContent": "tether.source.git_tree",
}
"""What is loaded with pygit2, on first use: name → its module."""

__getattr__ = lazy_names(__name__, _GIT_NAMES)
