"""Tests of ComfyUI's execution suite that cannot pass through any pool, by design.

Each entry is a test id as ``test_comfyui_suite.py`` names it (``file::Class::test[param]``,
without the ``tests/execution/`` folder) and the reason it cannot pass through a gateway
in front of a pool of nodes. ``test_comfyui_suite.py`` fails when the gateway passes fewer
tests than the suite passes directly, except for these.

None is listed: every test that passes directly can pass through a pool. The suite's
tests of node-side validation (a node class's own ``VALIDATE_INPUTS``, which
``/object_info`` does not reveal) pass because the gateway hands such a prompt at once to
a free node and relays that node's answer (``gateway/nodecheck.py``).
"""

from __future__ import annotations

BY_DESIGN: dict[str, str] = {}
