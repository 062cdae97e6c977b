"""The explorer's background loading (a part of ExploreApp, kept apart for size): the example table in a
thread worker, TensorFlow in a daemon thread, then the run's model; each answers with a message."""
from __future__ import annotations

import threading
import time

from textual import work

from . import controllers
from .messages import ExamplesReady, ModelLoaded, TensorFlowReady
from .session import short_path


class Loading:
    """Load what the views need without blocking the first paint; results arrive as messages."""

    @work(thread=True, group="data", exit_on_error=False)
    def build_examples(self) -> None:
        self.post_message(ExamplesReady(*controllers.build_examples(self.session.checked)))

    def import_tensorflow(self) -> None:
        """Import TensorFlow in a background thread (then load the run's model, if there is one).

        A plain daemon thread, not a Textual thread worker: workers run on asyncio's default executor,
        which is joined when the app exits, so quitting during the ~5 s import would hang until it
        finished. `run_explore` ends the process at once if the import is still going on.
        """
        if self._tf_thread is None:
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
        started = time.perf_counter()
        self.tf_error = controllers.import_tensorflow()
        self.tf_ready.set()
        self._post(TensorFlowReady(time.perf_counter() - started, self.tf_error))
        if self.tf_error is None and self.session.ok and self.session.has_trained_run:
            self._load_run_model()

    def _load_run_model(self) -> None:
        """(worker thread) The run directory's model, for queries."""
        from ..lang.diagnostics import TangleError

        origin = f"run {short_path(self.session.run_dir)}"
        try:
            self._post(ModelLoaded(controllers.load_run_model(self.session), origin))
        except TangleError as err:
            self._post(ModelLoaded(None, origin, err.diagnostics[0].message))
        except Exception as err:  # noqa: BLE001
            self._post(ModelLoaded(None, origin, f"{type(err).__name__}: {err}"))

    @work(thread=True, group="model", exit_on_error=False)
    def load_run_model_worker(self) -> None:
        self._load_run_model()

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

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if message.error:
            self.model, self.model_origin = None, ""
            self.notify(f"Could not load the run's model: {message.error}", severity="error", timeout=8)
        else:
            self.model, self.model_origin, self.model_how = message.model, message.origin, "loaded"
        self._update_status()
        self._update_query_note()
        self._refresh_details()
        self._run_query()
