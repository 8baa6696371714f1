"""Where a prompt is, against a real ComfyUI: never lost between two reads, a cancel is not
a loss, a finished prompt read as running is waited for, and an id is never queued twice."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator

import pytest

from orchestrator.comfy.client import BetweenReads, ComfyClient
from orchestrator.comfy.messages import ExecutionSuccess, Message
from orchestrator.comfy.protocol import PromptPhase
from orchestrator.comfy.watch import PromptWatch
from orchestrator.errors import JobCancelled
from tests import graphs
from tests.helpers import wait_until

# What differs most between releases: every one of them is held to it.
pytestmark = pytest.mark.every_comfyui


def fresh_seed() -> int:
    return uuid.uuid4().int % 10**9


@pytest.fixture()
def client(comfy_url: str) -> Iterator[ComfyClient]:
    with ComfyClient(comfy_url) as client:
        yield client


@pytest.fixture()
def two_reads(comfy_url: str) -> Iterator[ComfyClient]:
    """A client that looks prompts up with two reads (``/queue`` and ``/history``), as on
    releases before ``/api/jobs``; on a newer node too, so every release tests that path."""
    with ComfyClient(comfy_url) as client:
        client.features = dataclasses.replace(client.features, jobs_api=False)
        yield client


def finish_before_second_read(observer: ComfyClient) -> BetweenReads:
    """A ``between_reads`` hook that holds the look-up until the prompt has finished: the
    window a real race has (a node finishing while we ask), made as wide as a test needs."""
    def hold(prompt_id: str) -> None:
        wait_until(lambda: observer.history(prompt_id) is not None, 60,
                   f"prompt {prompt_id} to finish between the two reads")
    return hold


def test_a_prompt_ending_between_the_two_reads_is_found_not_lost(
    two_reads: ComfyClient, client: ComfyClient
) -> None:
    submitted = two_reads.submit(graphs.sleep(seconds=1.0, steps=4, seed=fresh_seed()))
    wait_until(lambda: submitted.prompt_id in client.queue().running, 30, "the prompt running")
    two_reads.between_reads = finish_before_second_read(client)
    state = two_reads.lookup(submitted.prompt_id)
    # Read queue-first it was still running; read history-first it is in neither.
    assert state.phase in (PromptPhase.RUNNING, PromptPhase.DONE)
    done = two_reads.lookup(submitted.prompt_id)
    assert done.phase == PromptPhase.DONE and done.entry is not None
    assert done.entry.status == "success"


def test_a_watch_over_a_prompt_ending_between_the_reads_ends_well(
    two_reads: ComfyClient, client: ComfyClient
) -> None:
    """Issue 13 item 11: the watcher of a prompt whose events go elsewhere (posted by an
    earlier process) asked /history then /queue and declared it vanished."""
    posted = client.submit(graphs.sleep(seconds=1.0, steps=4, seed=fresh_seed()))
    wait_until(lambda: posted.prompt_id in client.queue().running, 30, "the prompt running")
    two_reads.between_reads = finish_before_second_read(client)
    with PromptWatch(two_reads, posted.prompt_id, history_interval=0.0) as watch:
        watch.follow(None, timeout=60, idle_timeout=None)  # raised "vanished" before
    assert two_reads.settled_history(posted.prompt_id).status == "success"


def test_a_prompt_is_declared_lost_only_when_repeated_reads_miss_it(
    two_reads: ComfyClient, client: ComfyClient
) -> None:
    blocker = client.submit(graphs.sleep(seconds=3, steps=6, seed=fresh_seed()))
    late = str(uuid.uuid4())
    calls: list[str] = []

    def post_after_first_read(pid: str) -> None:
        calls.append(pid)
        if calls == [late]:  # it lands on the node (pending) just after our first /queue
            client.submit(graphs.solid_image(seed=fresh_seed()), prompt_id=pid)

    two_reads.between_reads = post_after_first_read
    assert two_reads.lookup(late).phase == PromptPhase.ABSENT  # one pair of reads missed it
    assert two_reads.locate(late).phase == PromptPhase.PENDING  # the next look finds it
    never = str(uuid.uuid4())
    assert two_reads.locate(never).phase == PromptPhase.ABSENT
    assert calls.count(never) == 3  # three looks, a quarter second apart, before "gone"
    client.cancel(blocker.prompt_id)


def test_a_canceled_pending_prompt_reads_as_canceled_not_lost(client: ComfyClient) -> None:
    """0.30 drops a canceled pending job from /api/jobs; 0.3.x from /queue and /history."""
    blocker = client.submit(graphs.sleep(seconds=3, steps=6, seed=fresh_seed()))
    pending = client.submit(graphs.solid_image(seed=fresh_seed()))
    client.cancel(pending.prompt_id)
    assert client.lookup(pending.prompt_id).phase == PromptPhase.ABSENT
    with pytest.raises(JobCancelled), \
            PromptWatch(client, pending.prompt_id, history_interval=0.0) as watch:
        watch.follow(None, timeout=30, idle_timeout=None)
    client.cancel(blocker.prompt_id)


def test_a_finished_prompt_read_as_running_is_waited_for(client: ComfyClient) -> None:
    """Right after execution_success a look-up may still say running (ComfyUI writes
    history a few ms later); that is never read as lost, and the run ends well."""
    phases: list[PromptPhase] = []
    current: list[str] = []

    def on_message(msg: Message) -> None:
        if isinstance(msg, ExecutionSuccess):
            phases.append(client.lookup(current[-1]).phase)

    for _ in range(5):
        current.append(str(uuid.uuid4()))
        result = client.run(graphs.solid_image(8, 8, seed=fresh_seed()), prompt_id=current[-1],
                            on_message=on_message, timeout=60)
        assert result.history.status == "success" and result.outputs
    assert len(phases) == 5 and set(phases) <= {PromptPhase.RUNNING, PromptPhase.DONE}


def test_an_id_the_node_already_holds_is_never_queued_twice(client: ComfyClient) -> None:
    """ComfyUI queues a duplicate prompt id a second time (0.30: number 4, then 5)."""
    blocker = client.submit(graphs.sleep(seconds=3, steps=6, seed=fresh_seed()))
    prompt_id = str(uuid.uuid4())
    graph = graphs.solid_image(seed=fresh_seed())
    first = client.submit(graph, prompt_id=prompt_id)
    again = client.submit(graph, prompt_id=prompt_id)
    assert first.prompt_id == again.prompt_id == prompt_id
    assert client.queue().pending.count(prompt_id) == 1
    client.cancel(blocker.prompt_id)
    wait_until(lambda: client.lookup(prompt_id).phase == PromptPhase.DONE, 30, "it ran once")


def test_a_fresh_id_is_posted_without_a_look_up(client: ComfyClient) -> None:
    """``fresh`` (a claim's newly minted id) skips the look-up: posted over an id the node
    holds, it is queued again, which shows no round trip asked the node first."""
    blocker = client.submit(graphs.sleep(seconds=3, steps=6, seed=fresh_seed()))
    prompt_id = str(uuid.uuid4())
    graph = graphs.solid_image(seed=fresh_seed())
    client.submit(graph, prompt_id=prompt_id, fresh=True)
    again = client.submit(graph, prompt_id=prompt_id, fresh=True)
    assert again.prompt_id == prompt_id and again.number == again.number  # not NaN
    assert client.queue().pending.count(prompt_id) == 2
    client.cancel(blocker.prompt_id)
    wait_until(lambda: client.lookup(prompt_id).phase == PromptPhase.DONE, 30, "it ran")


def test_a_watch_ends_within_a_second_of_a_stop(client: ComfyClient) -> None:
    posted = client.submit(graphs.sleep(seconds=5, steps=10, seed=fresh_seed()))
    stop = threading.Event()
    with PromptWatch(client, posted.prompt_id, history_interval=0.0) as watch:
        threading.Timer(0.3, stop.set).start()
        with pytest.raises(JobCancelled):
            watch.follow(None, timeout=30, idle_timeout=None, stop=stop)
    client.cancel(posted.prompt_id)
