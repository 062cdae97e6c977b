"""Snapshots (pytest-textual-snapshot) of each view at a fixed terminal size.

Deterministic by construction: TensorFlow is not loaded (no timings, no model outputs), and the
tests run in an empty directory so no trained `runs/<spec>` is found. Update with --snapshot-update
after an intended change, and look at the SVGs in __snapshots__/ before committing them.
"""
from __future__ import annotations

import pytest

from support import ARITH, SPECS, TUI_BAD_SPEC as BAD_SPEC, TUI_SIZE as SIZE
from textual.widgets import Input, TextArea

from tanglec.tui.app import ExploreApp


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def settle(pilot) -> None:
    """Let deferred work (the Spec view's colouring, the examples thread) finish before the picture."""
    await pilot.pause(0.2)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def keys(*presses: str, theme: str | None = None):
    """A run_before that settles, presses each key with a pause after it, and settles again."""

    async def run_before(pilot) -> None:
        if theme:
            pilot.app.theme = theme
        await settle(pilot)
        for field in [*pilot.app.query(Input), *pilot.app.query(TextArea)]:
            field.cursor_blink = False  # a blinking cursor would make the picture depend on timing
        for key in presses:
            await pilot.press(key)
            await pilot.pause()
        await settle(pilot)

    return run_before


def arith() -> ExploreApp:
    return ExploreApp(ARITH, load_tensorflow=False)


def test_graph_view(snap_compare):
    assert snap_compare(arith(), terminal_size=SIZE, run_before=keys("right"))


def test_graph_view_with_a_route_lit(snap_compare):
    app = ExploreApp(SPECS / "clock.tangle", load_tensorflow=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys("tab", "down"))


def test_train_view_before_training(snap_compare):
    assert snap_compare(arith(), terminal_size=SIZE, run_before=keys("2"))


def test_query_form_before_tensorflow(snap_compare):
    assert snap_compare(arith(), terminal_size=SIZE, run_before=keys("3", "7", "tab"))


def test_query_form_with_a_bad_value(snap_compare):
    assert snap_compare(arith(), terminal_size=SIZE, run_before=keys("3", "1", "2"))


def test_problems_view_of_a_bad_spec(snap_compare, in_tmp):
    (in_tmp / "bad.tangle").write_text(BAD_SPEC)
    app = ExploreApp("bad.tangle", load_tensorflow=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys())


def test_help_screen(snap_compare):
    assert snap_compare(arith(), terminal_size=SIZE, run_before=keys("question_mark"))


SIZES = [(80, 24), (160, 48)]
THEMES = ["textual-dark", "textual-light"]


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", ["1", "2", "ctrl+e"], ids=["graph", "train", "editor"])
def test_views_at_two_sizes_in_light_and_dark(snap_compare, size, theme, view):
    assert snap_compare(arith(), terminal_size=size, run_before=keys(view, theme=theme))
