"""`tanglec explore`: a Textual app with four views — Graph, Train, Query, Spec.

Start-up paints the graph from the checked spec first (no TensorFlow, no numpy, no plotext); then the
Train/Query/Spec views mount, a thread worker builds the example table and a background thread imports
TensorFlow (and loads the run's model). Training and queries run in thread workers; background code
talks to the UI only through messages (tanglec.tui.messages), never touching widgets.

Training from the UI is `tanglec compile`'s training: same `train()` call, same seed and steps, and the
finished run is written with the same atomic `write_run`. A training stopped mid-way does not touch
the run directory (its last good state stays); `w` writes the stopped model on explicit request.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer
from textual.widgets import Footer, Header, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from .messages import (ExamplesReady, LightRoute, ModelLoaded, NodeHighlighted, QueryAnswered, QueryFieldsChanged,
                       RunSaved, TensorFlowReady, TrainDone, TrainProgress)
from .session import Session, TrainControl, display_path, open_target, short_path
from .widgets.graph import LEGEND, GraphView, NodeDetails, describe_node, safe_routes
from .widgets.help import HelpScreen
from .widgets.spec import SpecView, summary

class ExploreApp(App[int]):
    CSS_PATH = "tanglec.tcss"
    TITLE = "tanglec explore"
    ENABLE_COMMAND_PALETTE = False
    AUTO_FOCUS = None  # the initial view focuses its own main widget (see _focus_view)
    BINDINGS = [
        Binding("1", "show('graph')", "Graph"),
        Binding("2", "show('train')", "Train"),
        Binding("3", "show('query')", "Query"),
        Binding("4", "show('spec')", "Spec"),
        Binding("s", "train_start", "Start"),
        Binding("p", "train_pause", "Pause/Resume"),
        Binding("x", "train_stop", "Stop"),
        Binding("w", "train_save", "Write stopped"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+r", "reload", "Reload"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, target: Path | str, run_dir: Path | str | None = None, *, load_tensorflow: bool = True,
                 driver_class=None) -> None:
        super().__init__(driver_class=driver_class)
        self.target = Path(target)
        self.run_override = Path(run_dir) if run_dir else None
        self.load_tensorflow = load_tensorflow
        self.session: Session = open_target(self.target, self.run_override)
        self.examples = None
        self.model = None
        self.model_origin = ""
        self.model_how = ""
        self.tf_state = "not loaded"
        self.tf_ready = threading.Event()
        self.tf_error: str | None = None
        self.train_state = "idle"
        self.control: TrainControl | None = None
        self.stopped_result = None
        self.history: list[dict] = []     # (step, losses, accuracy) seen by the UI during the last training
        self.query_columns = None
        self.query_seq = 0
        self.answers = None
        self.answers_seq = 0
        self.answered_fields: dict | None = None  # the (parsed) fields the shown answers are for
        self.lit_selection: dict[str, str] | None = None
        self.first_paint: float | None = None
        self._predict_lock = threading.Lock()
        self._tf_thread: threading.Thread | None = None
        self._quitting = False
        self._started = time.perf_counter()

    # -- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        s = self.session
        yield Header()
        with TabbedContent(initial=self._initial_view(), id="views"):
            with TabPane("Graph 1", id="graph"):
                yield from self._compose_graph()
            with TabPane("Train 2", id="train"):
                yield from self._compose_train()
            with TabPane("Query 3", id="query"):
                yield from self._compose_query()
            with TabPane(f"Spec 4{' ⚠' if s.all_diagnostics else ''}", id="spec"):
                if self._initial_view() == "spec":
                    yield self._spec_view()
        yield Static(id="status")
        yield Footer()

    TRAIN_ACTIONS = {"train_start", "train_pause", "train_stop", "train_save"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Training keys live only in the Train view; `w` only once there is a stopped training to write."""
        if action not in self.TRAIN_ACTIONS:
            return True
        if not self.is_mounted or not self._has("#views") or self.query_one("#views").active != "train":
            return False
        if not self.session.ok:
            return False
        if action == "train_save":
            return self.stopped_result is not None
        return True

    def _initial_view(self) -> str:
        return "graph" if self.session.ok else "spec"

    def _compose_graph(self) -> ComposeResult:
        s = self.session
        if s.checked is None:
            yield Static("Nothing to draw: the spec could not be read. See Spec (4).", classes="blocked")
            return
        with ScrollableContainer(id="graph-box") as box:
            box.border_title = "module graph"
            yield GraphView(s.checked.graph, frozen=s.checked.composition.frozen, id="graph-view")
        yield Static(LEGEND + ("   [i]┌┐ frozen (italic)[/i]" if s.checked.composition.frozen else ""), id="legend")
        with Horizontal(id="graph-bottom"):
            details = NodeDetails(id="node-details")
            details.border_title = "module"
            yield details
            routes = OptionList(*[Option(self._route_label(r), id=f"route-{i}")
                                  for i, r in enumerate(safe_routes(s.checked.graph))], id="route-list")
            routes.border_title = "routes (highlight one to light it up)"
            yield routes

    @staticmethod
    def _route_label(route) -> Text:
        text = Text(route.name, style="bold")
        sel = ", ".join(f"{k}={v}" for k, v in route.selection.items())
        if sel:
            text.append(f"  {sel}", style="dim")
        return text

    def _compose_train(self) -> ComposeResult:
        s = self.session
        if not s.ok:
            yield Static("This spec has errors: training needs a spec that checks. See Spec (4), fix the "
                         "file, then press ctrl+r.", classes="blocked")
            return
        yield Static("loading…", classes="placeholder")  # the panel mounts after the first paint

    def _compose_query(self) -> ComposeResult:
        s = self.session
        if not s.ok:
            yield Static("This spec has errors: queries need a spec that checks. See Spec (4).", classes="blocked")
            return
        yield Static("loading…", classes="placeholder")  # the panel mounts after the first paint

    # -- start-up --------------------------------------------------------------------
    def on_mount(self) -> None:
        self._update_titles()
        self._update_status()
        self.call_after_refresh(self._focus_view, self._initial_view())
        self.call_after_refresh(self._after_first_paint)

    def _spec_view(self) -> SpecView:
        s = self.session
        return SpecView(s.source, s.source_file, s.all_diagnostics, s.name, id="spec-view")

    async def _mount_views(self) -> None:
        """Mount the hidden views after the first paint (Train needs plotext, Query numpy): the graph
        shows sooner. Quitting meanwhile is fine: whatever is not mounted yet is left out."""
        from textual.css.query import NoMatches
        from textual.widget import MountError

        s = self.session
        views = []
        if not self._has("#spec-view"):
            views.append(("spec", self._spec_view))
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
                await pane.query(".placeholder").remove()
                await pane.mount(make())
            except (MountError, NoMatches):
                if self._quitting:
                    return
                raise

    def panel_mounted(self, panel) -> None:
        """A view mounted after the first paint (Train, Query, Spec) is in place: bring it up to date."""
        if panel.id == "train-panel":
            panel.set_state(self.train_state)
            if self.session.report:
                panel.query_one("#route-matrix").show(self.session.report)
            self._update_train_note()
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

    def _has(self, selector: str) -> bool:
        return bool(self.query(selector))

    def _update_titles(self) -> None:
        s = self.session
        what = "run" if s.is_run else "spec"
        problems = summary(s.all_diagnostics) if s.all_diagnostics else ""
        self.sub_title = f"{what} {s.name}" + (f" — {problems}" if problems else "")

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

    # -- background work -------------------------------------------------------------
    @work(thread=True, group="data", exit_on_error=False)
    def build_examples(self) -> None:
        from ..data.examples import build_examples
        from ..lang.diagnostics import TangleError

        try:
            examples = build_examples(self.session.checked)
        except TangleError as err:
            self.post_message(ExamplesReady(None, err.diagnostics))
            return
        self.post_message(ExamplesReady(examples, []))

    def import_tensorflow(self) -> None:
        """Import TensorFlow in a background thread (then load the run's model, if there is one).

        A plain daemon thread, not a Textual thread worker: workers run on asyncio's default executor,
        which is joined when the app exits, so quitting during the ~5 s import would hang until it
        finished. `run_explore` ends the process at once if the import is still going on.
        """
        if self._tf_thread is not None:
            return
        self._tf_thread = threading.Thread(target=self._import_tensorflow, name="tanglec-tensorflow",
                                           daemon=True)
        self._tf_thread.start()

    @property
    def importing_tensorflow(self) -> bool:
        return self._tf_thread is not None and self._tf_thread.is_alive()

    def _post(self, message) -> None:
        """post_message from a background thread; the app may be gone already (then drop it)."""
        try:
            self.post_message(message)
        except RuntimeError:  # the event loop has closed
            pass

    def _import_tensorflow(self) -> None:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        started = time.perf_counter()
        try:
            import tensorflow  # noqa: F401
            import keras  # noqa: F401

            from ..backend import codegen, train
            from ..artifacts import run  # noqa: F401
        except Exception as err:  # noqa: BLE001 — shown in the status line, never a crash
            self.tf_error = f"{type(err).__name__}: {err}"
            self.tf_ready.set()
            self._post(TensorFlowReady(time.perf_counter() - started, self.tf_error))
            return
        self.tf_ready.set()
        self._post(TensorFlowReady(time.perf_counter() - started))
        if self.session.ok and self.session.has_trained_run:
            self._load_run_model()

    def _load_run_model(self) -> None:
        """(worker thread) The run directory's model, for queries."""
        from ..lang.diagnostics import TangleError
        from ..artifacts.run import load_model

        s = self.session
        origin = f"run {short_path(s.run_dir)}"
        try:
            model = load_model(s.run_dir, s.checked)
        except TangleError as err:
            self._post(ModelLoaded(None, origin, err.diagnostics[0].message))
            return
        except Exception as err:  # noqa: BLE001
            self._post(ModelLoaded(None, origin, f"{type(err).__name__}: {err}"))
            return
        self._post(ModelLoaded(model, origin))

    def on_tensor_flow_ready(self, message: TensorFlowReady) -> None:
        self.tf_state = f"failed ({message.error})" if message.error else f"ready ({message.seconds:.1f}s)"
        self._update_status()
        self._update_query_note()
        self._update_train_note()

    def on_examples_ready(self, message: ExamplesReady) -> None:
        if message.problems:
            self.session.data_problems = list(message.problems)
            self._refresh_problems()
            self.notify("The data has problems: see Spec (4).", severity="error", timeout=6)
            self._update_train_note()
        else:
            self.examples = message.examples

    def _refresh_problems(self) -> None:
        s = self.session
        if self._has("#spec-view"):
            self.query_one("#spec-view", SpecView).set_diagnostics(s.all_diagnostics)
        self._update_titles()
        try:
            self.query_one("#views", TabbedContent).get_tab("spec").label = \
                f"Spec 4{' ⚠' if s.all_diagnostics else ''}"
        except Exception:  # noqa: BLE001 — a label is cosmetic
            pass

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if message.error:
            self.model, self.model_origin = None, ""
            self.notify(f"Could not load the run's model: {message.error}", severity="error", timeout=8)
        else:
            self.model, self.model_origin = message.model, message.origin
            self.model_how = "loaded"
        self._update_status()
        self._update_query_note()
        self._refresh_details()
        self._run_query()

    # -- views and keys --------------------------------------------------------------
    def action_show(self, view: str) -> None:
        tabs = self.query_one("#views", TabbedContent)
        tabs.active = view
        self.call_after_refresh(self._focus_view, view)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id if event.pane is not None else None
        self.refresh_bindings()
        if pane and event.tabbed_content.id == "views":
            self.call_after_refresh(self._focus_view, pane)

    def _focus_view(self, view: str) -> None:
        if self.query_one("#views", TabbedContent).active != view:
            return  # another view was chosen meanwhile
        focused = self.focused
        pane = self.query_one(f"#{view}", TabPane)
        if focused is not None and pane in focused.ancestors:
            return
        if view == "query" and self._has("#query-panel"):
            self.query_one("#query-panel").focus_first()
            return
        targets = {"graph": "#graph-view", "train": "#train-start", "spec": "#problem-list"}
        found = self.query(targets.get(view, "#nothing"))
        if found:
            found.first().focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_reload(self) -> None:
        if self.train_state in ("waiting", "running", "pausing", "paused", "stopping"):
            self.notify("Stop the training before reloading the spec.", severity="warning")
            return
        self.session = open_target(self.target, self.run_override)
        self.examples = None
        self.model, self.model_origin, self.model_how = None, "", ""
        self.train_state = "idle"
        self.stopped_result = None
        self.answers = None
        self.lit_selection = None
        await self.recompose()
        await self._mount_views()
        self.on_mount_again()
        self.notify(f"Reloaded {self.session.name}: {summary(self.session.all_diagnostics)}")

    def on_mount_again(self) -> None:
        self._update_titles()
        self._update_status()
        if self.session.ok:
            self.build_examples()
            if self.tf_ready.is_set() and not self.tf_error and self.session.has_trained_run:
                self.load_run_model_worker()

    @work(thread=True, group="model", exit_on_error=False)
    def load_run_model_worker(self) -> None:
        self._load_run_model()

    async def action_quit(self) -> None:
        self._quitting = True
        if self.control is not None and self.train_state in ("waiting", "running", "pausing", "paused"):
            self.control.stop()
        self.exit(0)

    # -- graph -----------------------------------------------------------------------
    def on_node_highlighted(self, message: NodeHighlighted) -> None:
        self._refresh_details(message.node)

    def _refresh_details(self, node: str | None = None) -> None:
        if not self._has("#node-details") or self.session.checked is None:
            return
        if node is None:
            node = self.query_one("#graph-view", GraphView).cursor
        self.query_one("#node-details", NodeDetails).update(
            describe_node(self.session.checked.graph, node, self.model, self.session.checked))

    @on(OptionList.OptionHighlighted, "#route-list")
    def _route_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = int(event.option.id.split("-")[1])
        route = safe_routes(self.session.checked.graph)[index]
        self._light(dict(route.selection))

    def on_light_route(self, message: LightRoute) -> None:
        self._light(message.selection)

    def _light(self, selection: dict[str, str] | None) -> None:
        self.lit_selection = selection
        for view in self.query(GraphView):
            if view.id != "query-graph":
                view.lit = selection

    # -- query -----------------------------------------------------------------------
    def on_query_fields_changed(self, message: QueryFieldsChanged) -> None:
        from ..data.query import route_for

        if not self._has("#query-panel"):
            return  # shutting down
        panel = self.query_one("#query-panel")
        self.query_columns = message.columns
        if message.columns is None:
            panel.show_route(None, None)
            panel.show_answers(None)
            self.answers = None
            return
        route = route_for(self.session.checked, message.columns)
        panel.show_route(route, dict(route.selection))
        self._light(dict(route.selection))
        self._run_query()

    def _run_query(self) -> None:
        if self.model is None or self.query_columns is None or not self._has("#query-panel"):
            return
        self.query_seq += 1
        self.answer_query(self.query_seq, self.model, self.query_columns)

    @work(thread=True, group="query", exit_on_error=False)
    def answer_query(self, seq: int, model, columns) -> None:
        from ..data.query import answers
        from ..backend.predict import predict_raw

        try:
            with self._predict_lock:
                result = answers(self.session.checked, columns, predict_raw(model, self.session.checked, columns))
        except Exception as err:  # noqa: BLE001
            self.post_message(QueryAnswered(seq, None, f"{type(err).__name__}: {err}"))
            return
        self.post_message(QueryAnswered(seq, result, columns=columns))

    def on_query_answered(self, message: QueryAnswered) -> None:
        if message.seq != self.query_seq or not self._has("#query-panel"):
            return
        panel = self.query_one("#query-panel")
        if message.error:
            panel.set_note(Text(f"query failed: {message.error}", style="red"))
            return
        self.answers, self.answers_seq = message.answers, message.seq
        self.answered_fields = {k: v.tolist() for k, v in (message.columns or {}).items()}
        panel.show_answers(message.answers)

    def _update_query_note(self) -> None:
        if not self._has("#query-panel"):
            return
        panel = self.query_one("#query-panel")
        if self.model is not None:
            note = Text(f"answers from {self.model_origin}", style="dim")
        elif self.session.has_trained_run and not self.tf_ready.is_set():
            note = Text("loading the trained model (TensorFlow)…" if self.load_tensorflow else
                        "TensorFlow not loaded", style="yellow")
        elif self.tf_error:
            note = Text(f"TensorFlow failed to load: {self.tf_error}", style="red")
        else:
            note = Text(f"No trained model in {display_path(self.session.run_dir)} yet: train one in the "
                        "Train view (2).", style="yellow")
        panel.set_note(note)

    # -- training --------------------------------------------------------------------
    def _panel(self):
        return self.query_one("#train-panel") if self._has("#train-panel") else None

    def _set_train_state(self, state: str) -> None:
        self.train_state = state
        panel = self._panel()
        if panel is not None:
            panel.set_state(state)

    def action_train_start(self) -> None:
        panel = self._panel()
        if panel is None:
            self.notify("This spec has errors: see Spec (4).", severity="error")
            return
        if self.train_state in ("waiting", "running", "pausing", "paused", "stopping"):
            return
        if getattr(self.session.checked.train, "strategy", "default") == "multiworker":
            self.notify("This spec trains with the multiworker strategy: one process per worker, started with "
                        "`tanglec compile` (docs/distributed.md).", severity="warning", timeout=8)
            return
        if self.session.data_problems:
            self.notify("Training can't start: problems found (see Spec, 4); fix them and reload (ctrl+r).",
                        severity="error")
            return
        refusal = self.session.output_refusal()
        if refusal:
            self.notify(f"Training can't start: {refusal}.", severity="error", timeout=15)
            panel.set_note(Text(refusal, style="bold red"))
            return
        self.control = TrainControl()
        self.history = []
        self.stopped_result = None
        self.refresh_bindings()
        panel.query_one("#loss-plot").reset()
        panel.query_one("#route-matrix").show(None)
        panel.set_progress(0, self.session.checked.train.steps)
        if self.tf_ready.is_set() and not self.tf_error:
            self._set_train_state("running")
            panel.set_stats("starting…")
        else:
            self._set_train_state("waiting")
            panel.set_stats(Text("waiting for TensorFlow to load…", style="yellow"))
            if not self.load_tensorflow and self.tf_state == "not loaded":
                self.load_tensorflow = True
                self.tf_state = "loading…"
                self._update_status()
                self.import_tensorflow()
        panel.set_note("")
        self.run_training(self.control)

    def action_train_pause(self) -> None:
        if self.control is None:
            return
        if self.train_state in ("running", "waiting"):
            self.control.pause()
            self._set_train_state("pausing")
            if self._panel() is not None:
                self._panel().set_stats(Text("pausing at the next evaluation…", style="yellow"))
        elif self.train_state in ("paused", "pausing"):
            self.control.resume()
            self._set_train_state("running")
            self._show_stats()

    def action_train_stop(self) -> None:
        if self.control is None or self.train_state not in ("waiting", "running", "pausing", "paused"):
            return
        self.control.stop()
        self._set_train_state("stopping")
        if self._panel() is not None:
            self._panel().set_stats(Text("stopping at the next evaluation…", style="yellow"))

    def action_train_save(self) -> None:
        if self.stopped_result is None:
            self.notify("Nothing to write: `w` writes a training you stopped.", severity="warning")
            return
        self.save_stopped(self.stopped_result)

    @work(thread=True, group="train", exit_on_error=False)
    def run_training(self, control: TrainControl) -> None:
        """(worker thread) Train; always ends with one TrainDone, whatever happens."""
        try:
            self._run_training(control)
        except Exception as err:  # noqa: BLE001 — a bug must not leave the UI "running" forever
            self.post_message(TrainDone(error=f"{type(err).__name__}: {err}"))

    def _run_training(self, control: TrainControl) -> None:
        while not self.tf_ready.wait(0.1):  # a stop (or quitting) while TensorFlow loads ends the wait
            if control.stop_requested:
                self.post_message(TrainDone())
                return
        if self.tf_error:
            self.post_message(TrainDone(error=f"TensorFlow failed to load: {self.tf_error}"))
            return
        if control.stop_requested:
            self.post_message(TrainDone())
            return
        from ..data.examples import build_examples
        from ..lang.diagnostics import TangleError
        from ..artifacts.run import write_run
        from ..backend.train import train
        from ..pipeline import init_weights

        checked = self.session.checked
        try:
            examples = self.examples if self.examples is not None else build_examples(checked)
        except TangleError as err:
            self.post_message(TrainDone(error="the data has problems", problems=err.diagnostics))
            return

        last = {"step": 0, "busy": 0.0, "rate": 0.0}

        def progress(p) -> None:
            # steps/s over the last evaluation interval (the first one includes tracing the graph), with
            # time spent paused left out, smoothed a little: what the ETA should be based on
            busy = max(p.elapsed - control.paused_seconds, 1e-9)
            interval = (p.step - last["step"]) / max(busy - last["busy"], 1e-9)
            last["rate"] = interval if not last["rate"] else 0.5 * last["rate"] + 0.5 * interval
            last["step"], last["busy"] = p.step, busy
            self.post_message(TrainProgress(p, last["rate"]))
            control.wait_if_paused()

        try:
            result = train(checked, examples, on_progress=progress, should_stop=control.should_stop,
                           init_weights=lambda: init_weights(checked))
            if result.interrupted and not result.stopped_early:
                self.post_message(TrainDone(result, written=False))
                return
            write_run(self.session.run_dir, checked, result.model, result.report, self._metrics(result, examples),
                      examples)
        except TangleError as err:  # e.g. the `init` run can't be loaded: positioned problems, shown in Spec
            self.post_message(TrainDone(error=err.diagnostics[0].message if err.diagnostics else str(err),
                                        problems=err.diagnostics))
            return
        except Exception as err:  # noqa: BLE001 — reported in the Train view; the run dir is intact
            self.post_message(TrainDone(error=f"{type(err).__name__}: {err}"))
            return
        self.post_message(TrainDone(result, written=True))

    def _metrics(self, result, examples=None) -> dict:
        """metrics.json as `tanglec compile` writes it."""
        from ..data.stream import StreamedExamples
        from ..backend.train import run_metrics

        streamed = isinstance(examples if examples is not None else self.examples, StreamedExamples)
        return run_metrics(self.session.checked, result, self.session.checked.train.seed, streamed)

    @work(thread=True, group="train", exit_on_error=False)
    def save_stopped(self, result) -> None:
        from ..data.examples import build_examples
        from ..artifacts.run import write_run

        checked = self.session.checked
        try:
            examples = self.examples if self.examples is not None else build_examples(checked)
            write_run(self.session.run_dir, checked, result.model, result.report,
                      {**self._metrics(result), "interrupted": True}, examples)
        except Exception as err:  # noqa: BLE001
            self.post_message(RunSaved(f"{type(err).__name__}: {err}"))
            return
        self.post_message(RunSaved())

    def on_run_saved(self, message: RunSaved) -> None:
        if message.error:
            self.notify(f"Could not write the run: {message.error}", severity="error")
            return
        result = self.stopped_result
        self.stopped_result = None
        self.refresh_bindings()
        self._adopt(result, f"stopped training ({result.steps_run} steps), written")
        self.notify(f"Stopped model written to {display_path(self.session.run_dir)}.")

    def on_train_progress(self, message: TrainProgress) -> None:
        p = message.progress
        self.last_progress, self.last_rate = p, message.rate
        self.history.append({"step": p.step, "losses": dict(p.losses), "accuracy": p.report["accuracy"]})
        panel = self._panel()
        if panel is None:
            return
        if self.train_state == "pausing" and self.control is not None and self.control.paused:
            self._set_train_state("paused")
        panel.query_one("#loss-plot").add(p.step, p.losses)
        panel.query_one("#route-matrix").show(p.report)
        panel.set_progress(p.step, p.total_steps)
        self._show_stats()

    def _show_stats(self) -> None:
        from .widgets.train import duration

        panel = self._panel()
        p = getattr(self, "last_progress", None)
        if panel is None or p is None:
            return
        rate = self.last_rate
        remaining = (p.total_steps - p.step) / rate if rate > 0 else 0.0
        report = p.report
        text = Text()
        state = {"paused": "paused", "pausing": "pausing…", "stopping": "stopping…"}.get(self.train_state)
        if state:
            text.append(f"{state}  ", style="bold yellow")
        text.append(f"step {p.step}/{p.total_steps}", style="bold")
        text.append(f" · {rate:.1f} steps/s · ETA {duration(remaining)}")
        if self.session.checked.train.until_exact:
            text.append(" (or sooner: until exact)", style="dim")
        text.append(f"\nloss {p.losses.get('total', float('nan')):.4f} · exact {report['exact']}/{report['cases']}")
        acc = report["accuracy"]
        text.append(f" = {acc:.0%}" if acc is not None else "", style="bold green" if acc == 1.0 else "")
        panel.set_stats(text)

    def on_train_done(self, message: TrainDone) -> None:
        panel = self._panel()
        self.control = None
        if message.problems:
            self.session.data_problems = list(message.problems)
            self._refresh_problems()
        if message.error:
            self._set_train_state("failed")
            if panel is not None:
                panel.set_stats(Text(f"training failed: {message.error}", style="bold red"))
            self._update_train_note()
            return
        result = message.result
        if result is None:  # stopped before it began
            self._set_train_state("stopped")
            if panel is not None:
                panel.set_stats(Text("stopped before training began; the run directory is unchanged",
                                     style="yellow"))
            return
        if panel is not None:
            panel.query_one("#route-matrix").show(result.report)
        if message.written:
            self._set_train_state("done")
            self._adopt(result, "trained here")
            acc = result.report["accuracy"]
            how = "reached 100% exact" if result.stopped_early else f"ran {result.steps_run} steps"
            if panel is not None:
                panel.set_progress(result.steps_run, result.steps_run)  # finished: a full bar, early or not
                panel.set_stats(Text.assemble(
                    ("done ", "bold green"),
                    f"{how}: step {result.steps_run}, exact {result.report['exact']}/{result.report['cases']}"
                    + (f" = {acc:.0%}" if acc is not None else "") + f", {result.seconds:.1f}s"))
            self.notify(f"Run written to {display_path(self.session.run_dir)}.")
        else:
            self._set_train_state("stopped")
            self.stopped_result = result
            self.refresh_bindings()
            if panel is not None:
                panel.set_stats(Text.assemble(
                    ("stopped ", "bold yellow"),
                    f"at step {result.steps_run}; the run directory is unchanged — press w to write this model"))
        self._update_train_note()

    def _adopt(self, result, how: str) -> None:
        """A model just written to the run directory becomes the one queries use."""
        s = self.session
        s.run_state, s.run_note, s.report = "current", "trained", result.report
        self.model, self.model_origin = result.model, f"run {short_path(s.run_dir)} ({how})"
        self.model_how = how
        self._update_status()
        self._update_query_note()
        self._refresh_details()
        self._run_query()

    def _update_train_note(self) -> None:
        panel = self._panel()
        if panel is None:
            return
        s = self.session
        if s.data_problems:
            note = Text("Problems with the data or the init run: see Spec (4).", style="red")
        elif s.report and self.train_state == "idle":
            note = Text(f"showing the last run in {display_path(s.run_dir)}", style="dim")
        elif s.run_state in ("other", "invalid") and self.train_state == "idle":
            refusal = s.output_refusal()
            note = Text(refusal, style="bold red") if refusal else \
                Text(f"{display_path(s.run_dir)}: {s.run_note}; training replaces it", style="yellow")
        elif self.train_state == "stopped":
            note = Text(f"{display_path(s.run_dir)} keeps its last good state", style="dim")
        elif self.train_state == "done":
            note = Text(f"written to {display_path(s.run_dir)}", style="green")
        else:
            note = Text("")
        panel.set_note(note)
