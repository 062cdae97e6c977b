"""What every command shares: exit codes, JSON or human output, diagnostics on stderr, the output policy's
refusals, TensorFlow imported quietly, and the `tanglec` click group the commands register on."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import __version__
from ..util import strict_json
from ..util.cache import use_xla_cache
from ..lang.diagnostics import TangleError, printable, render_all


EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def quiet_tensorflow() -> None:
    """Import TensorFlow now, without the C++ start-up chatter it writes straight to fd 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    use_xla_cache()
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


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def refuse_bad_output(as_json: bool, path: Path, kind: str, *, overwrite: bool = False, inputs=(),
                      flag: str = "-o") -> None:
    """The output policy (tanglec/util/files.py), checked before any work: a refused path is E192, exit 1."""
    from ..lang.diagnostics import output_refused
    from ..util.files import OutputRefused, check_output

    try:
        check_output(path, kind, overwrite=overwrite, inputs=inputs, flag=flag)
    except OutputRefused as err:
        fail(as_json, output_refused(err))


overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace an existing file at the output path (it carries no tanglec marker).")


def warnings_to_stderr(as_json: bool, diagnostics) -> None:
    if diagnostics and not as_json:
        echo_diagnostics(diagnostics)


def color_stderr() -> bool:
    """Colour diagnostics only on a terminal (NO_COLOR turns it off, FORCE_COLOR on)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def echo_diagnostics(diagnostics) -> None:
    """Diagnostics on stderr; on a terminal the quoted source is highlighted (pygments, imported only then)."""
    text = render_all(diagnostics)
    if color_stderr():
        from ..lang.highlight import colorize_diagnostics

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


def route_table(report: dict) -> str:
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


def load_model_or_fail(run: Path, checked, as_json: bool):
    """The run's Keras model (imports TensorFlow quietly); a damaged run exits 1 with its diagnostic."""
    from .. import pipeline

    quiet_tensorflow()  # before TensorFlow is imported, or its C++ start-up chatter reaches stderr
    try:
        return pipeline.load_run_model(run, checked)
    except TangleError as err:
        fail(as_json, err)


def rich_progress(total_steps: int, stream=None, terms: list[str] = ()):
    """A rich progress bar on stderr (only when it is a terminal), its status updated at every evaluation:
    the total loss, each of `terms`' (the alignment terms'), exact match, speed. Returns (callback,
    context manager)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    console = Console(file=stream or sys.stderr)
    bar = Bar(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
              TimeRemainingColumn(), console=console, disable=not console.is_terminal, transient=False)
    task = bar.add_task("train", total=total_steps, status="")

    def update(p) -> None:
        acc = p.report["accuracy"]
        status = f"loss {p.losses.get('total', float('nan')):.4f}  " + "".join(
            f"{name} {p.losses[name]:.4f}  " for name in terms if name in p.losses) + \
            f"exact {acc:.0%}  {p.steps_per_second:.0f} steps/s"
        bar.update(task, completed=p.step, total=p.total_steps, status=status)

    return update, bar
