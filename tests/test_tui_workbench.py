"""The explorer as a workbench (issue 17): the editor with live diagnostics, save and format; the
command palette; the keymap file; headless screenshots; mouse details. Pilot tests, and the real CLI
in a subprocess for `--screenshot`."""
from __future__ import annotations

import subprocess
import sys

from support import ARITH, SPECS
from tanglec.tui.app import ExploreApp
from tanglec.tui.widgets.help import HelpScreen
from support import TUI_SIZE as SIZE, run, screen_text, wait_for

SOURCE = ARITH.read_text()


def arith_copy(tmp):
    spec = tmp / "arith.tangle"
    spec.write_text(SOURCE)
    return spec


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def test_editor_shows_problems_as_you_type_then_saves_only_its_file(in_tmp):
    spec = arith_copy(in_tmp)

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+e")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "editor", 10, "the editor")
            editor = app.focused
            row = line_of(editor.text, "input x: int 0..9")
            editor.cursor_location = (row, len(editor.document.lines[row]))
            await pilot.press("q")  # an error, and no key press to check it: it appears by itself
            await wait_for(pilot, lambda: any(d.is_error for d in app.query_one("#spec-view").diags), 5,
                           "a diagnostic")
            assert f"{row + 1}:" in screen_text(app)  # the problem list shows its line
            assert any(name == "tangle.error" for _, _, name in editor._highlights[row])
            await pilot.press("backspace")
            await wait_for(pilot, lambda: not app.query_one("#spec-view").diags, 5, "the problem to go away")
            assert "no problems" in screen_text(app)
            # an edit that checks: the graph follows it
            editor.cursor_location = (len(editor.document.lines) - 1, 0)
            await pilot.press(*"# edited", "enter")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert spec.read_text().count("# edited") == 1
            # someone else changes the file: saving refuses rather than overwrite their edit
            spec.write_text(SOURCE + "# theirs\n")
            await pilot.press(*"# mine")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert spec.read_text() == SOURCE + "# theirs\n"
            assert any("changed on disk" in n.message for n in app._notifications)

    run(body())


def test_graph_follows_the_edited_spec_and_the_formatter_runs_on_a_key(in_tmp):
    spec = arith_copy(in_tmp)

    async def body():
        app = ExploreApp(spec, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+e")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "editor", 10, "the editor")
            editor = app.focused
            editor.replace(SOURCE.replace("plus1", "inc").replace("input x:", "input    x :"), (0, 0),
                           editor.document.end)
            await wait_for(pilot, lambda: "inc" in app.session.checked.graph.modules, 5, "the graph to follow")
            await pilot.press("1")  # the editor takes digits: 1 goes into the text...
            assert app.query_one("#views").active == "spec"
            await pilot.press("backspace", "ctrl+t")
            await pilot.pause()
            assert "input x: int 0..9" in editor.text  # formatted
            await pilot.press("escape", "1")
            await pilot.pause()
            assert app.query_one("#views").active == "graph"
            assert "inc" in app.query_one("#graph-view").render().plain
            assert spec.read_text() == SOURCE  # nothing saved without ctrl+s

    run(body())


def test_command_palette_lists_every_action_with_its_key(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            commands = [c.title for c in app.get_system_commands(app.screen)]
            for title in ("Start (s)", "Pause/Resume (p)", "Edit (ctrl+e)", "Format (ctrl+t)", "Help (? / f1)"):
                assert title in commands
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"format")
            await wait_for(pilot, lambda: "Format (ctrl+t)" in screen_text(app), 5, "the palette's match")
            await pilot.press("enter")
            await pilot.pause()
            assert app.query_one("#views").active == "graph"  # formatting needs the editor: nothing else moved

    run(body())


def test_keymap_file_overrides_keys_in_the_footer_help_and_palette(in_tmp, monkeypatch):
    (in_tmp / "tanglec").mkdir()
    (in_tmp / "tanglec" / "keys.toml").write_text('[keys]\ntrain_start = "t"\ngraph = "g"\nnonsense = "z"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(in_tmp))

    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert any("unknown action 'nonsense'" in n.message for n in app._notifications)
            await pilot.press("2")
            await wait_for(pilot, lambda: "t Start" in screen_text(app), 10, "the footer's new key")
            assert "Start (t)" in [c.title for c in app.get_system_commands(app.screen)]
            await pilot.press("g")
            await pilot.pause()
            assert app.query_one("#views").active == "graph"
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            text = screen_text(app)
            assert any(" t " in line and "Start: start training" in line for line in text.splitlines())

    run(body())


def test_click_a_module_for_its_layers_parameters_and_weights_and_a_route_to_light_it(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            view = app.query_one("#graph-view")
            item = view.layout_.items["to_decimal"]
            await pilot.click("#graph-view", offset=(item.x + 2, item.y + 1))
            text = screen_text(app)
            assert view.cursor == "to_decimal"
            assert "dense 64 relu" in text and "parameters" in text
            assert "not trained yet" in text  # the weights' status
            await pilot.click("#route-list", offset=(3, 2))
            await pilot.pause()
            assert view.lit == {"encoding": "binary", "op": "times2"}

    run(body())


def test_screenshot_renders_headless_without_a_terminal(in_tmp):
    def explore(*args):
        return subprocess.run([sys.executable, "-m", "tanglec.cli", "explore", *args], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)

    done = explore(str(ARITH), "--screenshot", "arith.svg", "--size", "100x30")
    assert done.returncode == 0, done.stderr
    svg = (in_tmp / "arith.svg").read_text()
    assert svg.startswith("<svg") and "to_decimal" in svg
    again = explore(str(ARITH), "--screenshot", "arith.svg")
    assert again.returncode == 1 and "E192" in again.stderr  # the output policy: no overwrite unasked
    assert (in_tmp / "arith.svg").read_text() == svg
    bad = in_tmp / "bad.tangle"
    bad.write_text(SOURCE.replace("-> [plus1", "-> [plus2"))
    shown = explore(str(bad), "--screenshot", "bad.svg")
    assert shown.returncode == 1 and "problems" in shown.stderr
    assert "E101" in (in_tmp / "bad.svg").read_text()
    assert explore(str(ARITH), "--train").returncode == 2


def test_a_backspace_and_a_digit_in_one_burst_both_reach_the_query_field(in_tmp):
    async def body():
        app = ExploreApp(ARITH, load_tensorflow=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("3")
            await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "q-x", 10, "the form")
            field = app.focused
            await pilot.press("end", "8")
            # one burst, as a terminal delivers "\x7f5" in one read: both keys queued before either is handled
            from textual import events

            app.post_message(events.Key("backspace", None))
            app.post_message(events.Key("5", "5"))
            await pilot.pause(0.3)
            assert field.value == "05"  # end, 8 -> "08"; backspace, 5 -> "05"
            assert int(app.query_columns["x"][0]) == 5

    run(body())
