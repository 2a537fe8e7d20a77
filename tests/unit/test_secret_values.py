"""Reading Secrets: a binary value is skipped with a warning, never a failure or a leak."""

from __future__ import annotations

import base64
import logging

import pytest

from tether.api.application import Application, new_application
from tether.deletion import DELETING_ANNOTATION, being_deleted
from tether.errors import InvalidSpec
from tether.kube.secrets import decode_secret_data

pytestmark = pytest.mark.unit

DER = bytes.fromhex("308203a2a0030201020214") + b"\xff\xfe\x80"


def secret(data: dict[str, bytes], rv: str = "1", **string_data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "git-creds", "namespace": "apps", "resourceVersion": rv},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        "stringData": string_data,
    }


def test_a_binary_key_is_skipped_and_named_the_text_keys_are_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tether.kube.secrets")
    s = secret(
        {"url": b"https://git.example.com/org", "password": b"s3cr3t", "ca.der": DER},
        username="deploy",
    )
    assert decode_secret_data(s) == {
        "url": "https://git.example.com/org",
        "password": "s3cr3t",
        "username": "deploy",
    }
    (line,) = [r.getMessage() for r in caplog.records]
    assert "apps/git-creds" in line and "'ca.der'" in line and "not UTF-8" in line
    assert "s3cr3t" not in caplog.text


def test_the_warning_is_given_once_per_version_of_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tether.kube.secrets")
    for _ in range(5):
        decode_secret_data(secret({"ca.der": DER}, rv="7"))
    decode_secret_data(secret({"ca.der": DER}, rv="8"))
    assert len(caplog.records) == 2


def test_a_value_that_is_not_base64_is_skipped() -> None:
    s = secret({})
    s["data"] = {"token": "%%%not base64%%%", "url": base64.b64encode(b"https://h/x").decode()}
    assert decode_secret_data(s) == {"url": "https://h/x"}


def test_an_unparsable_repo_url_is_an_invalid_spec_of_that_app_alone() -> None:
    obj = new_application("ok", "apps", repo_url="https://h/x.git", path="app")
    for bad in ("http://[oops/x.git", "http://host:99999/x.git"):
        obj["spec"]["source"]["repoURL"] = bad
        with pytest.raises(InvalidSpec, match=r"spec\.source\.repoURL is not a valid URL"):
            Application.from_obj(obj)
    obj["spec"]["source"]["repoURL"] = "https://user:tok3n@h/x.git"
    assert Application.from_obj(obj).source.repo_url.endswith("h/x.git")


def test_an_application_is_being_deleted_when_marked_or_when_its_deletion_started() -> None:
    obj = new_application("web", "apps", repo_url="https://h/x.git", path="app")
    assert being_deleted(obj) == ""
    obj["metadata"]["annotations"] = {DELETING_ANNOTATION: "2026-11-27T13:00:00Z"}
    assert "tether app delete" in being_deleted(obj)
    obj["metadata"] = {"name": "web", "deletionTimestamp": "2026-11-27T13:00:00Z"}
    assert "deletionTimestamp" in being_deleted(obj)
