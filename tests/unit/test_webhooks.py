"""Webhook verification and parsing per provider, over recorded payload shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tether.server.webhooks import (
    PushEvent,
    WebhookBadRequest,
    WebhookSecrets,
    WebhookUnauthorized,
    detect_provider,
    matches,
    normalize_repo_url,
    parse_webhook,
)

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRETS = WebhookSecrets(
    github="gh-Secret-1",
    gitlab="gl-token-2",
    bitbucket="bb-secret-3",
    gitea="gitea-secret-4",
    generic="generic-secret-5",
)


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def github_headers(
    data: bytes, event: str = "push", secret: str = SECRETS.github
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256=" + sign(secret, data),
        "Content-Type": "application/json",
    }


def gitea_headers(data: bytes, secret: str = SECRETS.gitea) -> dict[str, str]:
    # What Gitea sends: its own headers plus GitHub- and Gogs-compatible ones.
    sig = sign(secret, data)
    return {
        "X-Gitea-Event": "push",
        "X-Gitea-Event-Type": "push",
        "X-Gitea-Signature": sig,
        "X-Gogs-Event": "push",
        "X-Gogs-Signature": sig,
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + sig,
        "Content-Type": "application/json",
    }


def bitbucket_headers(data: bytes, secret: str = SECRETS.bitbucket) -> dict[str, str]:
    return {
        "X-Event-Key": "repo:push",
        "X-Hook-UUID": "f2d4b3e1-0a9c-4c1b-8e7d-6a5b4c3d2e1f",
        "X-Hub-Signature": "sha256=" + sign(secret, data),
        "Content-Type": "application/json",
    }


def gitlab_headers(event: str = "Push Hook", token: str = SECRETS.gitlab) -> dict[str, str]:
    return {"X-Gitlab-Event": event, "X-Gitlab-Token": token, "Content-Type": "application/json"}


def generic_headers(data: bytes, secret: str = SECRETS.generic) -> dict[str, str]:
    return {"X-Tether-Signature": "sha256=" + sign(secret, data)}


# --- GitHub ---------------------------------------------------------------------------------


def test_github_push_with_a_good_signature() -> None:
    data = body("github-push.json")
    event = parse_webhook(github_headers(data), data, SECRETS)
    assert event == PushEvent(
        provider="github",
        repo_urls=[
            "https://github.com/Acme-Corp/Platform-Config.git",
            "git@github.com:Acme-Corp/Platform-Config.git",
            "https://github.com/Acme-Corp/Platform-Config",
            "git://github.com/Acme-Corp/Platform-Config.git",
        ],
        ref="refs/heads/main",
        branch="main",
        tag="",
        after="9d5c7a1e2b3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b",
        pusher="octocat",
    )


def test_github_headers_are_case_insensitive() -> None:
    data = body("github-push.json")
    headers = {k.lower(): v for k, v in github_headers(data).items()}
    event = parse_webhook(headers, data, SECRETS)
    assert event is not None and event.branch == "main"


def test_github_ping_is_verified_then_ignored() -> None:
    data = body("github-ping.json")
    assert parse_webhook(github_headers(data, event="ping"), data, SECRETS) is None
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(github_headers(data, event="ping", secret="wrong"), data, SECRETS)


def test_github_wrong_signature_is_refused() -> None:
    data = body("github-push.json")
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(github_headers(data, secret="not-the-secret"), data, SECRETS)


def test_github_signature_over_a_different_body_is_refused() -> None:
    data = body("github-push.json")
    tampered = data.replace(b"refs/heads/main", b"refs/heads/prod")
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(github_headers(data), tampered, SECRETS)


def test_github_missing_signature_is_refused() -> None:
    data = body("github-push.json")
    headers = github_headers(data)
    del headers["X-Hub-Signature-256"]
    # The legacy SHA-1 header alone is not enough.
    headers["X-Hub-Signature"] = "sha1=" + hmac.new(b"gh-Secret-1", data, "sha1").hexdigest()
    with pytest.raises(WebhookUnauthorized, match="missing"):
        parse_webhook(headers, data, SECRETS)


def test_unsigned_webhooks_are_refused_when_no_secret_is_configured() -> None:
    data = body("github-push.json")
    # Even a delivery signed with the empty key: no secret means no trust.
    headers = github_headers(data, secret="")
    with pytest.raises(WebhookUnauthorized, match="no webhook secret configured for github"):
        parse_webhook(headers, data, WebhookSecrets(gitlab="x"))
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(gitlab_headers(token=""), body("gitlab-push.json"), WebhookSecrets())


def test_github_tag_push() -> None:
    payload = json.loads(body("github-push.json"))
    payload["ref"] = "refs/tags/v1.4.2"
    data = json.dumps(payload).encode()
    event = parse_webhook(github_headers(data), data, SECRETS)
    assert event is not None
    assert (event.ref, event.branch, event.tag) == ("refs/tags/v1.4.2", "", "v1.4.2")


def test_github_branch_deletion_has_no_after() -> None:
    payload = json.loads(body("github-push.json"))
    payload.update(after="0" * 40, deleted=True, head_commit=None, commits=[])
    data = json.dumps(payload).encode()
    event = parse_webhook(github_headers(data), data, SECRETS)
    assert event is not None and event.after == "" and event.branch == "main"


def test_github_form_encoded_delivery() -> None:
    payload = body("github-push.json").decode()
    data = urlencode({"payload": payload}).encode()
    headers = github_headers(data)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    event = parse_webhook(headers, data, SECRETS)
    assert event is not None and event.after.startswith("9d5c7a1e")


@pytest.mark.parametrize(
    "data",
    [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000],
    ids=["malformed", "not-an-object", "not-utf8", "deeply-nested"],
)
def test_malformed_bodies_are_bad_requests_once_verified(data: bytes) -> None:
    with pytest.raises(WebhookBadRequest):
        parse_webhook(github_headers(data), data, SECRETS)
    # Verification comes first: the same body unsigned is unauthorized, not bad.
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(github_headers(data, secret="x"), data, SECRETS)


def test_push_payload_without_a_repository_is_a_bad_request() -> None:
    data = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
    with pytest.raises(WebhookBadRequest, match="no repository URL"):
        parse_webhook(github_headers(data), data, SECRETS)
    data = json.dumps({"ref": "refs/heads/main", "repository": "acme/x"}).encode()
    with pytest.raises(WebhookBadRequest, match="repository is not an object"):
        parse_webhook(github_headers(data), data, SECRETS)


# --- Gitea / Forgejo ------------------------------------------------------------------------


def test_gitea_push_wins_over_its_github_compatible_headers() -> None:
    data = body("gitea-push.json")
    event = parse_webhook(gitea_headers(data), data, SECRETS)
    assert event == PushEvent(
        provider="gitea",
        repo_urls=[
            "https://gitea.example.com/ops/cluster-apps.git",
            "ssh://git@gitea.example.com:2222/ops/cluster-apps.git",
            "https://gitea.example.com/ops/cluster-apps",
        ],
        ref="refs/heads/main",
        branch="main",
        after="bffeb74224043ba2feb48d137756c8a9331c449a",
        pusher="ops",
    )


def test_gitea_delivery_is_checked_with_the_gitea_secret_not_githubs() -> None:
    data = body("gitea-push.json")
    # Signed with the GitHub secret throughout: a GitHub receiver would accept it.
    with pytest.raises(WebhookUnauthorized, match="gitea"):
        parse_webhook(gitea_headers(data, secret=SECRETS.github), data, SECRETS)
    only_github_configured = WebhookSecrets(github=SECRETS.gitea)
    with pytest.raises(WebhookUnauthorized, match="no webhook secret configured for gitea"):
        parse_webhook(gitea_headers(data), data, only_github_configured)


def test_forgejo_push() -> None:
    data = body("gitea-push.json")
    sig = sign(SECRETS.gitea, data)
    headers = {"X-Forgejo-Event": "push", "X-Forgejo-Signature": sig, "X-GitHub-Event": "push"}
    event = parse_webhook(headers, data, SECRETS)
    assert event is not None and event.provider == "gitea" and event.pusher == "ops"


def test_gitea_missing_signature_is_refused() -> None:
    data = body("gitea-push.json")
    headers = gitea_headers(data)
    del headers["X-Gitea-Signature"]
    with pytest.raises(WebhookUnauthorized, match="missing gitea"):
        parse_webhook(headers, data, SECRETS)


def test_gitea_non_push_event_is_ignored() -> None:
    data = json.dumps({"action": "opened", "number": 3}).encode()
    headers = gitea_headers(data)
    headers["X-Gitea-Event"] = "issues"
    assert parse_webhook(headers, data, SECRETS) is None


# --- GitLab ---------------------------------------------------------------------------------


def test_gitlab_push_with_the_right_token() -> None:
    event = parse_webhook(gitlab_headers(), body("gitlab-push.json"), SECRETS)
    assert event == PushEvent(
        provider="gitlab",
        repo_urls=[
            "https://gitlab.example.com/Platform/Infra/deploy-config.git",
            "git@gitlab.example.com:Platform/Infra/deploy-config.git",
            "https://gitlab.example.com/Platform/Infra/deploy-config",
        ],
        ref="refs/heads/release/2025.03",
        branch="release/2025.03",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        pusher="jsmith",
    )


def test_gitlab_tag_push() -> None:
    event = parse_webhook(gitlab_headers("Tag Push Hook"), body("gitlab-tag-push.json"), SECRETS)
    assert event is not None
    assert (event.ref, event.branch, event.tag) == ("refs/tags/v1.4.0", "", "v1.4.0")
    assert event.after == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"


def test_gitlab_after_falls_back_to_checkout_sha() -> None:
    payload = json.loads(body("gitlab-push.json"))
    del payload["after"]
    event = parse_webhook(gitlab_headers(), json.dumps(payload).encode(), SECRETS)
    assert event is not None and event.after == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


@pytest.mark.parametrize("token", ["gl-token-x", "", "gl-token-2 extra", "gl-tökén"])
def test_gitlab_wrong_token_is_refused(token: str) -> None:
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(gitlab_headers(token=token), body("gitlab-push.json"), SECRETS)


def test_gitlab_missing_token_is_refused() -> None:
    with pytest.raises(WebhookUnauthorized, match="missing"):
        parse_webhook({"X-Gitlab-Event": "Push Hook"}, body("gitlab-push.json"), SECRETS)


def test_gitlab_other_events_are_ignored() -> None:
    data = json.dumps({"object_kind": "merge_request"}).encode()
    assert parse_webhook(gitlab_headers("Merge Request Hook"), data, SECRETS) is None


# --- Bitbucket Cloud ------------------------------------------------------------------------


def test_bitbucket_push_with_a_good_signature() -> None:
    data = body("bitbucket-push.json")
    event = parse_webhook(bitbucket_headers(data), data, SECRETS)
    assert event == PushEvent(
        provider="bitbucket",
        repo_urls=[
            "https://bitbucket.org/acme-team/Helm-Values",
            "https://bitbucket.org/acme-team/Helm-Values.git",
            "git@bitbucket.org:acme-team/Helm-Values.git",
        ],
        ref="refs/heads/main",
        branch="main",
        after="c1f3e9d5b7a2468f0e3d2c1b0a9f8e7d6c5b4a39",
        pusher="Jane Doe",
    )


def test_bitbucket_takes_the_first_change_of_a_multi_ref_push() -> None:
    payload = json.loads(body("bitbucket-push.json"))
    first = payload["push"]["changes"][0]
    tag = {"old": None, "new": {"name": "v2", "type": "tag", "target": {"hash": "e" * 40}}}
    payload["push"]["changes"] = [tag, first]
    data = json.dumps(payload).encode()
    event = parse_webhook(bitbucket_headers(data), data, SECRETS)
    assert event is not None
    assert (event.ref, event.tag, event.after) == ("refs/tags/v2", "v2", "e" * 40)


def test_bitbucket_branch_deletion() -> None:
    payload = json.loads(body("bitbucket-push.json"))
    payload["push"]["changes"][0]["new"] = None
    payload["push"]["changes"][0]["closed"] = True
    data = json.dumps(payload).encode()
    event = parse_webhook(bitbucket_headers(data), data, SECRETS)
    assert event is not None and (event.branch, event.after) == ("main", "")


def test_bitbucket_push_without_changes_is_a_bad_request() -> None:
    payload = json.loads(body("bitbucket-push.json"))
    payload["push"]["changes"] = []
    data = json.dumps(payload).encode()
    with pytest.raises(WebhookBadRequest, match=r"push\.changes is empty"):
        parse_webhook(bitbucket_headers(data), data, SECRETS)


def test_bitbucket_wrong_signature_is_refused() -> None:
    data = body("bitbucket-push.json")
    with pytest.raises(WebhookUnauthorized):
        parse_webhook(bitbucket_headers(data, secret=SECRETS.github), data, SECRETS)


def test_bitbucket_other_events_are_ignored() -> None:
    data = b'{"pullrequest": {}}'
    headers = bitbucket_headers(data)
    headers["X-Event-Key"] = "pullrequest:created"
    assert parse_webhook(headers, data, SECRETS) is None


# --- generic --------------------------------------------------------------------------------


def test_generic_push_with_a_good_signature() -> None:
    data = body("generic-push.json")
    event = parse_webhook(generic_headers(data), data, SECRETS)
    assert event == PushEvent(
        provider="generic",
        repo_urls=["https://git.internal.example.com/platform/apps.git"],
        ref="refs/heads/main",
        branch="main",
        after="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    )


def test_generic_signature_hex_may_be_uppercase() -> None:
    data = body("generic-push.json")
    headers = {"x-tether-signature": "sha256=" + sign(SECRETS.generic, data).upper()}
    assert parse_webhook(headers, data, SECRETS) is not None


def test_unknown_sender_without_signature_is_refused() -> None:
    data = body("generic-push.json")
    with pytest.raises(WebhookUnauthorized, match="missing generic"):
        parse_webhook({"Content-Type": "application/json"}, data, SECRETS)


@pytest.mark.parametrize(
    "payload, error",
    [
        ({"ref": "refs/heads/main"}, "repoURL is required"),
        ({"repoURL": "https://g/x", "ref": "main"}, "not a full ref name"),
        ({"repoURL": 42, "ref": "refs/heads/main"}, "repoURL is not a string"),
    ],
)
def test_generic_payload_errors(payload: dict[str, object], error: str) -> None:
    data = json.dumps(payload).encode()
    with pytest.raises(WebhookBadRequest, match=error):
        parse_webhook(generic_headers(data), data, SECRETS)


# --- detection, secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, provider",
    [
        ({"X-GitHub-Event": "push"}, "github"),
        ({"X-GitHub-Event": "push", "X-Gitea-Event": "push"}, "gitea"),
        ({"x-github-event": "push", "x-forgejo-event": "push"}, "gitea"),
        ({"X-Gitlab-Event": "Push Hook"}, "gitlab"),
        ({"X-Event-Key": "repo:push"}, "bitbucket"),
        ({"X-Tether-Signature": "sha256=00"}, "generic"),
        ({}, "generic"),
    ],
)
def test_detect_provider(headers: dict[str, str], provider: str) -> None:
    assert detect_provider(headers) == provider


def test_secrets_from_secret_data_and_never_printed() -> None:
    secrets = WebhookSecrets.from_secret_data(
        {"github.secret": "s3cr3t-gh\n", "gitlab.secret": "s3cr3t-gl", "url": "ignored"}
    )
    assert secrets == WebhookSecrets(github="s3cr3t-gh", gitlab="s3cr3t-gl")
    assert "s3cr3t" not in repr(secrets) and "s3cr3t" not in str(secrets)
    assert "github='***'" in repr(secrets) and "bitbucket=''" in repr(secrets)


def test_errors_do_not_carry_secrets_or_signatures() -> None:
    data = body("github-push.json")
    headers = github_headers(data, secret="attacker-guess")
    with pytest.raises(WebhookUnauthorized) as e:
        parse_webhook(headers, data, SECRETS)
    assert SECRETS.github not in str(e.value)
    assert headers["X-Hub-Signature-256"][7:] not in str(e.value)


# --- URL normalization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, normalized",
    [
        ("https://github.com/Org/Repo.git", "https://github.com/Org/Repo"),
        ("HTTPS://GitHub.COM/Org/Repo/", "https://github.com/Org/Repo"),
        ("https://user:tok3n@github.com/org/repo.git", "https://github.com/org/repo"),
        ("https://github.com:443/org/repo", "https://github.com/org/repo"),
        ("git@github.com:org/repo", "ssh://git@github.com/org/repo"),
        ("git@github.com:org/repo.git/", "ssh://git@github.com/org/repo"),
        ("ssh://git@GITHUB.com/org/repo.git", "ssh://git@github.com/org/repo"),
        (
            "ssh://git@gitea.example.com:2222/ops/apps.git",
            "ssh://git@gitea.example.com:2222/ops/apps",
        ),
    ],
)
def test_normalize_repo_url(url: str, normalized: str) -> None:
    assert normalize_repo_url(url) == normalized


def event_for(*urls: str) -> PushEvent:
    return PushEvent("github", list(urls), "refs/heads/main", "main")


@pytest.mark.parametrize(
    "app_url",
    [
        "https://github.com/Org/Repo.git",
        "https://github.com/org/repo",
        "git@github.com:org/repo",
        "git@github.com:Org/Repo.git",
        "ssh://git@github.com/org/repo",
        "ssh://git@github.com:22/org/repo.git",
        "https://x-access-token:secret@github.com/org/repo.git",
        "git://github.com/org/repo.git",
        "github.com/org/repo",
    ],
)
def test_matches_any_spelling_of_the_same_repository(app_url: str) -> None:
    for pushed in ("https://github.com/ORG/REPO", "git@github.com:org/repo.git"):
        assert matches(app_url, event_for(pushed)), (app_url, pushed)


@pytest.mark.parametrize(
    "app_url",
    [
        "https://github.com/org/repo-other",
        "https://github.com/org/rep",
        "https://github.com/org",
        "https://gitlab.com/org/repo",
        "https://github.com/org/repo/sub",
        "",
    ],
)
def test_matches_refuses_other_repositories(app_url: str) -> None:
    assert not matches(app_url, event_for("https://github.com/org/repo.git"))


def test_matches_uses_every_url_of_the_event() -> None:
    data = body("gitea-push.json")
    event = parse_webhook(gitea_headers(data), data, SECRETS)
    assert event is not None
    # The app uses the SSH URL on the non-default port; the HTTPS clone URL also names it.
    assert matches("ssh://git@gitea.example.com:2222/ops/cluster-apps.git", event)
    assert matches("https://gitea.example.com/OPS/cluster-apps", event)
    assert not matches("https://gitea.example.com/ops/other-apps", event)
