"""Serving the console's files: paths, types, caching, and nothing outside the static folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harvest.console.static import ConsoleConfig, console_response, integration_response

CONFIG = ConsoleConfig("ap-singapore", bucket="../cos/")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "licenses").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>Harvest Jobs</title>", encoding="utf-8")
    (static / "console.js").write_text("export const x = 1;", encoding="utf-8")
    (static / "licenses" / "hls.js.txt").write_text("Apache-2.0", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside", encoding="utf-8")
    return static


def get(
    path: str, root: Path, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict, bytes]:
    response = console_response(method, path, headers or {}, CONFIG, root)
    return response.status, response.headers, response.body


def test_the_page_its_files_and_its_config(root: Path) -> None:
    # WHEN the page, a script, a licence and the config are asked for
    status, headers, body = get("/console/", root)
    script = get("/console/console.js", root)
    licence = get("/console/licenses/hls.js.txt", root)
    config = get("/console/config.json", root)

    # THEN each comes with its type, the page with a strict CSP, the config names no key
    assert (status, headers["Content-Type"], body) == (
        200,
        "text/html; charset=utf-8",
        (root / "index.html").read_bytes(),
    )
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert script[:2] == (200, script[1])
    assert script[1]["Content-Type"] == "text/javascript; charset=utf-8"
    assert licence[2] == b"Apache-2.0"
    assert json.loads(config[2]) == {"region": "ap-singapore", "api": "../", "bucket": "../cos/"}
    assert config[1]["Cache-Control"] == "no-store"


def test_a_known_etag_is_answered_304(root: Path) -> None:
    _, headers, _ = get("/console/console.js", root)
    status, _, body = get("/console/console.js", root, {"if-none-match": headers["ETag"]})
    assert (status, body) == (304, b"")

    # AND a rebuilt file gets a new ETag
    (root / "console.js").write_text("export const x = 2;", encoding="utf-8")
    status, changed, _ = get("/console/console.js", root, {"if-none-match": headers["ETag"]})
    assert status == 200
    assert changed["ETag"] != headers["ETag"]


@pytest.mark.parametrize(
    "path",
    [
        "/console/../secret.txt",
        "/console/licenses/../../secret.txt",
        "/console/.hidden",
        "/console//etc/passwd",
        "/console/missing.js",
        "/console/licenses/",
    ],
)
def test_nothing_outside_the_static_folder_is_served(root: Path, path: str) -> None:
    status, _, body = get(path, root)
    assert status == 404
    assert b"outside" not in body


def test_the_bare_prefix_redirects_and_only_get_is_allowed(root: Path) -> None:
    status, headers, _ = get("/console", root)
    assert (status, headers["Location"]) == (301, "console/")
    status, headers, _ = get("/console/", root, method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    status, _, body = get("/console/", tmp_path / "nothing-here")
    assert status == 503
    assert b"make console" in body


def test_text_travels_as_text_in_the_integration_response(root: Path) -> None:
    page = integration_response(console_response("GET", "/console/", {}, CONFIG, root))
    assert page["isBase64Encoded"] is False
    assert isinstance(page["body"], str)
    assert page["body"].startswith("<!doctype html>")
    (root / "image.bin").write_bytes(b"\xff\xfe\x00")
    binary = integration_response(console_response("GET", "/console/image.bin", {}, CONFIG, root))
    assert binary["isBase64Encoded"] is True
    assert binary["body"] == "//4A"
