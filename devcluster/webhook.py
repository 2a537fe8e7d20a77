"""A GitHub push delivery, signed as GitHub signs it: what the demo, the tests and the
benchmarks send to tether's webhook route."""

from __future__ import annotations

import hashlib
import hmac
import json


def github_push(
    repo_url: str, sha: str, secret: str, *, branch: str = "main", pusher: str = "alice"
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a push of ``sha`` to ``branch``, signed with ``secret``
    (``X-Hub-Signature-256``: HMAC-SHA256 of the raw body)."""
    body = json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": sha,
            "repository": {"clone_url": repo_url, "html_url": repo_url},
            "pusher": {"name": pusher},
        }
    ).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={sig}",
        "Content-Type": "application/json",
    }
