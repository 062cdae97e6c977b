"""Generated valid specs for the CLI fuzzer (`clifuzz`): varied shapes, tiny step counts, their data files.

Encoders, operations, decoders; multiplexers of 2..4 branches; fan-out; every data codec; targets as
expressions or data columns; data enumerated, sampled or read from CSV/JSONL; align, holdout, freeze, phases.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

ACTIVATIONS = ("relu", "tanh", "gelu", "elu", "swish", "sigmoid", "leaky_relu", "linear")

@dataclass
class Spec:
    """A generated spec, the data files it reads, and how to ask it a valid query."""

    text: str
    files: dict[str, bytes] = field(default_factory=dict)
    query: list[str] = field(default_factory=list)
    shape: list[str] = field(default_factory=list)  # the features used, for the report
    phase_steps: list[int] = field(default_factory=list)  # steps each phase trains (one without phases)

    def with_data(self, name: str, data: bytes) -> Spec:
        return replace(self, files={**self.files, name: data})

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        path = folder / "spec.tangle"
        path.write_text(self.text)
        return path


def _bits_for(top: int) -> int:
    return max(1, math.ceil(math.log2(top + 1)))


def _layers(rng: random.Random, width: int, hidden: int) -> str:
    """A short layer stack ending at `width` (a module's output codec width)."""
    parts = []
    for _ in range(rng.randint(0, 2)):
        kind = rng.random()
        if kind < 0.6:
            parts.append(f"dense {hidden} {rng.choice(ACTIVATIONS)}")
        elif kind < 0.75:
            parts.append("norm")
        elif kind < 0.9:
            parts.append(f"dropout {rng.choice(['0.1', '0.2', '0'])}")
        else:
            parts.append(f"residual(dense {hidden} relu, dense {hidden})")
            parts.insert(len(parts) - 1, f"dense {hidden}")  # a residual block ends at its input's width
    parts.append(f"dense {width}")
    return ", ".join(parts)


def _out_codec(rng: random.Random, top: int) -> tuple[str, int]:
    """A decoder codec that holds the integers 0..top."""
    bits = _bits_for(top)
    return rng.choice([(f"bits({bits})", bits), (f"gray({bits})", bits), (f"onehot({top + 1})", top + 1),
                       ("scalar", 1)])


def generate_spec(rng: random.Random) -> Spec:
    """A spec that `tanglec check` accepts (almost always: callers check it), small enough to train in seconds."""
    shape: list[str] = []
    latent = rng.choice([4, 6, 8])
    hidden = rng.choice([4, 8, 12])
    kind = rng.choices(["int", "category", "float", "vector", "text"], [5, 2, 2, 2, 1])[0]
    shape.append(f"input:{kind}")
    lines: list[str] = []
    query: list[str] = []
    columns: dict[str, callable] = {}  # data-file column -> value generator (row index -> cell)
    enumerable = kind in ("int", "category")

    # the input and its encoder codecs
    if kind == "int":
        top = rng.choice([3, 5, 7, 9, 15])
        lines.append(f"input x: int 0..{top}")
        bits = _bits_for(top)
        in_codecs = [f"bits({bits})", f"gray({bits})", f"onehot({top + 1})", "scalar"]
        query.append(f"x={rng.randint(0, top)}")
        columns["x"] = lambda r, t=top: r.randint(0, t)
    elif kind == "category":
        values = ["red", "green", "blue", "cyan"][: rng.randint(2, 4)]
        if rng.random() < 0.3:  # values as a data file spells them
            values = ["light red", "dark-green", "Iris-setosa", ">50K"][: len(values)]
            shape.append("category:quoted")
        category_values = [v if v.isidentifier() else f'"{v}"' for v in values]  # as the spec writes them
        lines.append("input x: category " + " | ".join(category_values))
        in_codecs = [f"onehot({len(values) + rng.randint(0, 1)})"]
        query.append(f"x={rng.choice(values)}")
        columns["x"] = lambda r, v=values: r.choice(v)
    elif kind == "float":
        lo, hi = rng.choice([(0, 1), (-2, 2), (0, 10)])
        lines.append(f"input x: float {lo}..{hi}")
        in_codecs = ["scalar"]
        query.append(f"x={rng.uniform(lo, hi):.3f}")
        columns["x"] = lambda r, a=lo, b=hi: round(r.uniform(a, b), 4)
    elif kind == "text":
        words = ["seven", "Seventy-one", "sept", "soixante et onze", "élan", "日本", "x y"]
        lines.append("input x: text")
        in_codecs = [f"ngrams({rng.choice([8, 32, 128])})"]
        query.append(f"x={rng.choice(words)}")
        columns["x"] = lambda r, w=words: r.choice(w)
    else:
        vector_size = rng.randint(1, 5)
        lines.append(f"input x: vector({vector_size})")
        in_codecs = [f"vector({vector_size})"]
        query.append("x=" + ",".join(str(rng.randint(0, 3)) for _ in range(vector_size)))
        columns["x"] = lambda r, n=vector_size: [r.randint(0, 3) for _ in range(n)]

    # encoders: one, or a multiplexer over 2..4 of them
    route = "x"
    modules: list[str] = []
    selector_values: dict[str, list[str]] = {}
    encoders = []
    n_enc = rng.choice([1, 1, 2, 3, 4]) if len(in_codecs) > 1 or rng.random() < 0.3 else 1
    for i in range(n_enc):
        name = f"enc{i}"
        codec = in_codecs[i % len(in_codecs)]
        modules.append(f"module {name}: {codec} -> latent({latent}) = {_layers(rng, latent, hidden)}")
        encoders.append(name)
    strategies = ["", " using where", " using partition", " using gather", " using auto"]
    if n_enc > 1:
        selector_values["via"] = encoders
        route += f" -> [{' | '.join(encoders)}] by via{rng.choice(strategies)}"
        shape.append(f"encoder-mux:{n_enc}")
    else:
        route += " -> enc0"

    # operations: none, one, or a multiplexer
    ops: list[str] = []
    n_ops = rng.choice([0, 1, 2, 2, 3, 4])
    for i in range(n_ops):
        name = f"op{i}"
        modules.append(f"module {name}: latent({latent}) -> latent({latent}) = {_layers(rng, latent, hidden)}")
        ops.append(name)
    if n_ops > 1:
        selector_values["op"] = ops
        route += f" -> [{' | '.join(ops)}] by op{rng.choice(strategies)}"
        shape.append(f"op-mux:{n_ops}")
    elif n_ops == 1:
        route += " -> op0"
    for sel, values in selector_values.items():
        lines.append(f"select {sel}: {' | '.join(values)}")
        query.append(f"{sel}={rng.choice(values)}")
        columns[sel] = lambda r, v=values: r.choice(v)

    # the target: an expression over x (per operation when there is an op multiplexer), or a data column
    data_kind = rng.choice(["enumerate", "sample", "csv", "jsonl"] if enumerable else
                           ["sample", "csv", "jsonl"] if kind == "float" else ["csv", "jsonl"])
    modulus = rng.choice([2, 3, 4, 8, 10])
    from_data = data_kind in ("csv", "jsonl") and (kind in ("vector", "text") or rng.random() < 0.4)
    targets: list[str] = []
    if from_data:
        targets.append(f"target y: int 0..{modulus - 1} from data")
        columns["y"] = lambda r, m=modulus: r.randint(0, m - 1)
        shape.append("target:data")
    else:
        if kind == "int":
            forms = ["(x + {k}) % {m}", "(x * {k}) % {m}", "min(x, {k}) % {m}", "abs(x - {k}) % {m}",
                     "(x // 2 + {k}) % {m}", "if x > {k} then 1 else 0"]
        elif kind == "category":
            first, second = category_values[:2]
            forms = [f"match x {{{{ {first}: {{k}} % {{m}}, _: 0 }}}}", f"match x {{{{ {second}: 1, _: {{k}} % {{m}} }}}}"]
        else:
            forms = ["if x > 0.5 then 1 else 0", "if x < 0 or x > 1 then 0 else 1"]
        per_op = [rng.choice(forms).format(k=rng.randint(0, 5), m=modulus) for _ in ops]
        if len(ops) > 1 and kind == "int":
            cases = ", ".join(f"{op}: {form}" for op, form in zip(ops, per_op))
            targets.append(f"target y = match op {{ {cases} }}")
            shape.append("target:match")
        else:
            targets.append(f"target y = {rng.choice(forms).format(k=rng.randint(0, 5), m=modulus)}")
            shape.append("target:expr")
        if rng.random() < 0.3:
            targets.append("target z: int 0..1 = if y >= 1 then 1 else 0")
    lines += modules

    # decoders: one, or a fan-out of 2..3, each with a codec that holds its target
    decoders = []
    n_dec = rng.choice([1, 1, 2, 3])
    for i in range(n_dec):
        target = "z" if i == 1 and len(targets) > 1 else "y"
        top = 1 if target == "z" else modulus - 1
        codec, width = _out_codec(rng, top)
        lines.append(f"module dec{i}: latent({latent}) -> {codec} = {_layers(rng, width, hidden)}")
        decoders.append((f"dec{i}", target, codec))
        shape.append(f"decoder:{codec.split('(')[0]}")
    if from_data and rng.random() < 0.4:  # a vector decoder, trained on a vector column
        size = rng.randint(1, 3)
        targets.append(f"target w: vector({size}) from data")
        columns["w"] = lambda r, n=size: [r.randint(0, 2) for _ in range(n)]
        lines.append(f"module decv: latent({latent}) -> vector({size}) = {_layers(rng, size, hidden)}")
        decoders.append(("decv", "w", f"vector({size})"))
        shape.append("decoder:vector")
    route += " -> " + ", ".join(d for d, _, _ in decoders)
    if len(decoders) > 1:
        shape.append(f"fan-out:{len(decoders)}")
    lines.append(f"route {route}")
    lines += targets
    for target in dict.fromkeys(t for _, t, _ in decoders):
        lines.append(f"decode {', '.join(d for d, t, _ in decoders if t == target)} as {target}")
    z_target = "target z: int 0..1 = if y >= 1 then 1 else 0"
    if z_target in lines and "z" not in {t for _, t, _ in decoders}:
        lines.remove(z_target)

    # composition
    if len(encoders) > 1 and rng.random() < 0.5:
        lines.append(f"align {', '.join(encoders[:rng.randint(2, len(encoders))])} on x weight {rng.choice([1, 0.5])}")
        shape.append("align")
    if len(encoders) > 1 and len(ops) > 1 and rng.random() < 0.4:
        lines.append(f"holdout {encoders[0]} -> {ops[-1]}")
        shape.append("holdout")
    if ops and rng.random() < 0.15:
        lines.append(f"freeze {ops[0]}")
        shape.append("freeze")

    # data
    files: dict[str, bytes] = {}
    settings = []
    if rng.random() < 0.4:
        settings.append(f"eval {rng.choice(['0.2', '0.25', '0.5'])}")
    if rng.random() < 0.3:
        settings.append(f"seed {rng.randint(0, 9)}")
    if rng.random() < 0.15:
        settings.append(f"limit {rng.randint(8, 40)}")
    if rng.random() < 0.1 and selector_values:
        settings.append(f"per_route {rng.randint(2, 10)}")
    if data_kind == "enumerate":
        lines.append(" ".join(["data enumerate", *settings]))
    elif data_kind == "sample":
        lines.append(" ".join([f"data sample {rng.randint(20, 120)}", *settings]))
    else:
        name = f"data/rows.{data_kind}"
        rows = rng.randint(20, 60)
        spread = {}
        if kind == "vector" and vector_size > 1 and rng.random() < 0.4:  # one column per value, as data sets have it
            spread["x"] = [f"px{i}" for i in range(vector_size)]
            lines[lines.index(f"input x: vector({vector_size})")] += f" from px0..px{vector_size - 1}"
            shape.append("input:columns")
        files[name] = _data_file(rng, data_kind, columns, rows, spread)
        if rng.random() < 0.2:
            settings.append(f"stream {rng.choice(['always', 'never', 'auto'])}")
        lines.append(" ".join([f'data file "{name}"', *settings]))
    shape.append(f"data:{data_kind}")

    # training: tiny
    steps = rng.randint(3, 20)
    train = [f"train steps {steps} batch {rng.choice([4, 8, 16, 32])}",
             rng.choice(["adam 0.01", "sgd 0.05", "rmsprop 0.005", "adamw 0.01", "optimizer adam lr 0.02"]),
             f"seed {rng.randint(0, 5)}"]
    if rng.random() < 0.3:
        train.append("until exact")
    if rng.random() < 0.4:
        train.append(f"eval_every {rng.choice([1, 2, 5, 10, 50])}")
    if rng.random() < 0.2:
        train.append(f"mux {rng.choice(['where', 'partition', 'gather', 'auto'])}")
    if n_dec > 1 and rng.random() < 0.3:
        train.append(f"weight dec0:{rng.choice([2, 0.5])}")
    phase_steps = [steps]
    if rng.random() < 0.06:  # an integer learning rate: valid, and a different number type (finding 8)
        train[1] = rng.choice(["adam 1", "sgd 1", "optimizer adam lr 1"])
        shape.append("edge:integer-lr")
    lines.append(" ".join(train))
    if rng.random() < 0.25:
        phase_steps = [rng.randint(1, 6), rng.randint(1, 6)]
        lines.append(f"phase warm steps {phase_steps[0]} adam 0.01")
        trainable = ", ".join(ops or encoders)
        lines.append(f"phase tune modules {trainable} steps {phase_steps[1]} lr 0.005")
        shape.append("phases")
    if rng.random() < 0.05:  # a vector decoder given a number target (finding 9)
        size = rng.randint(1, 3)
        lines.append(f"module decn: latent({latent}) -> vector({size}) = dense {size}")
        lines[lines.index(f"route {route}")] = f"route {route}, decn"
        lines.append("decode decn as y")
        shape.append("edge:vector-decoder-number-target")
    return Spec("\n".join(lines) + "\n", files, query, shape, phase_steps)


def _data_file(rng: random.Random, kind: str, columns: dict, rows: int, spread: dict) -> bytes:
    """Rows of typed values as CSV (a vector as numbers separated by spaces) or JSON Lines; a vector in
    `spread` as one column per value (named there)."""
    names = list(columns)
    rng.shuffle(names)
    table = [{n: columns[n](rng) for n in names} for _ in range(rows)]
    for field_name, parts in spread.items():
        for row in table:
            row.update(zip(parts, row.pop(field_name)))
        names[names.index(field_name):names.index(field_name) + 1] = parts
    if kind == "jsonl":
        return ("\n".join(json.dumps(row) for row in table) + "\n").encode()

    def cell(value) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    return ("\n".join([",".join(names)] + [",".join(cell(row[n]) for n in names) for row in table]) + "\n").encode()
