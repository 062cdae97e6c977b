"""Checks of the module graph: routes, multiplexers, edges and their codecs, producers, cycles,
reachability and decoders.

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations

from ..lang import ast
from ..lang.diagnostics import Related, did_you_mean
from ..lang.vocabulary import CODECS, DATA_CODECS, DECODE_KEYS, MUX_STRATEGIES, NUMERIC_CODECS, SIZED_CODECS
from .check_tables import table_usable
from .graph import codec_width


class RouteChecks:
    def producer_codec(self, node: str) -> ast.Codec | None:
        kind = self.g.kind(node)
        if kind == "module":
            return self.g.modules[node].output
        if kind == "mux":
            outs = [self.g.modules[b.module.text].output for b in self.g.muxes[node].branches
                    if not b.identity and b.module.text in self.g.modules]
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
                producers = self.check_mux(stage, producers, first=i == 0)

    def known_module(self, name: ast.Name) -> bool:
        if name.text in self.g.modules:
            return True
        what = "an input, not a module" if name.text in self.g.inputs else None
        hints = did_you_mean(name.text, self.g.modules)
        self.misspelled |= {m for m in self.g.modules if hints and f"'{m}'" in hints[0]}
        self.error("E101", f"unknown module '{name.text}'" + (f" ('{name.text}' is {what})" if what else ""),
                   name.span, hints=hints)
        return False

    def check_mux(self, stage: ast.Mux, producers, first: bool = False):
        mid = self._mux_ids()[(stage.span, stage.selector)]
        if len(stage.branches) < 2:
            self.error("E105", f"a multiplexer needs at least two branches, this one has {len(stage.branches)}",
                       stage.span, hints=["route straight to the module without [ ] instead"])
        elif all(b.identity for b in stage.branches):
            self.error("E105", "every branch of this multiplexer is the identity `_`: it runs no module", stage.span,
                       hints=["give at least one value a module: `[plus1 | stop: _] by op`"])
        if stage.strategy is not None and stage.strategy.text not in MUX_STRATEGIES:
            self.error("E122", f"unknown multiplexer strategy '{stage.strategy.text}'", stage.strategy.span,
                       hints=did_you_mean(stage.strategy.text, MUX_STRATEGIES) + [", ".join(sorted(MUX_STRATEGIES))])
        for b in stage.branches:
            if not b.identity and self.known_module(b.module):
                source = self._branch_source(b, first and not self.g.muxes[mid].is_chain)
                if source is not False:
                    self.check_edges(producers if source is None else [(source, b.source.span)], b.module, b)
            elif b.identity and b.source is not None:
                self.error("E135", f"the identity branch '{b.value.text}' runs no module, so it reads no field",
                           b.source.span, hints=[f"remove `from {b.source.text}`"])
        misspelled_branch = any(b.value is b.module and b.module.text not in self.g.modules for b in stage.branches)
        if not misspelled_branch:  # `[binry | decimal]`: the unknown module is reported; a value mismatch is noise
            for position, sel in enumerate(stage.selectors, 1):
                self._check_mux_selector(stage, sel, position)
            self._unique_values([b.value for b in stage.branches], "this multiplexer")
        outs = [(b, self.g.modules[b.module.text].output) for b in stage.branches
                if not b.identity and b.module.text in self.g.modules]
        for b, codec in outs[1:]:
            if not _same_codec(codec, outs[0][1]):
                self.error("E104", f"branches of one multiplexer must share an output interface: "
                                   f"'{b.module.text}' gives {codec}, '{outs[0][0].module.text}' gives {outs[0][1]}",
                           b.span, related=[Related(self.g.modules[b.module.text].output.span, "declared here")])
        if self.g.muxes[mid].is_chain:
            self._check_chain_closure(stage, outs, producers)
        return [(mid, stage.span)]

    def _branch_source(self, branch: ast.Branch, first: bool) -> str | None | bool:
        """The field a branch reads with `from` (None: what the stage is fed; False: a bad `from`,
        reported: an unknown field, or `from` where branches read latents: past the route's first
        stage (`first` False), or in a chain)."""
        if branch.source is None:
            return None
        name = branch.source.text
        if not first or name not in self.g.inputs:
            self.misspelled.add(branch.module.text)  # a bad `from` leaves the module unfed: not also E107
        if not first:
            self.error("E135", f"'{branch.value.text}' reads the field '{name}', but only the first stage of a route "
                               "reads fields: later stages and chains read what the stage before gives",
                       branch.source.span,
                       hints=[f"remove `from {name}`: a branch reads a field of its own only in the multiplexer "
                              "right after the route's source (`route x -> [a | b from f] by s -> ...`)"])
            return False
        if name not in self.g.inputs:
            what = " ('{}' is a module, not an input field)".format(name) if name in self.g.modules else ""
            self.error("E101", f"unknown input field '{name}'{what}", branch.source.span,
                       hints=did_you_mean(name, self.g.inputs))
            return False
        return name

    def _check_mux_selector(self, stage: ast.Mux, selector: ast.Name, position: int) -> None:
        """The selector of one position: declared, and its values exactly the branches' values."""
        sel = selector.text
        where = f" (position {position} of the chain)" if len(stage.selectors) > 1 else ""
        if sel not in self.g.selectors:
            self.error("E101", f"unknown selector '{sel}'{where}", selector.span, hints=did_you_mean(sel, self.g.selectors))
            return
        if sel in [s.text for s in stage.selectors[:position - 1]]:
            self.error("E129", f"selector '{sel}' chooses two positions of one chain{where}", selector.span,
                       hints=["declare one selector per position: `select op2: ...`"])
            return
        decl = self.g.selectors[sel]
        values = [v.text for v in decl.values]
        written = [b.value.text for b in stage.branches]
        if all(b.value is b.module for b in stage.branches) and not set(written) & set(values):
            pairs = " | ".join(f"{v}: {m}" for v, m in zip(values, written + ["some_module"] * len(values)))
            self.error("E106", f"the branches {', '.join(written)} are not values of selector '{sel}'{where} "
                               f"({', '.join(values)})", stage.span,
                       hints=[f"name each branch's value: `[{pairs}] by {sel}`"],
                       related=[Related(decl.span, f"{sel} declared here")])
            return
        for b in stage.branches:
            if b.value.text not in values:
                self.error("E106", f"'{b.value.text}' is not a value of selector '{sel}'{where}", b.value.span,
                           hints=did_you_mean(b.value.text, values) + [f"{sel} is one of: {', '.join(values)}"],
                           related=[Related(decl.span, f"{sel} declared here")])
        missing = [v for v in values if v not in written]
        if missing:
            self.error("E106", f"no branch for {', '.join(missing)} of selector '{sel}'{where}",
                       selector.span if position > 1 else stage.span,
                       hints=[f"add a branch `{missing[0]}: some_module` (or `{missing[0]}: _` to pass through)"],
                       related=[Related(decl.span, f"{sel} declared here")])

    def _check_chain_closure(self, stage: ast.Mux, outs, producers) -> None:
        """A chain feeds each position's output to the next: every branch must take what it gives, and
        what enters the chain, so the identity and any order of operations fit (E129)."""
        for b, codec in outs:
            taken = self.g.modules[b.module.text].input
            if self._codec_known(codec) and self._codec_known(taken) and not _same_codec(taken, codec):
                self.error("E129", f"a chain feeds '{b.module.text}' its own output, but it takes {taken} and "
                                   f"gives {codec}", b.span,
                           related=[Related(self.g.modules[b.module.text].span, "declared here")],
                           hints=["chain modules map a latent to the same latent, e.g. latent(12) -> latent(12)"])
        entering = [self.producer_codec(node) for node, _ in producers if self.g.kind(node) != "input"]
        if any(self.g.kind(node) == "input" for node, _ in producers):
            self.error("E129", "a chain must follow an encoder: its positions pass latents along, not raw data",
                       stage.span, hints=["route the input through an encoder first: `x -> enc -> [...] by ...`"])
        elif outs and entering and entering[0] is not None and not _same_codec(entering[0], outs[0][1]):
            self.error("E129", f"a chain's output must be what enters it ({entering[0]}), but its branches "
                               f"give {outs[0][1]}", stage.span)

    def _mux_ids(self) -> dict:
        """(span, selector) -> multiplexer id, built once: a lookup per stage stays linear in the spec."""
        if not hasattr(self, "_mux_id_index"):
            self._mux_id_index = {}
            for k, v in self.g.muxes.items():
                self._mux_id_index.setdefault((v.span, v.selector), k)
        return self._mux_id_index

    def check_edges(self, producers, consumer: ast.Name, branch: ast.Branch | None = None) -> None:
        """Each producer's output against what `consumer` takes (`branch`: the multiplexer branch it runs as)."""
        target = self.g.modules[consumer.text]
        for node, _ in producers:
            if self.g.kind(node) == "input":
                self.check_input_codec(self.g.inputs[node], target, consumer.span, branch)
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
        return c.kind.text in CODECS or c.table is not None

    def check_input_codec(self, field_decl: ast.InputDecl, module: ast.ModuleDecl, at: ast.Span,
                          branch: ast.Branch | None = None) -> None:
        codec = module.input
        if codec.family == "table":
            problem = self.check_table_field(codec.table, field_decl) if table_usable(codec.table) else None
        else:
            problem = _input_codec_problem(field_decl, module)
        if problem is None:
            return
        name, hints = field_decl.name.text, []
        if branch is not None:
            fitting = [f for f, decl in self.g.inputs.items()
                       if f != name and _input_codec_problem(decl, module) is None]
            if fitting:
                hints.append(f"a branch may read its own field: `{branch.value.text}"
                             f"{'' if branch.value is branch.module else ': ' + branch.module.text} from {fitting[0]}`")
            else:
                hints.append(f"declare a field '{module.name.text}' can read, e.g. `input "
                             f"{module.name.text}_in: ...`, and read it with `from`")
        self.error("E117", f"interface mismatch: {problem}", at, hints=hints,
                   related=[Related(module.input.span, "input interface declared here"),
                            Related(field_decl.span, f"'{name}' declared here")])

    def check_single_producer(self) -> None:
        """A module reads exactly one producer; several producers need a multiplexer to choose."""
        for name in self.g.modules:
            producers = self.g.predecessors(name)
            if len(producers) > 1:
                spans = [self.g.edge(p, name)["span"] for p in producers]
                names = ", ".join("a multiplexer" if p.startswith("mux:") else f"'{p}'" for p in producers)
                self.error("E128", f"module '{name}' is fed by {names}; a module reads one producer", spans[-1],
                           related=[Related(spans[0], "first producer here")],
                           hints=["choose between them per example with a multiplexer: `[a | b] by selector`"])

    def check_cycles(self) -> None:
        cycle = self.g.find_cycle()
        if cycle is None:
            return
        path = " -> ".join(cycle)
        self.error("E103", f"cycle in the module graph: {_pretty(path)}", self.g.edge(cycle[-2], cycle[-1])["span"],
                   hints=["a tangle is a DAG: route each module's output forward only"])

    def check_reachability(self) -> None:
        reachable = self.g.reachable(self.g.inputs)
        for name, m in self.g.modules.items():
            if name not in reachable and name not in self.misspelled:
                self.error("E107", f"no route reaches module '{name}'", m.name.span,
                           hints=[f"add it to a route, e.g. `route <input> -> {name}`, or remove it"])

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
                if out.kind.text not in DATA_CODECS and out.kind.text not in self.g.tables:
                    self.error("E118", f"'{m.text}' outputs {out}, which can't be decoded; decoders output "
                                       f"bits(n), onehot(n), scalar, vector(n) or a table codec", m.span,
                               related=[Related(out.span, "output declared here")])
            if d.target.text not in self.g.targets:
                self.error("E101", f"unknown target '{d.target.text}'", d.target.span,
                           hints=did_you_mean(d.target.text, self.g.targets))
            for s in d.settings:
                self.decode_setting(d, s)
        for name, m in self.g.modules.items():
            if (m.output.kind.text in DATA_CODECS or m.output.table is not None) and name not in self.g.decoders:
                self.error("E108", f"decoder '{name}' has no target", m.name.span,
                           hints=[f"add `decode {name} as <target>`"])
        if not self.g.decoders and not any(d.is_error for d in self.diags):
            modules = list(self.g.modules.values())
            where = modules[0].name.span if modules else ast.Span(self.spec.path, 1, 1, 1, 2)
            self.error("E126", "nothing to train: no decoder", where,
                       hints=["declare a module with a data output and `decode it as <target>`"])


    def decode_setting(self, d: ast.DecodeDecl, s: ast.Setting) -> None:
        """`decode m as t tolerance 0.1`: how far a numeric answer may be from its target and still be right."""
        if s.key.text not in DECODE_KEYS:
            self.error("E115", f"unknown decode setting '{s.key.text}'", s.key.span,
                       hints=did_you_mean(s.key.text, DECODE_KEYS) + ["settings: tolerance NUMBER"])
            return
        v = s.value
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            self.error("E115", "tolerance takes a number >= 0", s.span)
            return
        for m in d.modules:
            decl = self.g.modules.get(m.text)
            if decl is not None and decl.output.kind.text not in NUMERIC_CODECS:
                self.error("E115", f"'{m.text}' outputs {decl.output}: a tolerance applies only to scalar and "
                                   "vector outputs", s.span,
                           hints=["categorical answers are right or wrong; remove `tolerance`"])
            else:
                self.train.tolerance[m.text] = float(v)


def _input_codec_problem(field_decl: ast.InputDecl, module: ast.ModuleDecl) -> str | None:
    """Why a field's values don't fit a module's input codec (None: they fit, or the codec is reported elsewhere)."""
    codec, t, name = module.input, field_decl.type, field_decl.name.text
    kind = codec.kind.text
    if kind not in CODECS or (kind in SIZED_CODECS and codec.size is None):
        return None
    if kind == "latent":
        return f"'{module.name.text}' takes a latent, but '{name}' is data; give it a data codec"
    if kind in ("bits", "gray"):
        if not isinstance(t, ast.IntType) or t.lo < 0 or t.hi >= 2 ** codec.size:
            return f"{codec} holds ints 0..{2 ** codec.size - 1}, but '{name}' is {t.describe()}"
    elif kind == "onehot":
        if isinstance(t, ast.CategoryType):
            if len(t.values) > codec.size:
                return f"{codec} has {codec.size} slots, but '{name}' has {len(t.values)} categories"
        elif not isinstance(t, ast.IntType) or t.lo < 0 or t.hi >= codec.size:
            return f"{codec} holds ints 0..{codec.size - 1}, but '{name}' is {t.describe()}"
    elif kind == "scalar":
        if not isinstance(t, (ast.IntType, ast.FloatType)):
            return f"scalar needs a numeric field, but '{name}' is {t.describe()}"
    elif kind == "vector":
        if not isinstance(t, ast.VectorType) or t.size != codec.size:
            return f"{codec} needs a vector({codec.size}) field, but '{name}' is {t.describe()}"
    elif kind == "ngrams":
        if not isinstance(t, ast.TextType):
            return f"{codec} reads a text field, but '{name}' is {t.describe()}"
    return None


def _same_codec(a: ast.Codec, b: ast.Codec) -> bool:
    return a.kind.text == b.kind.text and codec_width(a) == codec_width(b)


def _pretty(path: str) -> str:
    return " ".join(f"[mux by {p.split(':')[1]}]" if p.startswith("mux:") else p for p in path.split(" "))
