"""serverless.yml (multi-scf) is consistent with the code it deploys."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import harvest.settings
import harvest.usecases.live_events

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "serverless.yml"
FUNCTIONS = ("api", "worker", "finalizer", "live_event_end", "sweeper")
MAX_CKAFKA_RETRY = 10  # the default (10000, once a minute) would block a partition for a week


def load() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def functions() -> dict[str, dict[str, Any]]:
    declared = load()["inputs"]["functions"]
    assert isinstance(declared, dict)
    return declared


def triggers() -> list[dict[str, Any]]:
    declared = load()["inputs"]["triggers"]
    assert isinstance(declared, list)
    return declared


def test_it_is_a_multi_scf_app_with_the_five_functions() -> None:
    data = load()
    assert data["component"] == "multi-scf"
    assert set(functions()) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_handler_file_exists_and_exposes_a_callable_main_handler(name: str) -> None:
    # GIVEN the function's handler, `<path>/<module>.<function>` relative to the code root
    handler = functions()[name]["handler"]
    module_path, _, attribute = handler.rpartition(".")
    source = ROOT / f"{module_path}.py"
    assert source.is_file(), f"{name}: handler file {source.relative_to(ROOT)} does not exist"
    # WHEN the module is imported by path (as SCF does), which must have no side effects
    spec = importlib.util.spec_from_file_location(f"scf_handler_{name}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # THEN it exposes the entry point
    assert attribute == "main_handler"
    assert callable(getattr(module, attribute, None)), f"{name}: {handler} is not callable"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_sets_its_own_resources_layer_and_environment(name: str) -> None:
    # multi-scf copies only namespace/runtime/description/code from the top level to each function.
    function = functions()[name]
    for field in ("memorySize", "timeout", "layers", "environment", "vpc"):
        assert field in function, f"{name}: {field} must be set per function"
    assert [layer["name"] for layer in function["layers"]] == ["harvest-shared"]
    assert 1 <= int(function["timeout"]) <= 900


def test_the_worker_gets_the_longest_timeout_and_more_memory() -> None:
    worker = functions()["worker"]
    assert (worker["timeout"], worker["memorySize"]) == (900, 1024)


def _known_harvest_variables() -> set[str]:
    sources = [Path(module.__file__ or "") for module in (harvest.settings, harvest.usecases.live_events)]
    return {name for path in sources for name in re.findall(r"HARVEST_[A-Z0-9_]+", path.read_text())}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment_names_are_ones_the_code_reads(name: str) -> None:
    variables = functions()[name]["environment"]["variables"]
    unknown = sorted(set(variables) - _known_harvest_variables())
    assert unknown == [], f"{name}: no code reads {unknown}"
    assert variables["HARVEST_QUEUE"] == "ckafka"
    assert variables["HARVEST_OBJECT_STORE"] == "cos"


def test_only_the_api_holds_client_keys_and_only_live_event_end_the_callback_key() -> None:
    for name, function in functions().items():
        variables = function["environment"]["variables"]
        assert ("HARVEST_SECRET_KEY" in variables) == (name == "api")
        assert ("HARVEST_CALLBACK_KEY" in variables) == (name == "live_event_end")


def test_every_value_a_user_must_set_is_marked() -> None:
    for number, line in enumerate(CONFIG_PATH.read_text(encoding="utf-8").splitlines(), start=1):
        if "${env:" in line.split("#", 1)[0]:
            assert "# SET ME" in line, f"serverless.yml:{number} reads an env var without '# SET ME'"


def test_every_trigger_names_a_declared_function() -> None:
    declared = set(functions())
    for trigger in triggers():
        if trigger["type"] == "apigw":
            targets = [api["function"] for api in trigger["parameters"]["apis"]]
        else:
            targets = [trigger["function"]]
        assert targets and set(targets) <= declared, f"{trigger['type']} trigger names {targets}"


def test_every_function_has_a_trigger() -> None:
    triggered = set()
    for trigger in triggers():
        if trigger["type"] == "apigw":
            triggered |= {api["function"] for api in trigger["parameters"]["apis"]}
        else:
            triggered.add(trigger["function"])
    assert triggered == set(FUNCTIONS)


def test_ckafka_triggers_are_enabled_with_a_small_retry_on_the_right_topics() -> None:
    ckafka = {t["function"]: t["parameters"] for t in triggers() if t["type"] == "ckafka"}
    assert {name: params["topic"] for name, params in ckafka.items()} == {
        "worker": "harvest-work",
        "finalizer": "harvest-finalize",
    }
    for name, params in ckafka.items():
        # The component creates triggers disabled unless told otherwise.
        assert params["enable"] is True, f"{name}: ckafka trigger must have enable: true"
        assert 0 <= int(params["retry"]) <= MAX_CKAFKA_RETRY, f"{name}: retry {params['retry']} is not small"


def test_the_sweeper_timer_runs_every_minute_and_is_enabled() -> None:
    timers = [t for t in triggers() if t["type"] == "timer"]
    assert [t["function"] for t in timers] == ["sweeper"]
    params = timers[0]["parameters"]
    assert params["enable"] is True
    assert params["cronExpression"] == "0 */1 * * * * *"
    # Timer triggers are async: the platform's retry (default 2) applies and the component has no
    # retry knob for them, so a `retry` here would be silently ignored.
    assert "retry" not in params


def test_the_api_and_the_live_callback_sit_behind_the_gateway() -> None:
    apis = [api for t in triggers() if t["type"] == "apigw" for api in t["parameters"]["apis"]]
    assert {(api["function"], api["method"]) for api in apis} == {("api", "POST"), ("live_event_end", "POST")}
