"""Builds the argument parser and is the single place errors become exit codes.

Exit codes: 0 done; 1 the graph failed (or was cancelled) on the server; 2 bad input or
an unreachable node. Every failure is one readable message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from orchestrator.cli import (
    comfyui_cmd,
    demo_cmd,
    panel_cmd,
    serve_cmd,
    submit_cmd,
    token_cmd,
    up_cmd,
    workflows_cmd,
)
from orchestrator.errors import JobCancelled, JobFailed, OrchestratorError

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]
COMMAND_GROUPS = (comfyui_cmd, demo_cmd, submit_cmd, workflows_cmd, serve_cmd, token_cmd,
                  up_cmd, panel_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comfy-orch",
        description="Run ComfyUI API-format workflows as jobs on a pool of ComfyUI nodes.",
    )
    parser.add_argument("--version", action=comfyui_cmd.VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``comfy-orch``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (JobFailed, JobCancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_JOB_FAILED
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
