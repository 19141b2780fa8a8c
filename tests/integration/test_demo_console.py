"""`harvest demo --keep-running` prints the console's URL and a key that signs in there."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models

HARVEST = [sys.executable, "-m", "harvest.cli.main"]
SIGN_IN = re.compile(r"sign in with SecretId (\S+) and SecretKey (\S+)")


@pytest.mark.slow
@pytest.mark.media
def test_demo_keep_running_prints_the_console_url_and_a_key_that_works(tmp_path: Path) -> None:
    # GIVEN `harvest demo --keep-running`, started with SIGINT ignored, as a test runner's worker once
    # passed it on (an ignored signal is inherited across exec; the demo must install its own handler,
    # or Ctrl-C never reaches it)
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            [*HARVEST, "demo", "--data-dir", str(tmp_path / "demo"), "--seconds", "8", "--keep-running"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("HARVEST_")},
        )
    finally:
        signal.signal(signal.SIGINT, ignoring)
    lines: list[str] = []
    key_printed = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if SIGN_IN.search(line):
                key_printed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # WHEN it has harvested its job and says where the console is
        assert key_printed.wait(180), "".join(lines)[-3000:]
        out = "".join(lines)
        console_url = re.search(r"console:\s+(http://127\.0\.0\.1:\d+/console/)", out)
        assert console_url is not None, out
        secret_id, secret_key = SIGN_IN.findall(out)[0]

        # THEN the console is served there, and the printed key lists the demo's job through the API
        page = requests.get(console_url[1], timeout=10)
        assert page.status_code == 200
        assert "<title>Harvest Jobs</title>" in page.text
        endpoint = console_url[1].removeprefix("http://").removesuffix("/console/")
        client = mdp_client.MdpClient(
            credential.Credential(secret_id, secret_key),
            "ap-singapore",
            ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http")),
        )
        listed = client.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())
        # (the HLS job, then the same window from the DASH and CMAF endpoints, all before the wait)
        assert [job.Status for job in listed.Infos] == ["Completed"] * 3
    finally:
        # AND Ctrl-C stops it cleanly, at once (it used to run the DASH and CMAF jobs first, which on
        # a loaded machine took longer than the test's minute)
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            reader.join(timeout=10)
            pytest.fail("the demo did not stop within 60 s of Ctrl-C; it printed:\n" + "".join(lines)[-4000:])
        reader.join(timeout=10)
    assert code == 0
    assert "stopped." in "".join(lines)
