"""Jsonnet in directory sources: evaluation in the sandbox, its errors, and what it reads.

The programs of one app (``*.jsonnet``; ``*.libsonnet`` are only imported) are evaluated
with gojsonnet in one sandboxed process (:mod:`tether.render.jsonnet_worker`), so a runaway
program meets the sandbox's timeout and memory limit instead of the controller's. Imports
and library paths stay inside the repository.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tether.api.source import JsonnetOptions, JsonnetVar
from tether.errors import RenderError
from tether.render.base import RepoView
from tether.sandbox import Runner, ToolError, tool_message

TOOL = "jsonnet"
_WORKER = Path(__file__).with_name("jsonnet_worker.py")

# "file:line:column" as gojsonnet prints a location, in a static error's first line and in
# each frame of a runtime error's trace.
_LOCATION = re.compile(r"(?:^|\s)([^\s:]+\.(?:jsonnet|libsonnet|json)):(\d+):\d+")


@functools.cache
def version() -> str:
    """The Jsonnet engine's version, for the render cache key (asked once per process: it
    is part of every directory app's key)."""
    try:
        return f"gojsonnet {metadata.version('gojsonnet')}"
    except metadata.PackageNotFoundError:
        return "gojsonnet unknown"


@dataclass
class Evaluation:
    values: dict[str, object]
    """Program path (repository-relative) -> the value it evaluated to."""
    read: list[str]
    """Every file the programs imported, repository-relative."""


async def evaluate(
    root: Path, programs: list[str], options: JsonnetOptions, runner: Runner, *, app: str = ""
) -> dict[str, object]:
    """Each program's value; see :func:`evaluate_all`."""
    return (await evaluate_all(root, programs, options, runner, app=app)).values


async def evaluate_all(
    root: Path, programs: list[str], options: JsonnetOptions, runner: Runner, *, app: str = ""
) -> Evaluation:
    """Evaluate ``programs`` (paths relative to ``root``) with the app's ext vars, TLAs and
    libraries, in the sandbox. A Jsonnet error is a RenderError naming the file and line."""
    libs = [check_lib(root, lib) for lib in options.libs]
    request = {
        "programs": programs,
        "libs": libs,
        "ext_vars": _strings(options.ext_vars, "extVars", code=False),
        "ext_codes": _strings(options.ext_vars, "extVars", code=True),
        "tla_vars": _strings(options.tlas, "tlas", code=False),
        "tla_codes": _strings(options.tlas, "tlas", code=True),
    }
    result = await runner.run(
        # -I: the checkout is the working directory, and nothing in it may shadow a module.
        # Run by path, not -m: importing the tether package first would triple the start-up.
        [sys.executable, "-I", str(_WORKER)],
        tool=TOOL,
        cwd=root,
        stdin=json.dumps(request).encode(),
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(
            TOOL,
            crash_message(result.stderr, result.returncode),
            stderr=result.stderr,
            hint=f"the evaluator crashed on {', '.join(programs)}"
            + (f" for {app}" if app else "")
            + "; look for unbounded recursion or very large values in the program",
        )
    try:
        answer = json.loads(result.stdout)
    except ValueError as e:
        raise ToolError(TOOL, f"the evaluator's answer is not JSON: {e}") from e
    error = answer.get("error")
    if error is not None:
        raise jsonnet_error(str(error.get("message", "")), str(error.get("file", "")))
    return Evaluation(dict(answer["results"]), list(answer.get("read", [])))


def crash_message(stderr: str, returncode: int) -> str:
    """What a crashed evaluator said, in a line or two: the Go runtime prints a stack trace
    of every goroutine (a million frames for a stack overflow) after its one useful line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal error:", "panic:", "MemoryError"))]
    picked = fatal[:2] or lines[-3:]
    return "; ".join(picked)[:500] or f"the evaluator exited with {returncode}"


def check_lib(root: Path, lib: str) -> str:
    """A library path, normalized; one that leads outside the repository is refused."""
    cleaned = posixpath.normpath(lib.strip()) if lib.strip() else "."
    escapes = cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../")
    if not escapes:
        real = os.path.realpath(root / cleaned)
        top = os.path.realpath(root)
        escapes = real != top and not real.startswith(top + os.sep)
    if escapes:
        raise RenderError(
            f"Jsonnet library path {lib!r} is outside the repository",
            file=lib,
            hint="spec.source.directory.jsonnet.libs entries are directories relative to the "
            "repository root; vendor the library into the repository",
        )
    return cleaned


def _strings(variables: list[JsonnetVar], field: str, *, code: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for var in variables:
        if not var.name:
            raise RenderError(
                f"a jsonnet.{field} entry has no name",
                hint=f"give every spec.source.directory.jsonnet.{field} entry a name",
            )
        if var.code == code:
            out[var.name] = var.value
    return out


def jsonnet_error(message: str, program: str) -> RenderError:
    """gojsonnet's message as a RenderError at the first location it names (where the error
    was raised, in the program or a library), else at the program."""
    text = _without_excerpt(message.strip())
    match = _LOCATION.search(text)
    file, line = (match.group(1), int(match.group(2))) if match else (program, 0)
    return RenderError(
        f"{TOOL}: {_first_lines(text)}",
        file=file,
        line=line,
        hint=_hint(text, program),
    )


def _without_excerpt(text: str) -> str:
    """A static error without the source line gojsonnet quotes after it: the location is
    enough to find it, and the line may hold a value that should not reach status or logs."""
    if text.startswith("RUNTIME ERROR"):
        return text
    return text.split("\n\n", 1)[0]


def _first_lines(text: str, keep: int = 10) -> str:
    """The message and the top of its trace: a deep recursion's trace repeats one frame
    hundreds of times."""
    lines = text.splitlines()
    if len(lines) <= keep:
        return tool_message(text, 2000)
    cut = "\n".join(lines[:keep])
    return f"{tool_message(cut, 2000)}\n\t… {len(lines) - keep} more lines"


def _hint(text: str, program: str) -> str:
    if "outside the repository" in text:
        return "imports may only read files inside the repository; vendor the library in"
    if "not found (looked in" in text:
        return "check the import path, or add its directory to spec.source.directory.jsonnet.libs"
    if "Undefined external variable" in text:
        return "set it in spec.source.directory.jsonnet.extVars"
    if "top-level argument" in text.lower() or "missing argument" in text.lower():
        return "set the program's parameters in spec.source.directory.jsonnet.tlas"
    return f"fix the Jsonnet program ({program} or what it imports)"


# --- inputs ---------------------------------------------------------------------------------------


def inputs(
    view: RepoView, app_path: str, programs: list[str], options: JsonnetOptions
) -> list[str] | None:
    """The app directory, the library directories and every file imported from outside them,
    followed from ``programs`` through the imports found in their text; None when an import
    cannot be found statically (the caller then keys on the whole repository)."""
    libs: list[str] = []
    for lib in options.libs:
        cleaned = posixpath.normpath(lib.strip()) if lib.strip() else "."
        if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
            return None  # the render refuses it; nothing to key on
        libs.append("" if cleaned == "." else cleaned)
    covered = [app_path, *libs]
    found: list[str] = []
    seen: set[str] = set()
    pending = list(programs)
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.add(file)
        found_imports = _imports_in(view, file)
        if found_imports is None:
            return None
        for kind, target in found_imports:
            resolved = _resolve_import(view, file, target, libs)
            if resolved is None:
                return None
            if not any(_under(resolved, top) for top in covered) and resolved not in found:
                found.append(resolved)
            if kind == "import":
                pending.append(resolved)
    return [*covered, *sorted(found)]


_SCANNED: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
"""Imports by git blob id: a vendored library is scanned once, not at every compare."""
_SCANNED_MAX = 8192


def _imports_in(view: RepoView, file: str) -> list[tuple[str, str]] | None:
    blob = view.object_id(file)
    hit = _SCANNED.get(blob) if blob else None
    if hit is not None:
        _SCANNED.move_to_end(blob or "")
        return hit
    data = view.read(file)
    if data is None:
        return None
    found = imports_of(data.decode("utf-8", errors="replace"))
    if blob:
        _SCANNED[blob] = found
        if len(_SCANNED) > _SCANNED_MAX:
            _SCANNED.popitem(last=False)
    return found


def imports_of(text: str) -> list[tuple[str, str]]:
    """``(keyword, path)`` of each import in a Jsonnet program's text, skipping strings and
    comments; the path is ``""`` when it is not a plain string literal."""
    out: list[tuple[str, str]] = []
    if "import" not in text:
        return out
    # One regex finds the next comment, string, text block or import keyword; the text in
    # between is skipped in C (vendored libraries such as k8s-libsonnet run to megabytes).
    for match in _TOKEN.finditer(text):
        keyword = match.group("keyword")
        if keyword is None:
            continue
        literal = _string_at(text, _skip_blank(text, match.end()))
        out.append((keyword, literal[0] if literal else ""))
    return out


_TOKEN = re.compile(
    r"//[^\n]*|#[^\n]*|/\*.*?(?:\*/|\Z)"
    r"|\|\|\|.*?(?:\n[ \t]*\|\|\||\Z)"
    r"|@'(?:[^']|'')*'|@\"(?:[^\"]|\"\")*\""
    r"|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
    r"|\b(?P<keyword>import(?:str|bin)?)\b",
    re.DOTALL,
)
_COMMENT = re.compile(r"//[^\n]*|#[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)


def _string_at(text: str, i: int) -> tuple[str, int] | None:
    """The value of the string literal at ``i`` and where it ends, or None."""
    verbatim = text.startswith("@", i)
    start = i + 1 if verbatim else i
    if start >= len(text) or text[start] not in "'\"":
        return None
    quote = text[start]
    j = start + 1
    chars: list[str] = []
    while j < len(text):
        c = text[j]
        if verbatim and c == quote:
            if text.startswith(quote * 2, j):
                chars.append(quote)
                j += 2
                continue
            return "".join(chars), j + 1
        if not verbatim and c == "\\" and j + 1 < len(text):
            chars.append(_ESCAPES.get(text[j + 1], text[j + 1]))
            j += 2
            continue
        if c == quote:
            return "".join(chars), j + 1
        chars.append(c)
        j += 1
    return None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _skip_blank(text: str, i: int) -> int:
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        comment = _COMMENT.match(text, i)
        if comment is None:
            return i
        i = comment.end()


def _resolve_import(view: RepoView, importer: str, target: str, libs: list[str]) -> str | None:
    if not target or target.startswith("/"):
        return None
    bases = [posixpath.dirname(importer), *reversed(libs)]
    for base in bases:
        candidate = posixpath.normpath(posixpath.join(base, target))
        if candidate == ".." or candidate.startswith("../"):
            return None
        if view.read(candidate) is not None:
            return candidate
    return None


def _under(path: str, top: str) -> bool:
    return not top or path == top or path.startswith(top + "/")
