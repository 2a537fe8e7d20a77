"""Rollback's pure parts: the commit message (revert form or not), pull-request URLs per forge,
the printed git commands, which revision --steps picks, the kubeconfig identity, and which
paths an app reads (with a real local git repository, read through pygit2)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml

from tether.api.application import Application
from tether.errors import TetherError
from tether.service.identity import kube_user, requester, subject_cn
from tether.service.rollback_plan import Refused
from tether.service.rollback_target import (
    app_paths,
    refuse_pinned,
    steps_back,
    tracked_branch,
)
from tether.service.rollback_text import (
    manual_commands,
    pull_request_url,
    revert_form,
    rollback_message,
    web_url,
)
from tether.source.commits import CommitSummary, Person
from tether.source.git_write import (
    commits_between,
    restore_tree,
    tree_of,
    write_commit,
)
from tether.source.view import GitTreeView

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rollback"
WHEN = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def summary(sha: str, subject: str, *, only: bool = True, touches: bool = True) -> CommitSummary:
    return CommitSummary(
        sha=sha * 40 if len(sha) == 1 else sha,
        subject=subject,
        author=Person("Mallory", "m@example.com"),
        time=WHEN,
        only_ours=only,
        touches=touches,
    )


TARGET = summary("a", "good")


# ---- messages --------------------------------------------------------------------------------


def test_one_commit_that_touched_only_the_app_is_a_git_revert() -> None:
    bad = summary("b", "Paint it red")
    msg = rollback_message("shop/web", TARGET, [bad], ["app"])
    lines = msg.splitlines()
    assert lines[0] == 'Revert "Paint it red"'
    assert f"This reverts commit {'b' * 40}." in lines
    assert "  bbbbbbbbbb Paint it red (Mallory <m@example.com>)" in lines
    assert "Tether-Application: shop/web" in lines


def test_several_commits_revert_in_one_commit_listing_them() -> None:
    commits = [summary("c", "third"), summary("b", "second"), summary("d", "first")]
    msg = rollback_message("shop/web", TARGET, commits, ["app"])
    assert msg.splitlines()[0] == 'Revert "third" and 2 earlier commits'
    for ch in "cbd":
        assert f"This reverts commit {ch * 40}." in msg
    assert revert_form(commits)


def test_a_commit_that_touched_other_paths_makes_it_a_roll_back() -> None:
    commits = [summary("b", "mixed", only=False), summary("c", "elsewhere", touches=False)]
    msg = rollback_message("shop/web", TARGET, commits, ["app", "base"])
    lines = msg.splitlines()
    assert lines[0] == "Roll back shop/web to aaaaaaaaaa"
    assert "This reverts commit" not in msg
    assert f"Restores app, base to their content at {'a' * 40} (good)." in lines
    # Only the commits that changed the app's paths are named as rolled back.
    assert "  bbbbbbbbbb mixed (Mallory <m@example.com>)" in lines
    assert "elsewhere" not in msg


def test_message_option_replaces_only_the_first_line() -> None:
    msg = rollback_message("shop/web", TARGET, [summary("b", "bad")], ["app"], first_line="Undo")
    assert msg.splitlines()[0] == "Undo"
    assert f"This reverts commit {'b' * 40}." in msg


# ---- pull-request URLs and printed commands --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "want"),
    [
        (
            "https://github.com/acme/shop.git",
            "https://github.com/acme/shop/compare/main...rb%2Fx?expand=1",
        ),
        (
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop/compare/main...rb%2Fx?expand=1",
        ),
        (
            "https://gitlab.example.com/g/sub/shop",
            "https://gitlab.example.com/g/sub/shop/-/merge_requests/new?"
            "merge_request%5Bsource_branch%5D=rb%2Fx&merge_request%5Btarget_branch%5D=main",
        ),
        (
            "ssh://git@bitbucket.org/acme/shop.git",
            "https://bitbucket.org/acme/shop/pull-requests/new?source=rb%2Fx&dest=main",
        ),
        (
            "http://gitea.local:3000/acme/shop.git",
            "http://gitea.local:3000/acme/shop/compare/main...rb%2Fx",
        ),
        ("https://codeberg.org/acme/shop", "https://codeberg.org/acme/shop/compare/main...rb%2Fx"),
        ("https://git.internal/acme/shop.git", ""),
    ],
)
def test_pull_request_url_per_forge(url: str, want: str) -> None:
    assert pull_request_url(url, "rb/x", "main") == want


def test_web_url_drops_credentials_and_ssh_port() -> None:
    assert web_url("https://tok:secret@github.com/a/b.git") == "https://github.com/a/b"
    assert web_url("ssh://git@gitlab.example.com:2222/a/b.git") == "https://gitlab.example.com/a/b"


def test_manual_commands_restore_paths_and_never_show_a_token() -> None:
    text = manual_commands(
        "https://x-access-token:s3cr3t@git.example.com/a/b.git",
        "main",
        "a" * 40,
        ["app", "app/new.yaml"],
        ["app"],
        'Revert "x"\n\nThis reverts commit b.\n',
        "Ada <ada@example.com>",
    )
    assert "s3cr3t" not in text
    assert text.splitlines() == [
        "git clone --branch main https://git.example.com/a/b.git rollback && cd rollback",
        "git rm -r -q --ignore-unmatch -- app app/new.yaml",
        f"git checkout {'a' * 40} -- app",
        "git commit --author 'Ada <ada@example.com>' -F - <<'EOF'",
        'Revert "x"',
        "",
        "This reverts commit b.",
        "EOF",
        "git push origin HEAD:refs/heads/main",
    ]


# ---- which revision, which branch, refusals ---------------------------------------------------


def app_with(status: dict[str, Any] | None = None, **spec: Any) -> Application:
    obj = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "source": {"repoURL": "https://git.example.com/a.git", "path": "app"},
            "destination": {"namespace": "web"},
            **spec,
        },
        "status": status or {},
    }
    return Application.from_obj(obj)


def test_steps_count_distinct_successful_revisions_back_from_the_synced_one() -> None:
    history = [
        {"id": 6, "revision": "bad", "result": "Succeeded"},
        {"id": 5, "revision": "bad", "result": "Succeeded"},  # a re-sync of the same
        {"id": 4, "revision": "broken", "result": "Failed"},  # never deployed
        {"id": 3, "revision": "good", "result": "Succeeded"},
        {"id": 2, "revision": "older", "result": "Succeeded"},
    ]
    app = app_with({"sync": {"revision": "bad"}, "history": history})
    assert steps_back(app, 1)["id"] == 3
    assert steps_back(app, 2)["id"] == 2
    with pytest.raises(Refused, match="2 earlier deployed revision"):
        steps_back(app, 3)


def test_a_pinned_app_is_refused_with_a_hint_to_unpin() -> None:
    obj = app_with().obj
    obj["spec"]["pin"] = {"revisions": ["a" * 40], "by": "bob", "at": "", "reason": "x"}
    with pytest.raises(Refused) as e:
        refuse_pinned(Application(**{**app_with().__dict__, "obj": obj}))
    assert "pinned by bob" in e.value.message and "tether app unpin web" in e.value.hint


def test_a_tag_is_not_a_branch_to_write_to() -> None:
    app = app_with()
    src = app.source
    assert tracked_branch(app, src, {"main": "1"}, "main") == "main"
    with pytest.raises(Refused, match="not a branch"):
        tracked_branch(
            app, type(src)(repo_url=src.repo_url, target_revision="v1.2"), {"main": "1"}, "main"
        )


# ---- identity ---------------------------------------------------------------------------------


def test_author_option_wins_and_is_checked() -> None:
    assert str(requester("admin", "Ada L <ada@example.com>")) == "Ada L <ada@example.com>"
    with pytest.raises(TetherError, match="Name <email>"):
        requester("admin", "just a name")


def test_kubeconfig_user_becomes_name_at_context() -> None:
    assert str(requester("admin", None, context="Prod EU")) == "admin <admin@prod-eu.tether>"
    assert str(requester("ada@example.com", None, context="x")) == "ada <ada@example.com>"


def test_client_certificate_common_name_is_the_user(tmp_path: Path) -> None:
    pem = (FIXTURES / "client-cert.pem").read_bytes()
    assert subject_cn(pem) == "ada.lovelace"
    config = {
        "current-context": "prod",
        "contexts": [{"name": "prod", "context": {"user": "cert-user", "cluster": "c"}}],
        "users": [
            {
                "name": "cert-user",
                "user": {"client-certificate-data": base64.b64encode(pem).decode()},
            },
            {"name": "token-user", "user": {"token": "t"}},
        ],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    user = kube_user(str(path))
    assert user is not None and (user.name, user.context) == ("ada.lovelace", "prod")
    config["contexts"][0]["context"]["user"] = "token-user"
    path.write_text(yaml.safe_dump(config))
    user = kube_user(str(path))
    assert user is not None and user.name == "token-user"


# ---- trees and history, on a real repository -----------------------------------------------------


def commit_files(repo: Any, files: dict[str, str | None], message: str) -> str:
    parent = None if repo.head_is_unborn else repo.head.target
    index = pygit2.Index()
    if parent is not None:
        index.read_tree(repo.get(parent).tree)
    for path, text in files.items():
        if text is None:
            index.remove(path)
        else:
            blob = repo.create_blob(text.encode())
            index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
    tree = index.write_tree(repo)
    sig = pygit2.Signature("T", "t@example.com")
    oid = repo.create_commit("HEAD", sig, sig, message, tree, [parent] if parent else [])
    return str(oid)


@pytest.fixture
def repo(tmp_path: Path) -> Any:
    return pygit2.init_repository(str(tmp_path / "r.git"), bare=True)


def test_restore_sets_paths_back_and_removes_files_added_since(repo: Any) -> None:
    good = commit_files(repo, {"app/a.yaml": "a: 1\n", "other/x.yaml": "x: 1\n"}, "good")
    bad = commit_files(
        repo, {"app/a.yaml": "a: 2\n", "app/new.yaml": "n: 1\n", "other/x.yaml": "x: 2\n"}, "bad"
    )
    tree = restore_tree(repo, bad, good, ["app"])
    new = write_commit(repo, tree, bad, "undo", Person("Ada", "a@x"), Person("tether", "t@x"))
    view = GitTreeView(repo, new)
    assert view.read("app/a.yaml") == b"a: 1\n"
    assert view.read("app/new.yaml") is None
    assert view.read("other/x.yaml") == b"x: 2\n"  # not the app's: kept
    assert restore_tree(repo, bad, bad, ["app"]) == tree_of(repo, bad)

    between = commits_between(repo, good, bad, ["app"])
    assert [(c.subject, c.touches, c.only_ours) for c in between] == [("bad", True, False)]


def test_app_paths_follow_the_renderer_inputs_and_ref_value_files(repo: Any) -> None:
    sha = commit_files(
        repo,
        {
            "overlays/prod/kustomization.yaml": "resources: [../../base]\n",
            "base/kustomization.yaml": "resources: [cm.yaml]\n",
            "base/cm.yaml": "kind: ConfigMap\n",
            "unrelated/x.yaml": "x: 1\n",
            "values/prod.yaml": "v: 1\n",
        },
        "k",
    )
    app = app_with(
        sources=[
            {"repoURL": "https://g/a.git", "path": "overlays/prod"},
            {
                "repoURL": "https://g/c.git",
                "chart": "web",
                "targetRevision": "1.0.0",
                "helm": {"valueFiles": ["$vals/values/prod.yaml"]},
            },
            {"repoURL": "https://g/a.git", "ref": "vals"},
        ],
        source=None,
    )
    members = [(0, app.sources[0]), (2, app.sources[2])]
    paths = app_paths(app, members, GitTreeView(repo, sha))
    assert paths == ["base", "overlays/prod", "values/prod.yaml"]


# ---- write access is explicit ------------------------------------------------------------------


def secret(name: str, label: str, **data: str) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {"name": name, "namespace": "shop", "labels": {"tether.dev/secret-type": label}}
    return {"metadata": meta}, data


def test_only_secrets_that_say_write_give_push_credentials() -> None:
    from tether.source.credentials import entries_from_secrets, match_write_credentials

    url = "https://git.example.com/org/app.git"
    read = secret("read", "repository", url=url, password="r")
    assert match_write_credentials(url, entries_from_secrets([read])) is None
    flagged = secret("rw", "repository", url=url, password="w", write="true")
    push_only = secret("push", "repository-write", url="https://git.example.com/org", token="p")
    found = match_write_credentials(url, entries_from_secrets([read, flagged, push_only]))
    assert found is not None and found.origin == "Secret shop/rw"  # the longer URL wins
    found = match_write_credentials(url, entries_from_secrets([read, push_only]))
    assert found is not None and found.origin == "Secret shop/push" and found.password == "p"


def test_a_chart_from_a_helm_repository_is_not_rolled_back_by_git() -> None:
    from tether.service.rollback_target import chart_notice, refuse_chart_only

    app = app_with(
        source={
            "repoURL": "https://charts.example.com",
            "chart": "web",
            "targetRevision": "1.4.0",
        }
    )
    e = refuse_chart_only(app, list(app.sources))
    assert "web 1.4.0" in e.message and "targetRevision" in e.message
    assert "tether app pin web VERSION" in e.hint
    assert "spec.source(s).targetRevision" in chart_notice(app, app.source)
