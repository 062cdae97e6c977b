"""Pilot tests of `tanglec explore` (Textual's App.run_test): every view, by keyboard (and a click).

The slow tests share the session's one trained run of specs/arith.tangle (the `arith_run` fixture).
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from click.testing import CliRunner

from support import ARITH, SPECS, TUI_BAD_SPEC as BAD_SPEC, TUI_SIZE as SIZE, run, screen_text, wait_for
from tanglec.pipeline import load
from tanglec.tui.app import ExploreApp
from tanglec.tui.widgets.help import HelpScreen

ALL_SPECS = sorted(SPECS.glob("*.tangle"))


# -- Graph ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_every_spec_shows_graph_train_and_query_views_by_keyboard(spec, in_tmp):
    checked = load(spec)
    g = checked.graph

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            tabs = app.query_one("#views")
            assert tabs.active == "graph"
            view = app.query_one("#graph-view")
            assert app.focused is view
            drawn = view.render().plain
            for name in [*g.inputs, *g.modules]:
                assert name in drawn, name
            for mux in g.muxes.values():
                assert f"by {mux.selector.text}" in drawn
            assert app.query_one("#route-list").option_count == len(g.routes())
            await pilot.press("2")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "train-start", 30,
                           "the Train view")
            assert "exact match per route" in screen_text(app)
            await pilot.press("3")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id.startswith("q-"), 30,
                           "the Query form")
            for name in [*g.inputs, *g.selectors]:
                assert app.query_one(f"#q-{name}")
            await wait_for(pilot, lambda: app.query_columns is not None, 30, "the default fields to check")
            assert app.lit_selection == app.query_one("#query-graph").lit

    run(body())


def test_graph_lists_every_module_and_describes_each_by_keyboard(in_tmp):
    spec = SPECS / "clock.tangle"  # a 3-way multiplexer
    g = load(spec).graph

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            view = app.query_one("#graph-view")
            seen = set()
            for layer in view.layout_.nodes_by_layer():  # up to the top of each column, then down it
                await pilot.press(*["up"] * len(layer))
                for _ in layer:
                    seen.add(view.cursor)
                    if view.cursor in g.modules:
                        details = screen_text(app)
                        assert view.cursor in details
                        for word in ("interface", "layers", "parameters", "frozen"):
                            assert word in details, (view.cursor, word)
                    await pilot.press("down")
                await pilot.press("right")
            assert seen == set(g.inputs) | set(g.modules) | set(g.muxes)


def test_graph_details_by_keyboard_and_click_and_route_lighting(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            view = app.query_one("#graph-view")
            assert view.cursor == "x"
            await pilot.press("right")
            assert view.cursor == "binary"
            text = screen_text(app)
            assert "bits(4) → latent(12)" in text
            assert "dense 64 relu" in text
            assert f"{64 * 4 + 64 + 64 * 64 + 64 + 64 * 12 + 12:,}" in text  # parameters, from the spec
            assert "frozen" in text
            await pilot.press("down")
            assert view.cursor == "decimal"
            item = view.layout_.items["times2"]
            await pilot.click("#graph-view", offset=(item.x + 2, item.y + 1))
            assert view.cursor == "times2"
            # the route list lights a route up in the graph
            await pilot.press("tab")
            assert app.focused.id == "route-list"
            await pilot.press("down")
            await pilot.pause()
            assert view.lit == {"encoding": "binary", "op": "times2"}
            await pilot.press("shift+tab", "escape")
            await pilot.pause()
            assert view.lit is None

    run(body())


# -- Spec problems -------------------------------------------------------------------------

def test_spec_with_problems_opens_the_spec_view_and_reloads(in_tmp):
    spec = in_tmp / "bad.tangle"
    spec.write_text(BAD_SPEC)

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "E101" in screen_text(app), 30, "the problem list")
            assert app.query_one("#views").active == "spec"
            text = screen_text(app)
            assert "1 error" in text
            assert "E101" in text and "unknown module 'times3'" in text
            editor = app.query_one("#editor")  # underlined in place: the span is highlighted in the editor
            row = editor.text.splitlines().index(next(l for l in editor.text.splitlines() if "times3" in l))
            col = editor.document.lines[row].index("times3")
            assert (col, col + 6, "tangle.error") in editor._highlights[row]
            # Train and Query explain instead of crashing
            await pilot.press("2")
            assert "training needs a spec that checks" in screen_text(app)
            await pilot.press("3")
            assert "queries need a spec that checks" in screen_text(app)
            await pilot.press("1")
            assert "times3" not in app.query_one("#graph-view").render().plain
            # fix the file, reload: the spec checks and the views work
            spec.write_text(BAD_SPEC.replace("times3", "times2").replace(
                "module dec", "module times2: latent(8) -> latent(8) = dense 8\nmodule dec"))
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            assert app.session.ok
            await pilot.press("2")
            assert app.query_one("#train-start")

    run(body())


def test_syntax_errors_are_shown_with_every_position(in_tmp):
    spec = in_tmp / "syntax.tangle"
    spec.write_text("input x: int 0..9\nmodule m : bits(4) -> bits(4) = dense 8 relu,, dense 4\n"
                    "route x -> m ->\ndecode m as y\n")

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "E002" in screen_text(app), 30, "the problem list")
            text = screen_text(app)
            assert app.query_one("#views").active == "spec"
            assert "E001" in text and "E002" in text
            assert "hint:" in text
            await pilot.press("down")
            await pilot.pause()
            assert "error[E002]" in screen_text(app)

    run(body())


# -- Query form, keys, help ---------------------------------------------------------------

def test_bad_query_value_shows_an_error_not_a_crash(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("3")
            await pilot.pause()
            field = app.query_one("#q-x")
            assert app.focused is field
            await pilot.press("1", "2")
            await pilot.pause()
            assert field.value == "12"
            assert "x: 12 is outside 0..9" in screen_text(app)
            assert field.has_class("bad")
            assert app.query_columns is None
            await pilot.press("backspace", "backspace", "a", "b", "c")
            await pilot.pause()
            assert "x: 'abc' is not an integer" in screen_text(app)
            await pilot.press("backspace", "backspace", "backspace", "7")
            await pilot.pause()
            assert "is not an integer" not in screen_text(app)
            assert not field.has_class("bad")
            assert int(app.query_columns["x"][0]) == 7
            assert app.lit_selection == {"encoding": "binary", "op": "plus1"}
            assert "No trained model" in screen_text(app) or "TensorFlow" in screen_text(app)

    run(body())


def test_an_answer_arriving_while_the_query_panel_is_torn_down_is_dropped(in_tmp):
    """Closing the app just as a query's answer arrives: the panel's children are already gone."""
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await pilot.pause()
            panel = app.query_one("#query-panel")
            await panel.query_one("#answers").remove()
            await panel.query_one("#query-note").remove()
            panel.show_answers([])
            panel.set_note("late")
            await pilot.pause()
            assert app.is_running

    run(body())


def test_views_help_and_quit_by_keyboard(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            tabs = app.query_one("#views")
            for key, view in (("4", "spec"), ("1", "graph")):
                await pilot.press(key)
                await pilot.pause()
                assert tabs.active == view, key
            await wait_for(pilot, lambda: "arith.tangle" in screen_text(app), 30, "the status line")
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert "pause / resume" in screen_text(app)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    run(body())


# -- Train (TensorFlow) --------------------------------------------------------------------

def test_training_progress_repaints_the_train_view_once_per_batch_with_every_point_plotted(in_tmp):
    """Evaluations that come faster than the Train view repaints are shown together: every step on the
    loss plot, one draw, the statistics as of the last one (a key press doesn't queue behind them)."""
    from types import SimpleNamespace

    from tanglec.tui.controllers import TrainUpdate
    from tanglec.tui.messages import TrainProgress

    def update(step: int) -> TrainUpdate:
        report = {"accuracy": 0.5, "exact": 2, "cases": 4, "routes": []}
        progress = SimpleNamespace(step=step, total_steps=300, losses={"total": 1.0 / step}, report=report,
                                   steps_per_second=10.0, elapsed=step / 10)
        return TrainUpdate(progress, rate=10.0)

    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: app._has("#loss-plot"), 30, "the Train view")
            plot = app.query_one("#loss-plot")
            draws = []
            plot.draw = lambda: draws.append(list(plot.steps))
            app.train_state = "running"
            for step in (10, 20, 30):
                app.post_message(TrainProgress(update(step)))
            await wait_for(pilot, lambda: draws, 5, "the Train view's repaint")
            await pilot.pause(0.4)
            assert draws == [[10, 20, 30]]
            assert [h["step"] for h in app.history] == [10, 20, 30]
            assert "step 30/300" in screen_text(app)

    run(body())



def start_then_pause(app) -> None:
    """`s` then `p` as a person types them, back to back. Pilot's `press` waits after each key until the
    process is idle, up to a second or two: on a fast machine the seed spec's whole training (~1.5 s
    there) ran inside that wait, so `p` came after the end and nothing paused."""
    app.simulate_key("s")
    app.simulate_key("p")


@pytest.mark.slow
def test_training_from_the_ui_reaches_compile_accuracy_and_stops_safely(in_tmp, arith_run):
    run_dir = in_tmp / "runs" / "arith"
    compiled = json.loads((arith_run.run / "routes.json").read_text())

    async def body():
        app = ExploreApp(ARITH, run_dir)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await pilot.pause()
            # start, pause at the first evaluation (nothing runs while paused), resume: it finishes
            start_then_pause(app)
            await wait_for(pilot, lambda: app.train_state == "paused", 300, "the pause")
            step = app.history[-1]["step"]
            await pilot.pause(0.5)
            assert app.history[-1]["step"] == step
            assert "paused" in screen_text(app)
            await pilot.press("p")
            await wait_for(pilot, lambda: app.train_state in ("done", "stopped", "failed"), 300, "training")
            assert app.train_state == "done", screen_text(app)
            assert app.history[-1]["step"] > step
            totals = [h["losses"]["total"] for h in app.history]
            assert len(totals) >= 2 and totals[-1] < totals[0] / 4, totals
            matrix = app.query_one("#route-matrix")
            assert matrix.cells() == ["100%"] * 4
            text = screen_text(app)
            assert "100%" in text and "done" in text
            assert "1done" not in text and "100%  done" in text  # the bar's percentage is whole
            assert "Train again" in text  # the Start button's new label fits
            # the route × module grid: every module on a route moved; the others are dots
            for cells in app.query_one("#module-grid").cells():
                assert cells[-1] == "100%"
                assert all(c == "·" or float(c) > 0 for c in cells[:-1]), cells
            losses = app.query_one("#losses-line").render().plain
            assert "to_decimal" in losses and "align_binary_decimal" in losses  # each alignment term's loss
            # the run directory is what `tanglec compile` writes, with the same accuracy
            report = json.loads((run_dir / "routes.json").read_text())
            assert [(r["name"], r["exact"]) for r in report["routes"]] == \
                   [(r["name"], r["exact"]) for r in compiled["routes"]]
            assert report["accuracy"] == compiled["accuracy"] == 1.0
            metrics = json.loads((run_dir / "metrics.json").read_text())
            assert set(metrics) == set(json.loads((arith_run.run / "metrics.json").read_text()))
            assert app.model is not None

            # and again, paused then stopped mid-way: the last good run stays exactly as it was
            files = {p.name: p.read_bytes() for p in run_dir.iterdir()}
            start_then_pause(app)
            await wait_for(pilot, lambda: app.train_state == "paused", 300, "the pause")
            await pilot.press("x")
            await wait_for(pilot, lambda: app.train_state == "stopped", 120, "the stop")
            assert "run directory is unchanged" in screen_text(app)
            assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == files
            from tanglec.artifacts.run import read_manifest

            read_manifest(run_dir)
            # `w` writes the stopped model when asked to
            await pilot.press("w")
            await wait_for(pilot, lambda: app.stopped_result is None, 120, "writing the stopped model")
            assert json.loads((run_dir / "metrics.json").read_text())["interrupted"] is True
            read_manifest(run_dir)

    run(body())


# -- Query (TensorFlow) --------------------------------------------------------------------

@pytest.mark.slow
def test_query_on_a_trained_run_matches_tanglec_query(arith_run, in_tmp):
    run_dir = arith_run.run
    from tanglec.data.query import answers, parse_fields
    from tanglec.artifacts.run import load_checked, load_model
    from tanglec.backend.predict import predict_raw

    async def body():
        app = ExploreApp(run_dir)  # `tanglec explore RUN_DIR`
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model is not None, 300, "the run's model")
            await pilot.press("3")
            await pilot.pause()
            assert app.focused.id == "q-x"
            await pilot.press("7", "tab", "tab", "enter", "down", "enter")  # x=7, op: plus1 -> times2
            await wait_for(pilot, lambda: app.answers is not None and app.answers_seq == app.query_seq
                           and int(app.query_columns["op"][0]) == 1, 30, "answers")
            text = screen_text(app)
            assert "route binary → times2" in text
            table = app.query_one("#answers")
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            from tanglec.cli import cli  # `tanglec query`, the click command itself, in-process

            result = CliRunner().invoke(cli, ["query", str(run_dir), "x=7", "encoding=binary", "op=times2",
                                              "--json"])
            assert result.exit_code == 0, result.output
            expected = json.loads(result.stdout)
            assert [[a["decoder"], a["target"], str(a["value"]), f"{a['confidence']:.3f}", str(a["expected"]), "✓"]
                    for a in expected["answers"]] == rows
            assert expected["route"]["selection"] == app.lit_selection == app.query_one("#query-graph").lit
            assert app.query_one("#graph-view").lit == app.lit_selection  # lit in the Graph view too

            # several more inputs: the same answers as `tanglec query`'s code path on a fresh model
            checked, _ = load_checked(run_dir)
            model = load_model(run_dir, checked)
            panel = app.query_one("#query-panel")
            for x, enc, op in [(0, "decimal", "plus1"), (9, "binary", "plus1"), (5, "decimal", "times2"),
                               (3, "binary", "times2")]:
                fields = {"x": str(x), "encoding": enc, "op": op}
                columns = parse_fields(checked, fields)
                wanted_fields = {k: v.tolist() for k, v in columns.items()}
                panel.set_values(fields)
                await wait_for(pilot, lambda: app.answered_fields == wanted_fields and app.answers_seq == app.query_seq,
                               30, f"answers for {fields}")
                want = answers(checked, columns, predict_raw(model, checked, columns))
                got = app.answers
                assert [(a.decoder, a.value, a.expected) for a in got] == \
                       [(a.decoder, a.value, a.expected) for a in want]
                assert all(abs(a.confidence - b.confidence) < 1e-6 for a, b in zip(got, want))
                truth = (x + 1) % 10 if op == "plus1" else (x * 2) % 10
                assert all(a.value == truth == a.expected for a in got)
                assert app.lit_selection == {"encoding": enc, "op": op}
                assert str(truth) in screen_text(app)

    run(body())
