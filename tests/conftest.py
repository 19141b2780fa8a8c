"""Root test configuration: fixture modules under tests/support get pytest's assert rewriting."""

import os

import pytest

pytest.register_assert_rewrite("tests.support")

# Every test talks to servers on loopback only; never let a proxy setting reroute that traffic.
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"
