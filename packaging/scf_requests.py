"""serverless.yml -> the SCF API requests a deploy sends: CreateFunction and CreateTrigger.

A Python rendering of what `scf deploy` does with a multi-scf serverless.yml, derived line by line
from the components' source, so a test can check the deploy shape rather than the YAML shape, and
`packaging/deploy.py` can send exactly these requests where the component cannot deploy Python3.10:

- serverless-components/tencent-multi-scf `src/formatter.ts` (v0.3.14, commit 02cf563):
  `formatInputs` (top-level inputs spread under each function, defaults from `src/config.ts`),
  `formatFaasInputs` (`environments: [{key, value}]` -> `environment.variables`, always, so an
  `environment:` map is overwritten; `vpc` -> `vpcConfig`), `formatScfName`, `uploadCodeToCos`
  (a function's `src` sub-folder becomes the root of its own code zip), `formatTriggerInputs`;
- tencent-component-toolkit 2.27.6 (npm; the `^2.24.1` multi-scf asks for): `src/modules/scf/utils.ts`
  `formatInputs` (inputs -> CreateFunction), `src/modules/triggers/{http,ckafka,timer}.ts`
  `formatInputs` (trigger inputs -> CreateTrigger).

Only what serverless.yml uses is rendered; anything else is refused rather than guessed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# tencent-multi-scf src/config.ts CONFIGS
DEFAULTS = {
    "type": "event",
    "namespace": "default",
    "runtime": "Nodejs12.16",
    "description": "Created by Serverless",
}
# tencent-component-toolkit src/modules/scf/config.ts
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
DEFAULT_DISK_SIZE = 512
_VARIABLE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class PlanError(Exception):
    """serverless.yml uses something this rendering does not, or a variable it needs is unset."""


@dataclass(frozen=True)
class FunctionPlan:
    key: str
    request: dict[str, Any]  # CreateFunction parameters (Code comes from the upload)
    code_dir: Path  # the folder zipped as the function's code: its root is the zip's root


@dataclass(frozen=True)
class DeployPlan:
    region: str
    functions: dict[str, FunctionPlan]
    triggers: list[dict[str, Any]]  # CreateTrigger parameters


def substitute(text: str, env: Mapping[str, str]) -> str:
    """`${env:NAME}` from `env` (the deploying shell or `.env`), as the framework does; unset is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise PlanError(f"serverless.yml reads ${{env:{name}}}, which is not set")
        return env[name]

    return _VARIABLE.sub(value, text)


def _substitute_values(node: Any, env: Mapping[str, str]) -> Any:
    """Variables are resolved in the parsed document's values (comments are not read)."""
    if isinstance(node, str):
        return substitute(node, env)
    if isinstance(node, list):
        return [_substitute_values(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _substitute_values(value, env) for key, value in node.items()}
    return node


def load(config: Path, env: Mapping[str, str]) -> dict[str, Any]:
    document = _substitute_values(yaml.safe_load(config.read_text(encoding="utf-8")), env)
    if not isinstance(document, dict) or document.get("component") != "multi-scf":
        raise PlanError(f"{config} is not a multi-scf serverless.yml")
    return document


# --- tencent-multi-scf src/formatter.ts ---------------------------------------------------------------


def format_faas_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """formatFaasInputs: `environments` (default []) always replaces `environment`."""
    environments = inputs.get("environments", [])
    if isinstance(environments, list):
        inputs["environment"] = {"variables": {item["key"]: item["value"] for item in environments}}
    tags = inputs.get("tags", [])
    if isinstance(tags, list):
        inputs["tags"] = {item["key"]: item["value"] for item in tags}
    if inputs.get("vpc"):
        inputs["vpcConfig"] = inputs["vpc"]
    return inputs


def format_scf_name(document: Mapping[str, Any], key: str) -> str:
    """formatScfName: `${instance.name}-${instance.stage}-${instance.app}-${functionKey}`."""
    return f"{document['name']}-{document['stage']}-{document['app']}-{key}"


# --- tencent-component-toolkit src/modules/scf/utils.ts formatInputs -----------------------------------


def create_function_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The CreateFunction parameters for one function's formatted inputs (event functions, code deploy)."""
    if inputs.get("type") == "web" or inputs.get("image") or inputs.get("cfs") or inputs.get("deadLetter"):
        raise PlanError("only event functions deployed from code are rendered here")
    request: dict[str, Any] = {
        "FunctionName": inputs.get("name"),
        "Type": "Event",
        "DeployMode": "code",
        "Runtime": inputs.get("runtime"),
        "Namespace": inputs.get("namespace") or "default",
        "Timeout": _number(inputs.get("timeout") or DEFAULT_TIMEOUT),
        "MemorySize": _number(inputs.get("memorySize") or DEFAULT_MEMORY),
        "PublicNetConfig": {
            "PublicNetStatus": "DISABLE" if inputs.get("publicAccess") is False else "ENABLE",
            "EipConfig": {"EipStatus": "ENABLE" if inputs.get("eip") is True else "DISABLE"},
        },
        "L5Enable": "TRUE" if inputs.get("l5Enable") is True else "FALSE",
        "InstallDependency": "TRUE" if inputs.get("installDependency") is True else "FALSE",
        "DiskSize": _number(inputs.get("diskSize") or DEFAULT_DISK_SIZE),
        "Handler": inputs.get("handler"),
    }
    request.update(_optional_settings(inputs))
    request.update(_attached(inputs))
    return request


def _optional_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings CreateFunction carries only when the inputs give them."""
    settings: dict[str, Any] = {}
    if inputs.get("initTimeout"):
        settings["InitTimeout"] = inputs["initTimeout"]
    for flag, field in (("asyncRunEnable", "AsyncRunEnable"), ("traceEnable", "TraceEnable")):
        if inputs.get(flag) is not None:
            settings[field] = "TRUE" if inputs[flag] is True else "FALSE"
    if inputs.get("role"):
        settings["Role"] = inputs["role"]
    if inputs.get("description"):
        settings["Description"] = inputs["description"]
    cls = inputs.get("cls") or {}
    if "logsetId" in cls:
        settings["ClsLogsetId"] = cls["logsetId"]
    if "topicId" in cls:
        settings["ClsTopicId"] = cls["topicId"]
    return settings


def _attached(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the function is given to run with: environment variables, a VPC, layers."""
    attached: dict[str, Any] = {}
    variables = (inputs.get("environment") or {}).get("variables")
    if variables:
        # `String(val)`: every value is sent as a string.
        attached["Environment"] = {
            "Variables": [{"Key": key, "Value": _js_string(value)} for key, value in variables.items()]
        }
    vpc = inputs.get("vpcConfig")
    if vpc:
        attached["VpcConfig"] = {
            field: vpc[key] for key, field in (("vpcId", "VpcId"), ("subnetId", "SubnetId")) if vpc.get(key)
        }
    if inputs.get("layers"):
        # `LayerVersion: item.version`, passed through unconverted: a string stays a string.
        attached["Layers"] = [
            {"LayerName": layer["name"], "LayerVersion": layer["version"]} for layer in inputs["layers"]
        ]
    return attached


def _number(value: Any) -> float | int:
    """JavaScript's unary `+`."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _js_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- tencent-component-toolkit src/modules/triggers/*.ts formatInputs ----------------------------------


def _upper_first(params: Mapping[str, Any]) -> dict[str, Any]:
    """utils.caseForObject(obj, 'upper'): upper-case each key's first letter, recursively."""
    return {
        key[:1].upper() + key[1:]: _upper_first(value) if isinstance(value, Mapping) else value
        for key, value in params.items()
    }


def create_trigger_request(trigger: Mapping[str, Any], function_name: str, namespace: str) -> dict[str, Any]:
    params = dict(trigger.get("parameters") or {})
    kind = trigger["type"]
    base = {"FunctionName": function_name, "Namespace": namespace, "Type": kind}
    if kind == "http":  # triggers/http.ts
        desc: dict[str, Any] = {
            "AuthType": params.get("authType") or "NONE",
            "NetConfig": {
                "EnableIntranet": (params.get("netConfig") or {}).get("enableIntranet", False),
                "EnableExtranet": (params.get("netConfig") or {}).get("enableExtranet", False),
            },
        }
        if params.get("corsConfig"):
            raise PlanError("corsConfig is not rendered here")
        fixed: tuple[str, ...] = ("authType", "netConfig", "qualifier", "corsConfig", "enable", "name")
        rest = {key: value for key, value in params.items() if key not in fixed}
        return {
            **base,
            "Qualifier": params.get("qualifier") or "$DEFAULT",
            "TriggerName": params.get("name") or "url-trigger",
            "TriggerDesc": json.dumps({**desc, **_upper_first(rest)}, separators=(",", ":")),
            "Enable": "OPEN",
        }
    if kind == "ckafka":  # triggers/ckafka.ts; 2.27.6 names it `${instanceId}-${topic}` unless `name`
        fixed = (
            *("qualifier", "maxMsgNum", "offset", "retry", "timeout", "consumerGroupName"),
            *("enable", "name"),
        )
        rest = {key: value for key, value in params.items() if key not in fixed}
        desc = {
            "maxMsgNum": params.get("maxMsgNum", 100),
            "offset": params.get("offset", "latest"),
            "retry": params.get("retry", 10000),
            "timeOut": params.get("timeout", 60),
            "consumerGroupName": params.get("consumerGroupName", ""),
            **_upper_first(rest),
        }
        return {
            **base,
            "Qualifier": params.get("qualifier", "$DEFAULT"),
            "TriggerName": params.get("name") or f"{params.get('instanceId')}-{params.get('topic')}",
            "TriggerDesc": json.dumps(desc, separators=(",", ":")),
            "Enable": "OPEN" if params.get("enable") else "CLOSE",
        }
    if kind == "timer":  # triggers/timer.ts
        request = {
            **base,
            "Qualifier": params.get("qualifier") or "$DEFAULT",
            "TriggerName": params.get("name") or trigger.get("name"),
            "TriggerDesc": params.get("cronExpression"),
            "Enable": "OPEN" if params.get("enable") else "CLOSE",
        }
        if params.get("argument") is not None:
            request["CustomArgument"] = params["argument"]
        return request
    raise PlanError(f"trigger type {kind!r} is not rendered here (http, ckafka and timer are)")


# --- the whole deploy ---------------------------------------------------------------------------------


def plan(config: Path, env: Mapping[str, str] | None = None, code_root: Path | None = None) -> DeployPlan:
    """What `scf deploy` would send for `config`, with `${env:...}` taken from `env`.

    `code_root` replaces the top-level `src` folder (a test stages the functions elsewhere).
    """
    document = load(config, os.environ if env is None else env)
    inputs = document["inputs"]
    root_src = inputs.get("src")
    root_dir = code_root or config.parent / (
        (root_src.get("src") or ".") if isinstance(root_src, Mapping) else root_src or "."
    )
    common = {**inputs, **{key: inputs.get(key) or default for key, default in DEFAULTS.items()}}
    common.pop("src", None)
    functions: dict[str, FunctionPlan] = {}
    names: dict[str, tuple[str, str]] = {}
    for key, function in inputs["functions"].items():
        formatted = format_faas_inputs({**json.loads(json.dumps(common)), **function})
        formatted["name"] = formatted.get("name") or format_scf_name(document, key)
        sub = str(function.get("src") or "").replace("./", "", 1)
        if not sub:
            raise PlanError(f"function {key} has no `src`: it would get the whole root zip as its code")
        functions[key] = FunctionPlan(key, create_function_request(formatted), (root_dir / sub).resolve())
        names[key] = (formatted["name"], formatted["namespace"])
    triggers = []
    for trigger in inputs.get("triggers") or []:
        if trigger["type"] == "apigw":
            raise PlanError("API gateway triggers are not rendered: use a function URL (type: http)")
        if trigger["function"] not in names:
            raise PlanError(f"Function {trigger['function']} not in deploy list")  # formatTriggerInputs
        name, _ = names[trigger["function"]]
        # formatTriggerInputs sets the namespace from the top-level `namespace` input.
        triggers.append(create_trigger_request(trigger, name, inputs.get("namespace") or "default"))
    return DeployPlan(region=inputs.get("region") or "ap-guangzhou", functions=functions, triggers=triggers)


def zip_code(folder: Path, out: Path) -> Path:
    """The function's code zip as uploadCodeToCos makes it: the folder's contents at the zip root."""
    import zipfile

    if not (folder / "index.py").is_file():
        # An unstaged folder would upload an empty zip that SCF accepts and then cannot run.
        raise SystemExit(f"{folder} has no index.py: stage the functions first (`make functions`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return out
