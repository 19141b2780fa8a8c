"""A stand-in for SCF's Python runtime: one warm function instance, driven over pipes by the rehearsal.

Run it as `python3.10 -I -S -B scf_runtime.py <code dir> <layer dir> <handler>`: isolated and without
site-packages, so nothing from the developer's virtualenv is importable. It then does what SCF's
Python runtime does at instance start (583/37039, 583/32748): the code directory is the working
directory, `sys.path` starts with PYTHONPATH's /var/user:/opt (here: the code dir, then the layer
dir), and the handler `<file>.<function>` is imported as module `<file>` from the code dir's root.

Each invocation is one JSON line on stdin: {"event", "context", "env"}; `env` is what the platform
sets for that invocation (the role's current temporary keys). The answer is one JSON line on the
original stdout: {"result": ...} or {"error": {"type", "message"}}. The function's own output (its
JSON logs) goes to stderr, as SCF sends it to the function's log.

Only the standard library is imported here: this file runs on the bare interpreter.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def main() -> int:
    code_dir, layer_dir, handler = sys.argv[1:4]
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the function's prints and logs go to the log (stderr), not to the protocol
    sys.stdout = sys.stderr
    os.chdir(code_dir)
    sys.path[:0] = [code_dir, layer_dir]
    module_name, _, function_name = handler.rpartition(".")
    entry = getattr(importlib.import_module(module_name), function_name)
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.update(request.get("env", {}))
        try:
            answer = {"result": entry(request["event"], request["context"])}
        # Any exception is an SCF invocation error, printed with its traceback; the runtime lives
        # on and the trigger decides about retries.
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            answer = {"error": {"type": type(exc).__name__, "message": str(exc)}}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
