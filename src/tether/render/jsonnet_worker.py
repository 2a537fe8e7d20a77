"""Evaluates the Jsonnet programs of one app in its own sandboxed process, imports confined.

Run as ``python -I jsonnet_worker.py`` (it imports nothing of tether, to start fast), with
the repository checkout as the working directory and a JSON request on stdin (see
:mod:`tether.render.jsonnet`). gojsonnet has no memory or time limit of its own, so it runs
here, under the sandbox's, rather than in the controller. Prints one JSON object on stdout:
``{"results": {program: value}, "read": [...]}`` or ``{"error": {"file": ..., "message":
...}, "read": [...]}``; a Jsonnet error is an answer, not a crash, so both exit with 0.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import sys
from dataclasses import dataclass, field
from typing import Any

# No type stubs exist for the binding; its one function is used as documented.
_gojsonnet: Any = importlib.import_module("_gojsonnet")

# Where a refused import's stand-in program claims to live, so the trace shows who imported it.
_REFUSED = "<refused import>"


@dataclass
class Importer:
    """Jsonnet's import callback: a file of the repository, or a recorded refusal.

    Lookups follow go-jsonnet's file importer (the importing file's directory first, then
    the library paths, the last listed first); every path is resolved through symlinks and
    must stay inside the checkout.
    """

    root: str
    libs: list[str]
    read: list[str] = field(default_factory=list)
    problem: str = ""

    def __call__(self, directory: str, rel: str) -> tuple[str, bytes]:
        bases = [directory] + [lib + "/" for lib in reversed(self.libs)]
        if rel.startswith("/"):
            bases = [""]
        for base in bases:
            candidate = posixpath.normpath(posixpath.join(base, rel))
            if not self._inside(candidate):
                return self._refuse(
                    f"import {rel!r} resolves to {candidate}, which is outside the repository"
                )
            if os.path.isfile(candidate):
                try:
                    with open(candidate, "rb") as f:
                        data = f.read()
                except OSError as e:
                    return self._refuse(f"cannot read import {rel!r} ({candidate}): {e.strerror}")
                self.read.append(candidate)
                return candidate, data
        searched = ", ".join(b.rstrip("/") or "." for b in bases)
        return self._refuse(f"import {rel!r} not found (looked in {searched})")

    def _inside(self, candidate: str) -> bool:
        if candidate == ".." or candidate.startswith("../"):
            return False
        real = os.path.realpath(candidate)
        return real == self.root or real.startswith(self.root + os.sep)

    def _refuse(self, message: str) -> tuple[str, bytes]:
        # Raising from the callback garbles gojsonnet's message; an erroring stand-in program
        # keeps it readable and puts the import site in the trace. importstr would take the
        # stand-in as text, so the refusal is also recorded and reported after evaluation.
        self.problem = self.problem or message
        return _REFUSED, ("error " + json.dumps(message)).encode()


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    importer = Importer(os.path.realpath("."), list(request.get("libs", [])))
    texts: list[tuple[str, str]] = []
    for program in request["programs"]:
        try:
            text: str = _gojsonnet.evaluate_file(
                program,
                ext_vars=request.get("ext_vars", {}),
                ext_codes=request.get("ext_codes", {}),
                tla_vars=request.get("tla_vars", {}),
                tla_codes=request.get("tla_codes", {}),
                import_callback=importer,
            )
        except RuntimeError as e:
            return {"error": {"file": program, "message": str(e)}, "read": importer.read}
        if importer.problem:
            return {"error": {"file": program, "message": importer.problem}, "read": importer.read}
        texts.append((program, text))
    return {"texts": texts, "read": importer.read}


def main() -> int:
    request = json.load(sys.stdin)
    answer = evaluate(request)
    out = sys.stdout
    if "texts" in answer:
        # The values are already JSON text: splice them in rather than decode and re-encode.
        out.write('{"results": {')
        out.write(",".join(json.dumps(name) + ":" + text for name, text in answer["texts"]))
        out.write('}, "read": ' + json.dumps(answer["read"]) + "}")
    else:
        json.dump(answer, out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
