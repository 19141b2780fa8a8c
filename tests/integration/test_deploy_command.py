"""`make deploy` (packaging/deploy.py) against a local SCF API stand-in that checks TC3 signatures.

It shows what the command sends and in which order, through the real Tencent SDK: the layer
published for Python3.10 first, the five functions created bound to the version it returned (an
integer), each with its code zip, role and environment, then the triggers; a second deploy
updates the functions and leaves the existing triggers alone.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_serverless_yml import CONFIG_PATH, DEPLOY_ENV, FUNCTIONS, load_packaging

from harvest.api.tc3 import SignedRequest, Tc3Verifier
from harvest.errors import HarvestError

DEPLOYER_ID, DEPLOYER_KEY = "AKIDdeployer000000000000000000000000", "deployer-key"
LAYER_VERSION = 7


@dataclass
class ScfApi:
    """Just enough of SCF API 2018-04-16 for a deploy: it remembers functions, layers and triggers."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    triggers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def answer(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((action, params))
        name = params.get("FunctionName", "")
        if action == "PublishLayerVersion":
            return {"LayerVersion": LAYER_VERSION}
        if action == "GetFunction":
            if name not in self.functions:
                return {"Error": {"Code": "ResourceNotFound.Function", "Message": f"{name} not found"}}
            return {"FunctionName": name, "Status": "Active"}
        if action == "CreateFunction":
            self.functions.add(name)
            return {}
        if action in ("UpdateFunctionCode", "UpdateFunctionConfiguration"):
            return {}
        if action == "ListTriggers":
            return {"Triggers": self.triggers.get(name, []), "TotalCount": len(self.triggers.get(name, []))}
        if action == "CreateTrigger":
            info = {key: params[key] for key in ("Type", "TriggerName", "TriggerDesc", "Qualifier")}
            self.triggers.setdefault(name, []).append(info)
            return {"TriggerInfo": info}
        return {"Error": {"Code": "InvalidAction", "Message": f"{action} is not in this stand-in"}}


@pytest.fixture
def scf_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ScfApi, str]]:
    api = ScfApi()
    verifier = Tc3Verifier({DEPLOYER_ID: DEPLOYER_KEY}, service="scf", max_skew=300)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                verifier.verify(SignedRequest("POST", headers, body), now=time.time())
                result = api.answer(headers["x-tc-action"], json.loads(body))
            except HarvestError as exc:
                result = {"Error": {"Code": exc.code, "Message": exc.message}}
            data = json.dumps({"Response": {**result, "RequestId": str(uuid.uuid4())}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")  # exactly: the SDK checks it
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", DEPLOYER_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", DEPLOYER_KEY)
    for name, value in DEPLOY_ENV.items():
        monkeypatch.setenv(name, value)
    yield api, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_make_deploy_publishes_the_layer_then_the_functions_then_the_triggers(
    scf_api: tuple[ScfApi, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api, endpoint = scf_api
    # GIVEN the staged functions, serverless.yml pointing at them, and a layer zip
    registry = tmp_path / "channels.yaml"
    registry.write_text("channels: []\n", encoding="utf-8")
    staged = tmp_path / "functions"
    load_packaging("build_functions").stage(staged, registry)
    config = tmp_path / "serverless.yml"
    config.write_text(CONFIG_PATH.read_text(encoding="utf-8").replace("./build/functions", str(staged)))
    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("harvest/__init__.py", "")
    deploy = load_packaging("deploy")
    argv = ["--config", str(config), "--layer", str(layer), "--api-endpoint", endpoint]
    # WHEN it deploys to an empty account
    assert deploy.main(argv) == 0
    # THEN the layer is published for Python3.10, from the layer zip
    action, publish = api.calls[0]
    assert (action, publish["CompatibleRuntimes"]) == ("PublishLayerVersion", ["Python3.10"])
    assert base64.b64decode(publish["Content"]["ZipFile"]) == layer.read_bytes()
    # AND the five functions are created on that layer version (an integer), each with its code
    created = [params for action, params in api.calls if action == "CreateFunction"]
    assert {p["FunctionName"] for p in created} == {f"harvest-jobs-dev-harvest-{name}" for name in FUNCTIONS}
    for params in created:
        assert params["Layers"] == [{"LayerName": "harvest-shared", "LayerVersion": LAYER_VERSION}]
        assert params["Runtime"] == "Python3.10"
        assert params["Role"].startswith("harvest-")
        code = zipfile.ZipFile(io.BytesIO(base64.b64decode(params["Code"]["ZipFile"])))
        assert sorted(code.namelist()) == ["channels.yaml", "index.py"]
        assert any(v["Key"] == "HARVEST_DATABASE_URL" for v in params["Environment"]["Variables"])
    # AND the five triggers, after the functions
    kinds = sorted(params["Type"] for action, params in api.calls if action == "CreateTrigger")
    assert kinds == ["ckafka", "ckafka", "http", "http", "timer"]
    assert "layer harvest-shared version 7 published" in capsys.readouterr().out

    # WHEN it deploys again
    api.calls.clear()
    assert deploy.main(argv) == 0
    # THEN the functions are updated (code, then configuration) and no trigger is created twice
    actions = [action for action, _ in api.calls]
    assert actions.count("UpdateFunctionCode") == actions.count("UpdateFunctionConfiguration") == 5
    assert "CreateFunction" not in actions
    assert "CreateTrigger" not in actions
