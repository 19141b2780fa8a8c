"""packaging/scf_requests.py against the real tencent-component-toolkit, run by node.

`make toolkit-crosscheck` installs the toolkit (npm, into build/toolkit) and runs this test; in
`make test` it is skipped unless that install exists. Measured when written: the 5 CreateFunction
and 5 CreateTrigger requests of serverless.yml are identical (toolkit 2.27.6).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.unit.test_serverless_yml import CONFIG_PATH, DEPLOY_ENV, load_packaging

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "build" / "toolkit" / "node_modules"


def test_the_rendered_requests_are_the_toolkits() -> None:
    node = shutil.which("node")
    if node is None or not (MODULES / "tencent-component-toolkit").is_dir():
        pytest.skip("node and the toolkit are needed: `make toolkit-crosscheck` installs and runs it")
    scf_requests = load_packaging("scf_requests")
    document = scf_requests.load(CONFIG_PATH, DEPLOY_ENV)
    inputs = document["inputs"]
    # The multi-scf half (formatInputs / formatFaasInputs / formatScfName), then each half's output.
    common = {**inputs, **{key: inputs.get(key) or value for key, value in scf_requests.DEFAULTS.items()}}
    common.pop("src")
    functions, ours = {}, {}
    for key, function in inputs["functions"].items():
        formatted = scf_requests.format_faas_inputs({**json.loads(json.dumps(common)), **function})
        formatted["name"] = scf_requests.format_scf_name(document, key)
        functions[key] = formatted
        ours[key] = scf_requests.create_function_request(formatted)
    triggers, our_triggers = [], []
    for trigger in inputs["triggers"]:
        name = functions[trigger["function"]]["name"]
        triggers.append({**trigger, "functionName": name, "namespace": "default"})
        our_triggers.append(scf_requests.create_trigger_request(trigger, name, "default"))
    payload = json.dumps({"region": "ap-singapore", "functions": functions, "triggers": triggers})
    run = subprocess.run(
        [node, str(Path(__file__).with_name("toolkit_crosscheck.js")), str(MODULES)],
        input=payload, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    theirs = json.loads(run.stdout)
    for key, request in theirs["functions"].items():
        request.pop("Code", None)  # uploaded separately: not part of the rendering
        assert request == ours[key], key
    for request, mine in zip(theirs["triggers"], our_triggers, strict=True):
        request.pop("Action")
        assert request == mine, request["Type"]
