"""Validate an MPD against the ISO/IEC 23009-1 schema (tests/schemas/DASH-MPD.xsd, from the MPEG
group's DASHSchema repository) with lxml. The schema imports the W3C XLink schema by URL; the tests
never go online, so tests/schemas/xlink.xsd is a local stand-in declaring the four XLink attributes
the MPD schema uses (href, actuate, type, show)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@lru_cache(maxsize=1)
def mpd_schema() -> etree.XMLSchema:
    text = (SCHEMAS / "DASH-MPD.xsd").read_bytes()
    text = text.replace(b"http://www.w3.org/XML/2008/06/xlink.xsd", b"xlink.xsd")
    document = etree.fromstring(text, base_url=(SCHEMAS / "DASH-MPD.xsd").as_uri())
    return etree.XMLSchema(document)


def assert_valid_mpd(text: str) -> None:
    schema = mpd_schema()
    document = etree.fromstring(text.encode())
    if not schema.validate(document):
        errors = "\n".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise AssertionError(f"the MPD is not valid against DASH-MPD.xsd:\n{errors}")
