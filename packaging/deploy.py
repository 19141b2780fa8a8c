"""Deploy serverless.yml to SCF with the Tencent Cloud SDK: the requests `scf deploy` would send.

    python packaging/deploy.py [--config serverless.yml] [--layer build/layer.zip] [--dry-run]

Why this exists: the multi-scf component (and `component: scf`) refuses runtime Python3.10 (their
runtime allow-lists stop at Python3.7), so `scf deploy` cannot deploy this code. This command renders
serverless.yml exactly as the component would (packaging/scf_requests.py) and sends the requests
itself, through the SCF API 2018-04-16:

1. PublishLayerVersion harvest-shared from the layer zip, CompatibleRuntimes [Python3.10]; the
   functions are bound to the version it returns (serverless.yml's number is for `scf deploy`).
2. Per function: CreateFunction, or UpdateFunctionCode then UpdateFunctionConfiguration when it
   exists, with the code zip (ZipFile, at most 50 MB) made from its staged folder; then waits for
   the function to be Active.
3. Per trigger: CreateTrigger unless one of that type and name exists already.

`${env:...}` values come from the environment or a `.env` file next to serverless.yml. The deployer's
own keys: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (the SDK's environment credential).
`--dry-run` prints the requests instead of sending them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scf_requests

ROOT = Path(__file__).resolve().parents[1]
LAYER_NAME = "harvest-shared"
RUNTIME = "Python3.10"
MAX_ZIP_BYTES = 50 * 1024 * 1024  # ZipFile uploads through the API (583/11637)
CONFIG_FIELDS = ("Description", "MemorySize", "Timeout", "Runtime", "Environment", "VpcConfig", "Role",
                 "Layers", "PublicNetConfig", "L5Enable", "InstallDependency", "DiskSize")  # fmt: skip


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip().strip("'\"")
    return values


def _zip_b64(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise SystemExit(f"{path} is {size / 1e6:.1f} MB; the API takes at most 50 MB per ZipFile")
    return base64.b64encode(path.read_bytes()).decode("ascii")


def requests_for(
    config: Path, layer: Path, env: Mapping[str, str], scratch: Path
) -> list[tuple[str, dict[str, Any]]]:
    """Every request of the deploy, in order; "$LAYER_VERSION" stands for PublishLayerVersion's answer."""
    plan = scf_requests.plan(config, env)
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "PublishLayerVersion",
            {
                "LayerName": LAYER_NAME,
                "CompatibleRuntimes": [RUNTIME],
                "Content": {"ZipFile": _zip_b64(layer)},
                "Description": "harvest package and its dependencies (make layer)",
            },
        )
    ]
    for name, function in plan.functions.items():
        request = dict(function.request)
        request["Layers"] = [{**item, "LayerVersion": "$LAYER_VERSION"} for item in request.get("Layers", [])]
        archive = scf_requests.zip_code(function.code_dir, scratch / f"{name}.zip")
        request["Code"] = {"ZipFile": _zip_b64(archive)}
        calls.append(("DeployFunction", request))
    calls.extend(("CreateTrigger", trigger) for trigger in plan.triggers)
    return calls


def _shown(request: Mapping[str, Any]) -> dict[str, Any]:
    def hide(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: f"<{len(v) * 3 // 4} bytes>" if k == "ZipFile" else hide(v) for k, v in value.items()}
        if isinstance(value, list):
            return [hide(item) for item in value]
        return value

    return hide(dict(request))


class Deployer:
    def __init__(self, region: str, endpoint: str = "") -> None:
        """`endpoint` (host:port) replaces the SCF API's address: a private endpoint, or a stand-in."""
        from tencentcloud.common import credential
        from tencentcloud.common.common_client import CommonClient
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        keys = credential.EnvironmentVariableCredential().get_credential()
        if keys is None:
            raise SystemExit("set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY: the keys that deploy")
        profile = ClientProfile()
        if endpoint:
            local = endpoint.split(":")[0] in ("127.0.0.1", "localhost")
            profile = ClientProfile(
                httpProfile=HttpProfile(endpoint=endpoint, protocol="http" if local else "https")
            )
        self._client = CommonClient("scf", "2018-04-16", keys, region, profile)

    def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            response: dict[str, Any] = self._client.call_json(action, dict(params))["Response"]
        except TencentCloudSDKException as exc:
            raise SystemExit(f"{action} failed: {exc.get_code()}: {exc.get_message()}") from exc
        return response

    def exists(self, name: str, namespace: str) -> bool:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            self._client.call_json("GetFunction", {"FunctionName": name, "Namespace": namespace})
        except TencentCloudSDKException as exc:
            if str(exc.get_code()).startswith("ResourceNotFound"):
                return False
            raise
        return True

    def wait_active(self, name: str, namespace: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("GetFunction", {"FunctionName": name, "Namespace": namespace}).get("Status")
            if status == "Active":
                return
            if "Failed" in str(status) or time.monotonic() > deadline:
                raise SystemExit(f"function {name} is {status}: see its status reason in the SCF console")
            time.sleep(2)

    def deploy_function(self, request: dict[str, Any]) -> None:
        name, namespace = request["FunctionName"], request["Namespace"]
        if not self.exists(name, namespace):
            self.call("CreateFunction", request)
        else:
            code = {"FunctionName": name, "Namespace": namespace, "Handler": request["Handler"],
                    "ZipFile": request["Code"]["ZipFile"]}  # fmt: skip
            self.call("UpdateFunctionCode", code)
            self.wait_active(name, namespace)
            config = {field: request[field] for field in CONFIG_FIELDS if field in request}
            self.call("UpdateFunctionConfiguration", {"FunctionName": name, "Namespace": namespace, **config})
        self.wait_active(name, namespace)

    def ensure_trigger(self, request: dict[str, Any]) -> dict[str, Any]:
        listed = self.call(
            "ListTriggers", {"FunctionName": request["FunctionName"], "Namespace": request["Namespace"]}
        )
        for trigger in listed.get("Triggers", []):
            if (trigger.get("Type"), trigger.get("TriggerName")) == (request["Type"], request["TriggerName"]):
                return dict(trigger)
        info: dict[str, Any] = self.call("CreateTrigger", request).get("TriggerInfo", {})
        return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "serverless.yml")
    parser.add_argument("--layer", type=Path, default=ROOT / "build" / "layer.zip")
    parser.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    parser.add_argument("--api-endpoint", default="", help="host:port of the SCF API (default: Tencent's)")
    args = parser.parse_args(argv)
    env = {**read_env_file(args.config.parent / ".env"), **os.environ}
    with tempfile.TemporaryDirectory(prefix="harvest-deploy-") as scratch:
        calls = requests_for(args.config, args.layer, env, Path(scratch))
        if args.dry_run:
            for action, request in calls:
                print(json.dumps({"Action": action, **_shown(request)}, ensure_ascii=False))
            return 0
        deployer = Deployer(scf_requests.plan(args.config, env).region, args.api_endpoint)
        version = None
        for action, request in calls:
            if action == "PublishLayerVersion":
                version = deployer.call(action, request)["LayerVersion"]
                print(f"layer {LAYER_NAME} version {version} published")
            elif action == "DeployFunction":
                request["Layers"] = [{**item, "LayerVersion": version} for item in request["Layers"]]
                deployer.deploy_function(request)
                print(f"function {request['FunctionName']} deployed")
            else:
                info = deployer.ensure_trigger(request)
                shown = json.dumps(info, ensure_ascii=False)
                print(f"trigger {request['Type']} {request['TriggerName']}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
