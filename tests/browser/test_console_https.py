"""The console from a non-localhost name, `harvest.test` (chromium maps it to 127.0.0.1 with
--host-resolver-rules): over HTTPS (`harvest serve` with a certificate for that name, which chromium
trusts by its public key) a person signs in, creates a job and watches it complete; over plain HTTP
the console says plainly that it needs a secure connection and gives the two ways to get one,
instead of failing on a missing crypto.subtle."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from tests.support.browser import DESTINATION, REGION, SECRET_ID, SECRET_KEY, chromium_context
from tests.support.tls import TEST_HOST, CertificateAuthority, ServerCertificate

from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml
from harvest.local.serve import LocalStack, build_stack
from harvest.settings import Settings

pytest_plugins = ("tests.support.media",)
pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.xdist_group("console-browser")]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return CertificateAuthority(tmp_path_factory.mktemp("ca")).issue(TEST_HOST)


@pytest.fixture(scope="module")
def stacks(
    media_pools: dict[str, Pool], tmp_path_factory: pytest.TempPathFactory, certificate: ServerCertificate
) -> Iterator[dict[str, LocalStack]]:
    """Two `harvest serve` stacks over one live `news` channel: one on HTTPS, one on plain HTTP."""
    tmp = tmp_path_factory.mktemp("console-https")
    channels = {"news": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}
    origin = LiveOrigin(channels).start()
    write_channels_yaml(tmp / "channels.yaml", origin.url, channels)
    running: dict[str, LocalStack] = {}
    try:
        for scheme, tls in (("https", (certificate.cert_file, certificate.key_file)), ("http", (None, None))):
            settings = Settings(
                region=REGION,
                data_dir=tmp / scheme,
                channels_file=tmp / "channels.yaml",
                credentials={SECRET_ID: SECRET_KEY},
                port=0,
                workers=2,
                rate_limit=0.0,
                default_destination=DESTINATION,
                tls_cert=tls[0],
                tls_key=tls[1],
            )
            running[scheme] = build_stack(settings)
            running[scheme].start()
        yield running
    finally:
        for stack in running.values():
            stack.stop(timeout=10)
        origin.stop()


@pytest.fixture(scope="module")
def remote_browser(
    tmp_path_factory: pytest.TempPathFactory, certificate: ServerCertificate
) -> Iterator[BrowserContext]:
    """Chromium that resolves harvest.test to 127.0.0.1 and trusts the test certificate's key."""
    args = (
        f"--host-resolver-rules=MAP {TEST_HOST} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={certificate.spki_hash()}",
    )
    for context in chromium_context(tmp_path_factory.mktemp("chromium-remote-profile"), args):
        assert isinstance(context, BrowserContext)
        yield context


@pytest.fixture
def page(remote_browser: BrowserContext) -> Iterator[Page]:
    opened = remote_browser.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    opened.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_over_https_from_a_non_localhost_name_a_person_signs_in_and_a_job_completes(
    page: Page, stacks: dict[str, LocalStack]
) -> None:
    url = f"https://{TEST_HOST}:{stacks['https'].gateway.port}/console/"
    # GIVEN the console opened over HTTPS by its name, a secure context
    page.goto(url)
    assert page.evaluate("() => [isSecureContext, typeof crypto.subtle]") == [True, "object"]
    # (over HTTP/2: the server offers h2 by ALPN and chromium takes it)
    assert page.evaluate("() => performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
    # WHEN a person signs in
    page.get_by_label("SecretId").fill(SECRET_ID)
    page.get_by_label("SecretKey").fill(SECRET_KEY)
    page.get_by_role("button", name="Sign in").click()
    # THEN the Harvest Jobs list shows (the TC3 signature, made by WebCrypto for Host harvest.test:PORT,
    # was accepted)
    expect(page.get_by_role("heading", name="Harvest Jobs", exact=True)).to_be_visible()
    # AND a job created from the last minute completes
    page.get_by_role("button", name="Create Harvest Job").click()
    job_id = f"https-{int(time.time())}"
    page.get_by_label("ID", exact=True).fill(job_id)
    page.get_by_label("Origin endpoint").select_option("news/hls")
    page.get_by_role("button", name="Last minute").click()
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name=f"Harvest job {job_id}")).to_be_visible()
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=90_000)


def test_over_plain_http_from_a_non_localhost_name_it_says_how_to_fix_it(
    page: Page, stacks: dict[str, LocalStack]
) -> None:
    port = stacks["http"].gateway.port
    # GIVEN the console opened over plain HTTP by a name other than localhost (no WebCrypto there)
    page.goto(f"http://{TEST_HOST}:{port}/console/")
    assert page.evaluate("() => isSecureContext") is False
    # THEN it says so plainly, with the two ways to fix it, and offers no sign-in that cannot work
    notice = page.get_by_role("alert")
    expect(page.get_by_role("heading", name="This page needs a secure connection")).to_be_visible()
    expect(notice).to_contain_text(f"You opened http://{TEST_HOST}:{port}, which is plain HTTP")
    expect(notice).to_contain_text("harvest serve --tls-cert FILE --tls-key FILE")
    expect(notice).to_contain_text(f"https://{TEST_HOST}:{port}/console/")
    expect(notice).to_contain_text(f"ssh -L {port}:localhost:{port} {TEST_HOST}")
    expect(notice).to_contain_text(f"http://localhost:{port}/console/")
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert re.search(r"Secure connection needed", page.title())
