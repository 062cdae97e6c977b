"""The explorer's editor actions and messages (a part of ExploreApp, kept apart for size).

The editor's text is checked a moment after typing stops (TensorFlow-free, in a thread worker); its
diagnostics show in the editor and the problem list. When the text checks, the graph and the other views
follow it. Saving writes only the spec file that was opened, atomically (tanglec.tui.controllers).
"""
from __future__ import annotations

from pathlib import Path

from textual import work

from . import controllers
from .messages import SpecChecked
from .session import Session, open_source, open_target
from .widgets.spec import SpecView, summary
from .widgets.train import BUSY


class Editing:
    """Edit, check as you type, format, save, reload and compile the spec."""

    def _spec_pane(self) -> SpecView | None:
        return self.query_one("#spec-view", SpecView) if self._has("#spec-view") else None

    def action_edit(self) -> None:
        self.spec_focus = "#editor"
        self.action_show("spec")
        self._focus_editor()

    def _focus_editor(self) -> None:
        pane = self._spec_pane()
        if pane is not None:
            pane.editor.focus()
        else:  # mounts after the first paint
            self.set_timer(0.05, self._focus_editor)

    def _check_text(self, text: str) -> Session:
        s = self.session
        return open_source(Path(s.source_file), text, s.run_dir)

    def on_spec_view_edited(self, message: SpecView.Edited) -> None:
        self.check_edited(message.text)

    @work(thread=True, group="check", exclusive=True, exit_on_error=False)
    def check_edited(self, text: str) -> None:
        self.post_message(SpecChecked(self._check_text(text)))

    async def on_spec_checked(self, message: SpecChecked) -> None:
        pane = self._spec_pane()
        if pane is None or message.session.source != pane.text:
            return  # typed on meanwhile: a newer check is coming
        await self._follow(message.session)

    async def _follow(self, edited: Session) -> None:
        """Show the edited text's problems; when it checks, the graph and views follow it."""
        pane = self._spec_pane()
        if pane is not None:
            pane.set_diagnostics(edited.all_diagnostics, self._edit_note(edited.source))
        s = self.session
        if edited.source == s.source or not edited.ok or self.session.is_run or self.train_state in BUSY:
            self._update_titles_for(edited)
            return
        edited.data_problems = []
        self.session = edited
        self.examples, self.answers = None, None
        self.model, self.model_origin, self.model_how = None, "", ""
        await self.query_one("#graph-pane").recompose()
        await self._mount_views()
        if not self._has("#status"):
            return  # the app closed while the views were rebuilt: nothing left to update
        self._update_titles()
        self._update_status()
        self.build_examples()
        if self.tf_ready.is_set() and not self.tf_error and self.session.has_trained_run:
            self.load_run_model_worker()

    def _update_titles_for(self, edited: Session) -> None:
        problems = summary(edited.all_diagnostics) if edited.all_diagnostics else ""
        self.sub_title = f"spec {edited.name}" + (f" — {problems}" if problems else "")

    def _edit_note(self, text: str) -> str:
        if self.session.is_run:
            return "a run's spec: edits are checked, not saved"
        return "saved" if text == self.opened_text else "unsaved — ctrl+s saves"

    def action_save(self) -> bool:
        pane = self._spec_pane()
        if pane is None:
            return False
        text = pane.text
        try:
            controllers.save_source(self.session, self.opened_text, text)
        except controllers.SaveRefused as err:
            self.notify(f"Not saved: {err}", severity="error", timeout=10)
            return False
        except OSError as err:
            self.notify(f"Not saved: {err.strerror or err}", severity="error", timeout=10)
            return False
        self.opened_text = text
        pane.set_diagnostics(pane.diags, self._edit_note(text))
        self.notify(f"Saved {self.session.name}.")
        return True

    def action_format(self) -> None:
        from ..lang.diagnostics import TangleError

        pane = self._spec_pane()
        if pane is None:
            return
        try:
            formatted = controllers.format_text(pane.text, self.session.source_file)
        except TangleError as err:
            self.notify(f"Not formatted: {err.diagnostics[0].message} (fix the syntax first)", severity="error")
            return
        if formatted != pane.text:
            pane.replace_text(formatted)

    async def action_compile(self) -> None:
        """Save the editor's text, check it, and train it (`tanglec compile` from the editor)."""
        pane = self._spec_pane()
        if pane is None or self.train_state in BUSY:
            return
        if pane.text != self.opened_text and not self.action_save():
            return
        await self._follow(self._check_text(pane.text))
        if not self.session.ok:
            self.notify("The spec has errors: fix them before compiling.", severity="error")
            return
        self.action_show("train")
        self.call_after_refresh(self.action_train_start)

    async def action_reload(self) -> None:
        if self.train_state in BUSY:
            self.notify("Stop the training before reloading the spec.", severity="warning")
            return
        self.session = open_target(self.target, self.run_override)
        self.opened_text = self.session.source
        self.examples = None
        self.model, self.model_origin, self.model_how = None, "", ""
        self.init_training()
        self.answers = None
        self.lit_selection = None
        await self.recompose()
        await self._mount_views()
        self._update_titles()
        self._update_status()
        if self.session.ok:
            self.build_examples()
            if self.tf_ready.is_set() and not self.tf_error and self.session.has_trained_run:
                self.load_run_model_worker()
        self.notify(f"Reloaded {self.session.name}: {summary(self.session.all_diagnostics)}")
