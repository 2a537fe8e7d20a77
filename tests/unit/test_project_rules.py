"""Project rules as pure functions, on the Projects of tests/fixtures/projects: globs with
``!deny``, repositories compared normalised, destinations, which namespaces may use a
project, cluster-scoped kinds denied by default, white- and blacklists, the built-in default
project, the refusal's message and condition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.api.application import Application, crd_manifests, new_application
from tether.api.project import Project, builtin_default, glob_match, repo_match, repo_pattern
from tether.errors import InvalidSpec
from tether.model import Manifest, Obj
from tether.project import (
    ProjectViolation,
    Violation,
    check_app,
    check_object,
    check_objects,
    enforce_render,
    refuse,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "projects" / "team-a.yaml"


@pytest.fixture(scope="module")
def projects() -> dict[str, Project]:
    docs = [d for d in yaml.safe_load_all(FIXTURES.read_text()) if d]
    return {d["metadata"]["name"]: Project.from_obj(d) for d in docs}


def app(
    namespace: str = "team-a",
    repo: str = "https://git.example.com/team-a/web.git",
    dest: str = "team-a-dev",
    project: str = "team-a",
) -> Application:
    obj = new_application("web", namespace, repo_url=repo, path=".", dest_namespace=dest)
    obj["spec"]["project"] = project
    return Application.from_obj(obj)


def manifest(kind: str, name: str, namespace: str = "", api_version: str = "v1") -> Manifest:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    obj: Obj = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    return Manifest(obj, "app/objects.yaml", 3)


CLUSTER_ROLE = ("ClusterRole", "reader", "", "rbac.authorization.k8s.io/v1")


# ---- globs -----------------------------------------------------------------------------------


def test_globs_match_like_fnmatch_and_a_bang_denies() -> None:
    assert glob_match("team-a-dev", ["team-a-*"])
    assert glob_match("team-a-1", ["team-a-?"])
    assert glob_match("team-a-1", ["team-a-[0-9]"])
    assert not glob_match("team-a-x", ["team-a-[0-9]"])
    assert not glob_match("team-b", ["team-a-*"])
    # A deny wins over any allow, wherever it stands in the list.
    assert not glob_match("team-a-prod", ["!team-a-prod", "team-a-*"])
    assert not glob_match("team-a-prod", ["team-a-*", "!team-a-prod"])
    # Deny patterns alone allow nothing; an empty list allows nothing.
    assert not glob_match("anything", ["!other"])
    assert not glob_match("anything", [])
    assert glob_match("anything", ["*"])
    assert not glob_match("Team-A-dev", ["team-a-*"])  # case matters, as in namespace names


def test_repositories_are_compared_in_their_normalised_spelling() -> None:
    patterns = (repo_pattern("https://git.example.com/team-a/*"),)
    # Credentials, a trailing .git and the host's case do not change which repo it is.
    assert repo_match("https://user:s3cr3t@GIT.example.com/team-a/web.git", patterns)
    assert repo_match("https://git.example.com/team-a/web", patterns)
    assert not repo_match("https://git.example.com/team-b/web.git", patterns)
    # A pattern written with .git or credentials matches the same way.
    assert repo_match(
        "https://git.example.com/x/y", (repo_pattern("https://a:b@git.example.com/x/y.git"),)
    )
    # scp-like SSH is read as ssh://.
    assert repo_match("git@github.com:org/app.git", (repo_pattern("ssh://git@github.com/org/*"),))
    assert repo_match("https://anything.example/x", (repo_pattern("*"),))
    assert repo_pattern("!https://h/x.git") == "!https://h/x"
    # Globs in the host or port survive normalising the pattern.
    assert repo_pattern("https://u:p@GIT.example.com:443/team-*/x.git/") == (
        "https://git.example.com/team-*/x"
    )
    local = (repo_pattern("http://127.0.0.1:*/*"),)
    assert repo_match("http://127.0.0.1:33693/repo.git", local)
    assert not repo_match("http://127.0.0.2:33693/repo.git", local)
    assert repo_pattern("git@github.com:org/*.git") == "ssh://git@github.com/org/*"


# ---- the Application ------------------------------------------------------------------------


def test_an_app_within_its_project_has_no_violation(projects: dict[str, Project]) -> None:
    assert check_app(projects["team-a"], app()) == []
    assert check_app(projects["team-a"], app(dest="shared")) == []


def test_a_repository_not_in_source_repos_is_refused_naming_the_rule(
    projects: dict[str, Project],
) -> None:
    (v,) = check_app(projects["team-a"], app(repo="https://tok@git.example.com/other/x.git"))
    assert v.rule == "sourceRepos"
    assert v.message == (
        "project team-a does not allow source repository https://***@git.example.com/other/x.git "
        "(sourceRepos: https://git.example.com/team-a/*, !https://git.example.com/team-a/secret*)"
    )
    (denied,) = check_app(projects["team-a"], app(repo="https://git.example.com/team-a/secrets"))
    assert denied.rule == "sourceRepos"


def test_every_source_of_an_app_is_checked(projects: dict[str, Project]) -> None:
    obj = new_application(
        "web", "team-a", repo_url="https://x/y", path=".", dest_namespace="team-a-x"
    )
    obj["spec"]["project"] = "team-a"
    del obj["spec"]["source"]
    obj["spec"]["sources"] = [
        {"repoURL": "https://git.example.com/team-a/web.git", "path": "."},
        {"repoURL": "https://git.example.com/elsewhere/values.git", "ref": "values"},
    ]
    violations = check_app(projects["team-a"], Application.from_obj(obj))
    assert [v.rule for v in violations] == ["sourceRepos"]
    assert "elsewhere/values.git" in violations[0].message


def test_a_destination_outside_is_refused(projects: dict[str, Project]) -> None:
    (v,) = check_app(projects["team-a"], app(dest="kube-system"))
    assert v.rule == "destinations"
    assert v.message == (
        "project team-a does not allow destination namespace kube-system "
        "(destinations: team-a-*, !team-a-prod, shared, elsewhere)"
    )
    assert [v.rule for v in check_app(projects["team-a"], app(dest="team-a-prod"))] == [
        "destinations"
    ]
    # An entry for another cluster never matches this one.
    assert [v.rule for v in check_app(projects["team-a"], app(dest="elsewhere"))] == [
        "destinations"
    ]


def test_an_app_in_a_namespace_that_may_not_use_the_project_is_refused(
    projects: dict[str, Project],
) -> None:
    (v,) = check_app(projects["team-a"], app(namespace="team-b"))
    assert v.rule == "sourceNamespaces"
    assert v.message == (
        "project team-a does not allow Applications in namespace team-b (sourceNamespaces: team-a)"
    )


def test_a_project_written_empty_allows_nothing(projects: dict[str, Project]) -> None:
    rules = [v.rule for v in check_app(projects["empty"], app(project="empty"))]
    assert rules == ["sourceNamespaces", "sourceRepos", "destinations"]
    assert "sourceRepos: none" in check_app(projects["empty"], app(project="empty"))[1].message


# ---- the objects of the render ----------------------------------------------------------------


def test_cluster_scoped_kinds_are_denied_unless_whitelisted(projects: dict[str, Project]) -> None:
    team_a = projects["team-a"]
    assert check_object(team_a, manifest("Namespace", "team-a-new")) is None
    v = check_object(team_a, manifest(*CLUSTER_ROLE))
    assert v is not None and v.rule == "clusterResourceWhitelist"
    assert v.message == (
        "app/objects.yaml:3: project team-a does not allow cluster-scoped ClusterRole reader "
        "(rbac.authorization.k8s.io/ClusterRole is not in clusterResourceWhitelist: Namespace)"
    )
    empty = check_object(projects["empty"], manifest("Namespace", "x"))
    assert empty is not None
    assert "clusterResourceWhitelist is empty: no cluster-scoped kind is allowed" in empty.message


def test_blacklists_win_over_whitelists(projects: dict[str, Project]) -> None:
    no_rbac = projects["no-rbac"]
    assert check_object(no_rbac, manifest("Namespace", "x")) is None
    v = check_object(no_rbac, manifest(*CLUSTER_ROLE))
    assert v is not None and v.rule == "clusterResourceBlacklist"
    role = manifest("Role", "r", "team-a-dev", "rbac.authorization.k8s.io/v1")
    v = check_object(no_rbac, role)
    assert v is not None and v.rule == "namespaceResourceBlacklist"
    quota = check_object(projects["team-a"], manifest("ResourceQuota", "q", "team-a-dev"))
    assert quota is not None and quota.rule == "namespaceResourceBlacklist"
    assert quota.message.endswith("(namespaceResourceBlacklist: ResourceQuota)")


def test_a_namespaced_whitelist_allows_only_its_kinds(projects: dict[str, Project]) -> None:
    strict = projects["strict"]
    deploy = manifest("Deployment", "web", "any", "apps/v1")
    assert check_object(strict, deploy) is None
    assert check_object(strict, manifest("Service", "web", "any")) is None
    v = check_object(strict, manifest("ConfigMap", "c", "any"))
    assert v is not None and v.rule == "namespaceResourceWhitelist"
    assert "ConfigMap is not in namespaceResourceWhitelist: apps/Deployment, Service" in v.message


def test_an_object_naming_a_namespace_outside_the_destinations_is_refused(
    projects: dict[str, Project],
) -> None:
    v = check_object(projects["team-a"], manifest("ConfigMap", "c", "team-a-prod"))
    assert v is not None and v.rule == "destinations"
    assert "ConfigMap team-a-prod/c: namespace team-a-prod is not among its destinations" in (
        v.message
    )
    assert check_object(projects["team-a"], manifest("ConfigMap", "c", "team-a-dev")) is None


def test_a_hook_made_from_generate_name_is_checked_too(projects: dict[str, Project]) -> None:
    hook = manifest("ClusterRoleBinding", "", "", "rbac.authorization.k8s.io/v1")
    hook.obj["metadata"] = {"generateName": "migrate-"}
    (v,) = check_objects(projects["team-a"], [hook])
    assert "cluster-scoped ClusterRoleBinding migrate-*" in v.message


# ---- the default project ----------------------------------------------------------------------


def test_the_built_in_default_allows_what_tether_allowed_before_projects() -> None:
    default = builtin_default()
    anywhere = app(namespace="any-ns", repo="git@host:org/x.git", dest="kube-system", project="")
    assert anywhere.project == "default"
    assert check_app(default, anywhere) == []
    objects = [
        manifest(*CLUSTER_ROLE),
        manifest("Namespace", "x"),
        manifest("CustomResourceDefinition", "w.example.com", "", "apiextensions.k8s.io/v1"),
        manifest("ResourceQuota", "q", "kube-system"),
    ]
    assert check_objects(default, objects) == []
    assert default.label == "project default (built in)"


# ---- the refusal ------------------------------------------------------------------------------


def test_a_refusal_names_each_rule_and_is_its_own_condition(projects: dict[str, Project]) -> None:
    with pytest.raises(ProjectViolation) as caught:
        enforce_render(
            projects["team-a"],
            [manifest(*CLUSTER_ROLE), manifest("ResourceQuota", "q", "team-a-dev")],
        )
    e = caught.value
    assert e.condition_type == "ProjectViolation" and e.reason == "ProjectViolation"
    assert e.rules == ("clusterResourceWhitelist", "namespaceResourceBlacklist")
    assert "ClusterRole reader" in e.message and "ResourceQuota team-a-dev/q" in e.message
    assert "until then a sync applies and prunes nothing" in e.hint
    refuse(projects["team-a"], [])  # nothing broken: no refusal


def test_a_long_refusal_quotes_five_and_counts_the_rest(projects: dict[str, Project]) -> None:
    many = [Violation("destinations", f"object {i}") for i in range(8)]
    with pytest.raises(ProjectViolation) as caught:
        refuse(projects["team-a"], many)
    assert caught.value.message.endswith("object 3; object 4; and 3 more")


# ---- reading specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"sourceRepos": "https://x"}, "sourceRepos must be a list"),
        ({"destinations": [{"server": "https://kubernetes.default.svc"}]}, "destinations[0]"),
        ({"clusterResourceWhitelist": [{"group": ""}]}, "clusterResourceWhitelist[0]"),
        ({"namespaceResourceBlacklist": {"kind": "Secret"}}, "namespaceResourceBlacklist must"),
        ({"syncWindows": [{"kind": "maybe", "schedule": "* * * * *", "duration": "1h"}]}, "kind"),
    ],
)
def test_a_bad_project_spec_is_invalid_naming_the_field(spec: dict[str, Any], says: str) -> None:
    obj = {"apiVersion": "tether.dev/v1alpha1", "kind": "Project", "metadata": {"name": "p"}}
    with pytest.raises(InvalidSpec, match=f"Project p.*{says}".replace("[", r"\[")):
        Project.from_obj({**obj, "spec": spec})


def test_application_project_defaults_to_default_and_must_be_a_name() -> None:
    obj = new_application("web", "ns", repo_url="https://x/y", path=".")
    assert Application.from_obj(obj).project == "default"
    obj["spec"]["project"] = "team-a"
    assert Application.from_obj(obj).project == "team-a"
    assert (
        new_application("w", "ns", repo_url="https://x/y", path=".", project="p1")["spec"][
            "project"
        ]
        == "p1"
    )
    obj["spec"]["project"] = "Team A"
    with pytest.raises(InvalidSpec, match=r"spec\.project 'Team A' is not a Project name"):
        Application.from_obj(obj)


def test_install_crds_ships_the_project_crd_as_deployed() -> None:
    kinds = {c["spec"]["names"]["kind"]: c for c in crd_manifests()}
    assert kinds["Project"]["spec"]["scope"] == "Cluster"
    packaged = REPO / "src" / "tether" / "manifests" / "crd-project.yaml"
    assert (REPO / "deploy" / "crds" / "project.yaml").read_text() == packaged.read_text()
