"""Git sources: which commit a revision names, and the files of a path at that commit.

The Git half (and pygit2) is loaded on first use: reading credentials or redacting a URL
needs neither.
"""

from typing import TYPE_CHECKING, Any

from tether.source.credentials import (
    RepoCredentials,
    from_secret_data,
    match_credentials,
    normalize_url,
    redact,
    secret_entry,
)

if TYPE_CHECKING:
    from tether.source.git import (
        REASON_AUTH,
        REASON_GIT,
        REASON_HOST_KEY,
        REASON_NOT_FOUND,
        REASON_PATH,
        REASON_REVISION,
        REASON_TIMEOUT,
        REASON_UNREACHABLE,
        CommitInfo,
        GitCache,
        TreeContent,
        source_error,
    )

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


_CREDENTIAL_NAMES = frozenset(
    {
        "RepoCredentials",
        "from_secret_data",
        "match_credentials",
        "normalize_url",
        "redact",
        "secret_entry",
    }
)
_GIT_NAMES = frozenset(__all__) - _CREDENTIAL_NAMES


def __getattr__(name: str) -> Any:
    if name in _GIT_NAMES:
        from tether.source import git

        return getattr(git, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
