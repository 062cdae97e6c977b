"""Semantic checks: every problem in a spec, each a positioned Diagnostic; never stops at the first.

`check(spec)` returns a Checked bundle (graph, resolved settings and all diagnostics). Checking never
imports TensorFlow, and on small enumerated specs not even numpy (see check_targets.py); what needs the
data or an init run is read by the caller (tanglec.pipeline) and passed in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..lang import ast
from ..lang.diagnostics import ERROR, WARNING, Diagnostic, TangleError, sort_key
from .check_limits import LimitChecks
from .check_modules import ModuleChecks
from .check_routes import RouteChecks
from .check_settings import SettingChecks
from .check_tables import TableChecks
from .check_targets import TargetChecks
from .checked import Checked, DataConfig, TrainConfig
from .composition import Composition, InitRun, check_alignment_coverage, check_composition, check_init
from .graph import TangleGraph, build


DataCheck = Callable[[Checked], list[Diagnostic]]


def check(spec: ast.Spec, init: InitRun | None = None, stored_rows: Path | None = None, *,
          ignore_init: bool = False, stream: str | None = None, data_check: DataCheck | None = None) -> Checked:
    """Every problem in the spec. `init`: the run the spec starts from, read by the caller (it overrides
    the spec's `init` statement; None: a declared run is only looked for); `ignore_init` drops any init
    (loading a trained run). `stored_rows`: a trained run's copy of its evaluation rows, read instead of
    the file a `data file` statement names (that path is never looked at; compile checked the targets
    against the whole file). `stream`: --stream/--no-stream over the spec's `stream` setting.
    `data_check`: the data-backed target checks (tanglec.data.validate), run when the spec is sound and
    its targets are too many to evaluate here row by row."""
    graph = build(spec)
    ctx = _Checker(spec, graph, init, stored_rows, ignore_init, stream, data_check)
    ctx.run()
    diags = sorted(ctx.diags, key=sort_key)
    return Checked(spec, graph, ctx.train, ctx.data, diags, ctx.target_order, ctx.composition, ctx.init_modules)


def check_or_raise(spec: ast.Spec, init: InitRun | None = None, stored_rows: Path | None = None,
                   **options) -> Checked:
    checked = check(spec, init, stored_rows, **options)
    if checked.errors:
        raise TangleError(checked.diagnostics)
    return checked


class _Checker(ModuleChecks, RouteChecks, SettingChecks, TargetChecks, LimitChecks, TableChecks):
    """The checking context: the spec, its graph, what is resolved so far and the diagnostics; the
    checks themselves are by topic in spec/check_*.py."""

    def __init__(self, spec: ast.Spec, graph: TangleGraph, init: InitRun | None, stored_rows: Path | None,
                 ignore_init: bool, stream: str | None, data_check: DataCheck | None):
        self.spec = spec
        self.g = graph
        self.init_run = init
        self.ignore_init = ignore_init
        self.stored_rows = stored_rows
        self.stream_override = stream
        self.data_check = data_check
        self.composition = Composition()
        self.init_modules: dict[str, ast.ModuleDecl] = {}
        self.init_aligned: list[frozenset[str]] = []
        self.diags: list[Diagnostic] = []
        self.train = TrainConfig()
        self.data = DataConfig()
        self.target_order: list[str] = []
        self.misspelled: set[str] = set()  # modules suggested for an unknown name: not also "unreachable"

    def error(self, code, message, span, hints=(), related=()):
        self.diags.append(Diagnostic(code, message, span, ERROR, list(hints), list(related)))

    def warn(self, code, message, span, hints=(), related=()):
        self.diags.append(Diagnostic(code, message, span, WARNING, list(hints), list(related)))

    def run(self) -> None:
        self.check_names()
        for decl in self.g.inputs.values():
            self.check_field_type(decl.type)
            if decl.columns:
                self.check_input_columns(decl)
        for decl in self.spec.of(ast.SelectDecl):
            self.check_selector(decl)
        self.check_tables()
        for decl in self.g.modules.values():
            self.check_module(decl)
        for route in self.spec.of(ast.RouteDecl):
            self.check_route(route)
        self.check_single_producer()
        acyclic = self.g.is_dag()
        if not acyclic:  # finding the cycle costs three times as much as knowing there is none
            self.check_cycles()
        self.check_decoders()
        if acyclic:
            self.check_reachability()
        self.check_settings()
        check_composition(self)
        if self.ignore_init:
            self.composition.init = None
        elif self.init_run is not None:
            self.composition.init, self.composition.init_span = self.init_run.path, self.init_run.span
        if self.composition.init is not None:
            check_init(self, self.composition.init, self.composition.init_span, self.init_run)
        self.check_limits()
        self.check_targets()
        if acyclic and not any(d.is_error for d in self.diags):
            check_alignment_coverage(self)
