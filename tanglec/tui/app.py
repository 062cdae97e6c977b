"""`tanglec explore`: a Textual app with four views — Graph, Train, Query, Spec (the editor).

Start-up paints the graph from the checked spec first (no TensorFlow, no numpy, no plotext); then the
Train/Query/Spec views mount, a thread worker builds the example table and a background thread imports
TensorFlow (and loads the run's model). The app composes widgets and handles messages; what it asks of
the compiler is in tanglec.tui.controllers, called from thread workers that answer with messages
(tanglec.tui.messages). Training lives in tanglec.tui.training, editing in tanglec.tui.editing, queries in
tanglec.tui.querying, background loading in tanglec.tui.loading.
"""
from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.widgets import Footer, Header, OptionList, Static, TabbedContent, TabPane

from .editing import Editing
from .loading import Loading
from .querying import Querying
from .keymap import ACTIONS, bindings, effective_keys, load_keymap
from .messages import LightRoute
from .session import Session, display_path, open_target, short_path
from .training import Training
from .widgets.details import GraphPane, NodeDetails
from .widgets.graph import GraphView, safe_routes
from .widgets.help import HelpScreen
from .widgets.spec import SpecView, summary


class ExploreApp(Loading, Training, Editing, Querying, App[int]):
    CSS_PATH = "tanglec.tcss"
    TITLE = "tanglec explore"
    AUTO_FOCUS = None  # the initial view focuses its own main widget (see _focus_view)
    BINDINGS = bindings()

    def __init__(self, target: Path | str, run_dir: Path | str | None = None, *, load_tensorflow: bool = True,
                 driver_class=None, keys_file: Path | None = None) -> None:
        super().__init__(driver_class=driver_class)
        self.target = Path(target)
        self.run_override = Path(run_dir) if run_dir else None
        self.load_tensorflow = load_tensorflow
        self.session: Session = open_target(self.target, self.run_override)
        self.opened_text = self.session.source  # what the spec file held when opened (saving checks it)
        self.keymap, self.keymap_problems = load_keymap(keys_file)
        self.set_keymap(self.keymap)
        self.examples = None
        self.model = None
        self.model_origin = ""
        self.model_how = ""
        self.tf_state = "not loaded"
        self.tf_ready = threading.Event()
        self.tf_error: str | None = None
        self.query_columns = None
        self.query_seq = 0
        self.answers = None
        self.answers_seq = 0  # the query the shown answers are for
        self.answered_fields: dict | None = None  # its (parsed) fields
        self.lit_selection: dict[str, str] | None = None
        self.first_paint: float | None = None
        self.spec_focus = "#problem-list"  # what showing the Spec view focuses: the editor after ctrl+e
        self._predict_lock = threading.Lock()
        self._tf_thread: threading.Thread | None = None
        self._quitting = False
        self._started = time.perf_counter()
        self.init_training()

    # -- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=self._initial_view(), id="views"):
            with TabPane("Graph 1", id="graph"):
                yield GraphPane(id="graph-pane")
            with TabPane("Train 2", id="train"):
                yield from self._compose_blocked("training needs")
            with TabPane("Query 3", id="query"):
                yield from self._compose_blocked("queries need")
            with TabPane(self._spec_label(), id="spec"):
                if self._initial_view() == "spec":
                    yield self._spec_view()
        yield Static(id="status")
        yield Footer()

    def _spec_label(self) -> str:
        return f"Spec 4{' ⚠' if self.session.all_diagnostics else ''}"

    def _initial_view(self) -> str:
        return "graph" if self.session.ok else "spec"

    def _compose_blocked(self, what: str) -> ComposeResult:
        if not self.session.ok:
            yield Static(f"This spec has errors: {what} a spec that checks. Fix it in Spec (4): ctrl+e "
                         "edits it, problems update as you type.", classes="blocked")
            return
        yield Static("loading…", classes="placeholder")  # the panel mounts after the first paint

    def _spec_view(self) -> SpecView:
        s = self.session
        return SpecView(s.source, s.source_file, s.all_diagnostics, s.name, id="spec-view")

    # -- start-up --------------------------------------------------------------------
    def on_mount(self) -> None:
        self._update_titles()
        self._update_status()
        for problem in self.keymap_problems:
            self.notify(problem, title="keys.toml ignored in part", severity="warning", timeout=10)
        self.call_after_refresh(self._focus_view, self._initial_view())
        self.call_after_refresh(self._after_first_paint)

    async def _mount_views(self) -> None:
        """Mount the hidden views after the first paint (Train needs plotext, Query numpy): the graph
        shows sooner. Quitting meanwhile is fine: whatever is not mounted yet is left out."""
        from textual.css.query import NoMatches
        from textual.widget import MountError

        s = self.session
        views = [] if self._has("#spec-view") else [("spec", self._spec_view)]
        if s.ok:
            from .widgets.query import QueryPanel
            from .widgets.train import TrainPanel

            views.append(("train", lambda: TrainPanel(s.checked, display_path(s.run_dir), id="train-panel")))
            views.append(("query", lambda: QueryPanel(s.checked, id="query-panel")))
        for pane_id, make in views:
            if self._quitting:
                return
            try:
                pane = self.query_one(f"#{pane_id}", TabPane)
                await pane.query(".placeholder, .blocked, #train-panel, #query-panel").remove()
                await pane.mount(make())
            except (MountError, NoMatches):
                if self._quitting:
                    return
                raise

    def panel_mounted(self, panel) -> None:
        """A view mounted after the first paint (Train, Query, Spec) is in place: bring it up to date."""
        if panel.id == "train-panel":
            self.train_panel_mounted(panel)
        elif panel.id == "query-panel":
            self._update_query_note()
        elif panel.id == "spec-view":
            panel.set_diagnostics(self.session.all_diagnostics)
        view = {"train-panel": "train", "query-panel": "query", "spec-view": "spec"}.get(panel.id)
        if view and self.query_one("#views", TabbedContent).active == view:
            self._focus_view(view)

    def _after_first_paint(self) -> None:
        self.first_paint = time.perf_counter() - self._started
        self.log(f"first paint after {self.first_paint:.3f}s")
        self.call_later(self._mount_views)
        # Give the writer thread a moment to put the frame on the terminal before the imports take the GIL.
        self.set_timer(0.05, self._start_background)

    def _start_background(self) -> None:
        if self.session.ok:
            self.build_examples()
        if self.load_tensorflow:
            self.tf_state = "loading…"
            self._update_status()
            self.import_tensorflow()

    async def wait_until_settled(self, pilot) -> None:
        """Every deferred view mounted and background work done (headless screenshots, tests)."""
        await pilot.pause(0.2)
        await self.workers.wait_for_complete()
        await pilot.pause()

    def _has(self, selector: str) -> bool:
        return bool(self.query(selector))

    def _update_titles(self) -> None:
        s = self.session
        problems = summary(s.all_diagnostics) if s.all_diagnostics else ""
        self.sub_title = f"{'run' if s.is_run else 'spec'} {s.name}" + (f" — {problems}" if problems else "")

    def _update_status(self) -> None:
        s = self.session
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {s.name} ", style="bold")
        text.append("│ TensorFlow ", style="dim")
        text.append(self.tf_state, style="yellow" if self.tf_state.startswith("loading") else "")
        text.append(" │ run ", style="dim")
        text.append(short_path(s.run_dir))
        text.append(f": {s.run_note}", style="dim")
        if self.model is not None:
            text.append(" │ model ", style="dim")
            text.append(self.model_how)
        self.query_one("#status", Static).update(text)

    def _refresh_problems(self) -> None:
        if self._has("#spec-view"):
            self.query_one("#spec-view", SpecView).set_diagnostics(self.session.all_diagnostics)
        self._update_titles()
        self.query_one("#views", TabbedContent).get_tab("spec").label = self._spec_label()

    # -- views, keys, the palette ----------------------------------------------------
    def action_show(self, view: str) -> None:
        self.query_one("#views", TabbedContent).active = view
        self.call_after_refresh(self._focus_view, view)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.screen_stack:  # closing down
            return
        pane = event.pane.id if event.pane is not None else None
        self.refresh_bindings()
        if pane and event.tabbed_content.id == "views":
            self.call_after_refresh(self._focus_view, pane)

    def _focus_view(self, view: str) -> None:
        if self.query_one("#views", TabbedContent).active != view:
            return  # another view was chosen meanwhile
        focused = self.focused
        if focused is not None and self.query_one(f"#{view}", TabPane) in focused.ancestors:
            return
        if view == "query" and self._has("#query-panel"):
            self.query_one("#query-panel").focus_first()
            return
        found = self.query({"graph": "#graph-view", "train": "#train-start", "spec": self.spec_focus}.get(view, "#nothing"))
        if found:
            found.first().focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap))

    def get_system_commands(self, screen):
        """The command palette: every action of the keymap, with the key that runs it."""
        for action in ACTIONS:
            yield SystemCommand(f"{action.title} ({effective_keys(self.keymap, action)})", action.help,
                                partial(self.run_action, action.action))

    async def action_quit(self) -> None:
        self._quitting = True
        self.stop_training()
        self.exit(0)

    # -- graph -----------------------------------------------------------------------
    def _refresh_details(self) -> None:
        """The model changed: the module details show its parameters and weights."""
        for details in self.query(NodeDetails):
            details.show(details.node)

    @on(OptionList.OptionHighlighted, "#route-list")
    def _route_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        route = safe_routes(self.session.checked.graph)[int(event.option.id.split("-")[1])]
        self._light(dict(route.selection))

    def on_light_route(self, message: LightRoute) -> None:
        self._light(message.selection)

    def _light(self, selection: dict[str, str] | None) -> None:
        self.lit_selection = selection
        for view in self.query(GraphView):
            if view.id != "query-graph":
                view.lit = selection
