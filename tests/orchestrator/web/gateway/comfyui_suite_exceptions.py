"""Tests of ComfyUI's execution suite that cannot pass through any pool, by design.

Each entry is a test id as the suite's junit report names it (``file::Class::test[param]``,
without the ``tests/execution/`` folder) and the reason it cannot pass through a gateway
in front of a pool of nodes. ``test_comfyui_suite.py`` fails when the gateway passes fewer
tests than the suite passes directly, except for these.
"""

from __future__ import annotations

BY_DESIGN: dict[str, str] = {}
