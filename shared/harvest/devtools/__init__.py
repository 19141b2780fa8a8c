"""Development tools that ship with the package: real ffmpeg-made test media and a live HLS origin.

The test suite, `harvest demo-origin`, the benchmark and the fault-injection tests all use these.
Nothing here is used by the service itself.
"""

from __future__ import annotations

from harvest.devtools.faults import Fault, FaultPlan
from harvest.devtools.media import (
    HLS_INPUT_OPTIONS,
    KINDS,
    IFrameRange,
    Pool,
    Rendition,
    build_pool,
    build_pools,
    decode_errors,
    probe,
)
from harvest.devtools.origin import (
    DEMO_CHANNEL_NAMES,
    ChannelSpec,
    LiveOrigin,
    OriginStats,
    demo_channels,
    derive_key,
    implicit_iv,
    run_demo_origin,
    write_channels_yaml,
)

__all__ = [
    "DEMO_CHANNEL_NAMES",
    "HLS_INPUT_OPTIONS",
    "KINDS",
    "ChannelSpec",
    "Fault",
    "FaultPlan",
    "IFrameRange",
    "LiveOrigin",
    "OriginStats",
    "Pool",
    "Rendition",
    "build_pool",
    "build_pools",
    "decode_errors",
    "demo_channels",
    "derive_key",
    "implicit_iv",
    "probe",
    "run_demo_origin",
    "write_channels_yaml",
]
