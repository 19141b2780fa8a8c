"""Checking harvested MPDs.

`assert_valid_mpd` validates against the ISO/IEC 23009-1 schema (tests/schemas/DASH-MPD.xsd, from
the MPEG group's DASHSchema repository, 5th edition + AMD1, commit fb663fd) with lxml. The schema
imports the W3C XLink schema by URL; tests never go online, so tests/schemas/xlink.xsd is a local
stand-in declaring the four XLink attributes the MPD schema uses (href, actuate, type, show).
`stored_segments` reads the SegmentTemplate + SegmentTimeline of every Representation back into files.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree as ET

from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


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


def stored_segments(mpd: ET.Element, folder: Path) -> dict[str, tuple[Path, dict[int, Path]]]:
    """Representation id -> (its init file, segment number -> file), from its SegmentTemplate."""
    found: dict[str, tuple[Path, dict[int, Path]]] = {}
    for rep in mpd.iterfind(".//d:Representation", NS):
        template = rep.find("d:SegmentTemplate", NS)
        assert template is not None
        number = int(template.get("startNumber", "1"))
        init, files = folder / template.get("initialization", ""), found.get(rep.get("id", ""), (None, {}))[1]
        for s in template.iterfind("d:SegmentTimeline/d:S", NS):
            for _ in range(int(s.get("r", "0")) + 1):
                files[number] = folder / template.get("media", "").replace("$Number$", str(number))
                number += 1
        found[rep.get("id", "")] = (init, files)
    return found
