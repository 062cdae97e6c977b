"""The `tanglec` command line. TensorFlow is imported only by commands that build or run a model.

Exit codes: 0 ok, 1 problems found in a spec/data/run, 2 usage error, 3 internal error.
Every command takes --json: one JSON object on stdout; human text otherwise (diagnostics on stderr).
The commands live by kind in this package's modules and register themselves on the `cli` group.
"""
from __future__ import annotations

import sys
import traceback

import click

from ..lang.diagnostics import printable
from . import run_commands, spec_commands, transfer_command  # noqa: F401 - they register their commands
from .common import EXIT_INTERNAL, EXIT_USAGE, cli


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
    from ..util.files import write_crash_log

    try:
        where = f"details in {write_crash_log(traceback.format_exc())}"
    except Exception as problem:  # noqa: BLE001 - the report must not fail
        where = f"no crash log: {problem}"
    try:
        click.echo(printable(f"internal error: {type(err).__name__}: {err}\n({where}; please report it)"), err=True)
    except Exception:  # noqa: BLE001, S110 - stderr itself is unusable
        pass
