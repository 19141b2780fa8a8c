"""`harvest serve` over HTTPS, as a real process: the unchanged Tencent SDK with its default (HTTPS)
profile and `tccli` drive Create, Describe(s) and Delete against a certificate for `harvest.test`
issued by a CA the test creates and trusts; the local bucket and the ops routes answer over HTTPS
too; SIGHUP reloads the certificate while a request is in flight and a job runs; and
`--tls-self-signed` prints a fingerprint that matches what it serves.

`harvest.test` resolves nowhere: clients reach it through a CONNECT proxy that maps it to
127.0.0.1 (tests/support/tls.py), so SNI, hostname checks and the TC3 `Host` are the real name's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.engine import BUCKET, DESTINATION
from tests.support.polling import eventually
from tests.support.serve_process import (
    HARVEST_BIN,
    SERVE_REGION,
    SERVE_SECRET_ID,
    SERVE_SECRET_KEY,
    ServeProcess,
    describe_until_ended,
    serve_env,
    start_serve,
)
from tests.support.tls import (
    TEST_HOST,
    CertificateAuthority,
    ConnectProxy,
    ServerCertificate,
    certifi_trusting,
)

from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml

pytest_plugins = ("tests.support.media",)
pytestmark = pytest.mark.media

TCCLI = Path(sys.executable).with_name("tccli")


@pytest.fixture
def origin(media_pools: dict[str, Pool]) -> Iterator[LiveOrigin]:
    running = LiveOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}).start()
    yield running
    running.stop()


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    running = ConnectProxy()
    yield running
    running.stop()


def start_https(tmp_path: Path, origin: LiveOrigin, cert: ServerCertificate) -> ServeProcess:
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    extra = {
        "HARVEST_DEFAULT_DESTINATION": DESTINATION,
        "HARVEST_TLS_CERT": str(cert.cert_file),
        "HARVEST_TLS_KEY": str(cert.key_file),
    }
    return start_serve(serve_env(data_dir, registry, workers=2, extra=extra), data_dir)


@pytest.fixture
def served(tmp_path: Path, origin: LiveOrigin, ca: CertificateAuthority) -> Iterator[ServeProcess]:
    process = start_https(tmp_path, origin, ca.issue())
    yield process
    process.stop(10)


def sdk_client(endpoint: str, ca_file: Path, proxy: ConnectProxy) -> mdp_client.MdpClient:
    # The default profile speaks HTTPS; only the trust (the test's CA) and the way there are given.
    http = HttpProfile(endpoint=endpoint, proxy=proxy.url, certification=str(ca_file))
    assert http.scheme == "https"
    return mdp_client.MdpClient(
        credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY),
        SERVE_REGION,
        ClientProfile(httpProfile=http),
    )


def job_params(job_id: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "ID": job_id,
        "ChannelName": "ts",
        "EndpointName": "hls",
        "TimeFormat": "Epoch seconds",
        "StartTime": str(now - 30),
        "EndTime": str(now - 10),
        "Destination": DESTINATION,
    }


def served_certificate(port: int, ca_file: Path) -> bytes:
    """The DER certificate a new handshake to 127.0.0.1:port as `harvest.test` is given (verified)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=TEST_HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_the_sdk_with_its_default_https_profile_creates_describes_and_deletes(
    served: ServeProcess, ca: CertificateAuthority, proxy: ConnectProxy
) -> None:
    port = int(served.endpoint.rsplit(":", 1)[1])
    endpoint = f"{TEST_HOST}:{port}"
    client = sdk_client(endpoint, ca.ca_file, proxy)
    # GIVEN harvest serve announcing itself on https://
    assert served.url.startswith("https://")
    # WHEN the SDK creates a job, describes it, lists it and (once ended) deletes it
    create = models.CreateStreamPackageHarvestJobRequest()
    create.from_json_string(json.dumps(job_params("tls-sdk-1")))
    assert client.CreateStreamPackageHarvestJob(create).Info.ID == "tls-sdk-1"
    info = describe_until_ended(client, "tls-sdk-1", 90)
    assert info.Status == "Completed", info.ErrMessage
    listing = models.DescribeStreamPackageHarvestJobsRequest()
    listing.ChannelName = "ts"
    assert [job.ID for job in client.DescribeStreamPackageHarvestJobs(listing).Infos] == ["tls-sdk-1"]
    # THEN the local bucket and the ops routes answer over HTTPS on the same port
    get = partial(requests.get, verify=str(ca.ca_file), proxies={"https": proxy.url}, timeout=10)
    manifest = get(f"https://{endpoint}/cos/{BUCKET}/out/tls-sdk-1/index.m3u8")
    assert manifest.status_code == 200
    assert manifest.text.startswith("#EXTM3U")
    assert get(f"https://{endpoint}/healthz").status_code == 200
    assert get(f"https://{endpoint}/readyz").status_code == 200
    assert "harvest_jobs_created_total 1.0" in get(f"https://{endpoint}/metrics").text
    assert get(f"https://{endpoint}/console/").status_code == 200
    delete = models.DeleteStreamPackageHarvestJobRequest()
    delete.ID = "tls-sdk-1"
    client.DeleteStreamPackageHarvestJob(delete)
    assert client.DescribeStreamPackageHarvestJobs(listing).Infos == []
    # AND every call went to harvest.test through the tunnel (SNI and Host were the real name)
    assert proxy.tunnels
    assert set(proxy.tunnels) == {endpoint}


def test_a_client_that_does_not_trust_the_certificate_is_refused(
    served: ServeProcess, proxy: ConnectProxy
) -> None:
    port = int(served.endpoint.rsplit(":", 1)[1])
    # GIVEN the SDK with its default trust (certifi's public CAs), which never issued this certificate
    http = HttpProfile(endpoint=f"{TEST_HOST}:{port}", proxy=proxy.url)
    client = mdp_client.MdpClient(
        credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY),
        SERVE_REGION,
        ClientProfile(httpProfile=http),
    )
    # WHEN it calls, THEN the handshake fails on the certificate, before any signed request is sent
    with pytest.raises(TencentCloudSDKException, match="CERTIFICATE_VERIFY_FAILED"):
        client.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())


def tccli(env: Mapping[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(TCCLI), "mdp", *args], env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"tccli {' '.join(args[:1])} failed:\n{result.stdout}\n{result.stderr}"
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_tccli_creates_describes_and_deletes_over_https(
    served: ServeProcess, ca: CertificateAuthority, proxy: ConnectProxy, tmp_path: Path
) -> None:
    port = int(served.endpoint.rsplit(":", 1)[1])
    # GIVEN tccli-intl-en, trusting the test's CA the way a user would (in certifi's bundle), and no
    # saved profile (a fresh HOME)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(certifi_trusting(ca.ca_file, tmp_path)),
    }
    common = (
        "--endpoint", f"{TEST_HOST}:{port}",
        "--https-proxy", proxy.url,
        "--secretId", SERVE_SECRET_ID,
        "--secretKey", SERVE_SECRET_KEY,
        "--region", SERVE_REGION,
    )  # fmt: skip
    params = job_params("tls-tccli-1")
    # WHEN it creates a job, describes it and lists the channel's jobs
    created = tccli(env, "CreateStreamPackageHarvestJob", *common, *(f"--{k}={v}" for k, v in params.items()))
    assert created["Info"]["ID"] == "tls-tccli-1"
    described = tccli(env, "DescribeStreamPackageHarvestJob", *common, "--ID", "tls-tccli-1")
    assert described["Info"]["ChannelName"] == "ts"
    listed = tccli(env, "DescribeStreamPackageHarvestJobs", *common, "--ChannelName", "ts")
    # THEN each answers as the real service would
    assert [job["ID"] for job in listed["Infos"]] == ["tls-tccli-1"]
    assert re.fullmatch(r"[0-9a-f-]{36}", listed["RequestId"])
    describe_until_ended(sdk_client(f"{TEST_HOST}:{port}", ca.ca_file, proxy), "tls-tccli-1", 90)
    # AND Delete removes it
    tccli(env, "DeleteStreamPackageHarvestJob", *common, "--ID", "tls-tccli-1")
    assert tccli(env, "DescribeStreamPackageHarvestJobs", *common, "--ChannelName", "ts")["Infos"] == []


def test_sighup_reloads_the_certificate_without_dropping_work(
    tmp_path: Path, origin: LiveOrigin, ca: CertificateAuthority, proxy: ConnectProxy
) -> None:
    first = ca.issue(stem="live")
    served = start_https(tmp_path, origin, first)
    try:
        _check_reload(served, ca, first, proxy)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nharvest serve's output:\n" + "\n".join(served.output[-40:])) from exc
    finally:
        served.stop(10)


def _check_reload(
    served: ServeProcess, ca: CertificateAuthority, first: ServerCertificate, proxy: ConnectProxy
) -> None:
    port = int(served.endpoint.rsplit(":", 1)[1])
    client = sdk_client(f"{TEST_HOST}:{port}", ca.ca_file, proxy)
    assert served_certificate(port, ca.ca_file) == first.der
    # GIVEN a job the queue pump is working on
    create = models.CreateStreamPackageHarvestJobRequest()
    create.from_json_string(json.dumps(job_params("tls-reload-1")))
    client.CreateStreamPackageHarvestJob(create)
    # AND a request in flight: its head and half its body sent on a kept-alive connection
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname=TEST_HOST)
    body = b'{"ID": "tls-reload-1"}'
    conn.sendall(
        f"POST / HTTP/1.1\r\nHost: {TEST_HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"X-TC-Action: DescribeStreamPackageHarvestJob\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body[:8]
    )
    # WHEN the certificate files are renewed in place and harvest serve gets SIGHUP
    renewed = ca.issue(stem="renewed")
    first.cert_file.write_bytes(renewed.cert_file.read_bytes())
    first.key_file.write_bytes(renewed.key_file.read_bytes())
    served.proc.send_signal(signal.SIGHUP)
    eventually(lambda: "TLS certificate reloaded" in served.log_text(), 30, "the reload's log line")
    # THEN the request in flight completes on its connection (old certificate) ...
    conn.sendall(body[8:])
    answer = _read_answer(conn)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"Response"' in answer
    assert conn.getpeercert(binary_form=True) == first.der
    conn.close()
    # ... new handshakes get the renewed certificate, and the log names it
    assert served_certificate(port, ca.ca_file) == renewed.der
    fingerprint = hashlib.sha256(renewed.der).hexdigest().upper()
    assert ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)) in served.log_text()
    # AND the job the pump was working on completes
    assert describe_until_ended(client, "tls-reload-1", 90).Status == "Completed"
    # WHEN a broken pair is put in place and SIGHUP sent again
    first.key_file.write_bytes(ca.issue(stem="other").key_file.read_bytes())
    served.proc.send_signal(signal.SIGHUP)
    eventually(lambda: "certificate not reloaded" in served.log_text(), 30, "the refusal's log line")
    # THEN the renewed certificate still serves, and so does the API
    assert served_certificate(port, ca.ca_file) == renewed.der
    listing = client.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())
    assert [job.ID for job in listing.Infos] == ["tls-reload-1"]


def _read_answer(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    assert found, head
    length = int(found.group(1))
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_tls_self_signed_prints_the_fingerprint_it_serves_and_keeps_it_across_restarts(
    tmp_path: Path, origin: LiveOrigin
) -> None:
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    env = serve_env(data_dir, registry)
    fingerprints = []
    for _ in range(2):
        # GIVEN harvest serve --tls-self-signed
        served = start_serve(env, data_dir, args=("--tls-self-signed",))
        try:
            text = served.log_text()
            # THEN it prints the certificate's file, fingerprint and how to trust it
            named = re.search(r"self-signed certificate (\S+)", text)
            fingerprint = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", text)
            assert named, text
            assert fingerprint, text
            cert_file = Path(named.group(1))
            printed = fingerprint.group(1)
            assert f"REQUESTS_CA_BUNDLE={cert_file}" in text
            assert cert_file == (data_dir / "tls" / "self-signed.crt").resolve()
            # AND the printed fingerprint is the certificate served
            port = int(served.endpoint.rsplit(":", 1)[1])
            context = ssl.create_default_context(cafile=str(cert_file))
            with context.wrap_socket(
                socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1"
            ) as tls:
                der = tls.getpeercert(binary_form=True)
            assert der is not None
            assert printed.replace(":", "") == hashlib.sha256(der).hexdigest().upper()
            # AND the SDK trusting that file is answered
            http = HttpProfile(endpoint=f"127.0.0.1:{port}", certification=str(cert_file))
            client = mdp_client.MdpClient(
                credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY),
                SERVE_REGION,
                ClientProfile(httpProfile=http),
            )
            assert (
                client.DescribeStreamPackageHarvestJobs(
                    models.DescribeStreamPackageHarvestJobsRequest()
                ).Infos
                == []
            )
            fingerprints.append(printed)
        finally:
            served.stop(10)
    # AND a restart serves the same certificate (trusting it once is enough)
    assert fingerprints[0] == fingerprints[1]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_old_protocols_and_weak_ciphers_are_refused(served: ServeProcess, ca: CertificateAuthority) -> None:
    port = int(served.endpoint.rsplit(":", 1)[1])

    def handshake(context: ssl.SSLContext) -> str:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=TEST_HOST) as tls,
        ):
            cipher = tls.cipher()
            assert cipher is not None  # None only before the handshake, which wrap_socket has done
            return f"{tls.version()} {cipher[0]}"

    modern = ssl.create_default_context(cafile=str(ca.ca_file))
    assert handshake(modern).startswith("TLSv1.3")
    # GIVEN clients that offer only TLS 1.1, or TLS 1.2 with only CBC/RSA-key-exchange suites
    old = ssl.create_default_context(cafile=str(ca.ca_file))
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    weak = ssl.create_default_context(cafile=str(ca.ca_file))
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA:AES256-GCM-SHA384")
    # THEN neither gets a connection
    for context in (old, weak):
        with pytest.raises(ssl.SSLError):
            handshake(context)
    # AND TLS 1.2 is served with an ECDHE AEAD suite
    tls12 = ssl.create_default_context(cafile=str(ca.ca_file))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = handshake(tls12).split(" ")
    assert (
        version == "TLSv1.2"
    )
    assert (
        cipher.startswith("ECDHE-ECDSA-")
    )
    assert (
        "GCM" in cipher or "CHACHA" in cipher
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tls-cert", "{cert}"), "both HARVEST_TLS_CERT and HARVEST_TLS_KEY"),
        (("--tls-cert", "{cert}", "--tls-key", "{other_key}"), "cannot be used together"),
        (("--tls-cert", "{missing}", "--tls-key", "{other_key}"), "cannot read the TLS certificate"),
    ],
)
def test_serve_refuses_an_unusable_certificate_at_start(
    tmp_path: Path, ca: CertificateAuthority, args: tuple[str, ...], message: str
) -> None:
    cert, other = ca.issue(stem="a"), ca.issue(stem="b")
    names = {"cert": cert.cert_file, "other_key": other.key_file, "missing": tmp_path / "missing.pem"}
    registry = tmp_path / "channels.yaml"
    registry.write_text("channels: []\n")
    env = serve_env(tmp_path / "data", registry)
    command = [str(HARVEST_BIN), "serve", "--channels", str(registry), *(a.format(**names) for a in args)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
