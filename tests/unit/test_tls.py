"""HTTPS settings and the TLS helpers of `harvest serve` (local/tls.py): what is refused at start-up,
the server context's defaults, the self-signed certificate's life cycle, and the CLI's trust."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.tls import CertificateAuthority

from harvest.cli.client import ClientConfig
from harvest.errors import ConfigError
from harvest.local.tls import (
    CertificateReloader,
    certificate_info,
    ensure_self_signed,
    how_to_trust,
    self_signed_names,
    server_context,
)
from harvest.settings import Settings


def test_tls_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"HARVEST_TLS_CERT": "/etc/harvest/cert.pem", "HARVEST_TLS_KEY": "/etc/harvest/key.pem"}
    )
    assert (settings.tls_cert, settings.tls_key) == (
        Path("/etc/harvest/cert.pem"),
        Path("/etc/harvest/key.pem"),
    )
    assert Settings.from_env({"HARVEST_TLS_SELF_SIGNED": "1"}).tls_self_signed


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HARVEST_TLS_CERT": "/c.pem"}, "both HARVEST_TLS_CERT and HARVEST_TLS_KEY"),
        ({"HARVEST_TLS_KEY": "/k.pem"}, "both HARVEST_TLS_CERT and HARVEST_TLS_KEY"),
        (
            {"HARVEST_TLS_CERT": "/c.pem", "HARVEST_TLS_KEY": "/k.pem", "HARVEST_TLS_SELF_SIGNED": "true"},
            "not both",
        ),
    ],
)
def test_an_incomplete_or_contradictory_tls_setting_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_server_context_offers_tls_1_2_and_up_with_ecdhe_aead_suites_only(tmp_path: Path) -> None:
    cert = CertificateAuthority(tmp_path).issue()
    context = server_context(cert.cert_file, cert.key_file)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12
    assert all(name.startswith("ECDHE-") for name in tls12)
    assert all("GCM" in name or "CHACHA20" in name for name in tls12)


def test_a_key_that_is_not_the_certificates_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    cert, other = ca.issue(stem="a"), ca.issue(stem="b")
    with pytest.raises(ConfigError, match="cannot be used together"):
        server_context(cert.cert_file, other.key_file)
    with pytest.raises(ConfigError, match="cannot read"):
        server_context(tmp_path / "missing.pem", cert.key_file)


def test_a_failed_reload_keeps_the_live_pair(tmp_path: Path) -> None:
    # GIVEN a live context and a reloader for its files
    ca = CertificateAuthority(tmp_path)
    cert = ca.issue(stem="live")
    context = server_context(cert.cert_file, cert.key_file)
    ran: list[str] = []

    def on_loop(func: Callable[[], None]) -> None:
        ran.append("loop")
        func()

    reloader = CertificateReloader(context, cert.cert_file, cert.key_file, on_loop)
    # WHEN the key is replaced by another certificate's, THEN the reload refuses before the loop
    cert.key_file.write_bytes(ca.issue(stem="other").key_file.read_bytes())
    with pytest.raises(ConfigError):
        reloader.reload()
    assert ran == []
    # WHEN a matching pair is put back, THEN it is loaded on the loop and described
    renewed = ca.issue(stem="renewed")
    cert.cert_file.write_bytes(renewed.cert_file.read_bytes())
    cert.key_file.write_bytes(renewed.key_file.read_bytes())
    info = reloader.reload()
    assert ran == ["loop"]
    assert info.names == ("harvest.test",)


def test_a_self_signed_certificate_is_kept_while_it_fits_and_made_anew_when_not(tmp_path: Path) -> None:
    names = self_signed_names("10.1.2.3")
    assert {"localhost", "127.0.0.1", "::1", "10.1.2.3"} <= set(names)
    assert "0.0.0.0" not in self_signed_names("0.0.0.0")
    # GIVEN a self-signed pair made for these names
    cert_file, key_file = ensure_self_signed(tmp_path / "tls", names)
    first = certificate_info(cert_file)
    assert key_file.stat().st_mode & 0o077 == 0  # the key is the owner's alone
    server_context(cert_file, key_file)  # a usable pair
    # WHEN asked again for the same names, THEN the same certificate is kept (trusting it once is enough)
    assert certificate_info(ensure_self_signed(tmp_path / "tls", names)[0]).sha256 == first.sha256
    # WHEN a name is added (a new listen address), THEN a new certificate covers it
    again = certificate_info(ensure_self_signed(tmp_path / "tls", [*names, "harvest.example.com"])[0])
    assert again.sha256 != first.sha256
    assert "harvest.example.com" in again.names
    # AND how to trust it names the fingerprint and the file for each kind of client
    advice = how_to_trust(cert_file, again)
    cert_file = cert_file.resolve()
    assert again.sha256 in advice
    assert f"REQUESTS_CA_BUNDLE={cert_file}" in advice
    assert f"certification='{cert_file}'" in advice
    assert "update-ca-certificates" in advice


def test_the_cli_trusts_the_ca_bundle_given_for_an_https_endpoint() -> None:
    config = ClientConfig.from_env(
        {"HARVEST_ENDPOINT": "https://harvest.example.com:8443", "HARVEST_CA_BUNDLE": "/ca.pem"}
    )
    assert (config.protocol, config.endpoint, config.ca_bundle) == (
        "https",
        "harvest.example.com:8443",
        "/ca.pem",
    )
    assert (
        ClientConfig.from_env({"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"}).ca_bundle
        == "/etc/ssl/certs/ca.pem"
    )
    assert ClientConfig.from_env({}).ca_bundle is None
