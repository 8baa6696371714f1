"""Workflows: the hot-reloaded list, authoring by file drop with the service's report
before saving (its pool check included), the placeholder presence list, and the JSON
editor with validate, save and delete (for admins)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import SOLID, PanelFactory, Service, texts


def _page(panel: PanelFactory, token: str | None = None) -> AppTest:
    return panel(token=token).switch_page("views/workflows.py").run()


def _drop(at: AppTest, *files: tuple[str, object]) -> AppTest:
    uploads = [(name, json.dumps(doc).encode(), "application/json") for name, doc in files]
    at.file_uploader(key="wf:drop:0").set_value(uploads).run()
    assert not at.exception
    return at


GREEN = {"1": {"class_type": "OrchTestSolidImage",
               "inputs": {"width": 16, "height": 16, "color": "%tint%", "batch_size": 1,
                          "seed": "%seed%"}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "g"}}}
GREEN_META = {"title": "Green", "placeholders": {"tint": {"default": "#00ff00"}}}


def test_the_list_shows_each_workflow_with_its_status(panel: PanelFactory) -> None:
    shown = texts(_page(panel))
    for title, name in (("Solid colour", "solid"), ("Slow colour", "slow"),
                        ("Avatar copy", "avatar")):
        assert f"✅ **{title}** `{name}`" in shown


def test_a_dropped_workflow_is_reported_before_it_is_saved(panel: PanelFactory,
                                                           service: Service) -> None:
    at = _drop(_page(panel), ("green.json", GREEN), ("green.meta.json", GREEN_META))
    shown = texts(at)
    assert "green is valid and ready to save" in shown
    assert "✅ `%tint%` (declared) at 1.color" in shown
    assert "✅ `%seed%` (built-in) at 1.seed" in shown
    assert "▫️ `%prompt%` (built-in)" in shown  # unused built-in: neutral, not an error
    assert "▫️ built-in, not used (nothing to do)" in shown  # the legend says so
    assert not (service.workflows / "green.json").exists()
    at.button(key="wf:drop:0:save").click().run()
    assert (service.workflows / "green.json").exists()
    assert "Saved green: serving" in texts(at)
    assert "✅ **Green** `green`" in texts(at)


def test_a_ui_export_is_refused_before_saving_with_what_to_do(panel: PanelFactory,
                                                               service: Service) -> None:
    at = _drop(_page(panel), ("ui_export.json", {"nodes": [], "links": []}))
    assert "export it again in API format" in texts(at)
    assert at.button(key="wf:drop:0:save").disabled
    assert not (service.workflows / "ui_export.json").exists()


def test_bad_metadata_lists_every_problem_with_its_place(panel: PanelFactory) -> None:
    meta = {"title": 3, "placeholders": {"tint": {"default": "#0f0", "maxx": 2}}}
    at = _drop(_page(panel), ("bad.json", GREEN), ("bad.meta.json", meta))
    shown = texts(at)
    assert "bad: 2 problem(s); not saved" in shown
    assert "$.title" in shown and "$.placeholders.tint" in shown


def test_undeclared_placeholders_are_flagged(panel: PanelFactory) -> None:
    at = _drop(_page(panel), ("odd.json", GREEN))
    shown = texts(at)
    assert "⚠️ `%tint%` (undeclared) at 1.color" in shown
    assert "unknown placeholder %tint%" in shown


def test_the_editor_validates_then_saves_a_change(panel: PanelFactory,
                                                  service: Service) -> None:
    at = _page(panel)
    at.selectbox(key="wf:edit").set_value("solid").run()
    assert "✅ `%color%` (declared) at 1.color" in texts(at)
    at.text_area(key="wf:solid:graph").set_value('{"1": ').run()
    at.button(key="wf:solid:validate").click().run()
    assert "not valid JSON" in texts(at) or "problem" in texts(at)
    changed = json.loads(json.dumps(SOLID))
    changed["2"]["inputs"]["filename_prefix"] = "edited"
    at.text_area(key="wf:solid:graph").set_value(json.dumps(changed)).run()
    at.button(key="wf:solid:save").click().run()
    saved = json.loads((service.workflows / "solid.json").read_text())
    assert saved["2"]["inputs"]["filename_prefix"] == "edited"
    assert "Saved solid: serving" in texts(at)


def test_other_tokens_see_the_report_but_no_save_or_delete(panel: PanelFactory,
                                                           service: Service) -> None:
    at = _drop(_page(panel, token=service.alice), ("mine.json", GREEN),
               ("mine.meta.json", GREEN_META))
    assert "mine is valid and ready to save" in texts(at)
    assert "Saving and deleting workflows needs an admin token." in texts(at)
    keys = [str(b.key) for b in at.button]
    assert any(k.endswith(":validate") for k in keys)
    assert not [k for k in keys if k.endswith((":save", ":delete"))]
    assert not (service.workflows / "mine.json").exists()


def test_the_report_says_what_the_pools_nodes_would_reject(panel: PanelFactory,
                                                            service: Service) -> None:
    odd = json.loads(json.dumps(GREEN))
    odd["1"]["class_type"] = "NoSuchNode"
    at = _drop(_page(panel), ("exotic.json", odd), ("exotic.meta.json", GREEN_META))
    shown = texts(at)
    assert "exotic is valid and ready to save" in shown
    assert "The pool's nodes cannot run it yet (1 problem(s))" in shown
    assert "node 1 (NoSuchNode): node type NoSuchNode is not installed" in shown
    assert not at.button(key="wf:drop:0:save").disabled


def test_a_name_the_service_refuses_is_shown_before_saving(panel: PanelFactory) -> None:
    at = _drop(_page(panel), ("green.json", GREEN))
    at.text_input(key="wf:drop:0:name").set_value("a..b").run()
    assert any("is not allowed" in e.value for e in at.error)
    assert at.button(key="wf:drop:0:save").disabled


def test_delete_removes_the_files_and_the_list_entry(panel: PanelFactory,
                                                     service: Service) -> None:
    folder: Path = service.workflows
    service.put_workflow("doomed", GREEN, GREEN_META)
    assert (folder / "doomed.json").exists()
    at = _page(panel)
    at.selectbox(key="wf:edit").set_value("doomed").run()
    at.button(key="wf:doomed:delete").click().run()
    assert not (folder / "doomed.json").exists()
    assert "`doomed`" not in texts(at)
