"""The folder watcher: content changes only, bursts coalesced, and it outlives a failing
callback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from orchestrator.watcher import FolderWatcher, changed_paths, wait_left
from tests.helpers import wait_until


def test_reads_and_directories_are_not_changes() -> None:
    assert changed_paths(FileOpenedEvent("/w/a.json")) == ()
    assert changed_paths(FileClosedNoWriteEvent("/w/a.json")) == ()
    assert changed_paths(DirModifiedEvent("/w")) == ()


def test_writes_creations_and_moves_are_changes_of_every_path_they_touch() -> None:
    assert changed_paths(FileCreatedEvent("/w/a.json")) == ("/w/a.json",)
    assert changed_paths(FileModifiedEvent("/w/a.json")) == ("/w/a.json",)
    assert changed_paths(FileClosedEvent("/w/a.json")) == ("/w/a.json",)
    assert changed_paths(FileMovedEvent("/w/.a.tmp", "/w/a.json")) == ("/w/.a.tmp", "/w/a.json")


def test_a_burst_flushes_once_quiet_or_at_the_latest_after_the_longest_delay() -> None:
    assert wait_left(10.0, 10.0, 10.0, settle_s=0.05, max_delay_s=0.25) == pytest.approx(0.05)
    assert wait_left(10.0, 10.04, 10.06, settle_s=0.05, max_delay_s=0.25) > 0  # still busy
    assert wait_left(10.0, 10.04, 10.09, settle_s=0.05, max_delay_s=0.25) <= 0  # quiet
    assert wait_left(10.0, 10.24, 10.25, settle_s=0.05, max_delay_s=0.25) <= 0  # never quiet


def test_the_watcher_survives_a_failing_callback_and_keeps_reporting(tmp_path: Path) -> None:
    seen: list[set[str]] = []
    lock = threading.Lock()

    def on_change(names: set[str]) -> None:
        with lock:
            seen.append(names)
        if "bad" in names:
            raise RecursionError("as a deeply nested file once did")

    watcher = FolderWatcher(tmp_path, on_change, name_of=lambda p: Path(p).stem).start()
    try:
        (tmp_path / "bad.json").write_text("[")
        wait_until(lambda: any("bad" in batch for batch in seen), 5, "the bad file")
        (tmp_path / "good.json").write_text("{}")
        wait_until(lambda: any("good" in batch for batch in seen), 5, "a later file")
    finally:
        watcher.close()
        watcher.close()
