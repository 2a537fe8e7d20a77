"""What an Application's status is written with: every URL's credentials masked, anywhere
in it, and the status left as it is when there is nothing to mask."""

from __future__ import annotations

import pytest

from tether.status import _without_credentials

pytestmark = pytest.mark.unit


def test_credentials_are_masked_wherever_they_are_in_status() -> None:
    status = {
        "history": [{"id": 1, "source": {"repoURL": "https://user:s3cr3t@git.example/x.git"}}],
        "conditions": [{"message": "fetch of https://tok3n@git.example/y.git failed: ünreachable"}],
        "observedGeneration": 3,
    }
    out = _without_credentials(status)
    assert out["history"][0]["source"]["repoURL"] == "https://***@git.example/x.git"
    assert out["conditions"][0]["message"] == (
        "fetch of https://***@git.example/y.git failed: ünreachable"
    )
    assert out["observedGeneration"] == 3
    assert "s3cr3t" not in str(out) and "tok3n" not in str(out)


def test_a_status_with_nothing_to_mask_is_returned_as_it_is() -> None:
    status = {"sync": {"status": "Synced", "revision": "abc"}, "resources": [], "n": None}
    assert _without_credentials(status) is status
