"""The result of checking a spec: its graph, resolved settings and every diagnostic (immutable)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..lang import ast, expr
from ..lang.diagnostics import Diagnostic
from .composition import Composition
from .graph import TangleGraph

DEFAULT_TOLERANCE = 0.5  # a numeric answer that rounds to its target is right
MEMORY_GB = 4.0  # default cap on a run's estimated memory (`train memory N`, in GB)


@dataclass
class TrainConfig:
    steps: int = 300
    batch: int = 64
    optimizer: str = "adam"
    lr: float = 0.01
    seed: int = 0
    until_exact: bool = False
    until_loss: bool = False  # stop when the evaluation loss has not improved for `patience` evaluations
    patience: int = 5
    schedule: str = "constant"  # constant | cosine | step, after `warmup` steps of linear warm-up
    warmup: int = 0
    decay: float = 0.5  # `schedule step`: the rate is multiplied by this every `decay_every` steps
    decay_every: int | None = None  # None: a third of the phase's steps
    weights: dict[str, float] = field(default_factory=dict)
    mux: str = "auto"  # the cost model in tanglec/mux.py: partition on CPU (measured), where for 1 branch
    update: str = "dense"  # lazy: a stacked multiplexer's branches move only on steps that route rows to them
    batches: str = "mixed"  # grouped: every batch holds the rows of one route (backend/datasets.py)
    eval_every: int = 10
    strategy: str = "default"  # tf.distribute strategy (docs/distributed.md); --strategy overrides
    memory_gb: float = MEMORY_GB
    tolerance: dict[str, float] = field(default_factory=dict)  # per numeric decoder (`decode ... tolerance`)


@dataclass
class DataConfig:
    source: str = "enumerate"  # enumerate | sample | file
    count: int | None = None
    path: Path | None = None
    seed: int = 0
    eval_fraction: float = 0.0
    group: str | None = None  # `eval F group FIELD`: rows with the same value of this input split together
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

    def tolerance(self, decoder: str) -> float:
        """How far a numeric decoder's answer may be from its target and still count as right; the one
        rule training's exactness, eval, query and predict share."""
        return self.train.tolerance.get(decoder, DEFAULT_TOLERANCE)

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
