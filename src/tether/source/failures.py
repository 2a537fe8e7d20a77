"""How a Git source fails: the failure classes a status condition names (``REASON_*``), and
the errors that name them, with no secret in their text: git's stderr translated to the
class it means, a revision that names nothing.

Light on purpose (no pygit2, no event loop): the Helm repository clients report their
failures in the same classes, and ``tether.source`` names them without loading either."""

from __future__ import annotations

from collections.abc import Iterable

from tether.errors import SourceError
from tether.source.credentials import RepoCredentials, redact

REASON_UNREACHABLE = "RepositoryUnreachable"
REASON_AUTH = "AuthenticationFailed"
REASON_HOST_KEY = "HostKeyVerificationFailed"
REASON_NOT_FOUND = "RepositoryNotFound"
REASON_REVISION = "RevisionNotFound"
REASON_PATH = "PathNotFound"
REASON_TIMEOUT = "Timeout"
REASON_GIT = "GitError"

_LIST_LIMIT = 20
"""Branch or tag names a revision-not-found message shows at most."""

# stderr fragments (git runs with LC_ALL=C) and the failure class each one means. The
# first class with a matching line wins, so the broad "not found" comes after the specific.
_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        REASON_REVISION,
        (
            "couldn't find remote ref",
            "not our ref",
            "unadvertised object",
            "no such remote ref",
            "invalid refspec",
        ),
    ),
    (
        REASON_HOST_KEY,
        (
            "host key verification failed",
            "remote host identification has changed",
            "no matching host key type found",
        ),
    ),
    (
        REASON_AUTH,
        (
            "authentication failed",
            "permission denied",
            "could not read username",
            "could not read password",
            "returned error: 401",
            "returned error: 403",
            "http 401",
            "http 403",
            "invalid username or password",
            "too many authentication failures",
            "no supported authentication methods",
        ),
    ),
    (
        REASON_NOT_FOUND,
        (
            "repository not found",
            "does not appear to be a git repository",
            "not a git repository",
            "returned error: 404",
            "not found",
        ),
    ),
    (
        REASON_UNREACHABLE,
        (
            "could not resolve host",
            "could not resolve hostname",
            "name or service not known",
            "temporary failure in name resolution",
            "connection refused",
            "failed to connect",
            "couldn't connect to server",
            "connection timed out",
            "operation timed out",
            "no route to host",
            "network is unreachable",
            "connection reset",
            "connection closed",
            "kex_exchange_identification",
            "ssl certificate problem",
            "unable to access",
            "empty reply from server",
        ),
    ),
)


def source_error(reason: str, message: str, hint: str = "") -> SourceError:
    """A SourceError whose ``reason`` is the failure class, for a status condition."""
    err = SourceError(message, hint=hint)
    err.reason = reason
    return err


def ref_names(refs: Iterable[str], prefix: str) -> str:
    """The names of the refs under ``prefix`` (``refs/heads/``), the first few, for a message."""
    names = sorted({r[len(prefix) :] for r in refs if r.startswith(prefix) and "^{}" not in r})
    shown = ", ".join(names[:_LIST_LIMIT])
    if len(names) > _LIST_LIMIT:
        shown += f", … ({len(names) - _LIST_LIMIT} more)"
    return shown or "none"


def revision_not_found(url: str, revision: str, refs: dict[str, str]) -> SourceError:
    return source_error(
        REASON_REVISION,
        f"revision '{revision}' not found in {redact(url)} "
        f"(branches: {ref_names(refs, 'refs/heads/')}; tags: {ref_names(refs, 'refs/tags/')})",
        hint="use an existing branch, tag, or commit SHA (at least 7 hex digits); "
        "check that it was pushed",
    )


def git_failure(stderr: str, action: str, url: str, creds: RepoCredentials) -> SourceError:
    """The error of a git command that failed: its class read from git's ``stderr`` (the
    line that says it, not git's closing advice), the credentials' secrets masked."""
    lines = [
        ln.strip().removeprefix("fatal: ").removeprefix("error: ")
        for ln in redact(stderr, creds.secrets).splitlines()
        if ln.strip()
    ]
    reason, detail = REASON_GIT, "; ".join(lines[-3:])[:400] or "no error output"
    for candidate, patterns in _PATTERNS:
        hit = next((ln for ln in lines if any(p in ln.lower() for p in patterns)), None)
        if hit is not None:
            # The line that says what went wrong, not git's generic closing advice.
            reason, detail = candidate, hit[:400]
            break
    if reason == REASON_REVISION:
        return source_error(
            reason, f"revision not found in {url}: {detail}", hint="check that it was pushed"
        )
    if reason == REASON_HOST_KEY:
        return source_error(
            reason,
            f"host key verification failed for {url}: {detail}",
            hint="put the server's key in the credentials secret's knownHosts "
            "(ssh-keyscan), or set insecureIgnoreHostKey only for testing",
        )
    if reason == REASON_AUTH:
        if creds.origin:
            sent = f"the credentials of {creds.origin} (its url matched) were refused"
            fix = f"check the username, password or key in {creds.origin}"
        elif creds.username or creds.ssh_private_key:
            sent = "the credentials sent were refused"
            fix = "check the user and token (or key) given for it"
        else:
            sent = "no credentials were sent: no repository Secret's url matched it"
            fix = (
                "create a Secret labelled tether.dev/secret-type=repository whose url is this "
                "repository or a prefix of it, next to the Application"
            )
        return source_error(
            reason,
            f"authentication to {url} failed: {sent}",
            hint=f"{fix}; git said: {detail}",
        )
    if reason == REASON_NOT_FOUND:
        return source_error(
            reason,
            f"repository {url} not found: {detail}",
            hint="check the URL; some servers also answer 'not found' to bad credentials",
        )
    if reason == REASON_UNREACHABLE:
        return source_error(
            reason, f"cannot reach {url}: {detail}", hint="check the URL and network"
        )
    return source_error(reason, f"git failed {action} {url}: {detail}")
