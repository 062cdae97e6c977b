"""Commands that train or use a run: compile, eval, query, predict, export (TensorFlow loads only once the
inputs have been checked)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..lang.diagnostics import TangleError, printable
from .common import (
    load_model_or_fail, quiet_tensorflow, rich_progress, route_table, cli, emit, fail, json_option, overwrite_option,
    refuse_bad_output, run_argument, spec_argument, warnings_to_stderr)


@cli.command(name="compile")
@spec_argument
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="Run directory to write (default: runs/<spec name>).")
@click.option("--seed", type=int, default=None, help="Override the spec's seed.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the spec's step count.")
@click.option("--mux", type=click.Choice(["where", "partition", "gather", "stacked", "auto"]), default=None,
              help="Multiplexer strategy for every multiplexer without its own.")
@click.option("--tensorboard", "tensorboard", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Write TensorBoard scalars (loss per decoder, accuracy per route) to DIR.")
@click.option("--init", "init", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="RUN",
              help="Start from a trained run: load its weights module by module, by name.")
@click.option("--resume", is_flag=True, help="Continue an interrupted compile of this run from its checkpoint.")
@click.option("--checkpoint-every", "checkpoint_every", type=click.IntRange(min=0), default=None, metavar="N",
              help="Save a checkpoint every N steps (default: every 100 steps and 30 s; 0: only on "
                   "Ctrl-C/SIGTERM).")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default=None,
              help="tf.distribute strategy (default: the spec's `train strategy`, else default); "
                   "multiworker reads TF_CONFIG. See docs/distributed.md.")
@click.option("--devices", type=click.IntRange(min=1), default=None, metavar="N",
              help="mirrored: replicate on N devices (the first N GPUs; without GPUs, N logical CPU devices).")
@click.option("--stream/--no-stream", "stream", default=None,
              help="Read the data file in chunks (bounded memory) or all at once (default: the spec's "
                   "`stream` setting; auto streams files over 50 MB).")
@click.option("--save-weights-npz", "weights_npz", type=click.Path(dir_okay=False, path_type=Path), default=None,
              hidden=True, help="Also write this process's final weights to an .npz (every worker, for checks).")
@json_option
def compile_(spec: Path, out: Path | None, seed: int | None, steps: int | None, mux: str | None,
             as_json: bool, tensorboard: Path | None = None, init: Path | None = None, resume: bool = False,
             checkpoint_every: int | None = None, strategy: str | None = None, devices: int | None = None,
             stream: bool | None = None, weights_npz: Path | None = None) -> None:
    """Check, build, train and evaluate a spec; write the run directory."""
    from .. import pipeline
    from ..data.examples import DataError
    from ..util.files import checkpoint_dir

    overrides = pipeline.Overrides(stream=None if stream is None else ("always" if stream else "never"), init=init,
                                   seed=seed, steps=steps, mux=mux, strategy=strategy, devices=devices)
    try:
        checked = pipeline.load(spec, overrides, training=True)  # E140 before TensorFlow: no init run yet
        out = out or Path("runs") / spec.stem
        inputs = [spec, *(p for p in (init, checked.composition.init, checked.data.path) if p is not None)]
        refuse_bad_output(as_json, out, "run", inputs=inputs)  # before the examples are built, before training
        refuse_bad_output(as_json, checkpoint_dir(out), "checkpoint", inputs=inputs)
        examples = pipeline.prepare(checked)
        chief = pipeline.writes_run(checked, overrides)
    except (TangleError, DataError) as err:
        fail(as_json, err)
    warnings_to_stderr(as_json, checked.diagnostics)
    quiet_tensorflow()
    update, bar = rich_progress(pipeline.total_steps(checked, overrides),
                                terms=[a.output_name for a in checked.composition.aligns])
    with bar:
        try:
            compiled, interruption = pipeline.compile_resumable(
                checked, examples, out=out, overrides=overrides, on_progress=update, resume=resume,
                checkpoint_every=checkpoint_every, tensorboard=tensorboard, log=lambda line: click.echo(line, err=True))
        except TangleError as err:  # E142 (disk full), E170 (a multiworker peer stopped), E171 (diverged)...
            fail(as_json, err)
    result = compiled.result
    if weights_npz is not None:
        from ..backend.distribute import save_worker_weights

        save_worker_weights(result.model, weights_npz)
    if interruption is not None:
        from ..backend.checkpoint import resume_command

        command = resume_command(spec, out, {"--seed": seed, "--steps": steps, "--mux": mux, "--init": init,
                                             "--checkpoint-every": checkpoint_every,
                                             "--strategy": None if strategy == checked.train.strategy else strategy,
                                             "--devices": devices, "--stream": stream is True,
                                             "--no-stream": stream is False})
        emit(as_json, {"ok": False, "interrupted": True, "step": interruption.step,
                       "checkpoint": str(interruption.checkpoint), "resume": command})
        click.echo(printable(f"interrupted at step {interruption.step}; resume with: {command}"), err=True)
        sys.exit(interruption.exit_code)
    modules = compiled.metrics["modules"]
    report = result.report
    payload = {"ok": True, "run": str(out) if chief else None, "steps_run": result.steps_run,
               "accuracy": report["accuracy"], "cases": report["cases"], "exact": report["exact"],
               "stopped_early": result.stopped_early, "seconds": round(result.seconds, 3), "modules": modules,
               "strategy": result.distribution, "xla": result.xla, "routes": report["routes"]}
    if tensorboard:
        payload["tensorboard"] = str(tensorboard)
    lines = [f"{key}: {', '.join(names)}" for key, names in modules.items() if names and checked.composition.init]
    where = f"run written to {out}" if chief else "the chief writes the run"
    emit(as_json, payload, route_table(report) + "".join(f"\n{line}" for line in lines) +
         f"\n{result.steps_run} steps in {result.seconds:.1f}s; {where}")


@cli.command(name="eval")
@run_argument
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Score every row of this CSV/JSONL file (the spec's fields) instead of the run's evaluation rows.")
@click.option("--failures", type=click.IntRange(min=0), default=0, metavar="N",
              help="List the first N wrong answers (file:row when the rows come from a file).")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PNG",
              help="Write the confusion matrices of the categorical decoders to this PNG file.")
@overwrite_option
@json_option
def eval_(run: Path, data: Path | None, failures: int, plot: Path | None, overwrite: bool, as_json: bool) -> None:
    """Accuracy of every route and decoder of a trained run: confusion matrices, MAE/RMSE, wrong answers."""
    from .. import pipeline

    if plot is not None:
        refuse_bad_output(as_json, plot, "file", overwrite=overwrite, inputs=[run, *([data] if data else [])],
                          flag="--plot")
    try:
        checked, examples = pipeline.evaluation_inputs(run, data)
    except TangleError as err:
        fail(as_json, err)
    model = load_model_or_fail(run, checked, as_json)
    try:
        report = pipeline.evaluate(checked, examples, model, failures=failures)  # --data: read as it is scored
    except TangleError as err:
        fail(as_json, err)
    from ..reports.evaluation import decoder_text, write_confusion_png

    if plot is not None:
        write_confusion_png(report, plot)
    payload = {"ok": True, "run": str(run), "data": None if data is None else str(data), **report}
    if plot is not None:
        payload["plot"] = str(plot)
    emit(as_json, payload, route_table(report) + decoder_text(report) +
         (f"confusion matrices written to {plot}" if plot is not None else ""))


def _assignments(fields) -> list[tuple[str, str]]:
    """NAME=VALUE arguments as (name, value) pairs, in order (query.parse_fields reports repeats)."""
    out = []
    for f in fields:
        if "=" not in f:
            raise click.UsageError(f"expected NAME=VALUE, got {f!r}")
        k, v = f.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out


QUERY_SEPARATOR = "\0--"  # a `--` between queries, kept from click (no argument can hold a NUL)


class _GroupedQueries(click.Command):
    """Keeps every `--` of the command line as a separator of queries (click drops the first)."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, [QUERY_SEPARATOR if a == "--" else a for a in args])


def _query_groups(fields: tuple[str, ...]) -> list[list[str]]:
    """The queries on the command line (groups of NAME=VALUE split by `--`), or, for a lone `-`, one
    per line of stdin (blank lines and `#` comments skipped; values with spaces quoted as in a shell)."""
    import shlex

    if list(fields) == ["-"]:
        lines = (line.strip() for line in sys.stdin)
        return [shlex.split(line) for line in lines if line and not line.startswith("#")]
    groups: list[list[str]] = [[]]
    for f in fields:
        if f == QUERY_SEPARATOR:
            groups.append([])
        else:
            groups[-1].append(f)
    return [g for g in groups if g] or [[]]


def _query_columns(checked, groups: list[list[str]]) -> list[dict]:
    """Every query's columns; the problems of all of them together (each named by its number when
    there are several)."""
    from dataclasses import replace

    from .. import pipeline

    columns, problems = [], []
    for number, group in enumerate(groups, 1):
        try:
            columns.append(pipeline.query_columns(checked, _assignments(group)))
        except TangleError as err:
            problems += [replace(d, message=f"query {number}: {d.message}") if len(groups) > 1 else d
                         for d in err.diagnostics]
        except click.UsageError as err:
            raise click.UsageError(f"query {number}: {err.message}" if len(groups) > 1 else err.message)
    if problems:
        raise TangleError(problems)
    return columns


@cli.command(cls=_GroupedQueries)
@run_argument
@click.argument("fields", nargs=-1)
@json_option
def query(run: Path, fields: tuple[str, ...], as_json: bool) -> None:
    """Ask a trained run: every decoder's answer and confidence, e.g. `x=7 encoding=binary op=times2`.
    Several queries in one process: separate them with `--`, or give `-` to read one per line of stdin."""
    from .. import pipeline

    groups = _query_groups(fields)
    try:
        checked = pipeline.load_run(run)
        queries = _query_columns(checked, groups)
    except TangleError as err:
        fail(as_json, err)
    model = load_model_or_fail(run, checked, as_json)
    payloads, blocks = [], []
    for columns in queries:
        route, result = pipeline.ask(checked, model, columns)
        lines = [f"route {route.name}"]
        for a in result:
            conf = "" if a.confidence is None else f"  (confidence {a.confidence:.3f})"
            exp = "" if a.expected is None else f"  expected {a.expected} {'✓' if a.correct else '✗'}"
            lines.append(f"  {a.decoder:<14} {a.target} = {a.value}{conf}{exp}")
        payloads.append({"route": route.to_json(), "answers": [a.to_json() for a in result]})
        blocks.append("\n".join(lines))
    payload = {"ok": True, **payloads[0]} if len(groups) == 1 and fields != ("-",) else \
        {"ok": True, "queries": payloads}
    emit(as_json, payload, "\n\n".join(blocks))


@cli.command()
@run_argument
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the answers to this CSV file (default: stdout).")
@overwrite_option
@click.option("--skip-bad", is_flag=True, help="Leave out rows with a bad value and count them (default: stop).")
@json_option
def predict(run: Path, file: Path, out: Path | None, overwrite: bool, skip_bad: bool, as_json: bool) -> None:
    """Answer every row of a CSV/JSONL FILE: its input columns, then each decoder's answer and confidence."""
    import csv
    import io

    from .. import pipeline

    try:
        checked = pipeline.load_run(run)
    except TangleError as err:
        fail(as_json, err)
    if out is not None:
        refuse_bad_output(as_json, out, "file", overwrite=overwrite, inputs=[run, file])
    elif as_json:
        raise click.UsageError("--json reports a summary: give -o for the answers")
    model = load_model_or_fail(run, checked, as_json)
    try:
        if out is None:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            result = pipeline.predict(checked, model, file, writer.writerows, skip_bad=skip_bad)
        else:
            from ..util.files import atomic_file

            with atomic_file(out) as fh:
                text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
                result = pipeline.predict(checked, model, file, csv.writer(text, lineterminator="\n").writerows,
                                          skip_bad=skip_bad)
                text.detach()
    except TangleError as err:
        fail(as_json, err)
    skipped = f"; {result.skipped} bad row{'s' * (result.skipped != 1)} skipped" if skip_bad else ""
    summary = f"{result.rows} rows answered{skipped}" + (f"; written to {out}" if out else "")
    if as_json:
        emit(True, {"ok": True, "run": str(run), "rows": result.rows, "skipped": result.skipped,
                    "output": str(out)})
    else:
        click.echo(summary, err=True)


@cli.command(name="export")
@run_argument
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "keras"]), default="savedmodel",
              show_default=True, help="A TensorFlow SavedModel directory, or a Keras .keras file.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: RUN_savedmodel/ or RUN.keras next to the run).")
@click.option("--no-verify", is_flag=True, help="Don't load the export back to compare it with the run.")
@json_option
def export_(run: Path, fmt: str, out: Path | None, no_verify: bool, as_json: bool) -> None:
    """Export a trained run for serving: decoded answers from raw fields (see docs/cli.md)."""
    from .. import pipeline

    try:
        out = pipeline.export_target(run, out, fmt)  # a damaged run is refused before TensorFlow loads
    except TangleError as err:
        fail(as_json, err)
    refuse_bad_output(as_json, out, fmt, inputs=[run])
    quiet_tensorflow()
    try:
        info = pipeline.export(run, out, fmt, verify=not no_verify)
    except TangleError as err:
        fail(as_json, err)
    sig = info["signature"]
    verified = f"checked against the run on {info['verified_rows']} examples" if info["verified_rows"] else "not checked"
    inputs = ", ".join(f"{k} ({v['dtype']})" for k, v in sig["inputs"].items())
    human = (f"exported {run} as {fmt} to {info['path']} ({verified})\n"
             f"  inputs:  {inputs}\n  outputs: {', '.join(sig['outputs'])}")
    emit(as_json, info, human)
