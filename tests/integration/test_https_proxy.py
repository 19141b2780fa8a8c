"""The reverse-proxy alternative to `harvest serve --tls-cert`: Debian's nginx terminating TLS with
the server block the README documents (docs/nginx-harvest.conf), in front of a plain-HTTP
`harvest serve`, driven by the unchanged Tencent SDK over HTTPS.

nginx runs unprivileged-style from a temp dir (its own prefix, pid, logs and temp paths, in the
foreground, on a free port): the machine's nginx, if any, is never touched.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.engine import BUCKET, DESTINATION
from tests.support.polling import eventually
from tests.support.serve_process import (
    SERVE_REGION,
    SERVE_SECRET_ID,
    SERVE_SECRET_KEY,
    ServeProcess,
    describe_until_ended,
    serve_env,
    start_serve,
)
from tests.support.tls import TEST_HOST, CertificateAuthority, ConnectProxy, ServerCertificate

from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml

pytest_plugins = ("tests.support.media",)
pytestmark = pytest.mark.media

NGINX = Path("/usr/sbin/nginx")
DOCUMENTED = Path(__file__).parents[2] / "docs" / "nginx-harvest.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_config(directory: Path, port: int, upstream: str, cert: ServerCertificate) -> Path:
    """The documented server block with this test's name, port, certificate and upstream, inside a
    main config that keeps everything nginx writes in `directory`."""
    server = (
        DOCUMENTED.read_text()
        .replace("listen 443 ssl", f"listen 127.0.0.1:{port} ssl")
        .replace("harvest.example.com", TEST_HOST)
        .replace("/etc/ssl/harvest/fullchain.pem", str(cert.cert_file))
        .replace("/etc/ssl/harvest/privkey.pem", str(cert.key_file))
        .replace("http://127.0.0.1:8080", f"http://{upstream}")
    )
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = directory / "nginx.conf"
    config.write_text(
        f"daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log {directory / 'access.log'};\n{temp}\n{server}\n}}\n"
    )
    return config


@pytest.fixture
def behind_nginx(
    tmp_path: Path, media_pools: dict[str, Pool]
) -> Iterator[tuple[str, ServeProcess, CertificateAuthority, Path]]:
    if not NGINX.exists():
        pytest.fail(f"{NGINX} is missing: `make test` installs Debian's nginx (make system-deps)")
    origin = LiveOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}).start()
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    served = start_serve(
        serve_env(data_dir, registry, extra={"HARVEST_DEFAULT_DESTINATION": DESTINATION}), data_dir
    )
    ca = CertificateAuthority(tmp_path)
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    port = free_port()
    config = nginx_config(nginx_dir, port, served.endpoint, ca.issue())
    test = subprocess.run(
        [str(NGINX), "-t", "-p", str(nginx_dir), "-c", str(config), "-e", str(nginx_dir / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stderr
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(nginx_dir), "-c", str(config), "-e", str(nginx_dir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def listening() -> bool:
        if nginx.poll() is not None:  # exited: its stderr is complete, so reading it cannot block
            raise AssertionError(f"nginx did not start: {nginx.stderr.read() if nginx.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        eventually(listening, 10, f"nginx to listen on port {port} (see {nginx_dir / 'error.log'})")
        yield f"{TEST_HOST}:{port}", served, ca, nginx_dir
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        served.stop(10)
        origin.stop()


def test_the_sdk_through_nginx_terminating_tls_creates_describes_and_deletes(
    behind_nginx: tuple[str, ServeProcess, CertificateAuthority, Path],
) -> None:
    endpoint, served, ca, nginx_dir = behind_nginx
    proxy = ConnectProxy()
    try:
        # GIVEN harvest serve on plain HTTP, and the SDK with its default HTTPS profile, trusting the
        # test's CA, to nginx's harvest.test
        assert served.url.startswith("http://")
        http = HttpProfile(endpoint=endpoint, proxy=proxy.url, certification=str(ca.ca_file))
        client = mdp_client.MdpClient(
            credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY),
            SERVE_REGION,
            ClientProfile(httpProfile=http),
        )
        # WHEN it creates a job and waits for it (each call TC3-signed for Host harvest.test:PORT,
        # which nginx passes through unchanged to harvest serve on plain HTTP)
        now = int(time.time())
        create = models.CreateStreamPackageHarvestJobRequest()
        create.from_json_string(json.dumps({
            "ID": "behind-nginx-1", "ChannelName": "ts", "EndpointName": "hls", "TimeFormat": "Epoch seconds",
            "StartTime": str(now - 30), "EndTime": str(now - 10), "Destination": DESTINATION,
        }))  # fmt: skip
        assert client.CreateStreamPackageHarvestJob(create).Info.ID == "behind-nginx-1"
        info = describe_until_ended(client, "behind-nginx-1", 90)
        # THEN it completes, and its manifest is served from the local bucket through nginx
        assert info.Status == "Completed", info.ErrMessage
        get = partial(requests.get, verify=str(ca.ca_file), proxies={"https": proxy.url}, timeout=10)
        manifest = get(f"https://{endpoint}/cos/{BUCKET}/out/behind-nginx-1/index.m3u8")
        assert manifest.status_code == 200
        assert manifest.text.startswith("#EXTM3U")
        listing = models.DescribeStreamPackageHarvestJobsRequest()
        assert [job.ID for job in client.DescribeStreamPackageHarvestJobs(listing).Infos] == [
            "behind-nginx-1"
        ]
        delete = models.DeleteStreamPackageHarvestJobRequest()
        delete.ID = "behind-nginx-1"
        client.DeleteStreamPackageHarvestJob(delete)
        assert client.DescribeStreamPackageHarvestJobs(listing).Infos == []
        # AND the requests really went through nginx (its access log) over TLS
        access = (nginx_dir / "access.log").read_text()
        assert access.count('"POST / HTTP/') >= 4
        assert "/cos/" in access
    finally:
        proxy.stop()
