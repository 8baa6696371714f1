"""The ``comfy-orch`` command line: one module per command group, one error boundary."""

from orchestrator.cli.app import main

__all__ = ["main"]
