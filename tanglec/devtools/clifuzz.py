"""CLI-level fuzzing of `compile`, `eval`, `query` and `export`.

Three kinds of input, all seeded so a case is reproducible from (seed, case number):

* generated **valid specs** of varied shapes (encoders, operations, decoders; multiplexers of 2..4
  branches; fan-out; every data codec; targets as expressions or data columns; data enumerated,
  sampled or read from CSV/JSONL; align, holdout, freeze, phases) with tiny step counts;
* **mutated data files** (cells, rows, headers, encodings, binary junk, truncation);
* **tampered runs** (files edited, truncated, swapped, deleted, replaced by links or folders, made
  huge; manifests with wrong types; a spec naming files outside the run) and **odd query fields**.

Cases run through the real command line (`tanglec.cli.main`) in a driver process that imports
tanglec once (TensorFlow costs seconds per process), each case in its own folder; a share of the
cases, every case that kills the driver, and every exit 3 are re-run in a fresh `python -m
tanglec.cli` process. The oracle (`judge`): no exit 3, no signal, no "Traceback", nothing written on
failure (the `-o` path absent, files that were there byte-identical), `--json` output strict JSON
(no NaN), every error diagnostic positioned.

This module needs only the standard library and numpy; TensorFlow loads in the driver process,
through the command it runs. `bench/cli_fuzz.py` is the long run, `tests/test_cli_fuzz.py` CI's share.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "TANGLEC-FUZZ-SECRET-7f3a"  # planted in a file outside every run: it must never be printed
UNPLACED_CODES = {"E130", "E190"}  # documented as having no place: a query field, a missing tool
RUN_FILES = ("spec.tangle", "model.weights.h5", "routes.json", "metrics.json", "manifest.json")
ACTIVATIONS = ("relu", "tanh", "gelu", "elu", "swish", "sigmoid", "leaky_relu", "linear")


# ---- generated specs -----------------------------------------------------------------------------

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
    kind = rng.choices(["int", "category", "float", "vector"], [5, 2, 2, 2])[0]
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
        lines.append(f"input x: category {' | '.join(values)}")
        in_codecs = [f"onehot({len(values) + rng.randint(0, 1)})"]
        query.append(f"x={rng.choice(values)}")
        columns["x"] = lambda r, v=values: r.choice(v)
    elif kind == "float":
        lo, hi = rng.choice([(0, 1), (-2, 2), (0, 10)])
        lines.append(f"input x: float {lo}..{hi}")
        in_codecs = ["scalar"]
        query.append(f"x={rng.uniform(lo, hi):.3f}")
        columns["x"] = lambda r, a=lo, b=hi: round(r.uniform(a, b), 4)
    else:
        size = rng.randint(1, 5)
        lines.append(f"input x: vector({size})")
        in_codecs = [f"vector({size})"]
        query.append("x=" + ",".join(str(rng.randint(0, 3)) for _ in range(size)))
        columns["x"] = lambda r, n=size: [r.randint(0, 3) for _ in range(n)]

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
    from_data = data_kind in ("csv", "jsonl") and (kind == "vector" or rng.random() < 0.4)
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
            forms = ["match x {{ red: {k} % {m}, _: 0 }}", "match x {{ green: 1, _: {k} % {m} }}"]
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
        files[name] = _data_file(rng, data_kind, columns, rows)
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


def _data_file(rng: random.Random, kind: str, columns: dict, rows: int) -> bytes:
    """Rows of typed values as CSV (a vector as numbers separated by spaces) or JSON Lines."""
    names = list(columns)
    rng.shuffle(names)
    table = [{n: columns[n](rng) for n in names} for _ in range(rows)]
    if kind == "jsonl":
        return ("\n".join(json.dumps(row) for row in table) + "\n").encode()

    def cell(value) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    return ("\n".join([",".join(names)] + [",".join(cell(row[n]) for n in names) for row in table]) + "\n").encode()


# ---- mutated data files --------------------------------------------------------------------------

JUNK_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1", "99999999999999999999", "9" * 400, "1_0",
              "٣", "3.5", "0x10", "\"", "\"unterminated", "a,b", "\x00", "\x1b]0;pwned\x07", "é", "\ufeff1",
              "true", "null", "[1,2]", "{}", "1 2 3 4 5 6 7 8", "x" * 200_000]


def mutate_data(rng: random.Random, spec: Spec) -> tuple[Spec, str]:
    """The spec with its data file damaged in one way; the description says how."""
    name = next(iter(spec.files))
    data = spec.files[name]
    lines = data.split(b"\n")
    jsonl = name.endswith(".jsonl")
    kind = rng.choice(["cell", "cell", "drop-field", "extra-field", "header", "encoding", "binary", "truncate",
                       "empty", "header-only", "crlf", "bom", "quoted-newline", "blank-lines", "long-line"])
    row = rng.randint(1, max(1, len(lines) - 2))
    if kind == "cell":
        junk = rng.choice(JUNK_CELLS)
        if jsonl:
            obj = json.loads(lines[row])
            key = rng.choice(list(obj))
            obj[key] = rng.choice([junk, None, [], {}, [1, [2]], True, 1e308, -(2 ** 70), float("nan")])
            lines[row] = json.dumps(obj).encode()  # NaN as the bare literal json writes
        else:
            cells = lines[row].split(b",")
            cells[rng.randrange(len(cells))] = junk.encode("utf-8")
            lines[row] = b",".join(cells)
        how = f"row {row}: junk cell {junk[:20]!r}"
    elif kind == "drop-field":
        lines[row] = lines[row].rsplit(b",", 1)[0] if not jsonl else b"{}"
        how = f"row {row}: a field missing"
    elif kind == "extra-field":
        lines[row] = lines[row] + b",extra" if not jsonl else lines[row][:-1] + b', "extra": 1}'
        how = f"row {row}: an extra field"
    elif kind == "header":
        if jsonl:
            lines[row] = lines[row].replace(b'"x"', b'"X"')
            how = f"row {row}: key renamed"
        else:
            header = lines[0].split(b",")
            choice = rng.choice(["rename", "drop", "duplicate", "add"])
            if choice == "rename":
                header[rng.randrange(len(header))] = b"renamed"
            elif choice == "drop":
                header.pop(rng.randrange(len(header)))
            elif choice == "duplicate":
                header.append(header[0])
            else:
                header.append(b"unused")
            lines[0] = b",".join(header)
            how = f"header: {choice}"
    elif kind == "encoding":
        text = data.decode()
        data = rng.choice([text.encode("utf-16"), text.replace("0", "é").encode("latin-1"), b"\xff\xfe" + data])
        spec = spec.with_data(name, data)
        return spec, "encoding: utf-16 / latin-1 / stray BOM bytes"
    elif kind == "binary":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        at = rng.randrange(len(data))
        spec = spec.with_data(name, data[:at] + junk + data[at:])
        return spec, f"binary junk ({len(junk)} bytes) at byte {at}"
    elif kind == "truncate":
        at = rng.randrange(len(data))
        return spec.with_data(name, data[:at]), f"truncated at byte {at}"
    elif kind == "empty":
        return spec.with_data(name, b""), "empty file"
    elif kind == "header-only":
        lines = lines[:1]
        how = "header only"
    elif kind == "crlf":
        return spec.with_data(name, data.replace(b"\n", b"\r\n")), "CRLF"
    elif kind == "bom":
        return spec.with_data(name, b"\xef\xbb\xbf" + data), "UTF-8 BOM"
    elif kind == "quoted-newline":
        cells = lines[row].split(b",")
        cells[0] = b'"' + cells[0] + b'\n"'
        lines[row] = b",".join(cells)
        how = f"row {row}: a quoted newline"
    elif kind == "blank-lines":
        lines.insert(row, b"")
        lines.insert(row, b"   ")
        how = f"row {row}: blank lines"
    else:
        lines[row] = lines[row] + b"," * 50_000 if not jsonl else b" " * 300_000 + lines[row]
        how = f"row {row}: a very long line"
    return spec.with_data(name, b"\n".join(lines)), kind + ": " + how


# ---- tampered runs -------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rehash(run: Path) -> None:
    """Make the manifest's hashes agree with the files again (a careful forger)."""
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in manifest.get("files", {}):
        if (run / name).is_file():
            manifest["files"][name] = _sha256(run / name)
    manifest_path.write_text(json.dumps(manifest, indent=2))


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    obj = edit(obj)
    path.write_text(json.dumps(obj))


def _spec_edits(outside: Path) -> list[tuple[str, callable]]:
    """Edits of a run's spec.tangle; the ones naming `outside` must never print its content."""
    def data_line(text: str, line: str) -> str:
        kept = [l for l in text.splitlines() if not l.startswith("data ")]
        return "\n".join(kept + [line]) + "\n"

    return [
        ("data file outside the run (absolute)", lambda t: data_line(t, f'data file "{outside}"')),
        ("data file outside the run (relative ..)", lambda t: data_line(t, f'data file "../../../{outside.name}"')),
        ("data file /proc/self/environ", lambda t: data_line(t, 'data file "/proc/self/environ"')),
        ("data file /dev/zero", lambda t: data_line(t, 'data file "/dev/zero"')),
        ("wider layers", lambda t: re.sub(r"dense (\d+)", lambda m: f"dense {int(m.group(1)) + 1}", t, count=1)),
        ("syntax error", lambda t: t.replace("route", "rout", 1)),
        ("a target that divides by zero", lambda t: t + "target bad = 1 // (x - x)\n"),
        ("x ** -1", lambda t: t + "target bad2 = x ** -1\n"),
        ("init naming a run outside", lambda t: t + f'init "{outside.parent}"\n'),
        ("use naming a file outside", lambda t: t + f'use "{outside}"\n'),
        ("empty spec", lambda t: ""),
        ("a NUL byte", lambda t: t + "\x00"),
        ("huge spec (3 MB comment)", lambda t: t + "#" + "a" * 3_000_000 + "\n"),
        ("invalid UTF-8", None),
    ]


def tamper_run(rng: random.Random, run: Path, other_run: Path, outside: Path) -> str:
    """Damage the run in one way (sometimes recomputing its hashes); the description says how."""
    name = rng.choice(RUN_FILES)
    path = run / name
    kind = rng.choice(["delete", "truncate", "flip", "append", "dir", "symlink-out", "symlink-in", "swap",
                       "foreign", "spec-edit", "spec-edit", "spec-edit", "manifest", "manifest", "json-bad",
                       "json-bad", "huge", "run-symlink", "run-is-file", "empty-run", "extra-file"])
    again = rng.random() < 0.6  # recompute the hashes afterwards
    if kind == "delete":
        path.unlink()
        how = f"{name} deleted"
    elif kind == "truncate":
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.truncate(rng.choice([0, size // 2, max(0, size - 1)]))
        how = f"{name} truncated"
    elif kind == "flip":
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        how = f"{name}: bits flipped"
    elif kind == "append":
        with path.open("ab") as fh:
            fh.write(rng.choice([b"\n", b"junk", b"\x00" * 100, b"\n{}\n"]))
        how = f"{name}: junk appended"
    elif kind == "dir":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
        how = f"{name} replaced by a folder"
    elif kind == "symlink-out":
        path.unlink()
        path.symlink_to(rng.choice([outside, Path("/etc/passwd"), Path("/dev/zero"), Path("/nonexistent")]))
        how = f"{name} -> a symlink outside the run"
    elif kind == "symlink-in":
        target = rng.choice([n for n in RUN_FILES if n != name])
        path.unlink()
        path.symlink_to(target)
        how = f"{name} -> a symlink to {target}"
    elif kind == "swap":
        second = run / rng.choice([n for n in RUN_FILES if n != name])
        tmp = run / ".swap"
        os.replace(path, tmp)
        os.replace(second, path)
        os.replace(tmp, second)
        how = f"{name} swapped with {second.name}"
    elif kind == "foreign":
        shutil.copyfile(other_run / name, path)
        how = f"{name} taken from another run"
    elif kind == "spec-edit":
        what, edit = rng.choice(_spec_edits(outside))
        path = run / "spec.tangle"
        if edit is None:
            path.write_bytes(path.read_bytes() + b"\n# \xff\xfe\xc3\n")
        else:
            path.write_text(edit(path.read_text()))
        how = f"spec.tangle: {what}"
    elif kind == "manifest":
        path = run / "manifest.json"
        edits = {
            "files: a list": lambda m: {**m, "files": list(m["files"])},
            "files: numbers": lambda m: {**m, "files": {k: 123 for k in m["files"]}},
            "files: empty": lambda m: {**m, "files": {}},
            "files: a path outside": lambda m: {**m, "files": {**m["files"], "../../escape": "0" * 64}},
            "files: absolute path": lambda m: {**m, "files": {**m["files"], str(outside): _sha256(outside)}},
            "format: 5": lambda m: {**m, "format": 5},
            "format: other": lambda m: {**m, "format": "tanglec-run/999"},
            "no format": lambda m: {k: v for k, v in m.items() if k != "format"},
            "spec_path: 7": lambda m: {**m, "spec_path": 7},
            "spec_path: a list": lambda m: {**m, "spec_path": ["a"]},
            "spec_path: outside": lambda m: {**m, "spec_path": str(outside)},
            "spec_path: another run's": lambda m: {**m, "spec_path": str(other_run / "spec.tangle")},
            "spec_path: empty": lambda m: {**m, "spec_path": ""},
            "spec_path: NUL": lambda m: {**m, "spec_path": "a\x00b"},
            "a list": lambda m: [m],
            "null": lambda m: None,
            "a string": lambda m: "manifest",
            "tensorflow: 2": lambda m: {**m, "tensorflow": 2},
        }
        what = rng.choice(sorted(edits))
        _edit_json(path, edits[what])
        how = f"manifest.json: {what}"
        again = False
    elif kind == "json-bad":
        name = rng.choice(["routes.json", "metrics.json", "manifest.json"])
        path = run / name
        bad = rng.choice([b"", b"{", b"[]", b"null", b"42", b'"text"', b"NaN", b'{"modules": 5}',
                          b'{"modules": {"loaded": 7}}', b'{"streamed": "yes", "modules": []}',
                          b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 5000 + b"1" + b"}" * 5000,
                          b"\xff\xfe{}", b'{"accuracy": NaN}'])
        path.write_bytes(bad)
        how = f"{name} := {bad[:40]!r}{'...' if len(bad) > 40 else ''}"
    elif kind == "huge":
        with path.open("ab") as fh:
            fh.truncate(path.stat().st_size + rng.choice([64 << 20, 600 << 20]))  # sparse: no disk used
        how = f"{name} made huge (sparse)"
        again = again and name != "model.weights.h5"  # hashing 600 MB of zeros costs time, not coverage
    elif kind == "run-symlink":
        real = run.with_name(run.name + "_real")
        os.replace(run, real)
        run.symlink_to(real.name)
        return "the run directory is a symlink to a valid run"
    elif kind == "run-is-file":
        shutil.rmtree(run)
        run.write_text("not a run")
        return "the run directory is a file"
    elif kind == "empty-run":
        shutil.rmtree(run)
        run.mkdir()
        return "the run directory is empty"
    else:
        (run / "extra.bin").write_bytes(b"\x00" * 10)
        how = "an extra file in the run"
    if again and (run / "manifest.json").is_file() and not (run / "manifest.json").is_symlink():
        try:
            rehash(run)
            how += " (hashes recomputed)"
        except (ValueError, OSError, AttributeError, TypeError, RecursionError):
            pass
    return how


ODD_VALUES = ["", " ", "nan", "inf", "-inf", "1e400", "-1", "99999999999999999999999", "0x10", "٣", "1_0",
              "3.7", "true", "\x1b]0;pwned\x07", "\x00", "é", "RED", "1,2,3", ",", "1,,2", "nan,1", "7" * 100_000,
              "=", "a=b"]


def odd_query(rng: random.Random, spec: Spec) -> tuple[list[str], str]:
    """Query fields with something odd about them."""
    fields = list(spec.query)
    kind = rng.choice(["value", "value", "value", "unknown", "missing", "duplicate", "no-equals", "empty-name",
                       "none", "case", "spaces"])
    if kind == "value":
        i = rng.randrange(len(fields))
        value = rng.choice(ODD_VALUES)
        fields[i] = fields[i].split("=", 1)[0] + "=" + value
        how = f"{fields[i].split('=', 1)[0]}={value[:20]!r}"
    elif kind == "unknown":
        fields.append(rng.choice(["nosuch=1", "X=1", "x2=3", "é=1", "\x1b[31m=1"]))
        how = "an unknown field"
    elif kind == "missing":
        fields.pop(rng.randrange(len(fields)))
        how = "a field missing"
    elif kind == "duplicate":
        fields.append(fields[0])
        how = "a field given twice"
    elif kind == "no-equals":
        fields.append("x")
        how = "a field without ="
    elif kind == "empty-name":
        fields.append("=3")
        how = "an empty field name"
    elif kind == "none":
        fields = []
        how = "no fields"
    elif kind == "case":
        fields = [f.upper() for f in fields]
        how = "upper-cased"
    else:
        fields = [f.replace("=", " = ") for f in fields]
        how = "spaces around ="
    return fields, how


# ---- running a command ---------------------------------------------------------------------------

@dataclass
class Outcome:
    argv: list[str]
    rc: int | None  # None: timed out
    stdout: str
    stderr: str
    seconds: float
    process: str  # "driver" or "fresh"


def fresh_run(argv: list[str], cwd: Path, timeout: float, env: dict | None = None) -> Outcome:
    """`python -m tanglec.cli ARGV` in its own process, as a user runs it."""
    start = time.perf_counter()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-m", "tanglec.cli", *argv], cwd=cwd, capture_output=True,
                              timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
        rc = proc.returncode
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as expired:
        rc, out, err = None, expired.stdout or b"", expired.stderr or b""
    return Outcome(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                   time.perf_counter() - start, "fresh")


class Driver:
    """A process that imports tanglec once and runs many commands in it (`serve`), one JSON line each way."""

    def __init__(self, log: Path | None = None):
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> None:
        stderr = open(self.log, "ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tanglec.devtools.clifuzz"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=ROOT)

    def run(self, argv: list[str], cwd: Path, timeout: float) -> Outcome:
        """Run one command; a driver that dies or hangs is replaced (rc is then the signal, or None)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        start = time.perf_counter()
        request = json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._read_line(timeout)
        seconds = time.perf_counter() - start
        if line is None:  # died (a signal) or hung
            self.proc.kill()
            rc = self.proc.wait()
            self.proc = None
            self.restarts += 1
            return Outcome(argv, rc if seconds < timeout else None, "", "", seconds, "driver")
        reply = json.loads(line)
        return Outcome(argv, reply["rc"], reply["stdout"], reply["stderr"], seconds, "driver")

    def _read_line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self.proc.stdout.readline()
                    return line or None
        return None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def serve() -> None:
    """The driver's side: read {"argv", "cwd"} lines, run `tanglec.cli.main` on each, reply {"rc", "stdout",
    "stderr"}."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # output below Python (TensorFlow's C++ logging) can't corrupt the replies
    requests = sys.stdin
    # One stdout and one stderr for the driver's life, emptied per case: loggers that kept a reference
    # to sys.stderr (TensorFlow's, absl's) then write into the current case, not into a closed stream.
    sys.stdout, sys.stderr = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace",
                                               write_through=True) for _ in range(2))
    from tanglec import cli

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for line in requests:
        request = json.loads(line)
        replies.write(json.dumps(_run_in_process(cli, request["argv"], Path(request["cwd"]))) + "\n")
        replies.flush()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _captured(stream) -> str:
    """What the case wrote to one of the driver's streams; the stream is emptied."""
    stream.flush()
    text = stream.buffer.getvalue().decode("utf-8", "replace")
    stream.buffer.seek(0)
    stream.buffer.truncate()
    return text


def _run_in_process(cli, argv: list[str], cwd: Path) -> dict:
    """One command as `tanglec ARGV` would run it, in this process; then reset what a command leaves behind."""
    _captured(sys.stdout), _captured(sys.stderr)
    saved = sys.argv, sys.stdin, os.getcwd(), os.environ.get("TMPDIR")
    sys.argv = ["tanglec", *argv]
    sys.stdin = io.StringIO("")
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None
    os.chdir(cwd)
    rc = 0
    try:
        cli.main()
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # main() lets nothing else out on its own: report it as a crash
        import traceback

        sys.stderr.write(traceback.format_exc())
        rc = 3
    finally:
        sys.argv, sys.stdin, cwd_before, tmpdir = saved
        os.chdir(cwd_before)
        if tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = tmpdir
        tempfile.tempdir = None
        _reset_state()
    return {"rc": rc, "stdout": _captured(sys.stdout), "stderr": _captured(sys.stderr)}


def _reset_state() -> None:
    """What one command leaves in the process that a real user's next process would not see."""
    stream = sys.modules.get("tanglec.data.stream")
    if stream is not None:
        stream.FORCED = None
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


# ---- the oracle ----------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` with its content hash (links as their target), to see what changed."""
    state = {}
    if folder.is_symlink() or not folder.exists():
        return {str(folder): "link:" + os.readlink(folder) if folder.is_symlink() else "absent"}
    if folder.is_file():
        return {str(folder): _file_digest(folder)}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(base) / name
            if path.is_symlink():
                state[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                state[str(path)] = _file_digest(path)
            elif path.is_dir():
                state[str(path)] = "dir"
            else:
                state[str(path)] = "special"
    return state


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if size > 32 << 20:  # sparse giants: their size and ends say enough
        with path.open("rb") as fh:
            head = fh.read(4096)
            fh.seek(size - 4096)
            tail = fh.read()
        return f"{size}:{hashlib.sha256(head + tail).hexdigest()}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nan_refused(token: str):
    raise ValueError(f"not JSON: {token}")


def judge(outcome: Outcome, as_json: bool) -> list[str]:
    """What is wrong with a command's outcome, whatever its input (empty: nothing)."""
    problems = []
    if outcome.rc is None:
        problems.append(f"hang: no answer in {outcome.seconds:.0f} s")
        return problems
    if outcome.rc < 0:
        problems.append(f"signal {-outcome.rc} ({signal.Signals(-outcome.rc).name})")
    elif outcome.rc == 3:
        first = next((l for l in outcome.stderr.splitlines() if l.startswith("internal error")), "")
        problems.append(f"exit 3: {first[:300]}")
    elif outcome.rc not in (0, 1, 2):
        problems.append(f"exit {outcome.rc}")
    if "Traceback" in outcome.stdout or "Traceback" in outcome.stderr:
        problems.append("a traceback in the output")
    if SECRET in outcome.stdout or SECRET in outcome.stderr:
        problems.append("printed the content of a file outside the run")
    if as_json and outcome.rc in (0, 1):
        problems += _json_problems(outcome)
    elif outcome.rc == 1:
        for line in outcome.stderr.splitlines():
            found = re.match(r"(.*?)error\[(E\d{3})\]", line)
            if found and found.group(2) not in UNPLACED_CODES and not re.search(r":\d+:\d+: $", found.group(1)):
                problems.append(f"{found.group(2)} not positioned: {line[:200]}")
    return problems


def _json_problems(outcome: Outcome) -> list[str]:
    try:
        payload = json.loads(outcome.stdout, parse_constant=_nan_refused)
    except ValueError as err:
        return [f"--json output is not strict JSON: {str(err)[:200]}"]
    if not isinstance(payload, dict) or "ok" not in payload:
        return ["--json output has no 'ok'"]
    problems = []
    if payload["ok"] != (outcome.rc == 0):
        problems.append(f"--json ok={payload['ok']} with exit {outcome.rc}")
    for diag in payload.get("diagnostics", []):
        if diag.get("severity") != "error" or diag.get("code") in UNPLACED_CODES:
            continue
        span = diag.get("span")
        if not span or not (isinstance(span.get("line"), int) and span["line"] >= 1 and span.get("col", 0) >= 1):
            problems.append(f"{diag.get('code')} not positioned: {diag.get('message', '')[:200]}")
    return problems


def _spec_text(cwd: Path, argv: list[str]) -> str:
    """The spec a failing command worked from, for the report (the case folder may be temporary)."""
    path = cwd / (argv[1] if argv[0] == "compile" else Path(argv[1]) / "spec.tangle")
    try:
        return path.read_bytes()[:4000].decode("utf-8", "replace") if path.is_file() else ""
    except OSError:
        return ""


# ---- the campaign --------------------------------------------------------------------------------

@dataclass
class Failure:
    family: str
    case: int
    seed: int
    what: str  # the input: spec shape, mutation, tampering
    argv: list[str]
    problems: list[str]
    process: str
    folder: str  # the case's files, kept for reproducing
    exit_code: int | None = None
    output: str = ""  # the end of stderr and stdout
    spec: str = ""  # the spec compiled (compile cases) or the run's spec after tampering


@dataclass
class Campaign:
    """Runs cases and collects figures; `folder` keeps the files of every failing case."""

    folder: Path
    seed: int = 0
    fresh_share: float = 0.1
    timeout: float = 180.0
    log: callable = print
    driver: Driver = None
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    fresh_commands: int = 0
    generated_invalid: int = 0
    refused_after_check: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    trained: list[tuple[Path, Spec]] = field(default_factory=list)  # runs compile cases wrote: tamper bases

    def __post_init__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.driver = self.driver or Driver(self.folder / "driver-stderr.log")

    def close(self) -> None:
        self.driver.close()

    # -- one command, judged ------------------------------------------------------------------------
    def command(self, family: str, case: int, what: str, argv: list[str], cwd: Path, rng: random.Random,
                watched: tuple[Path, ...] = (), absent: tuple[Path, ...] = ()) -> Outcome:
        """Run argv (in the driver, or a fresh process for a share of cases), judge it, record failures.
        `watched` must be byte-identical afterwards unless the command succeeded and wrote them;
        `absent` must not exist after a failure."""
        before = {p: snapshot(p) for p in watched}
        fresh = rng.random() < self.fresh_share
        outcome = fresh_run(argv, cwd, self.timeout) if fresh else self.driver.run(argv, cwd, self.timeout)
        if not fresh and (outcome.rc is None or outcome.rc < 0 or outcome.rc == 3):
            confirm = fresh_run(argv, cwd, self.timeout)  # a dead driver or exit 3: the real process decides
            if confirm.rc != outcome.rc:
                self.log(f"  [{family} {case}] driver said {outcome.rc}, a fresh process {confirm.rc}")
            outcome = confirm
        self.commands += 1
        self.fresh_commands += outcome.process == "fresh"
        key = "timeout" if outcome.rc is None else str(outcome.rc)
        self.exit_codes[key] = self.exit_codes.get(key, 0) + 1
        problems = judge(outcome, "--json" in argv)
        if fresh and argv[0] in ("eval", "query"):  # read-only: the driver must answer as a fresh process did
            again = self.driver.run(argv, cwd, self.timeout)
            if (again.rc, again.stdout) != (outcome.rc, outcome.stdout):
                problems.append(f"the driver answered differently (exit {again.rc}) from a fresh process "
                                f"(exit {outcome.rc}): state leaks between in-process cases")
        if outcome.rc != 0:
            for path in absent:
                if path.exists() or path.is_symlink():
                    problems.append(f"failed (exit {outcome.rc}) but wrote {path.name}")
            for path, state in before.items():
                if snapshot(path) != state:
                    problems.append(f"failed (exit {outcome.rc}) but changed {path.name}")
        else:
            for path, state in before.items():
                if argv[0] != "compile" and snapshot(path) != state:
                    problems.append(f"{argv[0]} changed {path.name}, which it only reads")
        if problems:
            self.failures.append(Failure(family, case, self.seed, what, argv, problems, outcome.process, str(cwd),
                                         outcome.rc, outcome.stderr[-1500:] + "\n--- stdout\n" + outcome.stdout[-500:],
                                         _spec_text(cwd, argv)))
            self.log(f"  FAIL [{family} {case}] {what}: {' '.join(argv)[:160]} -> {problems}")
        return outcome

    def _count(self, family: str) -> None:
        self.counts[family] = self.counts.get(family, 0) + 1

    def _rng(self, family: str, case: int) -> random.Random:
        return random.Random(f"{self.seed}:{family}:{case}")

    # -- compile cases ------------------------------------------------------------------------------
    def valid_spec(self, rng: random.Random, folder: Path) -> Spec:
        """A generated spec that `check` accepts, written to `folder`."""
        from tanglec.spec.onepass import check_file

        for _ in range(20):
            spec = generate_spec(rng)
            shutil.rmtree(folder, ignore_errors=True)
            path = spec.write(folder)
            checked, _ = check_file(path)
            if checked is not None and not checked.errors:
                return spec
            self.generated_invalid += 1
        raise RuntimeError(f"no valid spec in 20 tries: last one\n{spec.text}")

    def compile_case(self, case: int) -> None:
        """Compile a generated spec (its data sometimes damaged); then eval, query and sometimes export it."""
        family = "compile"
        rng = self._rng(family, case)
        folder = self.folder / f"compile-{case:04d}"
        spec = self.valid_spec(rng, folder)
        what = "spec: " + " ".join(spec.shape)
        if any(feature.startswith("edge:") for feature in spec.shape):
            family = "edge"  # valid specs at the edges of what the checks allow (issue 12 findings 8, 9)
        mutated = bool(spec.files) and rng.random() < 0.35
        if mutated:
            family = "data"
            spec, how = mutate_data(rng, spec)
            spec.write(folder)
            what += f"; data {how}"
        self._count(family)
        argv = ["compile", "spec.tangle", "-o", "out/run"]
        if rng.random() < 0.5:
            argv.append("--json")
        if rng.random() < 0.3:
            argv += ["--steps", str(rng.randint(1, 12))]
        if rng.random() < 0.15:
            argv += ["--mux", rng.choice(["where", "partition", "gather", "auto"])]
        if spec.files and rng.random() < 0.3:
            argv.append(rng.choice(["--stream", "--no-stream"]))
        keep = None
        if rng.random() < 0.1:  # a user's folder in the way: its file must survive (finding 1)
            keep = folder / "out" / "run" / "notes.txt"
            keep.parent.mkdir(parents=True)
            keep.write_text("a user's file\n")
            what += "; -o names an existing folder holding a user's file"
        run = folder / "out" / "run"
        outcome = self.command(family, case, what, argv, folder, rng, watched=(folder / "spec.tangle",),
                               absent=() if keep else (run,))
        if keep is not None and not keep.is_file():
            self.failures.append(Failure("output-path", case, self.seed, what, argv,
                                         ["compile -o deleted a user's file in the folder it replaced"],
                                         outcome.process, str(folder)))
        if outcome.rc == 1 and not mutated and keep is None:
            codes = sorted(set(re.findall(r"\b([EW]\d{3})\b", outcome.stdout + outcome.stderr)))
            self.refused_after_check.append({"case": case, "codes": codes, "what": what})
        if outcome.rc != 0 or keep is not None:
            return
        if "--json" in argv:
            self.check_steps(family, case, what, argv, outcome, spec, folder)
        self.after_compile(family, case, what, spec, folder, rng)
        if not mutated:
            self.trained.append((run, spec))

    def check_steps(self, family: str, case: int, what: str, argv: list[str], outcome: Outcome, spec: Spec,
                    folder: Path) -> None:
        """A compile trains exactly the steps asked for, unless it stopped early (`until exact`)."""
        payload = json.loads(outcome.stdout)
        override = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else None
        planned = sum(override or steps for steps in spec.phase_steps)
        if payload["steps_run"] != planned and not payload["stopped_early"]:
            self.failures.append(Failure("steps", case, self.seed, what, argv,
                                         [f"trained {payload['steps_run']} steps, asked for {planned}"],
                                         outcome.process, str(folder), 0, "", spec.text))

    def after_compile(self, family: str, case: int, what: str, spec: Spec, folder: Path, rng: random.Random) -> None:
        run = folder / "out" / "run"
        watched = (run,)
        self.command(family, case, what, ["eval", "out/run", *(["--json"] * (rng.random() < 0.7))], folder, rng,
                     watched=watched)
        self.command(family, case, what, ["query", "out/run", *spec.query, "--json"], folder, rng, watched=watched)
        fields, how = odd_query(rng, spec)
        self._count("query")
        self.command("query", case, f"{what}; query {how}",
                     ["query", "out/run", *fields, *(["--json"] * (rng.random() < 0.6))], folder, rng,
                     watched=watched)
        if rng.random() < 0.2:
            fmt = rng.choice(["savedmodel", "keras"])
            target = folder / "out" / ("export.keras" if fmt == "keras" else "export_sm")
            self._count("export")
            self.command("export", case, what,
                         ["export", "out/run", "--format", fmt, "-o", str(target.relative_to(folder)), "--json",
                          *(["--no-verify"] * (rng.random() < 0.5))], folder, rng, watched=watched,
                         absent=(target,))

    # -- tampered runs ------------------------------------------------------------------------------
    def base_runs(self, count: int = 3) -> list[tuple[Path, Spec]]:
        """Trained runs to tamper with: the compile cases' (their data stays beside them), else new ones."""
        runs = self.trained[:count]
        case = 0
        while len(runs) < count and case < 50:
            rng = self._rng("base", case)
            folder = self.folder / f"base-{case:02d}"
            spec = self.valid_spec(rng, folder)
            outcome = self.driver.run(["compile", "spec.tangle", "-o", "run", "--json"], folder, self.timeout)
            if outcome.rc == 0:
                runs.append((folder / "run", spec))
            case += 1
        if len(runs) < 2:
            raise RuntimeError("could not compile two base runs to tamper with")
        return runs

    def tamper_case(self, case: int, bases: list) -> None:
        """Copy a trained run, damage it, and run eval, query or export on it."""
        family = "tamper"
        rng = self._rng(family, case)
        self._count(family)
        (origin, spec), (other, _) = rng.sample(bases, 2)  # run directories
        folder = self.folder / f"tamper-{case:04d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        outside = folder / "secret.csv"
        outside.write_text(f"{SECRET},y\n{SECRET},1\n")  # the header and a cell: both show up in messages
        run = folder / "runs" / "run"
        shutil.copytree(origin, run, symlinks=True)
        try:
            how = tamper_run(rng, run, other, outside)
        except (OSError, ValueError, TypeError, RecursionError) as err:
            how = f"(tampering failed: {err})"
        command = rng.choices(["eval", "query", "odd-query", "export"], [4, 4, 2, 2])[0]
        json_flag = ["--json"] * (rng.random() < 0.6)
        absent: tuple[Path, ...] = ()
        if command == "eval":
            argv = ["eval", "runs/run", *json_flag]
        elif command == "query":
            argv = ["query", "runs/run", *spec.query, *json_flag]
        elif command == "odd-query":
            fields, odd = odd_query(rng, spec)
            how += f"; query {odd}"
            argv = ["query", "runs/run", *fields, *json_flag]
        else:
            fmt = rng.choice(["savedmodel", "keras"])
            target = folder / "runs" / ("export.keras" if fmt == "keras" else "export_sm")
            argv = ["export", "runs/run", "--format", fmt, "-o", str(target.relative_to(folder)), *json_flag,
                    *(["--no-verify"] * (rng.random() < 0.5))]
            absent = (target,)
        self.command(family, case, f"run {origin.relative_to(self.folder)}: {how}", argv, folder, rng,
                     watched=(run, outside, origin), absent=absent)

    # -- everything ---------------------------------------------------------------------------------
    def run(self, compile_cases: int, tamper_cases: int) -> dict:
        start = time.perf_counter()
        for case in range(compile_cases):
            self.compile_case(case)
            if (case + 1) % 10 == 0:
                self.log(f"compile cases: {case + 1}/{compile_cases} ({time.perf_counter() - start:.0f} s)")
        self.seconds["compile"] = time.perf_counter() - start
        start = time.perf_counter()
        if tamper_cases:
            bases = self.base_runs()
            for case in range(tamper_cases):
                self.tamper_case(case, bases)
                if (case + 1) % 20 == 0:
                    self.log(f"tamper cases: {case + 1}/{tamper_cases} ({time.perf_counter() - start:.0f} s)")
        self.seconds["tamper"] = time.perf_counter() - start
        return self.report(compile_cases, tamper_cases)

    def report(self, compile_cases: int, tamper_cases: int) -> dict:
        total = sum(self.seconds.values())
        return {
            "seed": self.seed, "compile_cases": compile_cases, "tamper_cases": tamper_cases,
            "cases_by_family": self.counts, "commands": self.commands, "fresh_process_commands": self.fresh_commands,
            "driver_restarts": self.driver.restarts, "exit_codes": self.exit_codes,
            "generated_specs_rejected_by_check": self.generated_invalid,
            "valid_specs_refused_by_compile": self.refused_after_check,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "cases_per_minute": round((compile_cases + tamper_cases) / total * 60, 1) if total else None,
            "failures": [asdict(f) for f in self.failures],
        }


if __name__ == "__main__":
    serve()
