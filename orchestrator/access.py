"""Who may read, cancel or delete a job, an output or an input file: the one rule (pure).

Every face asks here, so a token gets the same answer through ``/v1``, ``/api/v2`` and the
ComfyUI gateway: an owner reads and acts on their own jobs, outputs and input files; an
admin reads and acts on everything; a public output is readable by anyone (but deleted
only by its owner or an admin). What a caller may not see is reported by the façade
exactly like a missing id, so ids of others' data leak nothing.
"""

from __future__ import annotations

from orchestrator.errors import AccessDenied
from orchestrator.jobs import Job, Visibility
from orchestrator.outputs import OutputRecord
from orchestrator.tokens import Principal


def owns(who: Principal, owner: str) -> bool:
    """Whether ``who`` may act on something of ``owner``'s: theirs, or an admin."""
    return who.admin or owner == who.owner


def can_read_job(who: Principal, job: Job) -> bool:
    return owns(who, job.spec.owner)


def can_act_on_job(who: Principal, job: Job) -> bool:
    """Cancel, retry or delete: whoever may read a job may act on it."""
    return can_read_job(who, job)


def can_read_output(who: Principal, record: OutputRecord) -> bool:
    return owns(who, record.owner) or record.visibility == Visibility.PUBLIC


def can_delete_output(who: Principal, record: OutputRecord) -> bool:
    """Public outputs are readable by all but stay their owner's to delete."""
    return owns(who, record.owner)


def can_use_input(who: Principal, owner: str) -> bool:
    """An input file (upload, asset) is read, named in a graph or deleted by its owner
    (or an admin)."""
    return owns(who, owner)


def listing_owner(who: Principal, asked: str | None) -> str | None:
    """The owner whose jobs a listing shows: ``asked`` (None: every owner) for an admin;
    the caller's own otherwise. ``AccessDenied`` when another owner is asked for."""
    if who.admin:
        return asked
    if asked is not None and asked != who.owner:
        raise AccessDenied("listing another owner's jobs needs an admin token; leave out "
                           "the owner to list your own")
    return who.owner


def output_viewer(who: Principal) -> str | None:
    """Whose outputs (besides public ones) a listing shows: None (all) for an admin."""
    return None if who.admin else who.owner


def sees_inputs(who: Principal, record: OutputRecord) -> bool:
    """Whether ``who`` sees the input images that made an output (their values, the
    graph ComfyUI embeds in its bytes): its owner only, admins included in "anyone else"."""
    return record.owner == who.owner


def may_regenerate_with(who: Principal, record: OutputRecord, graph: bool,
                        images: frozenset[str]) -> tuple[str, ...]:
    """The inputs of another owner's output that stay theirs when ``who`` regenerates it
    (``("graph",)`` for a graph of their own, else the image inputs); () when none."""
    if sees_inputs(who, record):
        return ()
    if graph:
        return ("graph",)
    return tuple(sorted(images))
