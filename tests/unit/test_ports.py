"""Every port lives in harvest.ports; a Protocol elsewhere is an inner seam, named here with why."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Protocol

import harvest
from harvest import ports

PACKAGE = Path(harvest.__file__).parent

# Protocols that are not ports (nothing outside the service implements them), each with its reason.
INNER_SEAMS = {
    "engine/formats.py": {"Reading", "Format"},  # what a format module provides to the planner
    "hls/render.py": {"Locator"},  # how the renderer names a segment in an output playlist
    "adapters/ckafka.py": {"SendMessageClient"},  # the one SDK method the CKafka adapter calls
}

MOVED_PORTS = ("LeaseQueue", "Notifier", "DestinationLike", "Limiter", "SignatureLedger")


def _protocols(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any((isinstance(b, ast.Name) and b.id == "Protocol") for b in node.bases)
    }


def test_no_port_is_defined_outside_ports_py() -> None:
    # GIVEN every module of the library but ports.py
    found = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "ports.py" and (names := _protocols(path))
    }
    # THEN the only Protocols there are the inner seams listed above
    assert found == INNER_SEAMS


def test_the_ports_other_layers_name_are_protocols_of_harvest_ports() -> None:
    for name in MOVED_PORTS:
        port = getattr(ports, name)
        assert Protocol in port.__mro__, name
        assert port.__module__ == "harvest.ports", name
