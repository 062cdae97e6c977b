"""Semantic checks: every problem in a spec, each a positioned Diagnostic; never stops at the first.

`check(spec)` returns a Checked bundle (graph, resolved settings, example data when it could be
built, and all diagnostics). Checking never imports TensorFlow, and on small enumerated specs not even
numpy (see `target_values`).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import networkx as nx

from ..lang import ast, expr
from .composition import (Composition, InitRun, check_alignment_coverage, check_composition, check_data_limits,
                          check_init)
from ..util.files import data_file_problem
from ..lang.diagnostics import ERROR, WARNING, Diagnostic, Related, TangleError, did_you_mean, sort_key
from .graph import MAX_ROUTES, TangleGraph, build, codec_width
from ..lang.vocabulary import (ACTIVATIONS, CODECS, DATA_CODECS, DATA_KEYS, DISTRIBUTE_STRATEGIES, LAYER_KINDS,
                               MUX_STRATEGIES, OPTIMIZERS, SIZED_CODECS, STREAM_MODES, TRAIN_KEYS)

MAX_ENUMERATION = 1_000_000
MAX_MODULES = 1000
MAX_PARAMETERS = 50_000_000
MAX_WIDTH = 100_000  # values in one codec or vector field
MAX_SAMPLE = 1_000_000  # rows of `data sample N`
MAX_DATA_CELLS = 50_000_000  # rows x values per row of sampled data (memory before anything trains)
MEMORY_GB = 4.0  # default cap on a run's estimated memory (`train memory N`, in GB)
ROW_BY_ROW_STEPS = 200_000  # rows x expression nodes evaluated in plain Python (beyond: numpy)


@dataclass
class TrainConfig:
    steps: int = 300
    batch: int = 64
    optimizer: str = "adam"
    lr: float = 0.01
    seed: int = 0
    until_exact: bool = False
    weights: dict[str, float] = field(default_factory=dict)
    mux: str = "auto"  # the cost model in tanglec/mux.py: partition on CPU (measured), where for 1 branch
    eval_every: int = 10
    strategy: str = "default"  # tf.distribute strategy (docs/distributed.md); --strategy overrides
    memory_gb: float = MEMORY_GB


@dataclass
class DataConfig:
    source: str = "enumerate"  # enumerate | sample | file
    count: int | None = None
    path: Path | None = None
    seed: int = 0
    eval_fraction: float = 0.0
    span: ast.Span | None = None
    limit: int | None = None  # at most this many training examples in all (few-shot)
    per_route: int | None = None  # at most this many training examples per route
    stream: str = "auto"  # auto | always | never: read the file in chunks (tanglec.data.stream)
    in_run: bool = False  # `path` is a trained run's kept evaluation rows: evaluated, never trained on


@dataclass(frozen=True)
class Checked:
    """A checked spec: immutable, every override (--init, --stream) applied while it was built."""
    spec: ast.Spec
    graph: TangleGraph
    train: TrainConfig
    data: DataConfig
    diagnostics: list[Diagnostic]
    target_order: list[str] = field(default_factory=list)  # expression targets, dependencies first
    composition: Composition = field(default_factory=Composition)
    init_modules: dict[str, ast.ModuleDecl] = field(default_factory=dict)  # modules the init run provides

    @property
    def new_modules(self) -> set[str]:
        """Modules with no weights from the init run (all of them when there is no init)."""
        return set(self.graph.modules) - set(self.init_modules)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def expr_scope(self) -> expr.Scope:
        g = self.graph
        numeric = {n for n, d in g.inputs.items() if isinstance(d.type, (ast.IntType, ast.FloatType))}
        categorical = {n: [v.text for v in d.values] for n, d in g.selectors.items()}
        categorical.update({n: [v.text for v in d.type.values] for n, d in g.inputs.items()
                            if isinstance(d.type, ast.CategoryType)})
        numeric |= set(g.targets)  # a target may build on another
        return expr.Scope(numeric, categorical)


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


class _Checker:
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
        for decl in self.spec.of(ast.SelectDecl):
            self.check_selector(decl)
        for decl in self.g.modules.values():
            self.check_module(decl)
        for route in self.spec.of(ast.RouteDecl):
            self.check_route(route)
        self.check_single_producer()
        self.check_cycles()
        acyclic = self.g.is_dag()
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

    # -- names -----------------------------------------------------------------------
    def check_names(self) -> None:
        seen: dict[str, ast.Name] = {}
        kinds = ((ast.InputDecl, "input"), (ast.SelectDecl, "selector"), (ast.ModuleDecl, "module"),
                 (ast.TargetDecl, "target"))
        for st in self.spec.statements:
            for cls, what in kinds:
                if isinstance(st, cls):
                    name = st.name
                    if name.text in seen:
                        first = seen[name.text]
                        self.error("E102", f"'{name.text}' is already declared", name.span,
                                   hints=["names of inputs, selectors, modules and targets share one namespace"],
                                   related=[Related(first.span, "first declared here")])
                    else:
                        seen[name.text] = name
        for sel in self.spec.of(ast.SelectDecl):
            self._unique_values(sel.values, f"selector {sel.name.text}")

    def _unique_values(self, values: list[ast.Name], what: str) -> None:
        first: dict[str, ast.Name] = {}
        for v in values:
            if v.text in first:
                self.error("E102", f"value '{v.text}' appears twice in {what}", v.span,
                           related=[Related(first[v.text].span, "first written here")])
            first.setdefault(v.text, v)

    def check_field_type(self, t: ast.FieldType) -> None:
        if isinstance(t, ast.IntType) and t.lo > t.hi:
            self.error("E116", f"empty range {t.lo}..{t.hi}", t.span, hints=[f"write {t.hi}..{t.lo}"])
        elif isinstance(t, ast.FloatType) and t.lo is not None and not t.lo < t.hi:
            self.error("E116", f"empty range {t.lo}..{t.hi}", t.span)
        elif isinstance(t, ast.CategoryType):
            self._unique_values(t.values, "category")
        elif isinstance(t, ast.VectorType) and t.size < 1:
            self.error("E116", "a vector needs at least 1 element", t.span)
        elif isinstance(t, ast.VectorType) and t.size > MAX_WIDTH:
            self.error("E127", f"vector({t.size}) exceeds the limit of {MAX_WIDTH:,} values", t.span)

    def check_selector(self, decl: ast.SelectDecl) -> None:
        used = any(m.selector.text == decl.name.text for m in self.g.muxes.values())
        in_expr = any(decl.name.text in expr.referenced_names(t.expr)
                      for t in self.spec.of(ast.TargetDecl) if t.expr is not None)
        if not used and not in_expr:
            self.warn("W201", f"selector '{decl.name.text}' chooses no multiplexer", decl.name.span,
                      hints=["use it in a route: `[a | b] by " + decl.name.text + "`"])

    # -- modules ---------------------------------------------------------------------
    def check_codec(self, codec: ast.Codec) -> bool:
        kind = codec.kind.text
        if kind not in CODECS:
            self.error("E114", f"unknown codec '{kind}'", codec.kind.span,
                       hints=did_you_mean(kind, CODECS) + ["codecs: bits(n), gray(n), onehot(n), scalar, latent(n), "
                                                           "vector(n)"])
            return False
        if kind in SIZED_CODECS and codec.size is None:
            self.error("E114", f"{kind} needs a size, e.g. {kind}(8)", codec.span)
            return False
        if kind == "scalar" and codec.size is not None:
            self.error("E114", "scalar takes no size", codec.span, hints=["use vector(n) for several values"])
            return False
        if codec.size is not None and codec.size < 1:
            self.error("E114", f"{kind} size must be at least 1", codec.span)
            return False
        if kind in ("bits", "gray") and codec.size > 62:
            self.error("E114", f"{kind}(n) supports at most 62 bits", codec.span)
            return False
        if codec.size is not None and codec.size > MAX_WIDTH:
            self.error("E127", f"{codec} exceeds the limit of {MAX_WIDTH:,} values", codec.span)
            return False
        return True

    def check_module(self, m: ast.ModuleDecl) -> None:
        ok_in = self.check_codec(m.input)
        ok_out = self.check_codec(m.output)
        width = codec_width(m.input) if ok_in else None
        width = self.check_layers(m.layers, width)
        if ok_out and width is not None and width != codec_width(m.output):
            last = m.layers[-1].span if m.layers else m.span
            self.error("E111", f"module '{m.name.text}' ends with width {width} but its output "
                               f"{m.output} needs {codec_width(m.output)}", last,
                       hints=[f"end the layer stack with `dense {codec_width(m.output)}`"],
                       related=[Related(m.output.span, "output interface declared here")])

    def check_layers(self, layers: list[ast.Layer], width: int | None) -> int | None:
        for layer in layers:
            width = self.check_layer(layer, width)
        return width

    def check_layer(self, layer: ast.Layer, width: int | None) -> int | None:
        kind = layer.kind.text
        if kind not in LAYER_KINDS:
            self.error("E113", f"unknown layer '{kind}'", layer.kind.span,
                       hints=did_you_mean(kind, LAYER_KINDS) + ["layers: dense N [activation], dropout P, norm, "
                                                                "residual(...)"])
            return None
        if kind == "residual":
            if not layer.is_block:
                self.error("E111", "residual wraps layers: residual(dense 32 relu, dense 32)", layer.span)
                return width
            inner = self.check_layers(layer.children, width)
            if inner is not None and width is not None and inner != width:
                self.error("E111", f"residual block maps width {width} to {inner}; its output is added to its "
                                   f"input, so both must match", layer.span,
                           hints=[f"end the block with `dense {width}`"])
            return width
        if layer.is_block:
            self.error("E111", f"'{kind}' is not a block; only residual(...) takes layers", layer.span)
            return width
        args = layer.args
        if kind == "dense":
            if not args or not isinstance(args[0], int) or args[0] < 1:
                self.error("E111", "dense needs a positive number of units: `dense 64 relu`", layer.span)
                return None
            if len(args) > 2:
                self.error("E111", "dense takes units and an optional activation", layer.span)
            if len(args) == 2:
                act = args[1]
                if not isinstance(act, ast.Name) or act.text not in ACTIVATIONS:
                    text = act.text if isinstance(act, ast.Name) else str(act)
                    span = act.span if isinstance(act, ast.Name) else layer.span
                    self.error("E111", f"unknown activation '{text}'", span,
                               hints=did_you_mean(text, ACTIVATIONS) + [", ".join(sorted(ACTIVATIONS))])
            if args[0] > 100_000:
                self.error("E111", f"dense {args[0]} is wider than the 100000-unit limit", layer.span)
                return None
            return args[0]
        if kind == "dropout":
            if len(args) != 1 or isinstance(args[0], ast.Name) or not 0 <= args[0] < 1:
                self.error("E111", "dropout takes one rate in [0, 1): `dropout 0.1`", layer.span)
            return width
        if kind == "norm" and args:
            self.error("E111", "norm takes no arguments", layer.span)
        return width

    # -- routes ----------------------------------------------------------------------
    def producer_codec(self, node: str) -> ast.Codec | None:
        kind = self.g.kind(node)
        if kind == "module":
            return self.g.modules[node].output
        if kind == "mux":
            outs = [self.g.modules[b.module.text].output for b in self.g.muxes[node].branches
                    if b.module.text in self.g.modules]
            return outs[0] if outs else None
        return None

    def check_route(self, route: ast.RouteDecl) -> None:
        src = route.source.text
        producers: list[tuple[str, ast.Span]] = []
        if src not in self.g.inputs and src not in self.g.modules:
            self.error("E101", f"unknown input or module '{src}'", route.source.span,
                       hints=did_you_mean(src, list(self.g.inputs) + list(self.g.modules)))
        else:
            producers = [(src, route.source.span)]
        for i, stage in enumerate(route.stages):
            if isinstance(stage, ast.FanOut):
                if len(stage.modules) > 1 and i != len(route.stages) - 1:
                    self.error("E123", "a fan-out must end the route", stage.span,
                               hints=["continue from one of its modules in another `route` statement"])
                consumers = []
                for m in stage.modules:
                    if self.known_module(m):
                        consumers.append((m.text, m.span))
                        self.check_edges(producers, m)
                producers = consumers
            else:
                producers = self.check_mux(stage, producers)

    def known_module(self, name: ast.Name) -> bool:
        if name.text in self.g.modules:
            return True
        what = "an input, not a module" if name.text in self.g.inputs else None
        hints = did_you_mean(name.text, self.g.modules)
        self.misspelled |= {m for m in self.g.modules if hints and f"'{m}'" in hints[0]}
        self.error("E101", f"unknown module '{name.text}'" + (f" ('{name.text}' is {what})" if what else ""),
                   name.span, hints=hints)
        return False

    def check_mux(self, stage: ast.Mux, producers):
        sel = stage.selector.text
        mid = self._mux_ids()[(stage.span, stage.selector)]
        if len(stage.branches) < 2:
            self.error("E105", f"a multiplexer needs at least two branches, this one has {len(stage.branches)}",
                       stage.span, hints=["route straight to the module without [ ] instead"])
        if stage.strategy is not None and stage.strategy.text not in MUX_STRATEGIES:
            self.error("E122", f"unknown multiplexer strategy '{stage.strategy.text}'", stage.strategy.span,
                       hints=did_you_mean(stage.strategy.text, MUX_STRATEGIES) + [", ".join(sorted(MUX_STRATEGIES))])
        for b in stage.branches:
            if self.known_module(b.module):
                self.check_edges(producers, b.module)
        misspelled_branch = any(b.value is b.module and b.module.text not in self.g.modules for b in stage.branches)
        if misspelled_branch:
            pass  # `[binry | decimal]`: the unknown module is reported; its value mismatch would be noise
        elif sel not in self.g.selectors:
            self.error("E101", f"unknown selector '{sel}'", stage.selector.span,
                       hints=did_you_mean(sel, self.g.selectors))
        else:
            decl = self.g.selectors[sel]
            values = [v.text for v in decl.values]
            written = [b.value.text for b in stage.branches]
            for b in stage.branches:
                if b.value.text not in values:
                    self.error("E106", f"'{b.value.text}' is not a value of selector '{sel}'", b.value.span,
                               hints=did_you_mean(b.value.text, values) + [f"{sel} is one of: {', '.join(values)}"],
                               related=[Related(decl.span, f"{sel} declared here")])
            missing = [v for v in values if v not in written]
            if missing:
                self.error("E106", f"no branch for {', '.join(missing)} of selector '{sel}'", stage.span,
                           hints=[f"add a branch `{missing[0]}: some_module`"],
                           related=[Related(decl.span, f"{sel} declared here")])
            self._unique_values([b.value for b in stage.branches], "this multiplexer")
        outs = [(b, self.g.modules[b.module.text].output) for b in stage.branches if b.module.text in self.g.modules]
        for b, codec in outs[1:]:
            if not _same_codec(codec, outs[0][1]):
                self.error("E104", f"branches of one multiplexer must share an output interface: "
                                   f"'{b.module.text}' gives {codec}, '{outs[0][0].module.text}' gives {outs[0][1]}",
                           b.span, related=[Related(self.g.modules[b.module.text].output.span, "declared here")])
        return [(mid, stage.span)]

    def _mux_ids(self) -> dict:
        """(span, selector) -> multiplexer id, built once: a lookup per stage stays linear in the spec."""
        if not hasattr(self, "_mux_id_index"):
            self._mux_id_index = {}
            for k, v in self.g.muxes.items():
                self._mux_id_index.setdefault((v.span, v.selector), k)
        return self._mux_id_index

    def check_edges(self, producers, consumer: ast.Name) -> None:
        target = self.g.modules[consumer.text]
        for node, _ in producers:
            if self.g.kind(node) == "input":
                self.check_input_codec(self.g.inputs[node], target, consumer.span)
                continue
            out = self.producer_codec(node)
            if out is None or not self._codec_known(out) or not self._codec_known(target.input):
                continue
            if not _same_codec(out, target.input):
                label = node if self.g.kind(node) == "module" else f"the multiplexer by {node.split(':')[1]}"
                self.error("E104", f"interface mismatch: {label} gives {out} but '{consumer.text}' takes "
                                   f"{target.input}", consumer.span,
                           related=[Related(out.span, f"{label} output declared here"),
                                    Related(target.input.span, f"'{consumer.text}' input declared here")])

    def _codec_known(self, c: ast.Codec) -> bool:
        return c.kind.text in CODECS

    def check_input_codec(self, field_decl: ast.InputDecl, module: ast.ModuleDecl, at: ast.Span) -> None:
        codec, t, name = module.input, field_decl.type, field_decl.name.text
        kind = codec.kind.text
        if kind not in CODECS or (kind in SIZED_CODECS and codec.size is None):
            return
        problem = None
        if kind == "latent":
            problem = f"'{module.name.text}' takes a latent, but '{name}' is data; give it a data codec"
        elif kind in ("bits", "gray"):
            if not isinstance(t, ast.IntType) or t.lo < 0 or t.hi >= 2 ** codec.size:
                problem = f"{codec} holds ints 0..{2 ** codec.size - 1}, but '{name}' is {t.describe()}"
        elif kind == "onehot":
            if isinstance(t, ast.CategoryType):
                if len(t.values) > codec.size:
                    problem = f"{codec} has {codec.size} slots, but '{name}' has {len(t.values)} categories"
            elif not isinstance(t, ast.IntType) or t.lo < 0 or t.hi >= codec.size:
                problem = f"{codec} holds ints 0..{codec.size - 1}, but '{name}' is {t.describe()}"
        elif kind == "scalar":
            if not isinstance(t, (ast.IntType, ast.FloatType)):
                problem = f"scalar needs a numeric field, but '{name}' is {t.describe()}"
        elif kind == "vector":
            if not isinstance(t, ast.VectorType) or t.size != codec.size:
                problem = f"{codec} needs a vector({codec.size}) field, but '{name}' is {t.describe()}"
        if problem:
            self.error("E117", f"interface mismatch: {problem}", at,
                       related=[Related(codec.span, "input interface declared here"),
                                Related(field_decl.span, f"'{name}' declared here")])

    def check_single_producer(self) -> None:
        """A module reads exactly one producer; several producers need a multiplexer to choose."""
        for name in self.g.modules:
            producers = self.g.predecessors(name)
            if len(producers) > 1:
                spans = [self.g.g.edges[p, name]["span"] for p in producers]
                names = ", ".join("a multiplexer" if p.startswith("mux:") else f"'{p}'" for p in producers)
                self.error("E128", f"module '{name}' is fed by {names}; a module reads one producer", spans[-1],
                           related=[Related(spans[0], "first producer here")],
                           hints=["choose between them per example with a multiplexer: `[a | b] by selector`"])

    def check_cycles(self) -> None:
        try:
            cycle = nx.find_cycle(self.g.g)
        except nx.NetworkXNoCycle:
            return
        u, v = cycle[-1]
        path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
        self.error("E103", f"cycle in the module graph: {_pretty(path)}", self.g.g.edges[u, v]["span"],
                   hints=["a tangle is a DAG: route each module's output forward only"])

    def check_reachability(self) -> None:
        reachable = set(self.g.inputs).union(*(nx.descendants(self.g.g, n) for n in self.g.inputs))
        for name, m in self.g.modules.items():
            if name not in reachable and name not in self.misspelled:
                self.error("E107", f"no route reaches module '{name}'", m.name.span,
                           hints=[f"add it to a route, e.g. `route <input> -> {name}`, or remove it"])

    # -- decoders and targets --------------------------------------------------------
    def check_decoders(self) -> None:
        decoded = {}
        for d in self.spec.of(ast.DecodeDecl):
            for m in d.modules:
                if m.text in decoded:
                    self.error("E102", f"'{m.text}' is decoded twice", m.span,
                               related=[Related(decoded[m.text], "first decoded here")])
                    continue
                decoded[m.text] = m.span
                if not self.known_module(m):
                    continue
                out = self.g.modules[m.text].output
                if out.kind.text not in DATA_CODECS:
                    self.error("E118", f"'{m.text}' outputs {out}, which can't be decoded; decoders output "
                                       f"bits(n), onehot(n), scalar or vector(n)", m.span,
                               related=[Related(out.span, "output declared here")])
            if d.target.text not in self.g.targets:
                self.error("E101", f"unknown target '{d.target.text}'", d.target.span,
                           hints=did_you_mean(d.target.text, self.g.targets))
        for name, m in self.g.modules.items():
            if m.output.kind.text in DATA_CODECS and name not in self.g.decoders:
                self.error("E108", f"decoder '{name}' has no target", m.name.span,
                           hints=[f"add `decode {name} as <target>`"])
        if not self.g.decoders and not any(d.is_error for d in self.diags):
            modules = list(self.g.modules.values())
            where = modules[0].name.span if modules else ast.Span(self.spec.path, 1, 1, 1, 2)
            self.error("E126", "nothing to train: no decoder", where,
                       hints=["declare a module with a data output and `decode it as <target>`"])

    def check_settings(self) -> None:
        for t in self.spec.of(ast.TrainDecl):
            for s in t.settings:
                self.train_setting(s)
        datas = self.spec.of(ast.DataDecl)
        for extra in datas[1:]:
            self.error("E102", "only one `data` statement is allowed", extra.span,
                       related=[Related(datas[0].span, "first data statement")])
        if datas:
            d = datas[0]
            self.data.source, self.data.span = d.source, d.span
            if d.source == "sample":
                if d.arg < 1:
                    self.error("E119", "sample needs at least 1 example", d.span)
                elif d.arg > MAX_SAMPLE:
                    self.error("E127", f"a sample of {d.arg:,} examples exceeds the limit of {MAX_SAMPLE:,}", d.span)
                self.data.count = d.arg
            elif d.source == "file" and self.stored_rows is not None:
                self.data.path, self.data.in_run = self.stored_rows, True
            elif d.source == "file":
                self.data.path = (Path(self.spec.path).parent / d.arg) if self.spec.path else Path(d.arg)
                problem = data_file_problem(self.data.path)
                if problem:
                    self.error("E119", f"{problem}: {d.arg}", d.span,
                               hints=[f"paths are relative to the spec's folder: looked for {self.data.path}"])
            for s in d.settings:
                self.data_setting(s)
        if self.stream_override is not None:
            self.data.stream = self.stream_override

    def _number(self, s: ast.Setting, lo: float, hi: float | None, integer: bool) -> float | None:
        """The setting's value if in range (a float unless `integer`: `adam 1` is a learning rate of 1.0)."""
        v = s.value
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (not integer or isinstance(v, int))
        if ok and v >= lo and (hi is None or v <= hi):
            return v if integer else float(v)
        rng = f"{lo}.." + (f"{hi}" if hi is not None else "")
        self.error("E115", f"{s.key.text} takes {'an integer' if integer else 'a number'} in {rng}", s.span)
        return None

    def train_setting(self, s: ast.Setting) -> None:
        key, t = s.key.text, self.train
        if key not in TRAIN_KEYS:
            self.error("E115", f"unknown training setting '{key}'", s.key.span,
                       hints=did_you_mean(key, TRAIN_KEYS) + ["settings: " + ", ".join(sorted(TRAIN_KEYS))])
        elif key in ("steps", "batch", "eval_every"):
            v = self._number(s, 1, 10_000_000, True)
            if v is not None:
                setattr(t, key, v)
        elif key == "seed":
            v = self._number(s, 0, 2**31 - 1, True)
            if v is not None:
                t.seed = v
        elif key in OPTIMIZERS or key == "lr":
            v = self._number(s, 1e-9, 10, False)
            if v is not None:
                t.lr = v
            if key != "lr":
                t.optimizer = key
        elif key == "optimizer":
            if not isinstance(s.value, ast.Name) or s.value.text not in OPTIMIZERS:
                self.error("E115", "optimizer is one of " + ", ".join(sorted(OPTIMIZERS)), s.span)
            else:
                t.optimizer = s.value.text
        elif key == "until":
            if not isinstance(s.value, ast.Name) or s.value.text != "exact":
                self.error("E115", "`until exact` is the only stopping rule", s.span)
            else:
                t.until_exact = True
        elif key == "mux":
            if not isinstance(s.value, ast.Name) or s.value.text not in MUX_STRATEGIES:
                self.error("E122", "mux is one of " + ", ".join(sorted(MUX_STRATEGIES)), s.span)
            else:
                t.mux = s.value.text
        elif key == "memory":
            v = self._number(s, 0.001, 1_000_000, False)
            if v is not None:
                t.memory_gb = v
        elif key == "strategy":
            if not isinstance(s.value, ast.Name) or s.value.text not in DISTRIBUTE_STRATEGIES:
                self.error("E115", "strategy is one of " + ", ".join(DISTRIBUTE_STRATEGIES), s.span)
            else:
                t.strategy = s.value.text
        elif key == "weight":
            if not isinstance(s.value, tuple):
                self.error("E115", "weight is written `weight decoder:1.5`", s.span)
                return
            name, w = s.value
            if name.text not in self.g.decoders:
                self.error("E101", f"unknown decoder '{name.text}'", name.span,
                           hints=did_you_mean(name.text, self.g.decoders))
            elif not isinstance(w, (int, float)) or w < 0:
                self.error("E115", "a loss weight is a number >= 0", s.span)
            else:
                t.weights[name.text] = float(w)

    def data_setting(self, s: ast.Setting) -> None:
        key = s.key.text
        if check_data_limits(self, s):
            return
        if key not in DATA_KEYS:
            self.error("E115", f"unknown data setting '{key}'", s.key.span,
                       hints=did_you_mean(key, DATA_KEYS) + ["settings: seed N, eval FRACTION"])
        elif key == "seed":
            v = self._number(s, 0, 2**31 - 1, True)
            if v is not None:
                self.data.seed = v
        elif key == "eval":
            v = self._number(s, 0, 0.9, False)
            if v is not None:
                self.data.eval_fraction = float(v)
        elif key == "stream":
            if not isinstance(s.value, ast.Name) or s.value.text not in STREAM_MODES:
                self.error("E115", "stream is one of " + ", ".join(STREAM_MODES), s.span)
            elif self.data.source != "file":
                self.error("E115", "only a data file is streamed", s.span)
            else:
                self.data.stream = s.value.text

    def check_targets(self) -> None:
        scope = Checked(self.spec, self.g, self.train, self.data, []).expr_scope()
        bad_expr = set()
        for name, t in self.g.targets.items():
            if t.type is not None:
                self.check_field_type(t.type)
            if t.expr is None:
                if self.data.source != "file":
                    self.error("E124", f"target '{name}' comes from data, but the data is not a file", t.span,
                               hints=['read a file: `data file "rows.csv"`, or give an expression'])
                continue
            found = expr.check(t.expr, scope)
            self.diags += found
            if found:
                bad_expr.add(name)
        self.check_target_shapes()
        self.order_targets()
        for name, t in self.g.targets.items():
            if name not in self.g.decoders.values():
                self.warn("W203", f"target '{name}' is decoded by no module", t.name.span)
        if any(d.is_error for d in self.diags) or self.stored_rows is not None:
            return  # data needs a sound spec; a run's stored rows were checked when it was compiled
        checked = Checked(self.spec, self.g, self.train, self.data, [], self.target_order)
        domain = _small_domain(self.g)
        if self.data.source == "enumerate" and domain is not None and \
                math.prod(map(len, domain[1])) * self.expression_size() <= ROW_BY_ROW_STEPS:
            values = self.domain_values(checked, *domain)
            if values is not None:
                self.check_target_ranges(values)
        elif self.data_check is not None:
            self.diags += self.data_check(checked)

    def domain_values(self, checked: Checked, names: list[str], grids: list[list[int]]) -> dict[str, list] | None:
        """Each target's values, row by row in plain Python over a small enumerated domain (no numpy
        import, so `check` stays fast); larger data is `data_check`'s (it reads or samples the data)."""
        rows = [dict(zip(names, combo)) for combo in itertools.product(*grids)]
        out, scope = {}, checked.expr_scope()
        for name in self.target_order:
            try:
                out[name] = expr.evaluate_rows(self.g.targets[name].expr, rows, scope)
            except expr.ExprError as err:
                self.diags.append(err.diagnostic)
                return None
            for row, value in zip(rows, out[name]):
                row[name] = value
        return out

    def expression_size(self) -> int:
        """Nodes in all target expressions: the work of evaluating them for one row."""
        stack = [t.expr for t in self.g.targets.values() if t.expr is not None]
        count = 0
        while stack:
            count += 1
            stack += expr.children(stack.pop())
        return count

    def order_targets(self) -> None:
        """Expression targets in dependency order (a target may use another); a cycle is an error."""
        exprs = {n: t for n, t in self.g.targets.items() if t.expr is not None}
        uses = nx.DiGraph()  # used -> user, between expression targets (the others are known values)
        uses.add_nodes_from(exprs)
        uses.add_edges_from((used, n) for n, t in exprs.items() for used in expr.referenced_names(t.expr) & set(exprs))
        declared = {n: i for i, n in enumerate(exprs)}.__getitem__  # declaration order within a generation
        try:
            for generation in nx.topological_generations(uses):
                self.target_order += sorted(generation, key=declared)
        except nx.NetworkXUnfeasible:
            stuck = [n for n in exprs if n not in self.target_order]
            self.error("E103", "targets depend on each other in a cycle: " + ", ".join(stuck),
                       self.g.targets[stuck[0]].name.span,
                       related=[Related(self.g.targets[n].name.span, f"'{n}' declared here") for n in stuck[1:]])

    def check_target_shapes(self) -> None:
        """A vector(n) decoder needs a vector(n) column from the data; every other decoder a number."""
        for decoder, target in self.g.decoders.items():
            if decoder not in self.g.modules or target not in self.g.targets:
                continue
            codec, t = self.g.modules[decoder].output, self.g.targets[target]
            given = t.type if isinstance(t.type, ast.VectorType) and t.expr is None else None
            if codec.kind.text == "vector" and (given is None or given.size != codec.size):
                what = given.describe() if given else "one number per example"
                hint = f"declare it `target {target}: vector({codec.size}) from data`"
            elif codec.kind.text != "vector" and isinstance(t.type, ast.VectorType):
                what, hint = t.type.describe(), f"decode it with a vector({t.type.size}) output"
            else:
                continue
            where = t.type.span if t.type is not None else t.name.span
            self.error("E112", f"target '{target}' is {what}, but decoder '{decoder}' outputs {codec}", where,
                       hints=[hint], related=[Related(codec.span, f"'{decoder}' output declared here")])

    def check_target_ranges(self, values: dict[str, list]) -> None:
        self.diags += range_problems(self.g, values)

    def check_limits(self) -> None:
        """Caps on the spec's size and on its run's estimated memory, checked before any data or model
        exists; each positioned at what is over the cap."""
        modules, muxes = list(self.g.modules.values()), list(self.g.muxes.values())
        if len(modules) > MAX_MODULES:
            self.error("E127", f"{len(modules)} modules exceed the limit of {MAX_MODULES}",
                       modules[MAX_MODULES].name.span)
        sizes = {name: estimate_parameters(m) for name, m in self.g.modules.items()}
        total = sum(sizes.values())
        if total > MAX_PARAMETERS:
            largest = max(sizes, key=sizes.get)
            self.error("E127", f"about {total:,} parameters exceed the limit of {MAX_PARAMETERS:,} "
                               f"('{largest}' has {sizes[largest]:,})", self.g.modules[largest].span,
                       hints=["use narrower dense layers"])
        if len(muxes) > MAX_MODULES:
            self.error("E127", f"{len(muxes)} multiplexers exceed the limit of {MAX_MODULES}", muxes[MAX_MODULES].span)
        routes = self.g.route_count()
        if routes > MAX_ROUTES:
            self.error("E127", f"{routes:,} routes (one per combination of selector values) exceed the limit "
                               f"of {MAX_ROUTES:,}", muxes[-1].span,
                       hints=["use fewer selectors or fewer values per selector"])
        examples = self.example_count()
        if self.data.source == "sample" and self.data.count:
            widths = sum(d.type.size if isinstance(d.type, ast.VectorType) else 1 for d in self.g.inputs.values())
            cells = self.data.count * (widths + len(self.g.selectors) + len(self.g.targets))
            if cells > MAX_DATA_CELLS:
                self.error("E127", f"the sample holds {cells:,} values, over the limit of {MAX_DATA_CELLS:,}",
                           self.data.span, hints=["sample fewer examples or use narrower vector fields"])
        if not any(d.is_error for d in self.diags):
            self.check_memory(examples, sizes)

    def example_count(self) -> int | None:
        """Examples the data holds, from the spec alone (None for a file); E125 when an enumeration
        is impossible or over MAX_ENUMERATION (counted without building the product)."""
        if self.data.source == "sample":
            return self.data.count
        if self.data.source != "enumerate":
            return None
        size = 1
        for name, decl in self.g.inputs.items():
            if not isinstance(decl.type, (ast.IntType, ast.CategoryType)):
                self.error("E125", f"can't enumerate '{name}' ({decl.type.describe()})", decl.type.span,
                           hints=["use `data sample 1000` or `data file \"rows.csv\"`"])
                return None
            size = min(size * _domain_size(decl.type), MAX_ENUMERATION + 1)  # never a number too long to print
        for decl in self.g.selectors.values():
            size = min(size * len(decl.values), MAX_ENUMERATION + 1)
        if size > MAX_ENUMERATION:
            widest = max(self.g.inputs.values(), key=lambda d: _domain_size(d.type), default=None)
            where = self.data.span or (widest.type.span if widest else ast.Span(self.spec.path, 1, 1, 1, 2))
            self.error("E125", f"enumerating every combination gives more than {MAX_ENUMERATION:,} examples",
                       where, hints=["use `data sample N` instead"])
            return None
        return size

    def check_memory(self, examples: int | None, parameters: dict[str, int]) -> None:
        """E127 when the run's estimated memory is over the cap (`train memory N`, GB): the example
        table, the model with its gradients and optimizer state, and one step's activations."""
        parts = memory_estimate(self.g, examples, parameters, self.largest_batch(examples))
        total = sum(size for size, _, _ in parts.values())
        cap = self.train.memory_gb * 1e9
        if total <= cap:
            return
        worst = max(parts, key=lambda k: parts[k][0])
        size, what, where = parts[worst]
        breakdown = "; ".join(f"{k} {_gb(v[0])}" for k, v in parts.items())
        self.error("E127", f"the run needs about {_gb(total)} of memory, over the {_gb(cap)} cap "
                           f"(mostly {what})", where or self.data.span or ast.Span(self.spec.path, 1, 1, 1, 2),
                   hints=[breakdown, "raise the cap with `train memory N` (GB) if the machine has it"])

    def largest_batch(self, examples: int | None) -> int:
        batches = [self.train.batch] + [p.batch for p in self.composition.phases if p.batch]
        return min(max(batches), examples) if examples else max(batches)


def memory_estimate(g: TangleGraph, examples: int | None, parameters: dict[str, int],
                    batch: int) -> dict[str, tuple[int, str, ast.Span | None]]:
    """Bytes per part of a run, from the spec alone: (bytes, what dominates it, where it is written).
    Raw columns are 8 bytes a value, encoded and model values 4 (float32); the model counts 4 times
    (weights, gradients, two optimizer moments); a step keeps each layer's output and its gradient."""
    raw = {name: (d.type.size if isinstance(d.type, ast.VectorType) else 1, d.type.span) for name, d in g.inputs.items()}
    raw_width = sum(w for w, _ in raw.values()) + len(g.selectors) + len(g.targets)
    encoded = sum(codec_width(g.modules[m].output) or 0 for m in g.decoders if m in g.modules)
    widest_input = max(raw.items(), key=lambda kv: kv[1][0], default=(None, (0, None)))
    data = (examples or 0) * (8 * raw_width + 4 * encoded)
    parts = {"data": (data, f"{examples or 0:,} examples of {raw_width:,} values", widest_input[1][1])}
    largest = max(parameters, key=parameters.get, default=None)
    parts["model"] = (16 * sum(parameters.values()), f"{sum(parameters.values()):,} parameters",
                      g.modules[largest].span if largest else None)
    widths, widest = 0, (0, None)
    for m in g.modules.values():
        for layer in _flatten(m.layers):
            units = layer.args[0] if layer.kind.text == "dense" and layer.args and isinstance(layer.args[0], int) else 0
            widths += units
            widest = max(widest, (units, layer.span), key=lambda w: w[0])
    parts["a step"] = (8 * batch * widths, f"a batch of {batch:,} through {widths:,} units (widest: {widest[0]:,})",
                       widest[1])
    return parts


def _gb(size: float) -> str:
    return f"{size / 1e9:,.1f} GB" if size >= 1e8 else f"{size / 1e6:,.1f} MB"


def _domain_size(t: ast.IntType | ast.CategoryType) -> int:
    return t.hi - t.lo + 1 if isinstance(t, ast.IntType) else len(t.values)


SMALL_DOMAIN = 20_000


def _small_domain(g: TangleGraph) -> tuple[list[str], list[list[int]]] | None:
    """Names and value lists of every input and selector, if all are finite and few in product."""
    names, grids, size = [], [], 1
    for name, decl in g.inputs.items():
        t = decl.type
        if isinstance(t, ast.IntType):
            grid = range(t.lo, t.hi + 1)  # a range, not a list: `int 0..9000000000000` must not fill memory
            if size * len(grid) > SMALL_DOMAIN:
                return None
        elif isinstance(t, ast.CategoryType):
            grid = list(range(len(t.values)))
        else:
            return None
        names.append(name)
        grids.append(grid)
        size *= len(grid)
    for name, decl in g.selectors.items():
        names.append(name)
        grids.append(list(range(len(decl.values))))
        size *= len(decl.values)
    return (names, grids) if size <= SMALL_DOMAIN else None


def range_problems(g: TangleGraph, values: dict[str, list]) -> list[Diagnostic]:
    """E112 for each decoded target whose values (or a [min, max(, a non-integer)] summary of them)
    its decoder's codec can't represent."""
    out = []
    for decoder, target in g.decoders.items():
        if decoder not in g.modules or target not in values:
            continue
        codec = g.modules[decoder].output
        t = g.targets[target]
        problem = _range_problem(codec, [v for v in values[target] if v is not None])
        if problem:
            where = t.expr.span if t.expr is not None else t.span
            out.append(Diagnostic("E112", f"target '{target}' {problem} for decoder '{decoder}' ({codec})", where,
                                  related=[Related(codec.span, f"'{decoder}' output declared here")]))
    return out


def _range_problem(codec: ast.Codec, values: list) -> str | None:
    kind = codec.kind.text
    if not values or kind in ("scalar", "vector"):
        return None
    if any(float(v) != int(v) for v in values):
        return "has non-integer values"
    lo, hi = int(min(values)), int(max(values))
    top = 2 ** codec.size - 1 if kind in ("bits", "gray") else codec.size - 1
    if lo < 0 or hi > top:
        return f"ranges over {lo}..{hi}, outside 0..{top}"
    return None


def estimate_parameters(m: ast.ModuleDecl) -> int:
    """Weights a module will have, computed from the spec alone (before TensorFlow builds anything)."""
    width = codec_width(m.input) or 0
    total = 0
    for layer in _flatten(m.layers):
        if layer.kind.text == "dense" and layer.args and isinstance(layer.args[0], int):
            units = layer.args[0]
            total += width * units + units
            width = units
        elif layer.kind.text == "norm":
            total += 2 * width
    return total


def _flatten(layers: list[ast.Layer]):
    for layer in layers:
        if layer.is_block:
            yield from _flatten(layer.children)
        else:
            yield layer


def _same_codec(a: ast.Codec, b: ast.Codec) -> bool:
    return a.kind.text == b.kind.text and codec_width(a) == codec_width(b)


def _pretty(path: str) -> str:
    return " ".join(f"[mux by {p.split(':')[1]}]" if p.startswith("mux:") else p for p in path.split(" "))


