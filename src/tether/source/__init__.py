"""Git sources: which commit a revision names, and the files of a path at that commit."""

from tether.source.credentials import (
    RepoCredentials,
    from_secret_data,
    match_credentials,
    normalize_url,
    redact,
    secret_entry,
)
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
