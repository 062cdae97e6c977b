"""The explorer's query handling (a part of ExploreApp, kept apart for size): the form's fields become
a route lit in the graphs and, once a model is there, answers computed in a thread worker."""
from __future__ import annotations

from rich.text import Text
from textual import work

from . import controllers
from .messages import QueryAnswered, QueryFieldsChanged
from .session import display_path


class Querying:
    """Answer the Query view's fields with the current model; stale answers are dropped."""

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
        try:
            with self._predict_lock:
                result = controllers.answer(self.session.checked, model, columns)
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
        self.query_one("#query-panel").set_note(note)
