"""The process that runs jq for ignore rules (see ``tether.diff.jq_paths``).

jq cannot be interrupted once it runs and aborts the whole process when memory runs out, so it
runs here, apart from tether, under an address-space limit; the parent kills it on a timeout.
Run as a script (``python -I jq_worker.py MAX_BYTES``); it imports nothing from tether.

Protocol, one JSON document per line: the worker says ``{"ready": true}``, then answers each
``{"expression": E, "inputs": [...]}`` with ``{"outputs": [...]}`` (each input with ``del(E)``
applied) or ``{"error": message, "stage": "compile" | "run"}``.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

import jq


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    compiled: dict[str, Any] = {}
    write({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        expression = request["expression"]
        program = compiled.get(expression)
        if program is None:
            try:
                program = jq.compile(f"del({expression})")
            except ValueError as e:
                write({"error": str(e), "stage": "compile"})
                continue
            compiled[expression] = program
        try:
            outputs = [program.input_value(doc).all() for doc in request["inputs"]]
        except ValueError as e:
            write({"error": str(e), "stage": "run"})
            continue
        if any(len(out) != 1 for out in outputs):
            write({"error": "the expression gave no result or several", "stage": "run"})
            continue
        write({"outputs": [out[0] for out in outputs]})


def write(reply: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
