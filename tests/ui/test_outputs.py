"""A job's outputs drawn by their kind: a node's UI values as their key and value, images as
thumbnails, audio and video in players, on the job cards of Generate and Jobs and in the
Gallery, with no tile that failed to load.

The graphs run on the session's real ComfyUI node: the test pack's ``OrchTestReport``
reports ``{"text": [...], "score": [0.5], "detail": [{...}]}`` in its UI result, beside a
``SaveImage``; ComfyUI's own ``SaveAudio`` and ``SaveWEBM`` make a sound and a clip.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Image, Markdown

from tests.helpers import wait_until
from tests.ui.conftest import JOB_TIMEOUT_S, SOLID, PanelFactory, Service
from ui import ApiClient, state
from ui.models import Job
from ui.outputs import value_text

# What a tile that failed to load shows: its caption, a colon, the service's complaint.
FAILED_TILE = re.compile(r"^(image|video|audio|file|value) \d+: ")
MEDIA_GRAPH = {
    "1": {"class_type": "OrchTestSolidImage",
          "inputs": {"width": 32, "height": 32, "color": "#804020", "batch_size": 4,
                     "seed": 9}},
    "2": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0], "codec": "vp9", "fps": 8.0,
                                               "crf": 32.0, "filename_prefix": "clip"}},
    "3": {"class_type": "EmptyAudio",
          "inputs": {"duration": 0.5, "sample_rate": 8000, "channels": 1}},
    "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "tone"}},
}


def _report_graph(seed: int) -> dict[str, Any]:
    """The solid colour's saved image (node 2) and a node that reports values (node 3)."""
    graph: dict[str, Any] = {
        "1": {**SOLID["1"], "inputs": {"width": 16, "height": 16, "color": "#aa2200",
                                       "batch_size": 1, "seed": seed}},
        "2": SOLID["2"]}
    graph["3"] = {"class_type": "OrchTestReport",
                  "inputs": {"text": f"a red fox {seed}", "seed": seed}}
    return graph


def _done(client: ApiClient, graph: dict[str, Any]) -> Job:
    job = client.submit({"graph": graph}, {})
    wait_until(lambda: client.job(job.id).terminal, JOB_TIMEOUT_S, f"job {job.id}")
    done = client.job(job.id)
    assert done.status == "succeeded", done
    return done


@pytest.fixture(scope="module")
def report_job(service: Service) -> Job:
    return _done(service.client(), _report_graph(7301))


@pytest.fixture(scope="module")
def media_job(service: Service) -> Job:
    return _done(service.client(), MEDIA_GRAPH)


def _card(at: AppTest, job_id: str) -> Block:
    """The job's card: the bordered box whose heading names the job."""
    assert not at.exception, at.exception
    cards = [b for b in at.main if isinstance(b, Block) and any(
        isinstance(c, Markdown) and f"`{job_id}`" in c.value for c in b.children.values())]
    assert len(cards) == 1, f"{len(cards)} cards of job {job_id}"
    return cards[0]


def _failed_tiles(box: Block) -> list[str]:
    return [c.value for c in box.caption if FAILED_TILE.match(c.value)]


def _images(box: Block) -> list[Image]:
    return [i for i in box.get("image") if isinstance(i, Image)]


def _assert_report_card(at: AppTest, job: Job) -> None:
    card = _card(at, job.id)
    assert not card.error, [e.value for e in card.error]
    shown = [t.value for t in card.text]
    assert "text: a red fox 7301" in shown, shown
    assert "score: 0.5" in shown and 'detail: {"words":4,"seed":7301}' in shown, shown
    assert [i.captions for i in _images(card)] == [["image 1"]]
    assert not _failed_tiles(card), _failed_tiles(card)
    opens = [b.key for b in card.button if b.key and b.key.startswith(f"job-{job.id}-open-")]
    assert len(opens) == 1  # the image's; values are shown whole, there is nothing to open


def test_the_jobs_card_shows_a_nodes_text_value_and_the_image_with_no_failed_tile(
        panel: PanelFactory, report_job: Job) -> None:
    assert len(report_job.output_ids) == 4  # the image and three values
    at = panel().switch_page("views/jobs.py").run()
    _assert_report_card(at, report_job)


def test_the_generate_card_shows_the_values_and_the_image_too(
        panel: PanelFactory, report_job: Job) -> None:
    at = panel()
    at.session_state[state.SUBMITTED] = [report_job.id]  # as if submitted in this session
    at.run()
    assert at.title[0].value == "Generate"
    _assert_report_card(at, report_job)


def test_audio_and_video_outputs_play_in_the_card_and_the_gallery(
        panel: PanelFactory, service: Service, media_job: Job) -> None:
    card = _card(panel().switch_page("views/jobs.py").run(), media_job.id)
    assert not card.error and not _failed_tiles(card), _failed_tiles(card)
    assert len(card.get("audio")) == 1 and len(card.get("video")) == 1
    assert sorted(c.value for c in card.caption if c.value in ("audio 1", "video 1")) == [
        "audio 1", "video 1"]
    assert not _images(card)
    gallery = panel().switch_page("views/gallery.py").run()
    assert not gallery.exception and not _failed_tiles(gallery.main)
    players = len(gallery.get("audio"))
    assert players >= 1 and gallery.get("video")
    audio = next(o for o in media_job.output_ids
                 if service.client().output(o).kind == "audio")
    gallery.button(key=f"gallery-open-{audio}").click().run()
    assert not gallery.exception and not gallery.error, [e.value for e in gallery.error]
    assert len(gallery.get("audio")) == players + 1  # the detail plays it too


@pytest.mark.parametrize(("value", "shown"), [
    (["hello"], "hello"),
    (["one", "two"], "one\ntwo"),
    ("plain", "plain"),
    ([0.5], "0.5"),
    ([1, 2], "[1,2]"),
    ([{"words": 2, "é": None}], '{"words":2,"é":null}'),
    ([], "[]"),
    (None, "null"),
])
def test_a_value_reads_as_text_or_compact_json(value: Any, shown: str) -> None:
    assert value_text(value) == shown
