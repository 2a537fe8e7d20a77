"""Git push webhooks: which provider sent one, whether its signature holds, what was pushed.

Pure functions over headers and the raw body; the HTTP server (``http.py``) calls them.
Every delivery must be signed: a provider without a configured secret is refused, never
trusted, because an unsigned webhook would let anyone on the network trigger refreshes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tether.errors import TetherError
from tether.source.credentials import normalize_url

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea", "generic")
_ZERO_SHA = "0" * 40


class WebhookError(TetherError):
    """A delivery that cannot be acted on; ``provider`` labels the metric and the log line."""

    reason = "WebhookError"

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class WebhookUnauthorized(WebhookError):
    """Missing or wrong signature or token, or no secret configured for the provider."""

    reason = "WebhookUnauthorized"


class WebhookBadRequest(WebhookError):
    """The delivery is authentic but its body is not a payload we understand."""

    reason = "WebhookBadRequest"


@dataclass
class PushEvent:
    """One pushed ref. ``after`` is "" when the push deleted the ref."""

    provider: str
    repo_urls: list[str]
    ref: str
    branch: str = ""
    tag: str = ""
    after: str = ""
    pusher: str = ""


@dataclass(repr=False)
class WebhookSecrets:
    """Shared secrets per provider; "" means none configured, so that provider is refused."""

    github: str = ""
    gitlab: str = ""
    bitbucket: str = ""
    gitea: str = ""
    generic: str = ""

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str]) -> WebhookSecrets:
        """Secrets from a Kubernetes Secret's decoded ``data`` (keys ``<provider>.secret``).

        Surrounding whitespace is dropped: ``kubectl create secret --from-file`` keeps the
        file's final newline, which the provider's copy of the secret does not have.
        """
        return cls(**{p: data.get(f"{p}.secret", "").strip() for p in PROVIDERS})

    def for_provider(self, provider: str) -> str:
        return str(getattr(self, provider, ""))

    def __repr__(self) -> str:
        # The dataclass repr would print the secrets into any log line that shows this object.
        shown = ", ".join(f"{p}={'***' if self.for_provider(p) else ''!r}" for p in PROVIDERS)
        return f"WebhookSecrets({shown})"

    __str__ = __repr__


def detect_provider(headers: Mapping[str, str]) -> str:
    """The provider a delivery claims to come from; anything unrecognised is ``generic``.

    Gitea and Forgejo also send ``X-GitHub-Event`` (for GitHub-compatible receivers), so their
    own headers are looked at first.
    """
    h = _lower_keys(headers)
    if "x-gitea-event" in h or "x-forgejo-event" in h:
        return "gitea"
    if "x-github-event" in h:
        return "github"
    if "x-gitlab-event" in h:
        return "gitlab"
    if "x-event-key" in h:
        return "bitbucket"
    return "generic"


def parse_webhook(
    headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets
) -> PushEvent | None:
    """The push a delivery reports, or None for an authentic event that is not a push.

    The signature is verified over the raw ``body`` before anything in it is read:

    - GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``;
    - Gitea / Forgejo: ``X-Gitea-Signature`` / ``X-Forgejo-Signature: <hex HMAC-SHA256>``;
    - Bitbucket Cloud: ``X-Hub-Signature: sha256=<hex HMAC-SHA256>``;
    - GitLab: ``X-Gitlab-Token: <the shared secret>``;
    - generic: ``X-Tether-Signature: sha256=<hex HMAC-SHA256>`` over
      ``{"repoURL": ..., "ref": "refs/heads/main", "after": "<sha>"}``.

    Unsigned webhooks are refused: when ``secrets`` has no secret for the provider, every
    delivery from it raises WebhookUnauthorized, as does a missing or wrong signature.
    A body that is not the provider's push payload raises WebhookBadRequest.
    Header names are matched case-insensitively.
    """
    h = _lower_keys(headers)
    provider = detect_provider(h)
    _verify(provider, h, body, secrets.for_provider(provider))
    if not _is_push(provider, h):
        return None
    payload = _load(provider, h, body)
    try:
        return _PARSERS[provider](payload)
    except (KeyError, TypeError, ValueError) as e:
        raise WebhookBadRequest(f"not a {provider} push payload: {e}", provider=provider) from e


def normalize_repo_url(url: str) -> str:
    """A canonical spelling of a repository URL.

    Lowercases scheme and host, strips credentials, default ports, a trailing ``/`` and
    ``.git``, and rewrites scp-like ``git@host:org/repo`` as ``ssh://git@host/org/repo``.
    """
    return normalize_url(url)


def matches(app_repo_url: str, event: PushEvent) -> bool:
    """Whether the push was to the repository an Application tracks.

    Compares host and path only, case-insensitively (as Argo CD does): the same repository
    reaches us as https, ssh and scp-like URLs, with or without ``.git``, and hosts treat the
    path's case as insignificant.
    """
    key = _match_key(app_repo_url)
    return bool(key) and any(_match_key(u) == key for u in event.repo_urls)


def refreshes(repo_url: str, target_revision: str, event: PushEvent) -> bool:
    """Whether ``event`` concerns a source on ``repo_url`` following ``target_revision``:
    same repository (see ``matches``) and the branch or tag it follows. ``HEAD`` follows
    the default branch, which only the remote knows, so any branch push refreshes it; a
    commit SHA never moves. An app with several sources is refreshed when any one is."""
    try:
        if not matches(repo_url, event):
            return False
    except ValueError:
        return False  # an unparsable repoURL: that app's reconcile says so (InvalidSpec)
    rev = target_revision or "HEAD"
    if event.branch:
        return rev in ("HEAD", event.branch, f"refs/heads/{event.branch}")
    if event.tag:
        return rev in (event.tag, f"refs/tags/{event.tag}")
    return True


def _match_key(url: str) -> str:
    parts = urlsplit(normalize_repo_url(url))
    # A URL without a scheme ("github.com/org/repo") has no host, only a path; the
    # concatenation still lines up with "github.com" + "/org/repo".
    return f"{parts.hostname or ''}{parts.path}".lower()


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    # compare_digest refuses non-ASCII str; as bytes it stays constant-time for any header.
    return hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def _verify(provider: str, h: Mapping[str, str], body: bytes, secret: str) -> None:
    if not secret:
        raise WebhookUnauthorized(
            f"no webhook secret configured for {provider}; unsigned webhooks are refused",
            provider=provider,
        )
    if provider == "gitlab":
        given = h.get("x-gitlab-token", "")
        ok = bool(given) and _same(given, secret)
    else:
        name, prefix = _SIGNATURE_HEADERS[provider]
        given = next((h[n] for n in name if n in h), "")
        # Hex digits may arrive in either case; the "sha256=" prefix is part of the compare.
        ok = bool(given) and _same(given.lower(), prefix + _hmac_sha256(secret, body))
    if not ok:
        what = "missing" if not given else "invalid"
        raise WebhookUnauthorized(f"{what} {provider} webhook signature", provider=provider)


# provider -> (headers that may carry the signature, in order of preference; its prefix)
_SIGNATURE_HEADERS: dict[str, tuple[tuple[str, ...], str]] = {
    "github": (("x-hub-signature-256",), "sha256="),
    "gitea": (("x-forgejo-signature", "x-gitea-signature"), ""),
    "bitbucket": (("x-hub-signature",), "sha256="),
    "generic": (("x-tether-signature",), "sha256="),
}


def _is_push(provider: str, h: Mapping[str, str]) -> bool:
    if provider == "github":
        return h.get("x-github-event", "").strip().lower() == "push"
    if provider == "gitea":
        event = h.get("x-forgejo-event") or h.get("x-gitea-event") or ""
        return event.strip().lower() == "push"
    if provider == "gitlab":
        return h.get("x-gitlab-event", "").strip() in ("Push Hook", "Tag Push Hook")
    if provider == "bitbucket":
        return h.get("x-event-key", "").strip() == "repo:push"
    return True


_FORM = "application/x-www-form-urlencoded"


def _load(provider: str, h: Mapping[str, str], body: bytes) -> dict[str, Any]:
    content_type = h.get("content-type", "").split(";")[0].strip().lower()
    try:
        # GitHub and Gitea can be set to post the JSON as a form field named "payload".
        if content_type == _FORM:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
            if "payload" not in fields:
                # What `curl -d '{...}'` sends: JSON under a form content type.
                raise WebhookBadRequest(
                    f"{provider} webhook has Content-Type {_FORM} but no 'payload' form "
                    "field; send the JSON body with Content-Type: application/json",
                    provider=provider,
                )
            body = fields["payload"][0].encode()
        payload = json.loads(body)
    except (ValueError, RecursionError) as e:
        # RecursionError: deeply nested arrays exhaust the parser's stack.
        sent = f" (Content-Type: {content_type})" if content_type else ""
        raise WebhookBadRequest(
            f"{provider} webhook body is not JSON{sent}; send the JSON body with "
            "Content-Type: application/json",
            provider=provider,
        ) from e
    if not isinstance(payload, dict):
        raise WebhookBadRequest(f"{provider} webhook body is not a JSON object", provider=provider)
    return payload


def _obj(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{key} is not an object")
    return value


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _event(provider: str, urls: list[str], ref: str, after: str, pusher: str) -> PushEvent:
    repo_urls = list(dict.fromkeys(u.strip() for u in urls if u.strip()))
    if not repo_urls:
        raise ValueError("no repository URL")
    if not ref.startswith("refs/"):
        raise ValueError(f"ref {ref!r} is not a full ref name like refs/heads/main")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else ""
    # Providers spell "the ref was deleted" as forty zeros (GitHub, GitLab, Gitea) or a null.
    after = "" if after == _ZERO_SHA else after
    return PushEvent(provider, repo_urls, ref, branch, tag, after, pusher)


def _github(p: Mapping[str, Any], provider: str = "github") -> PushEvent:
    repo = _obj(p, "repository")
    urls = [_str(repo, k) for k in ("clone_url", "ssh_url", "html_url", "git_url")]
    pusher = _obj(p, "pusher")
    name = _str(pusher, "name") or _str(pusher, "login") or _str(pusher, "username")
    return _event(provider, urls, _str(p, "ref"), _str(p, "after"), name)


def _gitea(p: Mapping[str, Any]) -> PushEvent:
    # Gitea and Forgejo post GitHub's push shape; only the pusher's key differs (login).
    return _github(p, "gitea")


def _gitlab(p: Mapping[str, Any]) -> PushEvent:
    keys = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url", "homepage")
    project, repo = _obj(p, "project"), _obj(p, "repository")
    urls = [_str(src, k) for src in (project, repo) for k in keys]
    after = _str(p, "after") or _str(p, "checkout_sha")
    return _event("gitlab", urls, _str(p, "ref"), after, _str(p, "user_username"))


def _bitbucket(p: Mapping[str, Any]) -> PushEvent:
    """Bitbucket batches refs into ``push.changes``; only the first one becomes the event.

    A push of several refs at once (``git push --all``) therefore refreshes only the apps
    tracking the first; the others catch up at their next poll.
    """
    repo = _obj(p, "repository")
    full_name = _str(repo, "full_name")
    urls = [_str(_obj(_obj(repo, "links"), "html"), "href")]
    if full_name:
        urls += [f"https://bitbucket.org/{full_name}.git", f"git@bitbucket.org:{full_name}.git"]
    changes = _obj(p, "push").get("changes")
    if not isinstance(changes, list) or not changes or not isinstance(changes[0], dict):
        raise ValueError("push.changes is empty")
    change = changes[0]
    # "new" is null when the push deleted the ref; the name is then only in "old".
    new = _obj(change, "new")
    ref_obj = new or _obj(change, "old")
    prefix = {"branch": "refs/heads/", "tag": "refs/tags/"}.get(_str(ref_obj, "type"))
    if prefix is None:
        raise ValueError(f"change of unknown type {_str(ref_obj, 'type')!r}")
    after = _str(_obj(new, "target"), "hash") if new else ""
    actor = _obj(p, "actor")
    pusher = _str(actor, "display_name") or _str(actor, "nickname")
    return _event("bitbucket", urls, prefix + _str(ref_obj, "name"), after, pusher)


def _generic(p: Mapping[str, Any]) -> PushEvent:
    if not _str(p, "repoURL"):
        raise ValueError("repoURL is required")
    return _event("generic", [_str(p, "repoURL")], _str(p, "ref"), _str(p, "after"), "")


_PARSERS: dict[str, Callable[[Mapping[str, Any]], PushEvent]] = {
    "github": _github,
    "gitea": _gitea,
    "gitlab": _gitlab,
    "bitbucket": _bitbucket,
    "generic": _generic,
}
