"""The deploy shape of serverless.yml: the SCF API requests a deploy makes of it, not its YAML.

packaging/scf_requests.py renders serverless.yml the way the multi-scf component and the component
toolkit do (it cites the source of each step); these tests check what SCF would be sent: every
function gets every setting it needs and can start with them, its handler is at the root of its
own code zip, and each trigger is a documented type with the documented fields.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import harvest.settings
import harvest.usecases.live_events
from harvest.settings import SCF_REQUIRED_SETTINGS, LiveEventConfig, Settings, check_scf_environment

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "serverless.yml"
FUNCTIONS = ("api", "worker", "finalizer", "live_event_end", "sweeper")
MAX_CKAFKA_RETRY = 10  # the default (10000, once a minute) would block a partition for a week
# CreateTrigger's Type values (SDK scf CreateTriggerRequest: "cos, cls, timer, ckafka, http").
DOCUMENTED_TRIGGER_TYPES = {"cos", "cls", "timer", "ckafka", "http"}
# What a deploying shell would set for serverless.yml's `${env:...}`.
DEPLOY_ENV = {
    "STAGE": "dev",
    "REGION": "ap-singapore",
    "VPC_ID": "vpc-abcd1234",
    "SUBNET_ID": "subnet-abcd1234",
    "HARVEST_DATABASE_URL": "postgresql://harvest:pw@10.0.0.10:5432/harvest",
    "HARVEST_CKAFKA_DATAHUB_ID": "datahub-work",
    "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID": "datahub-finalize",
    "HARVEST_SECRET_ID": "AKIDclient",
    "HARVEST_SECRET_KEY": "client-key",
    "HARVEST_DEFAULT_DESTINATION": "https://vod-1250000000.cos.ap-singapore.myqcloud.com/harvests/",
    "HARVEST_CALLBACK_KEY": "css-key",
    "CKAFKA_INSTANCE_ID": "ckafka-abcd1234",
}
ROLE_KEYS = {
    "TENCENTCLOUD_SECRETID": "AKIDrole",
    "TENCENTCLOUD_SECRETKEY": "role-key",
    "TENCENTCLOUD_RUNENV": "SCF",
}


def load_packaging(name: str) -> ModuleType:
    """packaging/<name>.py by path: a `packaging` package on sys.path would shadow PyPI's."""
    path = ROOT / "packaging" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"harvest_packaging_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


scf_requests = load_packaging("scf_requests")
build_functions = load_packaging("build_functions")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("functions")
    registry = root.parent / "channels.yaml"
    registry.write_text("channels: []\n", encoding="utf-8")
    build_functions.stage(root, registry)
    return root


@pytest.fixture(scope="module")
def plan(staged: Path) -> Any:
    return scf_requests.plan(CONFIG_PATH, DEPLOY_ENV, code_root=staged)


def environment(plan: Any, name: str) -> dict[str, str]:
    variables = plan.functions[name].request.get("Environment", {}).get("Variables", [])
    return {item["Key"]: item["Value"] for item in variables}


def _names_the_code_reads() -> set[str]:
    sources = [Path(module.__file__ or "") for module in (harvest.settings, harvest.usecases.live_events)]
    return {name for path in sources for name in re.findall(r"HARVEST_[A-Z0-9_]+", path.read_text())}


def test_the_deploy_creates_the_five_functions_on_python_3_10(plan: Any) -> None:
    assert set(plan.functions) == set(FUNCTIONS)
    assert plan.region == "ap-singapore"
    for name, function in plan.functions.items():
        request = function.request
        assert request["FunctionName"] == f"harvest-jobs-dev-harvest-{name}"
        assert request["Runtime"] == "Python3.10"
        assert (request["Type"], request["Namespace"]) == ("Event", "default")
        assert request["VpcConfig"] == {"VpcId": "vpc-abcd1234", "SubnetId": "subnet-abcd1234"}
        assert request["PublicNetConfig"]["PublicNetStatus"] == "ENABLE"
        assert 1 <= request["Timeout"] <= 900


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_gets_every_setting_it_needs_and_starts_with_them(plan: Any, name: str) -> None:
    # GIVEN the environment CreateFunction would carry, plus what SCF adds for a function with a role
    env = {**environment(plan, name), **ROLE_KEYS}
    # THEN every name in it is one the code reads, every required one is there, and it starts
    unknown = sorted(set(environment(plan, name)) - _names_the_code_reads())
    assert unknown == [], f"{name}: nothing reads {unknown}"
    assert set(SCF_REQUIRED_SETTINGS[name]) <= set(env)
    check_scf_environment(name, env)
    settings = Settings.from_env(env)
    assert (settings.queue_backend, settings.database_url) == ("ckafka", DEPLOY_ENV["HARVEST_DATABASE_URL"])
    assert str(settings.channels_file) == "/var/user/channels.yaml"
    if name == "live_event_end":
        assert LiveEventConfig.from_env(env).callback_key == "css-key"


def test_only_the_api_holds_client_keys_and_only_live_event_end_the_callback_key(plan: Any) -> None:
    for name in FUNCTIONS:
        env = environment(plan, name)
        assert ("HARVEST_SECRET_KEY" in env) == (name == "api")
        assert ("HARVEST_CALLBACK_KEY" in env) == (name == "live_event_end")
        assert ("HARVEST_OBJECT_STORE" in env) == (name in ("worker", "finalizer", "sweeper"))


def test_every_function_runs_under_its_own_execution_role(plan: Any) -> None:
    roles = {name: function.request.get("Role") for name, function in plan.functions.items()}
    assert all(roles.values()), f"no role: {[n for n, r in roles.items() if not r]}"
    assert len(set(roles.values())) == len(FUNCTIONS)


def test_the_layer_is_bound_by_name_and_integer_version(plan: Any) -> None:
    for function in plan.functions.values():
        layers = function.request["Layers"]
        assert [layer["LayerName"] for layer in layers] == ["harvest-shared"]
        assert all(type(layer["LayerVersion"]) is int for layer in layers)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_handler_resolves_at_the_root_of_its_own_code_zip(plan: Any, name: str, tmp_path: Path) -> None:
    # GIVEN the code zip the deploy uploads for the function
    function = plan.functions[name]
    archive = scf_requests.zip_code(function.code_dir, tmp_path / f"{name}.zip")
    module_name, _, attribute = function.request["Handler"].rpartition(".")
    with zipfile.ZipFile(archive) as code:
        names = set(code.namelist())
        # THEN the handler's file sits at the root (SCF unzips it into /var/user), with the registry
        assert f"{module_name}.py" in names
        registry = environment(plan, name)["HARVEST_CHANNELS"].removeprefix("/var/user/")
        assert registry in names
        source = code.read(f"{module_name}.py").decode()
    # AND it is this function's entry point, which builds its handler from the composition root
    assert re.search(rf"def {attribute}\(event", source)
    assert f"build_{name}_handler" in source


def test_the_api_and_the_live_callback_are_function_urls(plan: Any) -> None:
    urls = {t["FunctionName"].rsplit("-", 1)[-1]: t for t in plan.triggers if t["Type"] == "http"}
    assert set(urls) == {"api", "live_event_end"}
    for trigger in urls.values():
        desc = json.loads(trigger["TriggerDesc"])
        assert desc == {"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}}
        assert (trigger["Enable"], trigger["Qualifier"]) == ("OPEN", "$DEFAULT")


def test_every_trigger_is_a_documented_type_and_every_function_has_one(plan: Any) -> None:
    assert {t["Type"] for t in plan.triggers} <= DOCUMENTED_TRIGGER_TYPES
    targets = {t["FunctionName"] for t in plan.triggers}
    assert targets == {function.request["FunctionName"] for function in plan.functions.values()}
    assert all(t["Enable"] == "OPEN" for t in plan.triggers)


def test_ckafka_triggers_name_instance_and_topic_and_retry_little(plan: Any) -> None:
    ckafka = {t["FunctionName"]: t for t in plan.triggers if t["Type"] == "ckafka"}
    by_function = {name.split("-harvest-")[-1]: t for name, t in ckafka.items()}
    assert {name: t["TriggerName"] for name, t in by_function.items()} == {
        "worker": "ckafka-abcd1234-harvest-work",
        "finalizer": "ckafka-abcd1234-harvest-finalize",
    }
    for name, trigger in by_function.items():
        desc = json.loads(trigger["TriggerDesc"])
        assert 0 <= desc["retry"] <= MAX_CKAFKA_RETRY, f"{name}: retry {desc['retry']} is not small"
        assert desc["timeOut"] == 60
        assert desc["offset"] == "latest"
    assert json.loads(by_function["worker"]["TriggerDesc"])["maxMsgNum"] == 1


def test_the_sweeper_timer_runs_every_minute(plan: Any) -> None:
    (timer,) = [t for t in plan.triggers if t["Type"] == "timer"]
    assert timer["FunctionName"].endswith("-sweeper")
    assert (timer["TriggerDesc"], timer["CustomArgument"]) == ("0 */1 * * * * *", "sweep")


def test_an_environment_map_would_deploy_an_empty_environment(tmp_path: Path, staged: Path) -> None:
    # The shape this file used to have: multi-scf replaces it with `environments` (default []).
    text = CONFIG_PATH.read_text(encoding="utf-8")
    old = re.sub(
        r"      environments:\n(        - .*\n|        #.*\n)+",
        "      environment:\n        variables:\n          HARVEST_QUEUE: ckafka\n",
        text,
    )
    config = tmp_path / "serverless.yml"
    config.write_text(old, encoding="utf-8")
    rendered = scf_requests.plan(config, DEPLOY_ENV, code_root=staged)
    assert all("Environment" not in f.request for f in rendered.functions.values())


def test_a_layer_version_from_an_env_variable_would_be_sent_as_a_string(tmp_path: Path, staged: Path) -> None:
    text = CONFIG_PATH.read_text(encoding="utf-8")
    config = tmp_path / "serverless.yml"
    config.write_text(re.sub(r"version: 1\b", "version: ${env:LAYER_VERSION}", text), encoding="utf-8")
    rendered = scf_requests.plan(config, {**DEPLOY_ENV, "LAYER_VERSION": "3"}, code_root=staged)
    assert rendered.functions["api"].request["Layers"][0]["LayerVersion"] == "3"


def test_an_unset_variable_is_named() -> None:
    env = {k: v for k, v in DEPLOY_ENV.items() if k != "HARVEST_CALLBACK_KEY"}
    with pytest.raises(scf_requests.PlanError, match=r"\$\{env:HARVEST_CALLBACK_KEY\}"):
        scf_requests.plan(CONFIG_PATH, env)


def test_every_value_a_user_must_set_is_marked() -> None:
    for number, line in enumerate(CONFIG_PATH.read_text(encoding="utf-8").splitlines(), start=1):
        if "${env:" in line.split("#", 1)[0]:
            assert "# SET ME" in line, f"serverless.yml:{number} reads an env var without '# SET ME'"


def test_make_deploy_publishes_the_layer_for_python_3_10_and_binds_the_functions_to_it(
    tmp_path: Path, staged: Path
) -> None:
    # GIVEN serverless.yml pointing at staged function folders, and a layer zip
    config = tmp_path / "serverless.yml"
    config.write_text(
        CONFIG_PATH.read_text(encoding="utf-8").replace("./build/functions", str(staged)), encoding="utf-8"
    )
    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("harvest/__init__.py", "")
    # WHEN packaging/deploy.py renders its requests without sending them
    deploy = load_packaging("deploy")
    calls = deploy.requests_for(config, layer, DEPLOY_ENV, tmp_path / "zips")
    # THEN the layer is published for Python3.10 first, then the five functions use that version
    action, publish = calls[0]
    assert (action, publish["LayerName"], publish["CompatibleRuntimes"]) == (
        "PublishLayerVersion",
        "harvest-shared",
        ["Python3.10"],
    )
    functions = [request for action, request in calls if action == "DeployFunction"]
    assert len(functions) == len(FUNCTIONS)
    for request in functions:
        assert request["Layers"] == [{"LayerName": "harvest-shared", "LayerVersion": "$LAYER_VERSION"}]
        assert request["Code"]["ZipFile"]
    assert [action for action, _ in calls[len(FUNCTIONS) + 1 :]] == ["CreateTrigger"] * 5


def test_the_worker_has_room_to_plan_the_largest_job_the_defaults_allow(plan: Any) -> None:
    # The worker plans as well as harvests: its memory must hold a plan at HARVEST_MAX_PLAN_TASKS
    # (measured by tests/reliability/test_memory.py, kept in bench/scf_cost.py) with the headroom
    # the cost table's sizing rule gives, or SCF kills the planning invocation.
    scf_cost = pytest.importorskip("bench.scf_cost")
    assert Settings().max_plan_tasks == 150_000  # the cap the floor was measured at
    needed = scf_cost.PLAN_AT_CAP_RSS_MB * scf_cost.HEADROOM
    assert plan.functions["worker"].request["MemorySize"] >= needed
