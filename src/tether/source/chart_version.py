"""Chart versions and the constraints a ``targetRevision`` may give (Helm's semver rules).

The syntax is the one Helm and Argo CD take (Masterminds semver): ``1.2.3`` or ``v1.2.3``
(exact), ``1.2.*``/``1.2.x``/``1.2`` (any patch of 1.2), ``*`` (any), comparisons
``= != > >= < <=``, ``~1.2.3`` (same minor), ``^1.2.3`` (same major; same minor below 1.0),
a hyphen range ``1.2 - 1.4.5``; comparisons joined by spaces or commas must all hold,
``||`` separates alternatives. A pre-release version (``1.3.0-rc.1``) is chosen only when
a comparison in the same alternative names a pre-release, so ``1.*`` never picks an rc.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering

from tether.errors import InvalidSpec

_VERSION = re.compile(
    r"^[vV]?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)
_PARTIAL = re.compile(
    r"^[vV]?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_TERM = re.compile(r"^(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*(?P<ver>\S+)$")
_HYPHEN = re.compile(r"^(?P<low>\S+)\s+-\s+(?P<high>\S+)$")
_WILD = {"x", "X", "*"}
# Operators and wildcards: a targetRevision without any of them names one exact version.
_CONSTRAINT_CHARS = re.compile(r"[<>=!~^*|, ]|(?:^|\.)[xX](?:\.|$)|\s-\s")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    text: str = ""
    """The version as the repository spells it (``v1.2.3``, ``1.2.3+build``)."""

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The version, or None when ``text`` is not semver (``1`` and ``1.2`` are read as
        ``1.0.0`` and ``1.2.0``, as Helm does)."""
        m = _VERSION.match(text.strip())
        if not m:
            return None
        pre = tuple(m["pre"].split(".")) if m["pre"] else ()
        return cls(int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0), pre, text)

    @property
    def prerelease(self) -> bool:
        return bool(self.pre)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric.
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class _Bound:
    op: str
    """One of ``>= > <= < == !=``."""
    version: Version

    def holds(self, v: Version) -> bool:
        c = self.version
        return {
            ">=": v >= c,
            ">": v > c,
            "<=": v <= c,
            "<": v < c,
            "==": v == c,
            "!=": v != c,
        }[self.op]


@dataclass(frozen=True)
class _Group:
    """Comparisons that must all hold (one side of ``||``)."""

    bounds: tuple[_Bound, ...]
    excluded: tuple[tuple[Version, Version], ...] = ()
    """Half-open ranges [low, high) ruled out by a wildcard ``!=``."""
    allows_prerelease: bool = False

    def holds(self, v: Version) -> bool:
        if v.prerelease and not self.allows_prerelease:
            return False
        if any(low <= v < high for low, high in self.excluded):
            return False
        return all(b.holds(v) for b in self.bounds)


@dataclass(frozen=True)
class Constraint:
    """A parsed ``targetRevision``; ``matches`` tells whether a version satisfies it."""

    text: str
    groups: tuple[_Group, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Raises InvalidSpec naming the part that is not a version or comparison."""
        spec = text.strip() or "*"
        groups = tuple(_group(part.strip() or "*", text) for part in spec.split("||"))
        return cls(text, groups)

    def matches(self, v: Version) -> bool:
        return any(g.holds(v) for g in self.groups)


def is_exact(text: str) -> bool:
    """Whether ``text`` names one version rather than a range: ``1.2.3``, ``v2.0.0-rc.1``, or
    a string that is no version syntax at all. ``1.2`` is a range (any 1.2.x), as in Helm."""
    t = text.strip()
    if not t or t.upper() == "HEAD" or _CONSTRAINT_CHARS.search(t):
        return False
    m = _PARTIAL.match(t)
    return m is None or m["patch"] is not None


def highest_match(text: str, versions: Iterable[str]) -> str | None:
    """The highest of ``versions`` that ``text`` allows, as spelled in ``versions``.

    As Helm does, a version spelled exactly like ``text`` wins first (so versions that are
    not semver work too); an exact ``text`` then matches a version equal to it as semver
    (``v1.2.3`` and ``1.2.3``); otherwise ``text`` is a constraint. ``""``, ``*`` and
    ``HEAD`` mean the highest release. A range never picks a version that is not semver."""
    listed = list(versions)
    t = text.strip()
    if t.upper() == "HEAD":
        t = "*"
    if t and t in listed:
        return t
    if is_exact(t):
        want = Version.parse(t)
        same = [s for s in listed if want is not None and Version.parse(s) == want]
        return same[0] if same else None
    constraint = Constraint.parse(t)
    parsed = [(v, s) for s in listed if (v := Version.parse(s)) is not None]
    ok = [(v, s) for v, s in parsed if constraint.matches(v)]
    return max(ok, key=lambda pair: pair[0])[1] if ok else None


def _group(part: str, whole: str) -> _Group:
    bounds: list[_Bound] = []
    excluded: list[tuple[Version, Version]] = []
    pre = False
    hyphen = _HYPHEN.match(part)
    terms = [f">={hyphen['low']}", f"<={hyphen['high']}"] if hyphen else _split_terms(part)
    for term in terms:
        m = _TERM.match(term)
        if not m:
            raise _invalid(term, whole)
        b, ex, has_pre = _term(m["op"] or "=", m["ver"], whole)
        bounds.extend(b)
        excluded.extend(ex)
        pre = pre or has_pre
    return _Group(tuple(bounds), tuple(excluded), pre)


def _split_terms(part: str) -> list[str]:
    # ">= 1.2, < 2" -> [">=1.2", "<2"]: an operator may stand apart from its version.
    tokens = [t for t in re.split(r"[\s,]+", part) if t]
    out: list[str] = []
    for tok in tokens:
        if out and re.fullmatch(r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^", out[-1]):
            out[-1] += tok
        else:
            out.append(tok)
    return out


def _term(
    op: str, ver: str, whole: str
) -> tuple[list[_Bound], list[tuple[Version, Version]], bool]:
    """The bounds one comparison stands for, the ranges it rules out, and whether it names a
    pre-release."""
    m = _PARTIAL.match(ver)
    if not m:
        raise _invalid(ver, whole)
    parts = [m["major"], m["minor"], m["patch"]]
    fixed = 0
    for p in parts:
        if p is None or p in _WILD:
            break
        fixed += 1
    nums = [int(p) for p in parts[:fixed]] + [0] * (3 - fixed)
    pre = tuple(m["pre"].split(".")) if m["pre"] and fixed == 3 else ()
    low = Version(nums[0], nums[1], nums[2], pre)
    # The first version past the wildcard: 1.2.* -> 1.3.0; 1.* -> 2.0.0; * -> none.
    high = _bump(low, fixed - 1) if 0 < fixed < 3 else None
    op = {"=>": ">=", "=<": "<="}.get(op, op)
    b, ex = _bounds(op, low, high, fixed)
    return b, ex, bool(pre)


def _bounds(
    op: str, low: Version, high: Version | None, fixed: int
) -> tuple[list[_Bound], list[tuple[Version, Version]]]:
    floor = Version(0, 0, 0, ("0",))
    ceiling = high
    if op == "=":
        if fixed == 0:
            return [], []
        if ceiling is None:
            return [_Bound("==", low)], []
        return [_Bound(">=", low), _Bound("<", ceiling)], []
    if op == "!=":
        if fixed == 0:
            return [_Bound("<", floor)], []
        if ceiling is None:
            return [_Bound("!=", low)], []
        return [], [(low, ceiling)]
    if op == ">":
        if fixed == 0:
            return [_Bound("<", floor)], []
        return [_Bound(">=", ceiling)] if ceiling else [_Bound(">", low)], []
    if op == ">=":
        return [_Bound(">=", low)], []
    if op == "<":
        return ([_Bound("<", low)] if fixed else [_Bound("<", floor)]), []
    if op == "<=":
        if fixed == 0:
            return [], []
        return [_Bound("<", ceiling)] if ceiling else [_Bound("<=", low)], []
    if op in ("~", "~>"):
        # ~1.2.3 and ~1.2 keep the minor; ~1 keeps the major.
        top = _bump(low, 0 if fixed <= 1 else 1)
        return [_Bound(">=", low), _Bound("<", top)] if fixed else [], []
    # "^": keep the left-most non-zero part.
    if fixed == 0:
        return [], []
    if low.major > 0 or fixed == 1:
        top = _bump(low, 0)
    elif low.minor > 0 or fixed == 2:
        top = _bump(low, 1)
    else:
        top = _bump(low, 2)
    return [_Bound(">=", low), _Bound("<", top)], []


def _bump(v: Version, index: int) -> Version:
    """The lowest version past ``v`` in part ``index`` (0 major, 1 minor, 2 patch)."""
    if index <= 0:
        return Version(v.major + 1, 0, 0, ("0",))
    if index == 1:
        return Version(v.major, v.minor + 1, 0, ("0",))
    return Version(v.major, v.minor, v.patch + 1, ("0",))


def _invalid(part: str, whole: str) -> InvalidSpec:
    return InvalidSpec(
        f"targetRevision {whole!r}: {part!r} is not a chart version or a version constraint",
        hint="use an exact version (1.2.3) or a constraint such as 1.2.*, ~1.2, ^1.0 "
        "or '>=1.0 <2.0'",
    )
