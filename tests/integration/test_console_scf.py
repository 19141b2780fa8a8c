"""The console on SCF: the api function's entry point answers GET /console/... in a function-URL
event (events/function_url_console.json) with the same files `harvest serve` hands out."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.support.api_stack import SECRET_ID, SECRET_KEY, write_registry

from harvest.console.static import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "functions" / "api" / "index.py"


def load_entrypoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """functions/api/index.py loaded by file path, as SCF loads it, under the given environment."""
    for name in list(os.environ):
        if name.startswith("HARVEST_"):
            monkeypatch.delenv(name)
    settings = {
        "HARVEST_SECRET_ID": SECRET_ID,
        "HARVEST_SECRET_KEY": SECRET_KEY,
        "HARVEST_REGION": "ap-singapore",
        "HARVEST_CHANNELS": str(write_registry(tmp_path)),
        "HARVEST_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"scf_api_index_{uuid.uuid4().hex}", ENTRYPOINT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def console_event(path: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "function_url_console.json").read_text("utf-8"))
    event["path"] = path
    return event


def test_the_function_url_serves_the_console_page_script_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the api function on SCF, where the bucket is COS
    entrypoint = load_entrypoint(tmp_path, monkeypatch, HARVEST_OBJECT_STORE="cos")

    # WHEN a browser asks its function URL for the console, its script and its config
    page = entrypoint.main_handler(console_event("/console/"), {})
    script = entrypoint.main_handler(console_event("/console/console.js"), {})
    config = entrypoint.main_handler(console_event("/console/config.json"), {})

    # THEN the built files come back as text in integration responses, with their types
    assert (page["statusCode"], page["isBase64Encoded"]) == (200, False)
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert page["body"] == (STATIC_DIR / "index.html").read_text("utf-8")
    assert script["statusCode"] == 200
    assert script["body"] == (STATIC_DIR / "console.js").read_text("utf-8")
    # AND the config points the page at the API beside it and at no local bucket (COS plays direct)
    assert json.loads(config["body"]) == {"region": "ap-singapore", "api": "../", "bucket": ""}


def test_an_api_call_on_the_same_url_is_still_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the same function
    entrypoint = load_entrypoint(tmp_path, monkeypatch)
    # WHEN an unsigned POST reaches "/", THEN it is answered as API 3.0, not as a file
    event = console_event("/")
    event.update(httpMethod="POST", body="{}")
    result = entrypoint.main_handler(event, {})
    assert result["headers"] == {"Content-Type": "application/json"}
    assert json.loads(result["body"])["Response"]["Error"]["Code"] == "MissingParameter"
