"""`tanglec transfer`: the transfer report, from a checkout of the repository."""
from __future__ import annotations

from pathlib import Path

import click

from ..lang.diagnostics import TangleError, printable
from .common import quiet_tensorflow, cli, emit, fail, json_option, overwrite_option, refuse_bad_output


@cli.command(name="transfer")
@click.option("--n", "ns", default=None, metavar="LIST",
              help="Training example counts (default 1,2,3,5,10: the new module's one trained route has 10 examples; "
                   "digits: 10,20,50,100,200,1797, where 1797 = every training image).")
@click.option("--seeds", default="5", show_default=True, metavar="SEEDS",
              help="A count (5 = seeds 0..4) or a list (0,2,4; one seed: 2,); each is the data and the training seed.")
@click.option("--scenarios", default="gray,minus1,prime", show_default=True, metavar="LIST",
              help="New encoder (gray), operation (minus1), decoder (prime); digits: an image encoder on real data.")
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
def transfer_(ns: str | None, seeds: str, scenarios: str, variants: str, no_holdout: bool, stop: str, quick: bool,
              workdir: Path, out: Path | None, png: Path | None, no_plot: bool, cached_only: bool,
              overwrite: bool, as_json: bool) -> None:
    """The transfer report: accuracy of a new module's routes vs training examples (docs/transfer.md)."""
    from ..reports import transfer as report, transfer_render as render

    if not report.SPECS.is_dir():
        raise click.UsageError(f"the transfer report trains the tanglec repository's own specs: run it from a checkout "
                               f"(no {report.SPECS} in this installation)")

    try:
        config = report.Config(
            scenarios=_choices(scenarios, report.SCENARIOS, "--scenarios"),
            variants=_choices(variants, report.VARIANTS + report.EXTRA_VARIANTS, "--variants"),
            ns=report.QUICK_N if quick else report.parse_ints(ns, "n") if ns else None,
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
        quiet_tensorflow()
    try:
        results = report.run_report(config, log=lambda message: click.echo(message, err=True))
    except TangleError as err:
        fail(as_json, err)
    results["json"], results["png"] = str(out), str(png)
    render.save(results, out, png)
    if as_json:
        emit(True, results)
        return
    render.print_tables(results)
    if not no_plot:
        click.echo(render.terminal_plot(results))
    click.echo(printable(f"results written to {out}, figure to {png}"))


def _choices(text: str, known, option: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in known]
    if unknown or not values:
        raise ValueError(f"{option}: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(known)}")
    return values
