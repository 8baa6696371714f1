"""A workflows folder served by name: loaded at start, hot-reloaded within a second, and a
broken new version never takes the last good one offline."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, WorkflowError, WorkflowFormatError, WorkflowNotFound
from orchestrator.metadata import Kind
from orchestrator.registry import (
    WorkflowRegistry,
    WorkflowStatus,
    name_of,
    read_workflow,
    reserved_name_problem,
)
from orchestrator.rendering import render_workflow
from placeholders import Plan, compile_graph

RELOAD_DEADLINE_S = 1.0
POLL_S = 0.005


def graph(prefix: str = "a") -> dict[str, Any]:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": "%width%", "height": 8}},
            "2": {"class_type": "SaveImage",
                  "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


def write(folder: Path, name: str, doc: object) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def editor_save(folder: Path, name: str, doc: object) -> None:
    """Save as editors do: write a temporary file, then rename it over the target."""
    tmp = write(folder, f".{name}.tmp~", doc)
    os.replace(tmp, folder / name)


def eventually(check: Callable[[], bool], timeout: float = RELOAD_DEADLINE_S) -> float:
    """Poll ``check`` until true; return the seconds it took, fail past the deadline."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(POLL_S)
    return time.monotonic() - start


def status(reg: WorkflowRegistry, name: str) -> WorkflowStatus | None:
    return next((s for s in reg.list() if s.name == name), None)


def prefix_of(reg: WorkflowRegistry, name: str) -> str | None:
    try:
        return str(reg.get(name).graph["2"]["inputs"]["filename_prefix"])
    except WorkflowError:
        return None


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "portrait.json", graph("p1"))
    write(tmp_path, "portrait.meta.json", {"title": "Portrait", "kind": "img2img"})
    write(tmp_path, "plain.json", graph())
    return tmp_path


@pytest.fixture
def registry(folder: Path) -> Iterator[WorkflowRegistry]:
    with WorkflowRegistry(folder) as reg:
        yield reg


# --- loading --------------------------------------------------------------------------------


def test_every_workflow_in_the_folder_is_served_by_name(registry: WorkflowRegistry) -> None:
    portrait = registry.get("portrait")
    assert (portrait.name, portrait.title, portrait.meta.kind) == ("portrait", "Portrait",
                                                                   Kind.IMG2IMG)
    assert portrait.source == registry.folder / "portrait.json" and len(portrait.version) == 16
    assert registry.get("plain").title == "plain"
    assert [(s.name, s.ok, s.kind) for s in registry.list()] == [
        ("plain", True, Kind.TXT2IMG), ("portrait", True, Kind.IMG2IMG)]


def test_an_unknown_name_lists_the_known_ones(registry: WorkflowRegistry) -> None:
    with pytest.raises(WorkflowNotFound, match="no workflow named 'x'; known workflows: "
                                               "plain, portrait"):
        registry.get("x")


def test_other_files_and_editor_leftovers_are_not_workflows(folder: Path) -> None:
    for junk in ("README.md", ".portrait.json.swp", "portrait.json~", "notes.json.tmp"):
        write(folder, junk, "{")
    with WorkflowRegistry(folder, watch=False) as reg:
        assert [s.name for s in reg.list()] == ["plain", "portrait"]
    assert name_of("a.meta.json") == name_of("a.json") == "a" and name_of(".a.json") is None


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workflows folder .*missing does not exist"):
        WorkflowRegistry(tmp_path / "missing")


def test_a_workflow_broken_from_the_start_is_listed_with_its_error(folder: Path) -> None:
    write(folder, "bad.json", '{"1": {"class_type": "X",, }}')
    with WorkflowRegistry(folder, watch=False) as reg:
        [bad] = [s for s in reg.list() if s.name == "bad"]
        assert not bad.ok and bad.serving is None
        assert bad.error is not None and "bad.json, line 1, column 26" in bad.error
        with pytest.raises(WorkflowFormatError, match="not valid JSON"):
            reg.get("bad")


def test_a_metadata_file_without_a_workflow_is_listed_as_an_error(folder: Path) -> None:
    write(folder, "lonely.meta.json", {})
    with WorkflowRegistry(folder, watch=False) as reg:
        lonely = status(reg, "lonely")
        assert lonely is not None and lonely.error is not None
        assert lonely.error.endswith("lonely.meta.json: has no workflow lonely.json next to it; "
                                     "rename one of them so the names match")


def test_unknown_placeholders_and_a_missing_preview_are_warnings(folder: Path) -> None:
    doc = graph()
    doc["1"]["inputs"]["height"] = "%heigth%"
    write(folder, "typo.json", doc)
    write(folder, "typo.meta.json", {"preview_image": "typo.png"})
    with WorkflowRegistry(folder, watch=False) as reg:
        typo = status(reg, "typo")
        assert typo is not None and typo.ok
        assert typo.warnings == (
            'node 1 (EmptyImage), input "height": unknown placeholder %heigth% '
            "(did you mean %height%?)",
            f"typo.meta.json: preview image 'typo.png' is not in {folder}")


def test_without_watching_changes_wait_for_reload(folder: Path) -> None:
    with WorkflowRegistry(folder, watch=False) as reg:
        write(folder, "plain.json", graph("v2"))
        assert prefix_of(reg, "plain") == "a"
        reg.reload()
        assert prefix_of(reg, "plain") == "v2"


def test_read_workflow_loads_one_file_and_its_metadata(folder: Path) -> None:
    assert read_workflow(folder / "portrait.json").meta.title == "Portrait"
    with pytest.raises(WorkflowNotFound):
        read_workflow(folder / "nope.json")


# --- compiled graphs ------------------------------------------------------------------------


def rendered_prefix(reg: WorkflowRegistry, name: str) -> object:
    out = render_workflow(reg.get(name), {}, rng=random.Random(0))
    return out.graph["2"]["inputs"]["filename_prefix"]


def test_each_version_is_compiled_once_as_it_loads_not_per_render(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiles: list[object] = []

    def counting(graph: Any) -> Plan:
        compiles.append(graph)
        return compile_graph(graph)

    monkeypatch.setattr("orchestrator.rendering.compile_graph", counting)
    write(tmp_path, "plain.json", graph())
    with WorkflowRegistry(tmp_path, watch=False) as reg:
        assert [rendered_prefix(reg, "plain") for _ in range(3)] == ["a"] * 3
        first = reg.get("plain").graph
        write(tmp_path, "plain.json", graph("v2"))
        reg.reload()
        assert [rendered_prefix(reg, "plain") for _ in range(2)] == ["v2"] * 2
        edited = reg.get("plain").graph
    assert len(compiles) == 2 and compiles[0] is first and compiles[1] is edited


def test_two_registries_serve_their_own_versions_of_one_name(tmp_path: Path) -> None:
    for sub, prefix in (("one", "first"), ("two", "second")):
        (tmp_path / sub).mkdir()
        write(tmp_path / sub, "same.json", graph(prefix))
    with WorkflowRegistry(tmp_path / "one", watch=False) as one, \
            WorkflowRegistry(tmp_path / "two", watch=False) as two:
        assert [rendered_prefix(reg, "same") for reg in (one, two, one)] == [
            "first", "second", "first"]


# --- hot reload -----------------------------------------------------------------------------


def test_an_added_workflow_is_served_within_a_second(registry: WorkflowRegistry) -> None:
    write(registry.folder, "new.json", graph("n"))
    eventually(lambda: prefix_of(registry, "new") == "n")


def test_a_changed_workflow_is_served_within_a_second(registry: WorkflowRegistry) -> None:
    old = registry.get("plain").version
    write(registry.folder, "plain.json", graph("v2"))
    eventually(lambda: prefix_of(registry, "plain") == "v2")
    assert registry.get("plain").version != old


def test_a_changed_metadata_file_reloads_its_workflow(registry: WorkflowRegistry) -> None:
    write(registry.folder, "portrait.meta.json", {"title": "Better portrait"})
    eventually(lambda: registry.get("portrait").title == "Better portrait")


def test_a_broken_new_version_keeps_the_last_good_one_serving(
        registry: WorkflowRegistry) -> None:
    good = registry.get("plain")
    write(registry.folder, "plain.json", '{"1": {"class_type": "X", "inputs": {"a": %a%}}}')
    # a plain write may be seen half-done first (another error); wait for the final one
    eventually(lambda: "column 43: placeholder %a% is not in quotes" in str(
        status(registry, "plain")))
    broken = status(registry, "plain")
    assert broken is not None and not broken.ok and broken.serving == good.version
    assert registry.get("plain") is good
    write(registry.folder, "plain.json", graph("fixed"))
    eventually(lambda: prefix_of(registry, "plain") == "fixed")
    assert status(registry, "plain") == WorkflowStatus(
        "plain", registry.folder / "plain.json", "plain", Kind.TXT2IMG,
        registry.get("plain").version)


def test_broken_metadata_keeps_serving_and_names_the_json_path(
        registry: WorkflowRegistry) -> None:
    write(registry.folder, "portrait.meta.json", {"snap": "big"})
    eventually(lambda: "portrait.meta.json, at $.snap: 'big' is not of type 'integer'" in str(
        status(registry, "portrait")))
    assert registry.get("portrait").title == "Portrait"


def test_an_editor_save_through_a_temp_file_and_rename_is_picked_up(
        registry: WorkflowRegistry) -> None:
    editor_save(registry.folder, "plain.json", graph("saved"))
    eventually(lambda: prefix_of(registry, "plain") == "saved")
    assert [s.name for s in registry.list()] == ["plain", "portrait"]


def test_a_renamed_workflow_moves_to_its_new_name(registry: WorkflowRegistry) -> None:
    folder = registry.folder
    os.replace(folder / "portrait.json", folder / "headshot.json")
    os.replace(folder / "portrait.meta.json", folder / "headshot.meta.json")
    eventually(lambda: [s.name for s in registry.list()] == ["headshot", "plain"]
               and registry.get("headshot").title == "Portrait")


def test_a_deleted_workflow_disappears_within_a_second(registry: WorkflowRegistry) -> None:
    (registry.folder / "portrait.meta.json").unlink()
    (registry.folder / "portrait.json").unlink()
    eventually(lambda: status(registry, "portrait") is None)
    with pytest.raises(WorkflowNotFound):
        registry.get("portrait")


def test_readers_always_see_a_whole_version_while_files_change(
        registry: WorkflowRegistry) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                wf = registry.get("plain")
                assert wf.graph["2"]["inputs"]["filename_prefix"].startswith(("a", "v"))
            except BaseException as exc:  # collected and asserted below, in this thread
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for version in range(20):
        editor_save(registry.folder, "plain.json", graph(f"v{version}"))
    eventually(lambda: prefix_of(registry, "plain") == "v19")
    done.set()
    for reader in readers:
        reader.join()
    assert errors == []


# --- lifecycle ------------------------------------------------------------------------------


def test_closing_twice_is_harmless_and_a_closed_registry_refuses_use(folder: Path) -> None:
    reg = WorkflowRegistry(folder)
    reg.close()
    reg.close()
    with pytest.raises(WorkflowError, match="was closed; open a new WorkflowRegistry"):
        reg.get("plain")
    with pytest.raises(WorkflowError, match="was closed"):
        reg.list()


def test_a_preview_name_the_file_system_refuses_is_a_warning(tmp_path: Path) -> None:
    """A 300-character preview name must not crash loading (or the watcher thread)."""
    import json as _json

    from orchestrator.registry import WorkflowRegistry as _Registry

    (tmp_path / "w.json").write_text(_json.dumps(
        {"1": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}))
    (tmp_path / "w.meta.json").write_text(_json.dumps({"preview_image": "x" * 300 + ".png"}))
    with _Registry(tmp_path, watch=False) as registry:
        status = next(s for s in registry.list() if s.name == "w")
    assert status.serving and any("preview image" in w for w in status.warnings)


# --- what counts as a change ----------------------------------------------------------------


def reload_counter(registry: WorkflowRegistry, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the registry reloads from now on, in order."""
    reloaded: list[str] = []
    reload_one = registry._reload_one

    def counting(name: str) -> None:
        reloaded.append(name)
        reload_one(name)

    monkeypatch.setattr(registry, "_reload_one", counting)
    return reloaded


def test_reading_the_files_is_not_a_change(registry: WorkflowRegistry,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads raise 'opened' and 'closed without writing' events; counting them made every
    reload's own reads trigger the next reload, forever."""
    reloaded = reload_counter(registry, monkeypatch)
    for _ in range(20):
        (registry.folder / "plain.json").read_text()
        registry.reload(["portrait"])  # the registry's own reads, as a request's reload does
    write(registry.folder, "marker.json", graph("m"))  # events arrive in order: a barrier
    eventually(lambda: prefix_of(registry, "marker") == "m")
    assert reloaded.count("plain") == 0
    assert reloaded.count("portrait") == 20  # only the explicit reloads, no echo of them


def test_an_editor_save_storm_is_one_reload(registry: WorkflowRegistry,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reloaded = reload_counter(registry, monkeypatch)
    tmp = registry.folder / ".plain.json.swp"
    with tmp.open("w", encoding="utf-8") as handle:  # many writes, then rename and chmod
        for chunk in json.dumps(graph("storm"), indent=1).splitlines(keepends=True):
            handle.write(chunk)
            handle.flush()
    os.replace(tmp, registry.folder / "plain.json")
    os.chmod(registry.folder / "plain.json", 0o644)
    eventually(lambda: prefix_of(registry, "plain") == "storm")
    write(registry.folder, "marker.json", graph("m"))
    eventually(lambda: prefix_of(registry, "marker") == "m")
    assert reloaded.count("plain") <= 2  # one burst; at worst split once by a slow machine


# --- files that must never stop the registry --------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deeply_nested_file_is_an_error_naming_it_not_a_crash(folder: Path) -> None:
    write(folder, "deep.json", DEEP)
    write(folder, "plain.meta.json", '{"title": ' + "[" * 5_000 + "]" * 5_000 + "}")
    with WorkflowRegistry(folder, watch=False) as reg:
        deep, plain = status(reg, "deep"), status(reg, "plain")
        assert deep is not None and deep.error is not None and not deep.ok
        assert deep.error == (f"{folder / 'deep.json'}, line 1, column 65: nests arrays and "
                              "objects deeper than 64 levels; an API-format workflow is about "
                              "4 deep, so this is not one")
        assert plain is not None and plain.error is not None
        assert "plain.meta.json, line 1, column 74: nests arrays" in plain.error
        assert [s.name for s in reg.list() if s.ok] == ["portrait"]


def test_a_deep_new_version_keeps_the_last_good_one_and_the_watcher_alive(
        registry: WorkflowRegistry) -> None:
    good = registry.get("plain").version
    write(registry.folder, "plain.json", DEEP)
    eventually(lambda: (s := status(registry, "plain")) is not None and s.error is not None)
    assert registry.get("plain").version == good
    write(registry.folder, "later.json", graph("later"))
    eventually(lambda: prefix_of(registry, "later") == "later")


def test_a_file_that_fails_in_an_unexpected_way_is_listed_not_raised(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("orchestrator.registry.compiled", boom)
    with WorkflowRegistry(folder, watch=False) as reg:
        plain = status(reg, "plain")
    assert plain is not None and plain.error is not None
    assert plain.error.endswith("plain.json: cannot be loaded (RuntimeError: unexpected); fix "
                                "or remove the file")


# --- names and paths --------------------------------------------------------------------------


def test_a_workflow_cannot_be_named_after_another_ones_metadata(folder: Path) -> None:
    """``portrait.meta.json`` is portrait's metadata, so no workflow is ``portrait.meta``."""
    write(folder, "portrait.meta.meta.json", {"title": "Clash"})
    with WorkflowRegistry(folder, watch=False) as reg:
        clash = status(reg, "portrait.meta")
        assert clash is not None and not clash.ok and clash.error is not None
        assert "portrait.meta.meta.json: a workflow cannot be named 'portrait.meta'" in (
            clash.error)
        assert reg.get("portrait").title == "Portrait"
        (folder / "portrait.meta.meta.json").unlink()
        reg.reload()
        assert status(reg, "portrait.meta") is None
    assert reserved_name_problem("x.meta") is not None and reserved_name_problem("x") is None


def test_requests_see_files_named_relative_to_the_folder(folder: Path) -> None:
    write(folder, "bad.json", "{")
    with WorkflowRegistry(str(folder), watch=False) as reg:  # a str path is a path too
        bad = status(reg, "bad")
        assert bad is not None and bad.error is not None
        assert bad.error.startswith(str(folder / "bad.json"))  # the operator's full view
        with pytest.raises(WorkflowFormatError) as raised:
            reg.get("bad")
    assert str(raised.value).startswith("bad.json, line 1, column 2: not valid JSON")
    assert str(folder) not in str(raised.value) and raised.value.source == "bad.json"


def test_a_file_that_is_not_a_regular_file_is_an_error_not_a_hang(folder: Path) -> None:
    """Reading a FIFO blocks until someone writes to it: loading must not try."""
    os.mkfifo(folder / "pipe.json")
    (folder / "dir.json").mkdir()
    with WorkflowRegistry(folder) as reg:
        for name in ("pipe", "dir"):
            found = status(reg, name)
            assert found is not None and found.error is not None
            assert found.error.endswith(f"{name}.json: is not a regular file; replace it with a "
                                        "JSON file")
        write(folder, "later.json", graph("later"))
        eventually(lambda: prefix_of(reg, "later") == "later")
