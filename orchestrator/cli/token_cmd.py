"""``comfy-orch token``: create, revoke and list the service's API tokens.

Works on the service's database directly (the data folder's, or the PostgreSQL database
``--db`` / ``COMFY_ORCH_DB`` names), so it can be used while the service runs: a revoked
token is refused from the next request on, by every replica.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from orchestrator.settings import load_settings
from orchestrator.tokens import TokenInfo, TokenStore


def register(commands: Any) -> None:
    cmd = commands.add_parser("token", help="create, revoke or list API tokens")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a token; it is printed once")
    create.add_argument("--owner", required=True, help="whose jobs and outputs it reaches")
    create.add_argument("--admin", action="store_true",
                        help="may see everything and change workflows and nodes")
    create.add_argument("--quiet", "-q", action="store_true",
                        help="print the token only, without the line about it on stderr")
    create.set_defaults(handler=run_create)
    revoke = actions.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("id", metavar="ID", help="the token id (or its co_<id>_ prefix)")
    revoke.set_defaults(handler=run_revoke)
    listing = actions.add_parser("list", help="every token (never the secrets)")
    listing.set_defaults(handler=run_list)
    for sub in (create, revoke, listing):
        sub.add_argument("--data", type=Path, default=None, metavar="DIR",
                         help="the service's data folder")
        sub.add_argument("--db", default=None, metavar="URL",
                         help="the service's PostgreSQL database (postgresql://...), if it "
                              "uses one; default: $COMFY_ORCH_DB, else the data folder's")


def _open(args: argparse.Namespace) -> TokenStore:
    settings = load_settings(os.environ, data_dir=args.data, db=args.db)
    return TokenStore.open(settings.data_dir, settings.db)


def run_create(args: argparse.Namespace) -> int:
    with _open(args) as store:
        token = store.create(args.owner, admin=args.admin)
    # The token alone on stdout, so TOKEN=$(comfy-orch token create ...) captures it.
    if not args.quiet:
        role = "admin token" if args.admin else "token"
        print(f"{role} for {args.owner!r} (shown once; keep it secret):", file=sys.stderr)
    print(token)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = store.revoke(args.id)
    print(f"revoked {info.id} ({info.owner})")
    return 0


def describe(info: TokenInfo) -> str:
    state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
    role = "admin" if info.admin else "user"
    return f"{info.id}  {info.prefix}...  {info.owner}  {role}  " \
           f"created {info.created_at:%Y-%m-%d %H:%M}  {state}"


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        tokens = store.list()
    for info in tokens:
        print(describe(info))
    if not tokens:
        print("no tokens; create one with 'comfy-orch token create --owner NAME'")
    return 0
