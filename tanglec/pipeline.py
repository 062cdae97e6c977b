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
from typing import Callable

from .lang import ast
from .lang.diagnostics import Diagnostic, TangleError
from .spec import onepass
from .spec.checks import Checked, check
from .spec.composition import InitRun, declared_init, require_init_run


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
    return check(spec, init, stream=overrides.stream, data_check=_data_problems)


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
            checkpoint=None, tensorboard: Path | None = None) -> Compiled:
    """Build the model, load the init run's weights, train, measure; write the run to `out` unless
    training was interrupted or `out` is None (a multiworker worker that is not the chief).
    A refused or unwritable output is a TangleError; the previous run stays intact."""
    from .artifacts.run import write_run
    from .backend.train import run_metrics, train
    from .data.stream import StreamedExamples
    from .lang.diagnostics import output_refused
    from .util.files import OutputRefused

    result = train(checked, examples, steps=overrides.steps, seed=overrides.seed, mux=overrides.mux,
                   on_progress=on_progress, should_stop=should_stop, checkpoint=checkpoint,
                   tensorboard=str(tensorboard) if tensorboard else None,
                   strategy=overrides.strategy or checked.train.strategy, devices=overrides.devices,
                   init_weights=lambda: init_weights(checked))
    seed = checked.train.seed if overrides.seed is None else overrides.seed
    metrics = run_metrics(checked, result, seed, isinstance(examples, StreamedExamples))
    if out is not None and not result.interrupted:
        try:
            write_run(out, checked, result.model, result.report, metrics, examples)
        except OutputRefused as err:  # something else took the path during training
            raise output_refused(err) from None
    return Compiled(result, metrics)


def load_run(run: Path) -> Checked:
    """A trained run's spec, checked from the run's files alone."""
    from .artifacts.run import load_checked

    return load_checked(run)[0]


def load_run_model(run: Path, checked: Checked):
    """The run's Keras model (imports TensorFlow)."""
    from .artifacts.run import load_model

    return load_model(run, checked)


def evaluation_inputs(run: Path):
    """(checked, examples) `evaluate` needs, read without TensorFlow (a damaged run fails here)."""
    from .artifacts.run import evaluation_examples, loaded_modules

    checked = load_run(run)
    examples = evaluation_examples(run, checked)
    loaded = loaded_modules(run)
    return replace(checked, init_modules={m: checked.graph.modules[m] for m in loaded if m in checked.graph.modules}), \
        examples


def evaluate(checked: Checked, examples, model) -> dict:
    """Accuracy of every route over the run's evaluation rows, each route marked as it was learned."""
    from .backend.predict import predict_raw
    from .backend.train import annotate_routes
    from .data.evaluate import route_report

    ev = examples.take(examples.eval_index)
    return annotate_routes(checked, examples, route_report(checked, ev, predict_raw(model, checked, ev.columns)))


def ask(checked: Checked, model, columns: dict):
    """A query's route and every decoder's answer, for field columns from `query_columns`."""
    from .backend.predict import predict_raw
    from .data.query import answers, route_for

    return route_for(checked, columns), answers(checked, columns, predict_raw(model, checked, columns))


def query_columns(checked: Checked, assignments: list[tuple[str, str]]) -> dict:
    """NAME=VALUE pairs as one example's columns, validated against the spec (no TensorFlow)."""
    from .data.query import parse_fields

    return parse_fields(checked, assignments)


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
