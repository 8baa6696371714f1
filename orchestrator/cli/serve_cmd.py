"""``comfy-orch serve``: the REST API over a pool of ComfyUI nodes, in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from orchestrator.settings import DEFAULT_HOST, DEFAULT_PORT, load_settings
from orchestrator.web.server import serve


def register(commands: Any) -> None:
    cmd = commands.add_parser("serve", help="serve the REST API (docs at /docs) until Ctrl-C")
    cmd.add_argument("--host", default=None, help=f"address to listen on (default {DEFAULT_HOST})")
    cmd.add_argument("--port", type=int, default=None,
                     help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    cmd.add_argument("--data", type=Path, default=None, metavar="DIR",
                     help="folder for jobs, outputs and tokens")
    cmd.add_argument("--workflows", type=Path, default=None, metavar="DIR",
                     help="folder of workflow JSON files (default DATA/workflows)")
    cmd.add_argument("--node", action="append", default=[], metavar="URL",
                     help="a ComfyUI server, e.g. http://127.0.0.1:8188 (repeat for more)")
    cmd.add_argument("--db", default=None, metavar="URL",
                     help="postgresql://user:password@host:port/db to share one queue "
                          "between several replicas (default: SQLite in DATA)")
    cmd.add_argument("--max-queued", type=int, default=None, metavar="N",
                     help="queued images beyond which submits get 429 queue_full")
    cmd.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    settings = load_settings(
        os.environ, host=args.host, port=args.port, data_dir=args.data,
        workflows_dir=args.workflows, nodes=tuple(args.node), max_queued=args.max_queued,
        db=args.db)
    try:
        serve(settings, announce=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        pass  # uvicorn already shut down gracefully; Ctrl-C is the normal way to stop
    return 0
