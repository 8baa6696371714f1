"""Single-use ``Idempotency-Key``s, as Comfy API v2 defines them (durable, per owner).

The job store's own idempotency returns the existing job for a repeated key; v2 instead
*rejects* any second use (422 ``idempotency_key_reuse``, no replay). A key is claimed,
together with the job id the submit will create, before anything else happens:

- the submit succeeds: the key stays, naming its job, for ``KEY_TTL``;
- the submit definitely failed (a validation error, a full queue, or no job with that id
  exists afterwards): the key is released, so a retry with it can proceed;
- the outcome is unknown (the store failed mid-submit): the key stays claimed, and the
  client lists its jobs instead of resubmitting.

Keys are the core's (``Orchestrator.claim_key``): a mode of the job store's idempotency,
in the one database, so a restart keeps them and every replica sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from orchestrator.errors import JobNotFound, OrchestratorError
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.v2.errors import IdempotencyKeyReuse, InvalidBody

KEY_MAX_CHARS = 255  # the contract's bound; the SDK sends a 36-character uuid4


def checked_key(key: str | None) -> str | None:
    """``key`` if it can be a key (1-255 printable ASCII characters), else 422."""
    if key is None:
        return None
    if not 0 < len(key) <= KEY_MAX_CHARS or not key.isascii() or not key.isprintable():
        raise InvalidBody(f"Idempotency-Key must be 1-{KEY_MAX_CHARS} printable ASCII "
                          "characters, e.g. a uuid4")
    return key


class KeyStore:
    """The owners' single-use keys, over the façade; a used key is remembered 24 h."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    def claim(self, owner: str, key: str, job_id: str) -> None:
        """Claim ``key`` for ``job_id``; ``IdempotencyKeyReuse`` if it is already used."""
        if not self.orch.claim_key(_caller(owner), key, job_id):
            raise IdempotencyKeyReuse(
                f"Idempotency-Key {key!r} was already used; keys are single use. Find the job "
                "the first request made with GET /api/v2/jobs instead of resubmitting")

    def release(self, owner: str, key: str, job_id: str) -> None:
        """Forget the claim ``claim(owner, key, job_id)`` made (no other claim)."""
        self.orch.release_key(_caller(owner), key, job_id)

    def job_of(self, owner: str, key: str) -> str | None:
        """The job id a live claim of ``key`` names, or None."""
        return self.orch.key_job(_caller(owner), key)

    @contextlib.contextmanager
    def held(self, owner: str, key: str | None, job_id: str,
             created: Callable[[str], bool]) -> Iterator[None]:
        """Claim ``key`` around a submit of ``job_id``; release it on a definite failure.

        ``created(job_id)`` tells whether the job exists after a failure: False releases
        the key, True or an error asking keeps it (the outcome is then unknown).
        """
        if key is None:
            yield
            return
        self.claim(owner, key, job_id)
        try:
            yield
        except BaseException:
            if _definitely_absent(created, job_id):
                self.release(owner, key, job_id)
            raise


def _caller(owner: str) -> Principal:
    """The caller a key belongs to, as the façade takes it (keys are per owner)."""
    return Principal(owner=owner, admin=False, token_id="")


def _definitely_absent(created: Callable[[str], bool], job_id: str) -> bool:
    try:
        return not created(job_id)
    except OrchestratorError:
        return False


def job_exists(get: Callable[[str], object]) -> Callable[[str], bool]:
    """A ``created`` check over a getter that raises ``JobNotFound`` for a missing job."""
    def created(job_id: str) -> bool:
        try:
            get(job_id)
        except JobNotFound:
            return False
        return True
    return created
