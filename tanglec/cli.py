"""The `tanglec` command line. TensorFlow is imported only by commands that build or run a model.

Exit codes: 0 ok, 1 problems found in a spec/data/run, 2 usage error, 3 internal error.
Every command takes --json: one JSON object on stdout; human text otherwise (diagnostics on stderr).
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .util import strict_json
from .lang.diagnostics import TangleError, printable, render_all

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _quiet_tensorflow() -> None:
    """Import TensorFlow now, without the C++ start-up chatter it writes straight to fd 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def emit(as_json: bool, payload: dict, human: str | None = None) -> None:
    if as_json:
        click.echo(strict_json.dumps(payload, indent=2))
    elif human:
        click.echo(printable(human))


def fail(as_json: bool, err: TangleError) -> None:
    """Report every diagnostic and exit 1 (errors) — warnings alone never fail a command."""
    if as_json:
        click.echo(strict_json.dumps({"ok": False, "diagnostics": [d.to_json() for d in err.diagnostics]}, indent=2))
    else:
        echo_diagnostics(err.diagnostics)
    sys.exit(EXIT_PROBLEMS)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def refuse_bad_output(as_json: bool, path: Path, kind: str, *, overwrite: bool = False, inputs=(),
                      flag: str = "-o") -> None:
    """The output policy (tanglec/util/files.py), checked before any work: a refused path is E192, exit 1."""
    from .lang.diagnostics import output_refused
    from .util.files import OutputRefused, check_output

    try:
        check_output(path, kind, overwrite=overwrite, inputs=inputs, flag=flag)
    except OutputRefused as err:
        fail(as_json, output_refused(err))


overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace an existing file at the output path (it carries no tanglec marker).")


def warnings_to_stderr(as_json: bool, diagnostics) -> None:
    if diagnostics and not as_json:
        echo_diagnostics(diagnostics)


def _color_stderr() -> bool:
    """Colour diagnostics only on a terminal (NO_COLOR turns it off, FORCE_COLOR on)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def echo_diagnostics(diagnostics) -> None:
    """Diagnostics on stderr; on a terminal the quoted source is highlighted (pygments, imported only then)."""
    text = render_all(diagnostics)
    if _color_stderr():
        from .lang.highlight import colorize_diagnostics

        click.echo(colorize_diagnostics(text), err=True, color=True)
    else:
        click.echo(text, err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
spec_argument = click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
run_argument = click.argument("run", type=click.Path(path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tanglec")
def cli() -> None:
    """tanglec — compile .tangle specs into tangled Keras networks, train them, query every route."""


@cli.command()
@spec_argument
@json_option
def check(spec: Path, as_json: bool) -> None:
    """Parse and check a spec (no TensorFlow): every problem, positioned."""
    from . import pipeline

    checked, diagnostics = pipeline.check_file(spec)  # syntax errors and the other statements' problems together
    if checked is None or checked.errors:
        fail(as_json, TangleError(diagnostics))
    warnings_to_stderr(as_json, checked.diagnostics)
    g = checked.graph
    summary = {"ok": True, "file": str(spec), "inputs": list(g.inputs), "selectors": list(g.selectors),
               "modules": list(g.modules), "decoders": dict(g.decoders), "routes": g.route_count(),
               "diagnostics": [d.to_json() for d in checked.diagnostics]}
    emit(as_json, summary, f"{spec}: ok — {_count(len(g.modules), 'module')}, "
                           f"{_count(g.route_count(), 'route')}, {_count(len(g.decoders), 'decoder')}")


@cli.command()
@spec_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid", "svg", "png"]),
              default="text", show_default=True,
              help="text/json: tanglec's own; dot/mermaid: graph source; svg/png: drawn by Graphviz `dot`.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout (needed for png on a terminal).")
@overwrite_option
@json_option
def graph(spec: Path, fmt: str, out: Path | None, overwrite: bool, as_json: bool) -> None:
    """Show the module graph and its routes."""
    from . import pipeline
    from .spec.graph import describe

    if out is not None:
        refuse_bad_output(as_json, out, "file", overwrite=overwrite, inputs=[spec])
    try:
        checked = pipeline.load(spec)
    except TangleError as err:
        fail(as_json, err)
    g = checked.graph
    if fmt in ("dot", "mermaid", "svg", "png") or out is not None:
        _graph_output(g, fmt, out, as_json)
        return
    if as_json or fmt == "json":
        click.echo(_graph_json(g))
    else:
        click.echo(describe(g))


def _graph_json(g) -> str:
    nodes = [{"id": n, **{k: v for k, v in d.items() if k != "span"}} for n, d in g.g.nodes(data=True)]
    edges = [{"from": u, "to": v, **{k: x for k, x in d.items() if k != "span"}} for u, v, d in g.g.edges(data=True)]
    return strict_json.dumps({"nodes": nodes, "edges": edges, "routes": [r.to_json() for r in g.routes()]}, indent=2)


def _graph_output(g, fmt: str, out: Path | None, as_json: bool) -> None:
    """dot/mermaid text, svg/png images (Graphviz), or any format written to a file with -o."""
    from .spec import graph_formats
    from .lang.diagnostics import Diagnostic
    from .spec.graph import describe

    if fmt in graph_formats.IMAGE_FORMATS:
        if fmt == "png" and out is None and (as_json or sys.stdout.isatty()):
            raise click.UsageError("a PNG is binary: write it to a file with -o FILE (or pipe stdout)")
        try:
            data: bytes = graph_formats.render(g, fmt)
        except (graph_formats.GraphvizMissing, graph_formats.GraphvizFailed) as err:
            fail(as_json, TangleError([Diagnostic("E190", str(err), None)]))
    else:
        text = {"text": describe, "json": _graph_json, "dot": graph_formats.to_dot,
                "mermaid": graph_formats.to_mermaid}[fmt](g)
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8")
    if out is not None:
        from .util.files import write_atomic

        write_atomic(out, data)
        emit(as_json, {"ok": True, "format": fmt, "output": str(out), "bytes": len(data)}, f"wrote {out}")
    elif as_json:
        emit(True, {"ok": True, "format": fmt, "text": data.decode("utf-8")})
    elif fmt == "png":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        click.echo(data.decode("utf-8"), nl=False)


def _route_table(report: dict) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"exact {report['exact']}/{report['cases']} = {report['accuracy']:.1%}")
    table.add_column("route")
    table.add_column("selection")
    table.add_column("cases", justify="right")
    table.add_column("exact", justify="right")
    table.add_column("learned")
    for r in report["routes"]:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.0%}"
        learned = r.get("status", "")
        if r.get("new_modules"):
            learned += f" (new: {', '.join(r['new_modules'])})"
        table.add_row(r["name"], ", ".join(f"{k}={v}" for k, v in r["selection"].items()), str(r["cases"]), acc,
                      learned)
    console = Console(width=100, record=True, file=open(os.devnull, "w"))
    console.print(table)
    if report.get("by_length"):
        lengths = Table(title="by chain length")
        for column in ("operations", "routes", "routes exact", "cases", "exact"):
            lengths.add_column(column, justify="right")
        for g in report["by_length"]:
            acc = "-" if g["accuracy"] is None else f"{g['accuracy']:.1%}"
            lengths.add_row(str(g["length"]), str(g["routes"]), str(g["routes_exact"]), str(g["cases"]), acc)
        console.print(lengths)
    return console.export_text()


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
              help="Save a checkpoint every N steps (default 100; 0: only on Ctrl-C/SIGTERM).")
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
    from . import pipeline
    from .data.examples import DataError
    from .util.files import checkpoint_dir

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
    _quiet_tensorflow()
    from .backend.train import rich_progress

    update, bar = rich_progress(pipeline.total_steps(checked, overrides))
    with bar:
        try:
            compiled, interruption = pipeline.compile_resumable(
                checked, examples, out=out, overrides=overrides, on_progress=update, resume=resume,
                checkpoint_every=checkpoint_every, tensorboard=tensorboard, log=lambda line: click.echo(line, err=True))
        except TangleError as err:  # E142 (disk full), E170 (a multiworker peer stopped), E171 (diverged)...
            fail(as_json, err)
    result = compiled.result
    if weights_npz is not None:
        from .backend.distribute import save_worker_weights

        save_worker_weights(result.model, weights_npz)
    if interruption is not None:
        from .backend.checkpoint import resume_command

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
    emit(as_json, payload, _route_table(report) + "".join(f"\n{line}" for line in lines) +
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
    from . import pipeline

    if plot is not None:
        refuse_bad_output(as_json, plot, "file", overwrite=overwrite, inputs=[run, *([data] if data else [])],
                          flag="--plot")
    try:
        checked, examples = pipeline.evaluation_inputs(run, data)
    except TangleError as err:
        fail(as_json, err)
    model = _load_model_or_fail(run, checked, as_json)
    report = pipeline.evaluate(checked, examples, model, failures=failures)
    from .reports.evaluation import decoder_text, write_confusion_png

    if plot is not None:
        write_confusion_png(report, plot)
    payload = {"ok": True, "run": str(run), "data": None if data is None else str(data), **report}
    if plot is not None:
        payload["plot"] = str(plot)
    emit(as_json, payload, _route_table(report) + decoder_text(report) +
         (f"confusion matrices written to {plot}" if plot is not None else ""))


def _load_model_or_fail(run: Path, checked, as_json: bool):
    """The run's Keras model (imports TensorFlow quietly); a damaged run exits 1 with its diagnostic."""
    from . import pipeline

    _quiet_tensorflow()  # before TensorFlow is imported, or its C++ start-up chatter reaches stderr
    try:
        return pipeline.load_run_model(run, checked)
    except TangleError as err:
        fail(as_json, err)


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

    from . import pipeline

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
    from . import pipeline

    groups = _query_groups(fields)
    try:
        checked = pipeline.load_run(run)
        queries = _query_columns(checked, groups)
    except TangleError as err:
        fail(as_json, err)
    model = _load_model_or_fail(run, checked, as_json)
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

    from . import pipeline

    try:
        checked = pipeline.load_run(run)
    except TangleError as err:
        fail(as_json, err)
    if out is not None:
        refuse_bad_output(as_json, out, "file", overwrite=overwrite, inputs=[run, file])
    elif as_json:
        raise click.UsageError("--json reports a summary: give -o for the answers")
    model = _load_model_or_fail(run, checked, as_json)
    try:
        if out is None:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            result = pipeline.predict(checked, model, file, writer.writerows, skip_bad=skip_bad)
        else:
            from .util.files import atomic_file

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


@cli.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="Run directory training writes (default: runs/<spec name>, or TARGET when it is a run).")
@click.option("--screenshot", type=click.Path(path_type=Path), default=None,
              help="No terminal: render the screen to this SVG file once checked (and trained, with --train), "
                   "then exit.")
@click.option("--train", "train_first", is_flag=True, help="With --screenshot: train first, as compile does.")
@click.option("--size", default="120x36", show_default=True, help="With --screenshot: the screen's COLUMNSxROWS.")
@click.option("--overwrite", is_flag=True, help="With --screenshot: replace an existing file.")
def explore(target: Path, out: Path | None, screenshot: Path | None, train_first: bool, size: str,
            overwrite: bool) -> None:
    """Open the terminal UI on a spec or a run: graph, training, queries, problems (needs a terminal)."""
    if screenshot is None:
        if train_first:
            raise click.UsageError("--train needs --screenshot (in the terminal UI, train from the Train view)")
        from .tui import run_explore  # Textual loads only for this command

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise click.UsageError("explore needs an interactive terminal (stdin and stdout must be a tty)")
        sys.exit(run_explore(target, out))
    columns, _, rows = size.partition("x")
    if not (columns.isdigit() and rows.isdigit() and 40 <= int(columns) <= 500 and 10 <= int(rows) <= 200):
        raise click.UsageError(f"--size {size!r}: expected COLUMNSxROWS, e.g. 120x36 (40..500 x 10..200)")
    refuse_bad_output(False, screenshot, "file", overwrite=overwrite, inputs=[target], flag="--screenshot")
    from .tui import render_screenshot

    code, note = render_screenshot(target, out, screenshot, (int(columns), int(rows)), train_first)
    click.echo(note, err=code != 0)
    sys.exit(code)


@cli.command(name="fmt")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
@json_option
def fmt_(paths: tuple[Path, ...], check_only: bool, show_diff: bool, as_json: bool) -> None:
    """Format .tangle files in place (directories: every *.tangle below); `-` formats stdin to stdout."""
    from .lang.fmt import format_file, format_source, spec_files

    if any(str(p) == "-" for p in paths):
        if len(paths) > 1:
            raise click.UsageError("`-` (stdin) can't be combined with other paths")
        source = sys.stdin.read()
        try:
            formatted = format_source(source, "<stdin>")
        except TangleError as err:
            fail(as_json, err)
        changed = formatted != source
        emit(as_json, {"ok": not (check_only and changed), "changed": changed, "text": formatted})
        if not as_json and not check_only:
            click.echo(formatted, nl=False)
        sys.exit(EXIT_PROBLEMS if check_only and changed else EXIT_OK)
    write = not (check_only or show_diff)
    results = [format_file(f, write=write) for f in spec_files(paths)]
    failed = [r for r in results if not r.ok]
    changed = [r for r in results if r.changed]
    if as_json:
        files = [{**r.to_json(), **({"diff": r.diff()} if show_diff else {})} for r in results]
        emit(True, {"ok": not failed and not (check_only and changed), "files": files,
                    "changed": [r.path for r in changed], "failed": [r.path for r in failed],
                    "unchanged": len(results) - len(changed) - len(failed)})
    else:
        for r in failed:
            click.echo(printable(f"error: can't format {r.path}"), err=True)
            echo_diagnostics(r.diagnostics)
        for r in changed:
            if show_diff:
                click.echo(printable(r.diff()), nl=False)
            elif check_only:
                click.echo(printable(f"would reformat {r.path}"), err=True)
            else:
                click.echo(printable(f"reformatted {r.path}"), err=True)
        verb = "reformatted" if write else "would be reformatted"
        parts = [f"{len(changed)} file{'s' * (len(changed) != 1)} {verb}",
                 f"{len(results) - len(changed) - len(failed)} unchanged"]
        if failed:
            parts.append(f"{len(failed)} with errors")
        click.echo(", ".join(parts) if results else "no .tangle files found", err=True)
    sys.exit(EXIT_PROBLEMS if failed or (check_only and changed) else EXIT_OK)


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
    from . import pipeline

    try:
        out = pipeline.export_target(run, out, fmt)  # a damaged run is refused before TensorFlow loads
    except TangleError as err:
        fail(as_json, err)
    refuse_bad_output(as_json, out, fmt, inputs=[run])
    _quiet_tensorflow()
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


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), required=False)
@json_option
def completion(shell: str | None, as_json: bool) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash: eval "$(tanglec completion bash)"     (in ~/.bashrc)
    zsh:  eval "$(tanglec completion zsh)"      (in ~/.zshrc)
    fish: tanglec completion fish > ~/.config/fish/completions/tanglec.fish
    The shell defaults to the one in $SHELL.
    """
    from click.shell_completion import get_completion_class

    shell = shell or Path(os.environ.get("SHELL") or "bash").name
    cls = get_completion_class(shell)
    if cls is None:
        raise click.UsageError(f"no completion for shell {shell!r}; choose bash, zsh or fish")
    script = cls(cli, {}, "tanglec", "_TANGLEC_COMPLETE").source()
    emit(as_json, {"ok": True, "shell": shell, "script": script}, script)


@cli.command(name="transfer")
@click.option("--n", "ns", default="1,2,3,5,10", show_default=True, metavar="LIST",
              help="Training example counts (the new module's one trained route has 10 examples: 10 = all).")
@click.option("--seeds", default="5", show_default=True, metavar="SEEDS",
              help="A count (5 = seeds 0..4) or a list (0,2,4; one seed: 2,); each is the data and the training seed.")
@click.option("--scenarios", default="gray,minus1,prime", show_default=True, metavar="LIST",
              help="New encoder (gray), operation (minus1), decoder (prime).")
@click.option("--variants", default="a,a_noalign,b,c", show_default=True, metavar="LIST",
              help="a: frozen + aligned transfer; a_noalign: without alignment; b: from scratch; c: naive nets; "
                   "b_all (extra): from scratch with examples on every route of the new module.")
@click.option("--no-holdout", is_flag=True, help="Skip the held-out route of arith_holdout.")
@click.option("--stop", type=click.Choice(["exact", "fixed"]), default="exact", show_default=True,
              help="exact: the specs' `until exact`; fixed: the full step budget, never looking at unseen routes.")
@click.option("--quick", is_flag=True, help="One seed and n=10 only (a smoke test); writes into the workdir.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/transfer"),
              show_default=True, help="Base runs and the result cache (a rerun resumes where it stopped).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON results (default: bench/results/transfer.json; with --quick WORKDIR/quick.json).")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The figure (default: docs/figures/transfer.png; with --quick WORKDIR/quick.png).")
@click.option("--no-plot", is_flag=True, help="No plot in the terminal.")
@click.option("--cached-only", is_flag=True, help="Train nothing: report the cells the workdir's cache holds.")
@overwrite_option
@json_option
def transfer_(ns: str, seeds: str, scenarios: str, variants: str, no_holdout: bool, stop: str, quick: bool,
              workdir: Path, out: Path | None, png: Path | None, no_plot: bool, cached_only: bool,
              overwrite: bool, as_json: bool) -> None:
    """The transfer report: accuracy of a new module's routes vs training examples (docs/transfer.md)."""
    from .reports import transfer as report

    if not report.SPECS.is_dir():
        raise click.UsageError(f"the transfer report trains the tanglec repository's own specs: run it from a checkout "
                               f"(no {report.SPECS} in this installation)")

    try:
        config = report.Config(
            scenarios=_choices(scenarios, report.SCENARIOS, "--scenarios"),
            variants=_choices(variants, report.VARIANTS + report.EXTRA_VARIANTS, "--variants"),
            ns=report.QUICK_N if quick else report.parse_ints(ns, "n"),
            seeds=report.QUICK_SEEDS if quick else report.parse_ints(seeds, "seeds"),
            holdout=not no_holdout, stop=stop, workdir=workdir, cached_only=cached_only)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    out = out or (workdir / "quick.json" if quick else Path("bench/results/transfer.json"))
    png = png or (workdir / "quick.png" if quick else Path("docs/figures/transfer.png"))
    refuse_bad_output(as_json, workdir, "workdir", flag="--workdir")
    refuse_bad_output(as_json, out, "file", overwrite=overwrite)
    refuse_bad_output(as_json, png, "file", overwrite=overwrite, flag="--png")
    if not cached_only:
        _quiet_tensorflow()
    try:
        results = report.run_report(config, log=lambda message: click.echo(message, err=True))
    except TangleError as err:
        fail(as_json, err)
    results["json"], results["png"] = str(out), str(png)
    report.save(results, out, png)
    if as_json:
        emit(True, results)
        return
    report.print_tables(results)
    if not no_plot:
        click.echo(report.terminal_plot(results))
    click.echo(printable(f"results written to {out}, figure to {png}"))


def _choices(text: str, known, option: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in known]
    if unknown or not values:
        raise ValueError(f"{option}: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(known)}")
    return values

def main() -> None:
    """Entry point: map every failure to an exit code; a bug prints a short report, not a raw traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        err.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_USAGE)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # an internal error: say so, keep the details in a file, exit 3
        report_internal_error(err)
        sys.exit(EXIT_INTERNAL)


def report_internal_error(err: Exception) -> None:
    """A short report on stderr and the traceback in a new crash log of this process; never raises
    (a log that can't be written, or a stderr that is gone, still ends in exit 3)."""
    from .util.files import write_crash_log

    try:
        where = f"details in {write_crash_log(traceback.format_exc())}"
    except Exception as problem:  # noqa: BLE001 - the report must not fail
        where = f"no crash log: {problem}"
    try:
        click.echo(printable(f"internal error: {type(err).__name__}: {err}\n({where}; please report it)"), err=True)
    except Exception:  # noqa: BLE001, S110 - stderr itself is unusable
        pass


if __name__ == "__main__":
    main()
