"""Chart version constraints as Helm and Argo CD read a targetRevision."""

from __future__ import annotations

import pytest

from tether.errors import InvalidSpec
from tether.source.chart_version import Constraint, Version, highest_match, is_exact

pytestmark = pytest.mark.unit

VERSIONS = ["0.9.0", "1.0.0", "1.2.0", "1.2.3", "1.2.10", "1.3.0-rc.1", "1.3.0", "2.0.0", "v2.1.0"]


@pytest.mark.parametrize(
    ("wanted", "picked"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("2.1.0", "v2.1.0"),
        ("1.2.*", "1.2.10"),
        ("1.2.x", "1.2.10"),
        ("1.2", "1.2.10"),
        ("1.*", "1.3.0"),
        ("*", "v2.1.0"),
        ("", "v2.1.0"),
        ("HEAD", "v2.1.0"),
        (">=1.0 <2.0", "1.3.0"),
        (">=1.0, <2.0", "1.3.0"),
        (">= 1.0, < 1.3", "1.2.10"),
        ("~1.2.0", "1.2.10"),
        ("~1.2", "1.2.10"),
        ("~1", "1.3.0"),
        ("^1.0.0", "1.3.0"),
        ("^0.9", "0.9.0"),
        ("1.0 - 1.2.3", "1.2.3"),
        ("<1.2", "1.0.0"),
        ("<=1.2", "1.2.10"),
        (">1.2", "v2.1.0"),
        (">1.2 <2", "1.3.0"),
        ("!=1.3.0 <2", "1.2.10"),
        ("!=1.3.* <2", "1.2.10"),
        ("<1.0 || 1.2.*", "1.2.10"),
        (">=1.3.0-0 <1.3.0", "1.3.0-rc.1"),
    ],
)
def test_highest_match_picks_the_highest_allowed_version(wanted: str, picked: str) -> None:
    assert highest_match(wanted, VERSIONS) == picked


@pytest.mark.parametrize("wanted", ["3.0.0", "3.*", ">2.1.0", "~0.1", "1.2.4"])
def test_nothing_matches(wanted: str) -> None:
    assert highest_match(wanted, VERSIONS) is None


def test_a_range_never_picks_a_prerelease_unless_it_names_one() -> None:
    assert highest_match("1.3.*", ["1.3.0-rc.1"]) is None
    assert highest_match(">=1.3.0-rc.0", ["1.3.0-rc.1"]) == "1.3.0-rc.1"


def test_an_exact_version_matches_its_own_spelling_even_when_not_semver() -> None:
    assert highest_match("2024-01-build7", ["2024-01-build7", "1.0.0"]) == "2024-01-build7"
    assert highest_match("1.3.0-rc.1", VERSIONS) == "1.3.0-rc.1"


def test_exact_or_range() -> None:
    assert is_exact("1.2.3") and is_exact("v1.2.3-rc.1+build.5") and is_exact("nightly")
    for text in (
        "1.2",
        "1",
        "1.2.*",
        "1.x",
        "~1.2",
        "^1",
        ">=1",
        "1 - 2",
        "1 || 2",
        "*",
        "",
        "HEAD",
    ):
        assert not is_exact(text), text


def test_prerelease_ordering_follows_semver() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2"]
    order += ["1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    parsed = [Version.parse(v) for v in order]
    assert all(p is not None for p in parsed)
    assert sorted(order, key=lambda v: Version.parse(v)) == order  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("bad", ["banana", ">=1.0 <two", "1.2.3.4.5", "=>"])
def test_a_bad_constraint_is_an_invalid_spec_naming_it(bad: str) -> None:
    with pytest.raises(InvalidSpec) as e:
        Constraint.parse(bad)
    assert "targetRevision" in str(e.value)
