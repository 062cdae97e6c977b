"""Commands on a spec, none of which imports TensorFlow: check, graph, fmt, completion, and explore (the
terminal UI loads it in the background)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..util import strict_json
from ..lang.diagnostics import TangleError, printable
from .common import (
    EXIT_OK, EXIT_PROBLEMS, count, cli, echo_diagnostics, emit, fail, json_option, overwrite_option,
    refuse_bad_output, spec_argument, warnings_to_stderr)


@cli.command()
@spec_argument
@json_option
def check(spec: Path, as_json: bool) -> None:
    """Parse and check a spec (no TensorFlow): every problem, positioned."""
    from .. import pipeline

    checked, diagnostics = pipeline.check_file(spec)  # syntax errors and the other statements' problems together
    if checked is None or checked.errors:
        fail(as_json, TangleError(diagnostics))
    warnings_to_stderr(as_json, checked.diagnostics)
    g = checked.graph
    summary = {"ok": True, "file": str(spec), "inputs": list(g.inputs), "selectors": list(g.selectors),
               "modules": list(g.modules), "decoders": dict(g.decoders), "routes": g.route_count(),
               "diagnostics": [d.to_json() for d in checked.diagnostics]}
    emit(as_json, summary, f"{spec}: ok — {count(len(g.modules), 'module')}, "
                           f"{count(g.route_count(), 'route')}, {count(len(g.decoders), 'decoder')}")


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
    from .. import pipeline
    from ..spec.graph import describe

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
    nodes = [{"id": n, **{k: v for k, v in d.items() if k != "span"}} for n, d in g.nodes.items()]
    edges = [{"from": u, "to": v, **{k: x for k, x in d.items() if k != "span"}} for u, v, d in g.edges()]
    return strict_json.dumps({"nodes": nodes, "edges": edges, "routes": [r.to_json() for r in g.routes()]}, indent=2)


def _graph_output(g, fmt: str, out: Path | None, as_json: bool) -> None:
    """dot/mermaid text, svg/png images (Graphviz), or any format written to a file with -o."""
    from ..spec import graph_formats
    from ..lang.diagnostics import Diagnostic
    from ..spec.graph import describe

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
        from ..util.files import write_atomic

        write_atomic(out, data)
        emit(as_json, {"ok": True, "format": fmt, "output": str(out), "bytes": len(data)}, f"wrote {out}")
    elif as_json:
        emit(True, {"ok": True, "format": fmt, "text": data.decode("utf-8")})
    elif fmt == "png":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        click.echo(data.decode("utf-8"), nl=False)


@cli.command(name="fmt")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
@json_option
def fmt_(paths: tuple[Path, ...], check_only: bool, show_diff: bool, as_json: bool) -> None:
    """Format .tangle files in place (directories: every *.tangle below); `-` formats stdin to stdout."""
    from ..lang.fmt import format_file, format_source, spec_files

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
        from ..tui import run_explore  # Textual loads only for this command

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise click.UsageError("explore needs an interactive terminal (stdin and stdout must be a tty)")
        sys.exit(run_explore(target, out))
    columns, _, rows = size.partition("x")
    if not (columns.isdigit() and rows.isdigit() and 40 <= int(columns) <= 500 and 10 <= int(rows) <= 200):
        raise click.UsageError(f"--size {size!r}: expected COLUMNSxROWS, e.g. 120x36 (40..500 x 10..200)")
    refuse_bad_output(False, screenshot, "file", overwrite=overwrite, inputs=[target], flag="--screenshot")
    from ..tui import render_screenshot

    code, note = render_screenshot(target, out, screenshot, (int(columns), int(rows)), train_first)
    click.echo(note, err=code != 0)
    sys.exit(code)


@cli.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", default=None, help="The column to predict (default: the last one).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the spec to this file (default: stdout); its `data file` path is made relative to it.")
@overwrite_option
@json_option
def draft(data: Path, target: str | None, out: Path | None, overwrite: bool, as_json: bool) -> None:
    """Draft a spec for a CSV/JSONL data file, from what its columns hold: one encoder over its number
    columns (or a text, vector or category column), one decoder of the target. A start to edit."""
    from ..data.draft import draft_spec, relative_data_path
    from ..data.rows import DataError

    if out is not None:
        refuse_bad_output(as_json, out, "file", overwrite=overwrite, inputs=[data])
    named = relative_data_path(data, out.parent if out is not None else Path.cwd())
    try:
        result = draft_spec(data, target, named)
    except DataError as err:
        fail(as_json, err)
    summary = {"ok": True, "target": result.target, "read": result.read, "left_out": result.left_out,
               "rows_sampled": result.rows}
    if out is None:
        if as_json:
            emit(True, {**summary, "text": result.text})
        else:
            click.echo(result.text, nl=False)
        return
    from ..util.files import write_atomic

    write_atomic(out, result.text.encode("utf-8"))
    emit(as_json, {**summary, "output": str(out)},
         f"wrote {out}: target {result.target}, reading {count(len(result.read), 'column')}; "
         f"next: tanglec check {out} && tanglec compile {out} -o runs/{out.stem}")
