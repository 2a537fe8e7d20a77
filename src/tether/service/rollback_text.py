"""The words of a rollback: the commit message naming the rolled-back commits, the exact git
commands a person runs when tether may not push, and the pull-request URL of a branch on the
usual forges (GitHub, GitLab, Bitbucket, Gitea). Pure functions, no I/O."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from tether.source.commits import CommitSummary
from tether.source.credentials import normalize_url, redact


def revert_form(between: Sequence[CommitSummary]) -> bool:
    """Every commit between the revision and the head touched only the app's paths: the
    rollback is exactly ``git revert`` of them, and says so."""
    return bool(between) and all(c.only_ours for c in between)


def rollback_message(
    app: str,
    target: CommitSummary,
    between: Sequence[CommitSummary],
    paths: Sequence[str],
    *,
    first_line: str = "",
) -> str:
    """The message of the restoring commit. ``between`` is newest first (every commit from
    ``target`` to the head); those that touched ``paths`` are the ones rolled back."""
    rolled = [c for c in between if c.touches]
    if revert_form(between):
        if len(rolled) == 1:
            title = f'Revert "{rolled[0].subject}"'
        else:
            title = f'Revert "{rolled[0].subject}" and {len(rolled) - 1} earlier commit' + (
                "s" if len(rolled) > 2 else ""
            )
        body = [f"This reverts commit {c.sha}." for c in rolled]
    else:
        title = f"Roll back {app} to {target.short}"
        where = ", ".join(p or "(the whole repository)" for p in paths)
        body = [f"Restores {where} to their content at {target.sha} ({target.subject})."]
    lines = [first_line.strip() or title, "", *body]
    if rolled:
        lines += ["", "Rolled back:"]
        lines += [f"  {c.short} {c.subject} ({c.author})" for c in rolled]
    lines += ["", f"Tether-Application: {app}", f"Tether-Rollback-To: {target.sha}"]
    return "\n".join(lines) + "\n"


def manual_commands(
    url: str,
    branch: str,
    target: str,
    paths_at_head: Sequence[str],
    paths_at_target: Sequence[str],
    message: str,
    author: str,
    *,
    push_branch: str = "",
) -> str:
    """The git commands that make the same commit by hand (nothing is changed by tether)."""
    q = shlex.quote
    remove = " ".join(q(p or ".") for p in paths_at_head)
    restore = " ".join(q(p or ".") for p in paths_at_target)
    lines = [
        f"git clone --branch {q(branch)} {q(public_url(url))} rollback && cd rollback",
    ]
    if remove:
        lines.append(f"git rm -r -q --ignore-unmatch -- {remove}")
    if restore:
        lines.append(f"git checkout {target} -- {restore}")
    lines += [
        f"git commit --author {q(author)} -F - <<'EOF'",
        message.rstrip("\n"),
        "EOF",
        f"git push origin HEAD:refs/heads/{q(push_branch or branch)}",
    ]
    return "\n".join(lines)


def public_url(url: str) -> str:
    """``url`` without user info over HTTP(S) (a token there is a secret; the person running
    the commands uses their own credentials), and with any other secret masked."""
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.scheme.lower() in ("http", "https") and "@" in parts.netloc:
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return redact(url)


def web_url(repo_url: str) -> str:
    """``https://host[:port]/owner/repo`` for a repository URL (HTTP, SSH or scp-like)."""
    norm = normalize_url(repo_url)
    parts = urlsplit(norm)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port and parts.scheme in ("http", "https") else ""
    scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
    return f"{scheme}://{host}{port}{parts.path}"


def forge_of(repo_url: str) -> str:
    """``github``, ``gitlab``, ``bitbucket``, ``gitea`` or ``""``, from the host name."""
    host = (urlsplit(normalize_url(repo_url)).hostname or "").lower()
    for forge, marks in (
        ("github", ("github",)),
        ("gitlab", ("gitlab",)),
        ("bitbucket", ("bitbucket",)),
        ("gitea", ("gitea", "codeberg.org", "forgejo")),
    ):
        if any(m in host for m in marks):
            return forge
    return ""


def pull_request_url(repo_url: str, branch: str, base: str) -> str:
    """Where to open a pull request of ``branch`` into ``base``; ``""`` for an unknown forge."""
    web = web_url(repo_url)
    b, t = quote(branch, safe=""), quote(base, safe="")
    forge = forge_of(repo_url)
    if forge == "github":
        return f"{web}/compare/{t}...{b}?expand=1"
    if forge == "gitlab":
        return (
            f"{web}/-/merge_requests/new?merge_request%5Bsource_branch%5D={b}"
            f"&merge_request%5Btarget_branch%5D={t}"
        )
    if forge == "bitbucket":
        return f"{web}/pull-requests/new?source={b}&dest={t}"
    if forge == "gitea":
        return f"{web}/compare/{t}...{b}"
    return ""


__all__ = [
    "forge_of",
    "manual_commands",
    "public_url",
    "pull_request_url",
    "revert_form",
    "rollback_message",
    "web_url",
]
