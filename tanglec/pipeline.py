"""The one orchestrator: spec file -> checked spec -> examples -> trained run -> answers.

Both front ends, the CLI and the TUI, run through these functions; they only handle options and
render results. Every stage below gets what it needs from a higher one as a value: the init run's
declarations and weights (read here through artifacts.run), the stream mode and the other command
line overrides (`Overrides`), progress and stop callbacks. Nothing is kept between calls, so a failed
call leaves no state behind.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .lang import ast
from .lang.diagnostics import Diagnostic, TangleError, sort_key
from .spec import onepass
from .spec.checks import Checked, check
from .spec.composition import InitRun, declared_init, require_init_run

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Overrides:
    """Command line settings over the spec's: `stream` is "always"/"never" (--stream/--no-stream),
    `init` a run directory (--init); None keeps the spec's own."""
    stream: str | None = None
    init: Path | None = None
    seed: int | None = None
    steps: int | None = None
    mux: str | None = None
    strategy: str | None = None
    devices: int | None = None


def read_init_run(path: Path, span: ast.Span | None) -> InitRun:
    """The run a spec starts from, as checks compare it: its module declarations and aligned groups,
    or why it can't be read; a missing directory is left to the checks (W206, or E140 to train)."""
    if not path.is_dir():
        return InitRun(path, span)
    from .artifacts.run import load_checked

    try:
        old, _ = load_checked(path)
    except TangleError as err:
        return InitRun(path, span, problems=tuple(err.diagnostics))
    aligned = tuple(frozenset(a.modules) for a in old.composition.aligns)
    return InitRun(path, span, dict(old.graph.modules), aligned)


def check_spec(spec: ast.Spec, overrides: Overrides = Overrides()) -> Checked:
    """Every problem of a parsed spec: its init run read, the overrides applied, its data validated."""
    declared = declared_init(spec, overrides.init)
    init = read_init_run(*declared) if declared is not None else None
    checked = check(spec, init, stream=overrides.stream, data_check=_data_problems)
    if not checked.init_modules or not checked.ok:
        return checked
    from .data.examples import DataError
    from .data.transfer_checks import transfer_problems

    try:
        rails = transfer_problems(checked)
    except DataError as err:
        rails = list(err.diagnostics)
    return replace(checked, diagnostics=sorted(checked.diagnostics + rails, key=sort_key))


def _data_problems(checked: Checked) -> list[Diagnostic]:
    """data.validate's target checks, imported only when a spec's data is too large to check row by
    row in plain Python (numpy costs most of a small spec's `check`)."""
    from .data.validate import target_problems

    return target_problems(checked)


def check_file(path: str | Path) -> tuple[Checked | None, list[Diagnostic]]:
    """`tanglec check`: the syntax errors and every other statement's problems together (onepass)."""
    return onepass.check_file(path, check_spec)


def load(path: str | Path, overrides: Overrides = Overrides(), *, training: bool = False) -> Checked:
    """Parse and check a spec file; TangleError when it has errors. `training`: the init run must
    exist too (checking only warns of a missing one)."""
    from .lang.parser import parse_file

    checked = check_spec(parse_file(path), overrides)
    if checked.errors:
        raise TangleError(checked.diagnostics)
    if training:
        require_init_run(checked)
    return checked


def prepare(checked: Checked):
    """The example table training and evaluation use (DataError for bad data)."""
    from .data.examples import build_examples

    return build_examples(checked)


def init_weights(checked: Checked) -> dict | None:
    """Weights of the modules the init run provides, by module name (imports TensorFlow)."""
    require_init_run(checked)
    init = checked.composition.init
    if init is None or not checked.init_modules:
        return None
    from .artifacts.run import load_checked, load_model
    from .backend.codegen import module_layers

    old, _ = load_checked(init)
    source = module_layers(load_model(init, old))
    return {name: source[name].get_weights() for name in checked.init_modules}


def total_steps(checked: Checked, overrides: Overrides = Overrides()) -> int:
    """Steps training runs at most, over every phase (imports TensorFlow)."""
    from .backend.train import plan_phases

    return sum(p.steps for p in plan_phases(checked, overrides.steps))


@dataclass(frozen=True)
class Compiled:
    result: object  # backend.train.TrainResult
    metrics: dict  # the run's metrics.json


def compile(checked: Checked, examples, *, out: Path | None, overrides: Overrides = Overrides(),
            on_progress: Callable | None = None, should_stop: Callable[[], bool] | None = None,
            checkpoint=None, tensorboard: Path | None = None, model=None) -> Compiled:
    """Build the model (or train `model`, built by the caller to watch it), load the init run's weights,
    train, measure; write the run to `out` unless training was stopped before it finished or `out` is None
    (a multiworker worker that is not the chief). A run that reached `until exact` is complete even if a
    stop came in the same chunk. A refused or unwritable output is a TangleError; the previous run stays."""
    from .backend.train import train

    result = train(checked, examples, steps=overrides.steps, seed=overrides.seed, mux=overrides.mux,
                   on_progress=on_progress, should_stop=should_stop, checkpoint=checkpoint, model=model,
                   tensorboard=str(tensorboard) if tensorboard else None,
                   strategy=overrides.strategy or checked.train.strategy, devices=overrides.devices,
                   init_weights=lambda: init_weights(checked))
    metrics = run_metrics(checked, result, examples, overrides)
    if out is not None and (not result.interrupted or result.stopped_early):
        save(out, checked, result, examples, metrics)
    return Compiled(result, metrics)


def model_to_train(checked: Checked):
    """The model `compile` would build, for a caller that watches its modules' weights while it trains
    (the explorer's grid); None under tf.distribute, where training builds it in its strategy's scope."""
    from .backend.codegen import build_model
    from .backend.train import plan_phases, set_determinism, xla_pays_off_for

    if (checked.train.strategy or "default") != "default":
        return None
    set_determinism(checked.train.seed)
    total = sum(p.steps for p in plan_phases(checked))
    return build_model(checked, seed=checked.train.seed, xla=xla_pays_off_for(checked, total))


def run_metrics(checked: Checked, result, examples, overrides: Overrides = Overrides(), **extra) -> dict:
    """metrics.json of a training (`extra`: e.g. interrupted=True for a stopped one the user keeps)."""
    from .backend.train import run_metrics as metrics
    from .data.stream import StreamedExamples

    seed = checked.train.seed if overrides.seed is None else overrides.seed
    return {**metrics(checked, result, seed, isinstance(examples, StreamedExamples)), **extra}


def save(out: Path, checked: Checked, result, examples, metrics: dict) -> None:
    """Write a trained model as the run directory `out`, atomically (E192 if something else took the path)."""
    from .artifacts.run import write_run
    from .lang.diagnostics import output_refused
    from .util.files import OutputRefused

    try:
        write_run(out, checked, result.model, result.report, metrics, examples)
    except OutputRefused as err:  # something else took the path during training
        raise output_refused(err) from None


def writes_run(checked: Checked, overrides: Overrides = Overrides()) -> bool:
    """Whether this process writes the run (all but a `multiworker` worker that is not the chief); E170
    for a strategy's bad options, before TensorFlow loads."""
    from .backend.distribute import check_strategy

    return check_strategy(overrides.strategy or checked.train.strategy, overrides.devices)


@dataclass(frozen=True)
class Interruption:
    """A compile stopped by SIGINT/SIGTERM after saving a checkpoint: resume from it."""
    step: int
    checkpoint: Path
    exit_code: int


def compile_resumable(checked: Checked, examples, *, out: Path, overrides: Overrides = Overrides(),
                      on_progress: Callable | None = None, resume: bool = False, checkpoint_every: int | None = None,
                      tensorboard: Path | None = None, log: Callable[[str], None] | None = None
                      ) -> tuple[Compiled, Interruption | None]:
    """`compile` with checkpoints beside `out` (every `checkpoint_every` steps; by default every 100 steps and
    30 s; and on Ctrl-C/SIGTERM, which finish the chunk, save and stop), resumed from one with `resume`; only the chief writes. A
    multiworker peer that stopped is E170; the checkpoints go once the run is written."""
    from .backend.checkpoint import DEFAULT_EVERY, DEFAULT_SECONDS, Checkpointer
    from .backend.distribute import peer_failure
    from .util.files import checkpoint_dir

    chief = writes_run(checked, overrides)
    every, seconds = (DEFAULT_EVERY, DEFAULT_SECONDS) if checkpoint_every is None else (checkpoint_every, 0.0)
    checkpointer = Checkpointer(checkpoint_dir(out), every=every if chief else 0, seconds=seconds, resume=resume,
                                handle_signals=chief, log=log)  # other workers only read it to resume
    with checkpointer:
        try:
            compiled = compile(checked, examples, out=out if chief else None, overrides=overrides,
                               on_progress=on_progress, checkpoint=checkpointer,
                               tensorboard=tensorboard if chief else None)
        except TangleError:
            raise
        except Exception as err:  # noqa: BLE001 - a multiworker peer that stopped is E170, anything else a bug
            problem = peer_failure(err, overrides.strategy or checked.train.strategy, checkpointer.directory)
            if problem is None:
                raise
            raise problem from None
    if compiled.result.interrupted and checkpointer.signal_received is not None:
        return compiled, Interruption(compiled.result.steps_run, checkpointer.path, checkpointer.exit_code)
    if chief:
        checkpointer.discard()
    return compiled, None


def load_run(run: Path) -> Checked:
    """A trained run's spec, checked from the run's files alone."""
    from .artifacts.run import load_checked

    return load_checked(run)[0]


def export_target(run: Path, out: Path | None, fmt: str) -> Path:
    """Where `export` writes (default beside the run), refused before TensorFlow when the run is damaged or
    the path can't hold that format."""
    from .artifacts.export import check_export_path, default_output

    out = out or default_output(run, fmt)
    load_run(run)
    check_export_path(out, fmt)
    return out


def export(run: Path, out: Path, fmt: str, *, verify: bool = True) -> dict:
    """The run as a SavedModel or a .keras file for serving, checked against the run (imports TensorFlow)."""
    from .artifacts.export import export as write_export

    return write_export(run, out, fmt, verify=verify)


def load_run_model(run: Path, checked: Checked):
    """The run's Keras model (imports TensorFlow)."""
    from .artifacts.run import load_model

    return load_model(run, checked)


def evaluation_inputs(run: Path, data: Path | None = None):
    """(checked, examples) `evaluate` needs, read without TensorFlow (a damaged run fails here): the
    run's evaluation rows, or every row of `data`, a CSV/JSONL file with the spec's fields, as
    `data.examples.FileRows` (read a chunk at a time as `evaluate` scores them: E119 when the file can't
    be read here, file:row:column for its bad cells there)."""
    from .artifacts.run import evaluation_examples, load_report, loaded_modules
    from .data.examples import FileRows

    checked = load_run(run)
    loaded = loaded_modules(run)
    checked = replace(checked, init_modules={m: checked.graph.modules[m] for m in loaded if m in checked.graph.modules})
    if data is None:
        return checked, evaluation_examples(run, checked)
    from .util.files import data_file_problem

    span = ast.Span(str(data), 1, 1, 1, 2)
    problem = data_file_problem(data)
    if problem:
        raise TangleError([Diagnostic("E119", f"{problem}: {data}", span,
                                      hints=["--data takes a CSV or JSONL file with the spec's input columns"])])
    checked = replace(checked, data=replace(checked.data, source="file", path=Path(data), in_run=False, span=span))
    return checked, FileRows(checked, [r["training_rows"] for r in load_report(run, checked)["routes"]])


def evaluate(checked: Checked, examples, model, *, failures: int = 0) -> dict:
    """Over the evaluation rows (or every row of a `FileRows`, a chunk at a time through one compiled
    function): the accuracy of every route, each marked as it was learned; per decoder its accuracy and
    a confusion matrix (categorical) or MAE/RMSE (numeric); and the first `failures` wrong answers,
    file:line where the rows come from a file. A bad row of a `FileRows` is a DataError (E119)."""
    from .backend.train import annotate_routes
    from .data.examples import FileRows
    from .data.metrics import Tally

    source = str(checked.data.path) if checked.data.source == "file" else None
    tally = Tally(checked, failures, source)
    if isinstance(examples, FileRows):
        from .backend.predict import Predictor

        predictor = Predictor(model, checked)
        for rows, first_row in examples.chunks():
            tally.add(rows, predictor(rows.columns), first_row)
    else:
        from .backend.predict import predict_raw

        ev = examples.take(examples.eval_index)
        tally.add(ev, predict_raw(model, checked, ev.columns))
    return annotate_routes(checked, examples, tally.report())


def ask(checked: Checked, model, columns: dict):
    """A query's route and every decoder's answer, for field columns from `query_columns`."""
    from .backend.predict import predict_raw
    from .data.query import answers, route_for

    return route_for(checked, columns), answers(checked, columns, predict_raw(model, checked, columns))


def query_columns(checked: Checked, assignments: list[tuple[str, str]]) -> dict:
    """NAME=VALUE pairs as one example's columns, validated against the spec (no TensorFlow)."""
    from .data.query import parse_fields

    return parse_fields(checked, assignments)


def predict_columns(checked: Checked, table) -> dict[str, np.ndarray]:
    """A table of field values (a dict of columns, or anything DataFrame-like with `table[name]`) as
    model columns, every cell validated like a query's (E130 naming the row). A field no module on a
    row's route reads may be None there (or its column left out): it is filled with a neutral value."""
    import numpy as np

    from .data.needs import FieldNeeds, neutral_value
    from .data.query import field_value

    g = checked.graph
    needs = FieldNeeds(checked, with_targets=False)
    names = list(g.selectors) + list(g.inputs)
    missing = [n for n in names if n not in table and n not in needs.optional]
    if missing:
        raise TangleError([Diagnostic("E130", f"the table has no column '{m}'", None,
                                      hints=[f"columns: {', '.join(names)}"]) for m in missing])
    first = next((n for n in names if n in table), None)
    rows = 0 if first is None else len(list(table[first]))
    columns, problems = {}, []
    for name in names:
        values = []
        cells = list(table[name]) if name in table else [None] * rows
        for row, cell in enumerate(cells):
            if cell is None and name in needs.optional:
                codes = {s: columns[s][row] for s in needs.selectors}
                if name in needs.needed(codes):
                    problems.append(Diagnostic("E130", f"row {row}: {name}: missing, and this row's route "
                                                       f"({needs.why(name, codes, g)}) reads it", None))
                values.append(neutral_value(g.inputs[name].type))
                continue
            text = " ".join(str(x) for x in cell) if isinstance(cell, (list, tuple, np.ndarray)) else str(cell)
            try:
                values.append(field_value(checked, name, text))
            except ValueError as err:
                problems.append(Diagnostic("E130", f"row {row}: {name}: {err}", None))
                values.append(None)  # keeps the rows aligned: a bad selector leaves its row's route unknown
        columns[name] = np.asarray(values)
    if problems:
        raise TangleError(problems)
    return columns


class Run:
    """A trained run opened for use from Python: evaluate it, query it, predict a table. The model is
    loaded (and TensorFlow imported) on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checked = load_run(self.path)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_run_model(self.path, self.checked)
        return self._model

    def evaluate(self, data: str | Path | None = None, *, failures: int = 0) -> dict:
        """What `tanglec eval RUN [--data FILE] [--failures N] --json` reports."""
        checked, examples = evaluation_inputs(self.path, None if data is None else Path(data))
        return evaluate(checked, examples, self.model, failures=failures)

    def query(self, **fields) -> dict:
        """One example's route and each decoder's answer, as `tanglec query RUN NAME=VALUE... --json`."""
        columns = query_columns(self.checked, [(k, str(v)) for k, v in fields.items()])
        route, result = ask(self.checked, self.model, columns)
        return {"route": route.to_json(), "answers": [a.to_json() for a in result]}

    def predict(self, table) -> dict[str, np.ndarray]:
        """Each decoder's decoded answer for every row of `table` (columns by field name); a row whose
        route does not reach a decoder gets None there."""
        import numpy as np

        from .backend.predict import predict_raw
        from .data import codecs
        from .data.selection import route_mask
        from .data.values import answer, category_names

        g = self.checked.graph
        columns = predict_columns(self.checked, table)
        outputs = predict_raw(self.model, self.checked, columns)
        n = len(next(iter(columns.values())))
        result = {}
        for d in g.decoders:
            reached = np.zeros(n, dtype=bool)
            for route in g.routes():
                if d in route.decoders:
                    reached |= route_mask(g, columns, route)
            values = codecs.decode(g.modules[d].output, outputs[d])[0]
            names = category_names(self.checked, d)
            answers = np.empty(n, dtype=object)
            answers[:] = [(v if names is None else answer(names, v)) if ok else None
                          for v, ok in zip(list(values), reached)]
            result[d] = answers
        return result

    def correct(self, answers: dict[str, np.ndarray], expected: dict[str, object]) -> dict[str, np.ndarray]:
        """Per decoder, whether each answer is right for its target's expected values (`expected` by
        target name; a category's values by name or index), under the decoder's tolerance
        (Checked.tolerance): the rule eval and query use."""
        import numpy as np

        from .data import codecs
        from .data.values import category_names

        g = self.checked.graph
        out = {}
        for d, target in g.decoders.items():
            if target in expected and d in answers:
                names = category_names(self.checked, d) or []
                index = {name: i for i, name in enumerate(names)}  # a category's values may be given by name

                def numbers(column):
                    return np.asarray([index.get(v, v) if isinstance(v, str) else v for v in column], dtype=np.float64)

                out[d] = codecs.exact(g.modules[d].output, numbers(answers[d]), numbers(expected[target]),
                                      self.checked.tolerance(d))
        return out


def open_run(path: str | Path) -> Run:
    """A trained run directory, for Python use (TangleError when it is damaged)."""
    return Run(path)


def train(spec: str | Path | Checked, out: str | Path | None = None, *, steps: int | None = None,
          seed: int | None = None, on_progress: Callable | None = None) -> Compiled:
    """Check, build and train a spec (a path or a Checked), as `tanglec compile` does; `out` is the run
    directory to write (None: write nothing). `on_progress` gets each evaluation's Progress."""
    overrides = Overrides(steps=steps, seed=seed)
    checked = spec if isinstance(spec, Checked) else load(spec, overrides, training=True)
    return compile(checked, prepare(checked), out=None if out is None else Path(out), overrides=overrides,
                   on_progress=on_progress)


@dataclass(frozen=True)
class Predicted:
    rows: int  # rows answered
    skipped: int  # bad rows left out (`skip_bad`)


def predict(checked: Checked, model, path: Path, write_rows: Callable[[list[list[str]]], None], *,
            skip_bad: bool = False, chunk_rows: int | None = None) -> Predicted:
    """Every decoder's answer for every row of a CSV/JSONL file, a chunk at a time through one compiled
    function: `write_rows` gets the header, then each chunk's rows (data.predictions). A bad row is a
    DataError (E119 at file:row:column) unless `skip_bad`, which leaves it out and counts it."""
    from .backend.predict import Predictor
    from .data import predictions

    reader = predictions.reader(checked, path, skip_bad, chunk_rows)
    predictor = Predictor(model, checked)
    write_rows([predictions.header(checked)])
    answered = 0
    for chunk in reader.chunks():
        write_rows(predictions.rows(checked, chunk, predictor(chunk.inputs)))
        answered += chunk.n
    return Predicted(answered, reader.skipped)
