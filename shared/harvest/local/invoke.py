"""`harvest invoke FUNCTION EVENT.json`: run a function's deployed entry point locally.

Like `scf invoke local`: it loads `functions/<name>/index.py` (the very file SCF runs), calls
`main_handler(event, context)` with an SCF-shaped context, and prints the result as JSON.
Settings come from the environment, as on SCF.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"


def load_function(name: str, functions_dir: Path = FUNCTIONS_DIR) -> ModuleType:
    path = functions_dir / name / "index.py"
    if not path.is_file():
        raise FileNotFoundError(f"no function entry point at {path}")
    spec = importlib.util.spec_from_file_location(f"scf_function_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scf_context(function_name: str, time_limit_ms: int = 900_000) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "function_name": function_name,
        "function_version": "$LATEST",
        "namespace": "default",
        "memory_limit_in_mb": 1024,
        "time_limit_in_ms": time_limit_ms,
        "tencentcloud_region": "local",
    }


def invoke_main(function: str, event_path: str) -> int:
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read event {event_path}: {exc}", file=sys.stderr)
        return 2
    module = load_function(function)
    try:
        result = module.main_handler(event, scf_context(function))
    # Any exception is what SCF reports as a failed invocation: its traceback goes to stderr (the
    # function's log there) and its type and message to stdout, as SCF's invoke answer.
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}, indent=2))
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0
