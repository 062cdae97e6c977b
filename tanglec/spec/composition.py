"""Composition and transfer: alignment, held-out routes, frozen modules, starting from a trained run,
training phases and few-shot data. Checked here (no TensorFlow); codegen and train act on the result.

Why alignment exists: joint training with summed losses alone does not make untrained routes work —
the latents of different encoders drift apart, and an operation only works on the part of the latent
space it was trained on. `align a, b on x` adds a consistency loss that pulls the modules' latents
together for the same value of x, which is what lets a held-out route or a new module's untrained
routes compose (see the transfer report, `tanglec transfer`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..lang import ast, expr
from ..lang.diagnostics import Diagnostic, Related, did_you_mean
from ..lang.vocabulary import OPTIMIZERS, PHASE_KEYS, alias_hint


# The weight of an `align` term without `weight W`. The term is normalised (codegen.Disagreement: the
# disagreement in units of the latents' spread across the batch), so one weight suits every latent size;
# 10 by measurement (bench/align_default.py: specs/arith99_holdout.tangle's held-out route at 100% on
# seeds 0-4; weight 1 reached 98% after 1500 steps).
DEFAULT_ALIGN_WEIGHT = 10.0


@dataclass
class AlignGroup:
    """`align a, b on x`: the modules' latents agree for the same x. On a fold target
    (`align enc on y`), `chain` is the chain the fold follows: after every position the chain's latent
    agrees with each module's encoding of the fold's value so far."""

    modules: list[str]
    field: str
    weight: float
    span: ast.Span
    chain: str | None = None
    positions: int = 0  # the chain's
    reads: list[str] = field(default_factory=list)  # the field each module reads (a label alignment's differ)

    @property
    def step_inputs(self) -> list[str]:
        """Model inputs of a chain alignment: the fold's value after each position."""
        return [f"{self.field}_step{k}" for k in range(1, self.positions + 1)]

    @property
    def output_name(self) -> str:
        return "align_" + "_".join(self.modules) + (f"_on_{self.field}" if self.chain else "")


@dataclass
class PhaseConfig:
    name: str
    steps: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    modules: list[str] | None = None  # trainable in this phase (None: every module not frozen)
    until_exact: bool | None = None
    batch: int | None = None


@dataclass
class Composition:
    aligns: list[AlignGroup] = field(default_factory=list)
    holdouts: list[list[str]] = field(default_factory=list)
    held_out_lengths: set[int] = field(default_factory=set)  # `holdout length 3, 4`
    frozen: set[str] = field(default_factory=set)
    init: Path | None = None
    init_span: ast.Span | None = None
    phases: list[PhaseConfig] = field(default_factory=list)
    only: dict[str, str] = field(default_factory=dict)  # training rows restricted to these selector values

    def is_held_out(self, route) -> bool:
        return route.length in self.held_out_lengths or any(_runs_through(route.modules, chain)
                                                            for chain in self.holdouts)


@dataclass(frozen=True)
class InitRun:
    """The trained run a spec starts from, as the pipeline read it (spec checks never read runs)."""
    path: Path
    span: ast.Span | None = None  # the `init` statement; None for --init
    modules: dict[str, ast.ModuleDecl] | None = None  # the run's declarations; None: no run there yet
    aligned: tuple[frozenset[str], ...] = ()  # module groups the run aligned
    problems: tuple[Diagnostic, ...] = ()  # why the run can't be read


def declared_init(spec: ast.Spec, override: Path | None = None) -> tuple[Path, ast.Span | None] | None:
    """The run a spec starts from and where it says so: --init's, else its first `init` statement's
    (relative to the spec's folder)."""
    if override is not None:
        return Path(override).resolve(), None
    inits = spec.of(ast.InitDecl)
    if not inits:
        return None
    return (Path(spec.path).parent / inits[0].path).resolve(), inits[0].span


def _runs_through(modules: list[str], chain: list[str]) -> bool:
    """Whether a route's modules contain the chain's modules in that order."""
    position = 0
    for m in modules:
        if position < len(chain) and m == chain[position]:
            position += 1
    return position == len(chain)


def is_trained(route, comp: Composition) -> bool:
    """Whether training data may take this route (static: held-out routes and `only` filters)."""
    if comp.is_held_out(route):
        return False
    return all(route.selection.get(sel, value) == value for sel, value in comp.only.items())


def check_composition(checker) -> None:
    """Fill checker.composition from align/holdout/freeze/init/phase statements, reporting problems."""
    comp: Composition = checker.composition
    spec, g = checker.spec, checker.g
    for decl in spec.of(ast.AlignDecl):
        _check_align(checker, decl)
    holdouts = spec.of(ast.HoldoutDecl)
    acyclic = bool(holdouts) and g.is_dag()  # routes need a DAG (a cycle is reported as E103)
    for decl in holdouts:
        if decl.lengths:
            _check_holdout_length(checker, decl, acyclic)
            continue
        known = [m for m in decl.modules if checker.known_module(m)]
        if len(known) != len(decl.modules) or not acyclic:
            continue
        chain = [m.text for m in decl.modules]
        if not any(_runs_through(r.modules, chain) for r in g.routes()):
            checker.error("E161", f"no route runs through {' -> '.join(chain)}", decl.span,
                          hints=["list modules in route order, e.g. `holdout binary -> times2`"])
        else:
            comp.holdouts.append(chain)
    for decl in spec.of(ast.FreezeDecl):
        comp.frozen |= {m.text for m in decl.modules if checker.known_module(m)}
    inits = spec.of(ast.InitDecl)
    if inits:
        comp.init, comp.init_span = declared_init(spec)
        for extra in inits[1:]:
            checker.error("E102", "only one `init` statement is allowed", extra.span,
                          related=[Related(inits[0].span, "first init")])
    for decl in spec.of(ast.PhaseDecl):
        comp.phases.append(_phase(checker, decl))
    for name in sorted(comp.frozen):
        if comp.init is None:
            span = next(m.span for d in spec.of(ast.FreezeDecl) for m in d.modules if m.text == name)
            checker.warn("W204", f"'{name}' is frozen but has no initial weights: it keeps its random ones",
                         span, hints=["start from a trained run: `init \"../runs/arith\"` or --init RUN"])


def _check_holdout_length(checker, decl: ast.HoldoutDecl, acyclic: bool) -> None:
    word = decl.modules[0]
    if word.text != "length":
        checker.error("E161", f"`holdout {word.text} {decl.lengths[0]}`: a number follows only `holdout length`",
                      word.span, hints=["hold out chain lengths with `holdout length 3, 4`, routes with "
                                        "`holdout binary -> times2`"])
        return
    lengths = {r.length for r in checker.g.routes()} if acyclic else set()
    for n in decl.lengths:
        if n not in lengths:
            known = ", ".join(str(k) for k in sorted(x for x in lengths if x is not None))
            checker.error("E161", f"no route applies {n} operation{'s' * (n != 1)}", decl.span,
                          hints=[f"the chains' lengths are {known}" if known else
                                 "declare a chain: `[op1 | op2 | stop: _] by s1, s2`"])
            return
    checker.composition.held_out_lengths |= set(decl.lengths)


def _fold_chain(checker, decl: ast.AlignDecl) -> str | None:
    """The chain an alignment on a fold target follows (the one its fold's selectors choose), or None
    after reporting why there is none (E164)."""
    g = checker.g
    target = g.targets[decl.field.text]
    if not isinstance(target.expr, ast.Fold):
        checker.error("E164", f"'{decl.field.text}' is a target but not a fold, so there is no chain to align",
                      decl.field.span, hints=["align encoders on an input (`align a, b on x`) or on a target "
                                              "`fold v from x by s1, s2 { ... }`"])
        return None
    derived = sorted(expr.referenced_names(target.expr.start) - set(g.inputs))
    if derived:
        checker.error("E164", f"the fold '{decl.field.text}' starts from {', '.join(derived)}, not from input "
                              f"fields only, so its steps can't be computed where the model runs",
                      target.expr.start.span, hints=["start the fold from an expression of input fields"])
        return None
    wanted = [s.text for s in target.expr.selectors]
    for mid, mux in g.muxes.items():
        if [s.text for s in mux.selectors] == wanted:
            return mid
    checker.error("E164", f"no chain chooses by {', '.join(wanted)}, the selectors of the fold "
                          f"'{decl.field.text}'", decl.field.span,
                  related=[Related(target.span, f"'{decl.field.text}' declared here")],
                  hints=["fold over the selectors of a chain, in its order"])
    return None


def _check_align(checker, decl: ast.AlignDecl) -> None:
    g = checker.g
    chain = None
    if decl.field.text in g.targets and decl.field.text not in g.inputs:
        chain = _fold_chain(checker, decl)
        if chain is None:
            return
    elif len(decl.modules) < 2:
        checker.error("E160", "aligning on an input needs two modules or more", decl.span,
                      hints=[f"align {decl.modules[0].text}, other on {decl.field.text}"])
        return
    if chain is None and decl.field.text not in g.inputs:
        checker.error("E101", f"unknown input '{decl.field.text}'", decl.field.span,
                      hints=did_you_mean(decl.field.text, g.inputs))
        return
    modules = [m for m in decl.modules if checker.known_module(m)]
    if len(modules) != len(decl.modules):
        return
    for m in modules:
        if m.text in checker.misspelled:
            return  # its route names it wrongly; that is the error to fix
        if chain is not None and g.encoded_field(m.text) is None:
            checker.error("E160", f"'{m.text}' reads no input, so it can't encode the values of "
                                  f"'{decl.field.text}'", m.span, hints=["align the chain with encoders"])
            return
        if chain is None and g.encoded_field(m.text) is None:
            checker.error("E160", f"'{m.text}' reads no input field, so it has no encoding of a row to align",
                          m.span, hints=["align encoders: modules a route feeds from an input field"])
            return
    if chain is None and not any(g.encoded_field(m.text) == decl.field.text for m in modules):
        readers = [n for n in g.modules if g.encoded_field(n) == decl.field.text]
        checker.error("E160", f"no aligned module reads '{decl.field.text}', so nothing gives the latent of the "
                              f"label to align to", decl.field.span,
                      hints=[f"align with a module that reads it: `align {modules[0].text}, {readers[0]} on "
                             f"{decl.field.text}`" if readers else
                             f"align on a field one of them reads: {', '.join(sorted({str(g.encoded_field(m.text)) for m in modules}))}"])
        return
    compared = list(modules)
    if chain is not None:  # each encoder's latent is compared with the chain's, which its branches give
        branch = next((b.module for b in g.muxes[chain].branches if b.module.text in g.modules), None)
        compared = ([branch] if branch else []) + compared
    outs = [g.modules[m.text].output for m in compared]
    for m, codec in zip(compared[1:], outs[1:]):
        if codec.kind.text != outs[0].kind.text or codec.size != outs[0].size:
            checker.error("E104", f"aligned modules must share an output: '{m.text}' gives {codec}, "
                                  f"'{compared[0].text}' gives {outs[0]}", m.span)
            return
    weight = DEFAULT_ALIGN_WEIGHT
    for s in decl.settings:
        if s.key.text != "weight":
            checker.error("E115", f"unknown align setting '{s.key.text}'", s.key.span,
                          hints=did_you_mean(s.key.text, ["weight"]) + ["align a, b on x weight 0.5"])
        elif isinstance(s.value, (int, float)) and s.value >= 0:
            weight = float(s.value)
        else:
            checker.error("E115", "weight is a number >= 0", s.span)
    names = [m.text for m in decl.modules if m.text in g.modules]
    positions = len(g.muxes[chain].selectors) if chain else 0
    reads = [g.encoded_field(n) or decl.field.text for n in names]
    checker.composition.aligns.append(AlignGroup(names, decl.field.text, weight, decl.span, chain, positions, reads))


def _phase(checker, decl: ast.PhaseDecl) -> PhaseConfig:
    phase = PhaseConfig(decl.name.text)
    for s in decl.settings:
        key = s.key.text
        if key not in PHASE_KEYS:
            checker.error("E115", f"unknown phase setting '{key}'", s.key.span,
                          hints=alias_hint(key) + did_you_mean(key, PHASE_KEYS) + ["settings: " + ", ".join(sorted(PHASE_KEYS))])
        elif key in ("steps", "batch"):
            v = checker._number(s, 1, 10_000_000, True)
            if v is not None:
                setattr(phase, key, v)
        elif key == "lr" or key in OPTIMIZERS:
            v = checker._number(s, 1e-9, 10, False)
            if v is not None:
                phase.lr = v
            if key != "lr":
                phase.optimizer = key
        elif key == "optimizer":
            if isinstance(s.value, ast.Name) and s.value.text in OPTIMIZERS:
                phase.optimizer = s.value.text
            else:
                checker.error("E115", "optimizer is one of " + ", ".join(sorted(OPTIMIZERS)), s.span)
        elif key == "until":
            if isinstance(s.value, ast.Name) and s.value.text == "exact":
                phase.until_exact = True
            else:
                checker.error("E115", "`until exact` is the only stopping rule", s.span)
        elif key == "modules":
            names = s.value if isinstance(s.value, list) else [s.value] if isinstance(s.value, ast.Name) else []
            if not names:
                checker.error("E115", "modules takes module names: `modules gray, plus1`", s.span)
            phase.modules = [n.text for n in names if checker.known_module(n)]
    return phase


def check_data_limits(checker, setting: ast.Setting) -> bool:
    """Few-shot data settings: `limit N`, `per_route N`, `only selector:value`. False if not one of them."""
    key = setting.key.text
    data = checker.data
    if key in ("limit", "per_route"):
        v = checker._number(setting, 1, 10_000_000, True)
        if v is not None:
            setattr(data, key, v)
        return True
    if key == "only":
        value = setting.value
        if not (isinstance(value, tuple) and isinstance(value[1], ast.Name)):
            checker.error("E115", "only is written `only selector:value`", setting.span)
            return True
        sel, val = value
        if sel.text not in checker.g.selectors:
            checker.error("E101", f"unknown selector '{sel.text}'", sel.span,
                          hints=did_you_mean(sel.text, checker.g.selectors))
            return True
        values = [v.text for v in checker.g.selectors[sel.text].values]
        if val.text not in values:
            checker.error("E106", f"'{val.text}' is not a value of selector '{sel.text}'", val.span,
                          hints=did_you_mean(val.text, values))
            return True
        checker.composition.only[sel.text] = val.text
        return True
    return False


def check_alignment_coverage(checker) -> None:
    """Warn when an untrained route relies on a latent that nothing ties to the trained ones."""
    comp: Composition = checker.composition
    if comp.init is not None and not comp.init.is_dir():
        return  # what the init run trained and aligned is unknown until it exists (W206 says so)
    if not comp.holdouts and not comp.held_out_lengths and not comp.only:
        return  # training may take every route (spares enumerating routes through a large graph)
    g = checker.g
    routes = g.routes()
    pretrained = set(checker.init_modules)
    trained = [r for r in routes if is_trained(r, comp) or set(r.modules) <= pretrained]

    def seen_together(a: str, b: str) -> bool:
        return (a in pretrained and b in pretrained) or any(a in r.modules and b in r.modules for r in trained)

    if len(trained) == len(routes) or not trained:
        return
    aligned = [set(a.modules) for a in comp.aligns] + [set(group) for group in checker.init_aligned]
    warned = set()
    for route in routes:
        if route in trained:
            continue
        for mux in g.muxes.values():
            chosen = mux.module_for(route.selection.get(mux.selector.text, ""))
            if chosen is None or chosen not in route.modules or chosen in g.decoders:
                continue
            after = [m for m in g.successors(mux.id) if m in route.modules]  # what reads the mux's output
            unseen = [d for d in after if not seen_together(chosen, d)]
            if not unseen or (chosen, mux.id) in warned:
                continue
            # which siblings did train with what comes next? aligning with one of them bridges the gap
            siblings = [b.module.text for b in mux.branches if b.module.text != chosen and
                        seen_together(b.module.text, unseen[0])]
            if not siblings or any(chosen in group and group & set(siblings) for group in aligned):
                continue
            warned.add((chosen, mux.id))
            field = g.encoded_field(chosen)
            checker.warn("W205", f"untrained route {route.name} depends on the latent of '{chosen}', which is "
                                 f"not aligned with {', '.join(siblings)}", mux.span,
                         hints=[f"add `align {chosen}, {siblings[0]} on {field}` so {unseen[0]} sees the "
                                f"latent it was trained on"] if field else
                         [f"{unseen[0]} never saw '{chosen}'s latent in training"])


def _train_first_hints(spec_path: str, run_dir: Path) -> list[str]:
    """How to make a missing init run: when a spec beside this one bears its name (runs/arith <-
    arith.tangle), the exact command, with paths as the user would type them from here."""
    import os

    candidate = Path(spec_path).parent / f"{run_dir.name}.tangle"
    if not candidate.is_file():
        return ["create it with `tanglec compile SPEC -o DIR`"]
    return [f"train it first: tanglec compile {os.path.relpath(candidate)} -o {os.path.relpath(run_dir)}"]


def missing_init_run(checked) -> Diagnostic | None:
    """E140 when the `init` run does not exist (yet): `check` passes such a spec with W206, but
    training needs the weights, so compile and explore's training stop here."""
    init = checked.composition.init
    if init is None or init.is_dir():
        return None
    return Diagnostic("E140", f"init: no run directory at {init}", checked.composition.init_span,
                      hints=_train_first_hints(checked.spec.path, init))


def require_init_run(checked) -> None:
    """Raise `missing_init_run`'s E140, if any."""
    from ..lang.diagnostics import TangleError

    problem = missing_init_run(checked)
    if problem is not None:
        raise TangleError([problem])


def check_init(checker, run_dir: Path, span: ast.Span | None, run: InitRun | None) -> None:
    """Modules of this spec that exist in the run must have the same interface and layers (E162).
    A run that does not exist yet is only a warning (W206): the spec itself is fine, and checking it
    (or drawing its graph) must not need a trained run; `missing_init_run` stops training. `run` is
    what the pipeline read from `run_dir` (None: not read, so only its existence is checked)."""
    if not run_dir.is_dir():
        checker.warn("W206", f"init: no run directory at {run_dir} yet; compile needs it (and alignment "
                     "is checked against it then)", span,
                     hints=_train_first_hints(checker.spec.path, run_dir))
        return
    if run is None:
        return
    for d in run.problems:
        checker.error("E140", f"init: {d.message}", span, hints=d.hints)
    if run.problems or run.modules is None:
        return
    checker.init_modules = {}
    checker.init_aligned = list(run.aligned)
    for name, decl in checker.g.modules.items():
        prev = run.modules.get(name)
        if prev is None:
            continue
        mine = (str(decl.input), str(decl.output), [str(l) for l in decl.layers])
        theirs = (str(prev.input), str(prev.output), [str(l) for l in prev.layers])
        if mine != theirs:
            checker.error("E162", f"module '{name}' does not match the one in {run_dir.name}: here "
                                  f"{decl.input} -> {decl.output} = {', '.join(mine[2])}; there {prev.input} -> "
                                  f"{prev.output} = {', '.join(theirs[2])}", decl.name.span,
                          related=[Related(prev.name.span, "the run's declaration")],
                          hints=["rename the module to train it from scratch, or match the run's declaration"])
        else:
            checker.init_modules[name] = prev
