"""Deploy rehearsal: the code zips and the layer zip, exactly as uploaded, run a whole job SCF's way.

Built once per session: the layer zip (packaging/build_layer.py, wheels for Python 3.10). Per test:
each function's code zip as the deploy makes it from serverless.yml (packaging/scf_requests.py),
unpacked into an SCF-like layout and started in a Python 3.10 process by SCF's rules
(tests/deploy/scf_runtime.py) with the environment CreateFunction would give it plus role-style
temporary keys. Around them: the live test origin, the CKafka API stand-in (checks TC3 signatures,
the token and SendMessage's shape), the COS stand-in (checks COS signatures; cos-python-sdk-v5 in
the functions) and the machine's PostgreSQL (skipped, saying why, when unreachable).

What differs from SCF, and only this: mount points (/var/user and /opt are temporary folders, the
environment's /var/user/ paths rewritten to match), and three test-only settings that point the
SDKs at the stand-ins (HARVEST_TENCENT_API_ENDPOINT, HARVEST_COS_IP/PORT/SCHEME).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import yaml
from qcloud_cos import CosConfig, CosS3Client
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.deploy.harness import (
    FunctionUrl,
    InvocationError,
    ScfInstance,
    ckafka_event,
    find_python310,
    unpack,
)
from tests.support.cos_server import CosServer, start_cos_server
from tests.support.polling import eventually
from tests.support.signing import live_event_signed
from tests.support.tencent_api_standin import TencentApiStandIn

from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml
from harvest.engine.plan import Plan

pytest_plugins = ("tests.support.media",)
pytestmark = [pytest.mark.media, pytest.mark.postgres, pytest.mark.xdist_group("scf-deploy")]

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REGION = "ap-singapore"
CLIENT_ID, CLIENT_KEY = "AKIDrehearsalclient00000000000000000", "rehearsal-client-key"
CALLBACK_KEY = "rehearsal-css-key"
TOPICS = {"datahub-work": "harvest-work", "datahub-finalize": "harvest-finalize"}
CONSUMERS = {"harvest-work": "worker", "harvest-finalize": "finalizer"}
JOB_TIMEOUT = 60.0


def _packaging(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"harvest_packaging_{name}", ROOT / "packaging" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


scf_requests = _packaging("scf_requests")
build_functions = _packaging("build_functions")


@dataclass
class RoleKeys:
    """The execution role's temporary keys: the platform hands the current ones to each invocation."""

    secret_id: str = ""
    secret_key: str = ""
    token: str = ""
    generation: int = 0

    def rotate(self) -> None:
        self.generation += 1
        suffix = f"{self.generation}{uuid.uuid4().hex[:8]}"
        self.secret_id, self.secret_key, self.token = (
            f"AKIDrole{suffix}",
            f"role-key-{suffix}",
            f"token-{suffix}",
        )

    def env(self) -> dict[str, str]:
        return {
            "TENCENTCLOUD_SECRETID": self.secret_id,
            "TENCENTCLOUD_SECRETKEY": self.secret_key,
            "TENCENTCLOUD_SESSIONTOKEN": self.token,
        }


# --- session: Python 3.10 and the layer zip -----------------------------------------------------------


@pytest.fixture(scope="session")
def python310() -> str:
    python = find_python310()
    if python is None:
        pytest.skip("no Python 3.10 on this machine: SCF's runtime is needed to run the deployed code")
    return python


def _layer_inputs_digest() -> str:
    """What the layer is built from: the build script, pyproject.toml and the package's files."""
    digest = hashlib.sha256()
    sources = [ROOT / "packaging" / "build_layer.py", ROOT / "pyproject.toml"]
    package = ROOT / "shared" / "harvest"
    sources += sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in sources:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def layer_dir(python310: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/layer.zip as `make layer` builds it, unpacked where SCF puts layers (/opt).

    Built once per session, and kept under build/rehearsal/ by the digest of what it is built from,
    so a later session with the same sources and dependencies reuses it.
    """
    archive = ROOT / "build" / "rehearsal" / f"layer-{_layer_inputs_digest()}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time across test processes: the others wait and reuse it.
    with (archive.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not archive.is_file():
            built = subprocess.run(
                [sys.executable, str(ROOT / "packaging" / "build_layer.py"), "--out", str(archive)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert built.returncode == 0, built.stderr[-3000:]
    return unpack(archive, tmp_path_factory.mktemp("layer") / "opt")


@pytest.fixture(scope="session")
def postgres() -> str:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 (the job table of the rehearsal): {exc}")
    return POSTGRES_URL


# --- per test: the deployment -------------------------------------------------------------------------


@dataclass
class Deployment:
    plan: Any
    keys: RoleKeys
    ckafka: TencentApiStandIn
    cos: CosServer
    bucket: str
    origin: LiveOrigin
    database_url: str
    instances: dict[str, ScfInstance]
    urls: dict[str, FunctionUrl] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOPICS, 0))

    def mdp(self) -> mdp_client.MdpClient:
        profile = ClientProfile(httpProfile=HttpProfile(endpoint=self.urls["api"].host, protocol="http"))
        return mdp_client.MdpClient(credential.Credential(CLIENT_ID, CLIENT_KEY), REGION, profile)

    def rotate_keys(self) -> None:
        """New role keys; the old ones stop working everywhere at once (they expired)."""
        self.keys.rotate()
        self.ckafka.secret_id, self.ckafka.secret_key, self.ckafka.token = (
            self.keys.secret_id,
            self.keys.secret_key,
            self.keys.token,
        )
        self.cos.layer.credentials.clear()
        self.cos.layer.credentials[self.keys.secret_id] = self.keys.secret_key

    def deliver_all(self) -> int:
        """The CKafka triggers: each published record to its function, in order; failures retried."""
        delivered = 0
        for datahub, topic in TOPICS.items():
            records = self.ckafka.received(datahub)
            while self.delivered[datahub] < len(records):
                offset = self.delivered[datahub]
                record = records[offset]
                event = ckafka_event(topic, offset, record.key, record.body)
                self._invoke_with_retry(CONSUMERS[topic], event)
                self.delivered[datahub] += 1
                delivered += 1
        return delivered

    def _invoke_with_retry(self, function: str, event: dict[str, Any], attempts: int = 4) -> Any:
        # The trigger's `retry: 3`; the platform waits a minute between attempts, we wait less.
        for attempt in range(attempts):
            try:
                return self.instances[function].invoke(event, self.keys.env(), f"{function}-{uuid.uuid4()}")
            except InvocationError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1.0)
        return None

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.instances[function].invoke(event, self.keys.env(), f"{function}-{uuid.uuid4()}")


@pytest.fixture
def deployment(
    python310: str, layer_dir: Path, postgres: str, media_pools: dict[str, Pool], tmp_path: Path
) -> Iterator[Deployment]:
    keys = RoleKeys()
    keys.rotate()
    origin = LiveOrigin({"news": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}).start()
    ckafka = TencentApiStandIn(secret_id=keys.secret_id, secret_key=keys.secret_key, token=keys.token).start()
    cos = start_cos_server(secret_id=keys.secret_id, secret_key=keys.secret_key, region=REGION)
    bucket = cos.create_bucket("vod")
    schema = f"harvest_deploy_{uuid.uuid4().hex[:10]}"
    database_url = f"{postgres}?schema={schema}"
    # The channel registry the functions ship: the origin's channel, and a CSS stream rule for it.
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    document = yaml.safe_load(registry.read_text(encoding="utf-8"))
    document["streams"] = [{"stream_id": "news*", "channel": "news", "endpoint": "hls"}]
    registry.write_text(yaml.safe_dump(document), encoding="utf-8")
    # What the deploying shell sets for serverless.yml's ${env:...}.
    deploy_env = {
        "STAGE": "rehearsal",
        "REGION": REGION,
        "VPC_ID": "vpc-rehearsal",
        "SUBNET_ID": "subnet-rehearsal",
        "HARVEST_DATABASE_URL": database_url,
        "HARVEST_CKAFKA_DATAHUB_ID": "datahub-work",
        "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID": "datahub-finalize",
        "HARVEST_SECRET_ID": CLIENT_ID,
        "HARVEST_SECRET_KEY": CLIENT_KEY,
        "HARVEST_DEFAULT_DESTINATION": f"https://{bucket}.cos.{REGION}.myqcloud.com/vod/",
        "HARVEST_CALLBACK_KEY": CALLBACK_KEY,
        "CKAFKA_INSTANCE_ID": "ckafka-rehearsal",
    }
    staged = build_functions.stage(tmp_path / "build" / "functions", registry)[0].parent
    plan = scf_requests.plan(ROOT / "serverless.yml", deploy_env, code_root=staged)
    instances: dict[str, ScfInstance] = {}
    deployment = Deployment(plan, keys, ckafka, cos, bucket, origin, database_url, instances)
    try:
        for name, function in plan.functions.items():
            # The code zip as uploaded, unpacked where SCF puts code (/var/user).
            archive = scf_requests.zip_code(function.code_dir, tmp_path / "zips" / f"{name}.zip")
            code_dir = unpack(archive, tmp_path / "scf" / name / "user")
            env = {
                item["Key"]: item["Value"].replace("/var/user/", f"{code_dir}/")
                for item in function.request["Environment"]["Variables"]
            }
            env["HARVEST_DATA_DIR"] = str(tmp_path / "scf" / name / "tmp")
            env.update(
                {  # what SCF's runtime sets (583/32748), the role's keys, and the stand-ins' addresses
                    "TENCENTCLOUD_RUNENV": "SCF",
                    "USER_CODE_ROOT": f"{code_dir}/",
                    "PYTHONDONTWRITEBYTECODE": "x",
                    "PYTHONPATH": f"{code_dir}:{layer_dir}",
                    "TZ": "UTC",
                    **keys.env(),
                    "HARVEST_TENCENT_API_ENDPOINT": ckafka.endpoint,
                    "HARVEST_COS_IP": cos.ip,
                    "HARVEST_COS_PORT": str(cos.port),
                    "HARVEST_COS_SCHEME": "http",
                    "NO_PROXY": "127.0.0.1,localhost",
                }
            )
            instances[name] = ScfInstance(
                python310, code_dir, layer_dir, function.request["Handler"], env, tmp_path / f"{name}.log"
            )
        for name in ("api", "live_event_end"):
            deployment.urls[name] = FunctionUrl(instances[name], keys.env)
        yield deployment
    finally:
        for url in deployment.urls.values():
            url.stop()
        for instance in instances.values():
            instance.stop()
        ckafka.stop()
        cos.stop()
        origin.stop()
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _origin_bytes(url: str, byte_range: tuple[int, int] | None) -> bytes:
    request = urllib.request.Request(url)
    if byte_range:
        request.add_header("Range", f"bytes={byte_range[0]}-{byte_range[0] + byte_range[1] - 1}")
    with urllib.request.urlopen(request, timeout=10) as response:
        data: bytes = response.read()
    return data


def _run_until_ended(deployment: Deployment, job_id: str) -> models.HarvestJobResp:
    """Play the CKafka triggers (deliver what the functions publish) until the job leaves Running."""
    describe = models.DescribeStreamPackageHarvestJobRequest()
    describe.ID = job_id

    def ended() -> models.HarvestJobResp | None:
        deployment.deliver_all()
        info = deployment.mdp().DescribeStreamPackageHarvestJob(describe).Info
        return None if info.Status == "Running" else info

    def logs() -> str:
        tails = {name: i.log_text()[-1500:] for name, i in deployment.instances.items()}
        return f"job {job_id} to end; function logs: {json.dumps(tails, indent=1)}"

    return eventually(ended, JOB_TIMEOUT, logs, interval=0.2)


# --- the rehearsal ------------------------------------------------------------------------------------


def test_a_job_created_through_the_function_url_completes_byte_exact(deployment: Deployment) -> None:
    # GIVEN the deployed functions, and a window of the live channel that has ended
    end = int(time.time()) - 10
    request = models.CreateStreamPackageHarvestJobRequest()
    request.from_json_string(
        json.dumps(
            {
                "ID": "rehearsal-1",
                "ChannelName": "news",
                "EndpointName": "hls",
                "TimeFormat": "Epoch seconds",
                "StartTime": str(end - 12),
                "EndTime": str(end),
            }
        )
    )
    # WHEN the unchanged Tencent SDK creates a job through the api function's URL
    created = deployment.mdp().CreateStreamPackageHarvestJob(request)
    assert created.Info.Status == "Running"
    event = deployment.urls["api"].events[-1]
    assert set(event) == {"body", "headers", "httpMethod", "path", "queryString"}
    # AND the role's keys rotate before the worker runs (the old ones are refused from now on)
    deployment.rotate_keys()
    # AND the CKafka triggers deliver what the functions publish until the job ends
    info = _run_until_ended(deployment, "rehearsal-1")
    # THEN the job is Completed, in the default destination's bucket
    assert (info.Status, info.ErrMessage) == ("Completed", "")
    assert info.Destination == f"https://{deployment.bucket}.cos.{REGION}.myqcloud.com/vod/"
    # AND every planned object is in COS, byte-exact with what the origin serves
    db = Database.connect(deployment.database_url)
    try:
        plan = Plan.from_json(SqlJobStore(db).get_plan("rehearsal-1"))
    finally:
        db.close()
    keys = deployment.keys
    config = CosConfig(Region=REGION, SecretId=keys.secret_id, SecretKey=keys.secret_key, Token=keys.token,
                       Scheme="http", IP=deployment.cos.ip, Port=deployment.cos.port)  # fmt: skip
    client = CosS3Client(config, retry=0)
    for task in plan.tasks:
        stored = client.get_object(Bucket=deployment.bucket, Key=task.key)["Body"].get_raw_stream().read()
        assert (
            hashlib.sha256(stored).hexdigest()
            == hashlib.sha256(_origin_bytes(task.url, task.range)).hexdigest()
        ), task.key
    master = client.get_object(Bucket=deployment.bucket, Key=plan.master_key)["Body"].get_raw_stream().read()
    assert master.startswith(b"#EXTM3U")
    # AND both SDKs signed with the role's keys of the moment: the token went along, old and new
    tokens = {call.headers.get("x-tc-token") for call in deployment.ckafka.send_message_calls()}
    assert deployment.keys.token in tokens
    assert len(tokens) == 2
    cos_tokens = {
        seen.headers.get("x-cos-security-token") for seen in deployment.cos.requests_for(deployment.bucket)
    }
    assert deployment.keys.token in cos_tokens


def test_a_css_stream_end_callback_through_its_function_url_creates_a_job_that_completes(
    deployment: Deployment,
) -> None:
    # GIVEN a CSS disconnect notification for a 30 s push that ended 20 s ago, signed with the key
    stop = int(time.time()) - 20
    expiry = int(time.time()) + 600
    body = json.loads(json.loads((ROOT / "events" / "css_push_stop.json").read_text())["body"])
    body.update(live_event_signed({"event_time": stop, "push_duration": "30000"}, expiry, CALLBACK_KEY))
    # WHEN CSS posts it to live_event_end's function URL
    request = urllib.request.Request(
        f"http://{deployment.urls['live_event_end'].host}/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        status, answer = response.status, json.loads(response.read())
    # THEN it is answered 200 with the job it created, whose plan message went to CKafka
    assert (status, answer["code"], answer["outcome"]) == (200, 0, "created")
    assert [json.loads(m.body)["job_id"] for m in deployment.ckafka.received("datahub-work")] == [
        answer["job_id"]
    ]
    describe = models.DescribeStreamPackageHarvestJobRequest()
    describe.ID = answer["job_id"]
    info = deployment.mdp().DescribeStreamPackageHarvestJob(describe).Info
    assert (info.ChannelName, info.EndpointName, info.Status) == ("news", "hls", "Running")
    # AND the session's job runs to Completed through the worker and finalizer
    assert _run_until_ended(deployment, answer["job_id"]).Status == "Completed"


def test_the_console_is_served_through_the_api_function_url(deployment: Deployment) -> None:
    # GIVEN the deployed api function, and a browser's GET in the function-URL shape
    event = json.loads((ROOT / "events" / "function_url_console.json").read_text(encoding="utf-8"))
    # WHEN the page and its script are asked for
    page = deployment.invoke("api", event)
    script = deployment.invoke("api", {**event, "path": "/console/console.js"})
    # THEN both come from the layer's built console, with their content types
    assert page["statusCode"] == 200
    assert "<html" in page["body"].lower()
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert script["statusCode"] == 200
    assert "javascript" in script["headers"]["Content-Type"]
    assert len(script["body"]) > 100_000  # the bundle with hls.js, not an error page


def test_the_timer_event_runs_the_sweeper(deployment: Deployment) -> None:
    # GIVEN the timer trigger's event, as the every-minute trigger sends it
    event = json.loads((ROOT / "events" / "timer_sweeper.json").read_text())
    # WHEN the sweeper function gets it
    result = deployment.invoke("sweeper", event)
    # THEN it swept the (empty) table and reported what it did
    assert result == {"failed": [], "requeued": {}, "published": 0}


def test_a_function_missing_a_setting_names_it_and_the_api_answers_internal_error(
    python310: str, layer_dir: Path, tmp_path: Path
) -> None:
    # GIVEN the api's deployed code with the role's keys but no HARVEST_DATABASE_URL
    registry = tmp_path / "channels.yaml"
    registry.write_text("channels: []\n", encoding="utf-8")
    staged = build_functions.stage(tmp_path / "functions", registry)[0]
    code_dir = unpack(scf_requests.zip_code(staged, tmp_path / "api.zip"), tmp_path / "user")
    env = {
        "TENCENTCLOUD_RUNENV": "SCF",
        "TENCENTCLOUD_SECRETID": "AKIDrole",
        "TENCENTCLOUD_SECRETKEY": "role-key",
        "HARVEST_REGION": REGION,
        "HARVEST_QUEUE": "ckafka",
        "HARVEST_CKAFKA_DATAHUB_ID": "datahub-work",
        "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID": "datahub-finalize",
        "HARVEST_CHANNELS": str(code_dir / "channels.yaml"),
        "HARVEST_SECRET_ID": CLIENT_ID,
        "HARVEST_SECRET_KEY": CLIENT_KEY,
    }
    instance = ScfInstance(python310, code_dir, layer_dir, "index.main_handler", env, tmp_path / "api.log")
    try:
        # WHEN a request arrives
        answer = instance.invoke(
            {"body": "{}", "headers": {}, "httpMethod": "POST", "path": "/", "queryString": {}}, {}
        )
    finally:
        instance.stop()
    # THEN it is an InternalError with a RequestId, and the log says once, in one line, what is missing
    response = json.loads(answer["body"])["Response"]
    assert response["Error"]["Code"] == "InternalError"
    assert response["RequestId"]
    startup = [line for line in instance.log_text().splitlines() if "cannot start" in line]
    assert len(startup) == 1, instance.log_text()[-2000:]
    assert "HARVEST_DATABASE_URL" in startup[0], instance.log_text()[-2000:]
    assert not list(code_dir.rglob("*.db"))
    assert not (code_dir / ".harvest").exists()


def test_the_layer_holds_what_the_functions_import_and_nothing_else(layer_dir: Path) -> None:
    # GIVEN the layer as uploaded
    harvest = layer_dir / "harvest"
    # THEN it has the package without the local stack, the CLI and the test origin / media tools
    assert (harvest / "handlers" / "worker.py").is_file()
    assert not any((harvest / name).exists() for name in ("local", "cli", "devtools"))
    # AND exactly pyproject.toml's runtime dependencies (and theirs), nothing only the local parts need
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in layer_dir.glob("*.dist-info")}
    for requirement in declared:
        name = requirement.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
        assert name.replace("_", "-") in installed, name
    assert not (layer_dir / "cryptography").exists()
    assert "cryptography" not in installed
    # AND of the Tencent SDK only the products the functions call
    products = sorted(p.name for p in (layer_dir / "tencentcloud").iterdir() if p.is_dir())
    assert products == ["ckafka", "common"]
