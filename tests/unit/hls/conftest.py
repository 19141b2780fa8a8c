"""Every planner and renderer test here runs twice: with each rendition kept sliced to its window,
and with each kept as compressed text and parsed again to be written (harvest.formats.hls._Kept).
The planner picks whichever costs less memory; both must write the same VOD."""

from __future__ import annotations

import pytest

from harvest.formats import hls
from harvest.hls import render


@pytest.fixture(autouse=True, params=["sliced window", "text parsed again"])
def kept_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # SEGMENT_BYTES 0: a slice always costs less than the text; 10**9: never.
    monkeypatch.setattr(hls, "SEGMENT_BYTES", 0 if request.param == "sliced window" else 10**9)
    # And media playlists are joined in blocks of 3 lines while written, not 4096: every test
    # crosses block boundaries.
    monkeypatch.setattr(render, "BLOCK_LINES", 3)
    return str(request.param)
