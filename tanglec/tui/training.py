"""The explorer's training actions and messages (a part of ExploreApp, kept apart for size).

Training from the UI is `tanglec compile`'s training (tanglec.tui.controllers.train_session). A training
stopped mid-way does not touch the run directory (its last good state stays); `w` writes the stopped
model on explicit request.
"""
from __future__ import annotations

from rich.text import Text
from textual import work

from . import controllers
from .messages import RunSaved, TrainDone, TrainProgress
from .session import TrainControl, display_path, short_path
from .widgets.train import BUSY

TRAIN_ACTIONS = {"train_start", "train_pause", "train_stop", "train_save"}
# The Train view repaints at most this often while training runs: evaluations can come faster (every
# 10 steps by default), and a key press should not queue behind one repaint per evaluation.
PROGRESS_PERIOD = 0.25


class Training:
    """Start, pause, resume, stop and write a training; show its progress in the Train view."""

    def init_training(self) -> None:
        self.train_state = "idle"
        self.control: TrainControl | None = None
        self.stopped_result = None
        self.history: list[dict] = []  # (step, losses, accuracy) seen by the UI during the last training
        self.last_update: controllers.TrainUpdate | None = None
        self.unshown_updates: list[controllers.TrainUpdate] = []  # evaluations not in the Train view yet
        self._progress_timer = None

    def _panel(self):
        return self.query_one("#train-panel") if self._has("#train-panel") else None

    def train_panel_mounted(self, panel) -> None:
        panel.set_state(self.train_state)
        if self.session.report:
            panel.query_one("#route-matrix").show(self.session.report)
        self._update_train_note()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Training keys live only in the Train view; `w` only once there is a stopped training to write."""
        if action not in TRAIN_ACTIONS:
            return True
        if not self.is_mounted or not self._has("#views") or self.query_one("#views").active != "train":
            return False
        if not self.session.ok:
            return False
        return self.stopped_result is not None if action == "train_save" else True

    def _set_train_state(self, state: str) -> None:
        self.train_state = state
        panel = self._panel()
        if panel is not None:
            panel.set_state(state)

    def stop_training(self) -> None:
        if self.control is not None and self.train_state in BUSY:
            self.control.stop()

    def action_train_start(self) -> None:
        panel = self._panel()
        if panel is None:
            self.notify("This spec has errors: see Spec (4).", severity="error")
            return
        if self.train_state in BUSY:
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
        self._cancel_progress_timer()
        self.history, self.stopped_result, self.last_update, self.unshown_updates = [], None, None, []
        self.refresh_bindings()
        panel.reset()
        if self.tf_ready.is_set() and not self.tf_error:
            self._set_train_state("running")
            panel.set_stats("starting…")
        else:
            self._set_train_state("waiting")
            panel.set_stats(Text("waiting for TensorFlow to load…", style="yellow"))
            if not self.load_tensorflow and self.tf_state == "not loaded":
                self.load_tensorflow, self.tf_state = True, "loading…"
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
            self._show_progress_now()

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
        """(worker thread) Wait for TensorFlow, train; always ends with one TrainDone."""
        if not controllers.wait_for(self.tf_ready, control):
            self.post_message(TrainDone(controllers.TrainOutcome()))
            return
        if self.tf_error:
            self.post_message(TrainDone(controllers.TrainOutcome(error=f"TensorFlow failed to load: "
                                                                       f"{self.tf_error}")))
            return
        outcome = controllers.train_session(self.session, self.examples, control,
                                            lambda update: self.post_message(TrainProgress(update)))
        self.post_message(TrainDone(outcome))

    @work(thread=True, group="train", exit_on_error=False)
    def save_stopped(self, result) -> None:
        try:
            controllers.write_stopped(self.session, result, self.examples)
        except Exception as err:  # noqa: BLE001
            self.post_message(RunSaved(f"{type(err).__name__}: {err}"))
            return
        self.post_message(RunSaved())

    def on_run_saved(self, message: RunSaved) -> None:
        if message.error:
            self.notify(f"Could not write the run: {message.error}", severity="error")
            return
        result, self.stopped_result = self.stopped_result, None
        self.refresh_bindings()
        self._adopt(result, f"stopped training ({result.steps_run} steps), written")
        self.notify(f"Stopped model written to {display_path(self.session.run_dir)}.")

    def on_train_progress(self, message: TrainProgress) -> None:
        p = message.update.progress
        self.last_update = message.update
        self.history.append({"step": p.step, "losses": dict(p.losses), "accuracy": p.report["accuracy"]})
        self.unshown_updates.append(message.update)
        if self.train_state == "pausing" and self.control is not None and self.control.paused:
            self._set_train_state("paused")
            self._show_progress_now()
        elif self._progress_timer is None:
            self._progress_timer = self.set_timer(PROGRESS_PERIOD, self._show_progress)

    def _show_progress(self) -> None:
        """Show the evaluations that came since the last repaint: every point on the plot, the rest as of
        the last one."""
        self._progress_timer = None
        updates, self.unshown_updates = self.unshown_updates, []
        panel = self._panel()
        if panel is not None and self.last_update is not None:
            panel.show_update(self.last_update, self.train_state, updates)

    def _cancel_progress_timer(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.stop()
            self._progress_timer = None

    def _show_progress_now(self) -> None:
        self._cancel_progress_timer()
        self._show_progress()

    def on_train_done(self, message: TrainDone) -> None:
        outcome, panel = message.outcome, self._panel()
        self.control = None
        self._show_progress_now()
        if outcome.problems:
            self.session.data_problems = list(outcome.problems)
            self._refresh_problems()
        if outcome.error or outcome.result is None:
            self._set_train_state("failed" if outcome.error else "stopped")
            if panel is not None:
                panel.set_stats(Text(f"training failed: {outcome.error}", style="bold red") if outcome.error else
                                Text("stopped before training began; the run directory is unchanged",
                                     style="yellow"))
            self._update_train_note()
            return
        self._set_train_state("done" if outcome.written else "stopped")
        if panel is not None:
            panel.show_finished(outcome.result, outcome.written)
        if outcome.written:
            self._adopt(outcome.result, "trained here")
            self.notify(f"Run written to {display_path(self.session.run_dir)}.")
        else:
            self.stopped_result = outcome.result
            self.refresh_bindings()
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
