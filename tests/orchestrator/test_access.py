"""The one access rule (pure): owners, admins and public outputs."""

from __future__ import annotations

import pytest

from orchestrator import access
from orchestrator.errors import AccessDenied
from orchestrator.jobs import Item, Job, JobSpec, Visibility
from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.tokens import Principal

ALICE = Principal(owner="alice", admin=False, token_id="a1")
BOB = Principal(owner="bob", admin=False, token_id="b1")
ADMIN = Principal(owner="ops", admin=True, token_id="o1")


def job_of(owner: str) -> Job:
    return Job(id="j1", spec=JobSpec(graph={}, owner=owner),
               items=[Item(id="i1", job_id="j1", index=0)])


def output_of(owner: str, visibility: Visibility) -> OutputRecord:
    return OutputRecord(id="o1", sha256="0" * 64, mime="image/png", size_bytes=1,
                        kind=OutputKind.IMAGE, filename="a.png", node_id="9", node="n1",
                        job_id="j1", item_id="i1", index=0, owner=owner,
                        visibility=visibility)


def test_a_job_is_its_owners_and_every_admins() -> None:
    job = job_of("alice")
    assert access.can_read_job(ALICE, job) and access.can_act_on_job(ALICE, job)
    assert access.can_read_job(ADMIN, job) and access.can_act_on_job(ADMIN, job)
    assert not access.can_read_job(BOB, job) and not access.can_act_on_job(BOB, job)


def test_a_public_output_is_read_by_anyone_but_deleted_by_its_owner_or_an_admin() -> None:
    public = output_of("alice", Visibility.PUBLIC)
    assert access.can_read_output(BOB, public)
    assert not access.can_delete_output(BOB, public)
    assert access.can_delete_output(ALICE, public) and access.can_delete_output(ADMIN, public)


def test_a_private_output_is_read_by_its_owner_and_admins_only() -> None:
    private = output_of("alice", Visibility.PRIVATE)
    assert access.can_read_output(ALICE, private) and access.can_read_output(ADMIN, private)
    assert not access.can_read_output(BOB, private)


def test_input_files_are_their_owners_and_every_admins() -> None:
    assert access.can_use_input(ALICE, "alice") and access.can_use_input(ADMIN, "alice")
    assert not access.can_use_input(BOB, "alice")


def test_a_listing_shows_the_callers_own_unless_an_admin_asks() -> None:
    assert access.listing_owner(ALICE, None) == "alice"
    assert access.listing_owner(ALICE, "alice") == "alice"
    assert access.listing_owner(ADMIN, None) is None
    assert access.listing_owner(ADMIN, "bob") == "bob"
    with pytest.raises(AccessDenied, match="admin token"):
        access.listing_owner(ALICE, "bob")
    assert access.output_viewer(ALICE) == "alice" and access.output_viewer(ADMIN) is None
