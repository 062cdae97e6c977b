"""The content of docs/errors.md: every diagnostic code with its meaning, an example and the real message.

Each example is run through the library, so the document can't drift from the code. bench/errors_doc.py
writes the file; tests/test_fuzz.py checks that every code in the source has an entry and that every spec
example still yields its code.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: docs/ and specs/ are not shipped in the wheel

SEED = (ROOT / "specs" / "arith.tangle").read_text()
CHAINS = (ROOT / "specs" / "arith_chains.tangle").read_text()


@dataclass
class Example:
    code: str
    title: str
    meaning: str
    spec: str | None = None  # the whole spec text the example checks (None: produced another way)
    files: dict[str, str | bytes] = field(default_factory=dict)  # beside the spec (data files, used specs)
    produce: str | None = None  # how, when not by checking `spec`: a key of PRODUCERS
    show: list[str] | None = None  # spec lines to show (default: the lines that differ from the seed spec)
    stage: str = "check"  # check: parse + check; build: also build_examples (compile's data step)


def seed(old: str, new: str, count: int = 1) -> str:
    assert old in SEED, old
    return SEED.replace(old, new, count)


MINIMAL = """\
input x: int 0..3
module m : onehot(4) -> onehot(4) = dense 4
route x -> m
target y = x
decode m as y
"""


def minimal(old: str, new: str) -> str:
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new, 1)


DATA_SPEC = """\
input n: int 0..9
module m : onehot(10) -> onehot(4) = dense 4
route n -> m
target k: int 0..3 from data
decode m as k
data file "rows.csv"
"""

EXAMPLES = [
    # ---- syntax and limits -------------------------------------------------------------------
    Example("E001", "unexpected token", "The parser met a token that can't continue the statement. Every "
            "broken statement is reported in one pass; misspelled keywords get a did-you-mean.",
            seed("route x ->", "rout x ->")),
    Example("E002", "unexpected end of input", "The file ends inside a statement.",
            seed("train steps 300 batch 64 adam 0.01 seed 0 until exact", "train steps 300 batch"),
            show=["train steps 300 batch"]),
    Example("E003", "unexpected character", "A character that is not part of the language (outside comments "
            "and strings).", seed("target y = match", "target y = @ match")),
    Example("E004", "nesting too deep", f"More than 64 nested brackets, or an expression nested more than 200 "
            "operators deep (a chain like `1 + 1 + ... + 1` nests one level per operator). Brackets and "
            "operator chains are counted before the spec is parsed, so no spec can overflow the stack or "
            "take long to refuse.",
            seed("(x + 1) % 10", "+".join(["x"] * 250)), show=["target y = match op { plus1: x+x+x+x+…(250 terms)…, "
                                                            "times2: (x * 2) % 10 }"]),
    Example("E005", "spec too large", "A spec over 2 MB (or a `use`d file over 2 MB), or over 200,000 "
            "tokens (names, numbers and operators; comments and strings don't count), refused before parsing: "
            "every spec under both caps is checked in about 2 s of CPU (a 10,000-line spec of modules in 1.7 s).", produce="E005"),
    Example("E006", "spec not readable", "The spec file is not UTF-8 text, or not a regular file.",
            produce="E006"),
    Example("E007", "number too large", "An integer literal beyond ±2**53 or a float literal that is not "
            "finite: tanglec computes exactly or refuses.", seed("int 0..9", "int 0..99999999999999999999")),
    # ---- names and structure -----------------------------------------------------------------
    Example("E101", "unknown name", "A module, selector, input, target or decoder that is not declared; the "
            "hint names the closest declared one.", seed("[binary | decimal] by", "[binry | decimal] by")),
    Example("E102", "declared twice", "Inputs, selectors, modules and targets share one namespace; a value "
            "may appear once per selector; one `data` statement. The note points at the first declaration.",
            seed("module times2    :", "module plus1     :"),
            show=["module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12",
                  "module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12   # was times2"]),
    Example("E103", "cycle", "The module graph (or the targets' dependencies) loops back on itself.",
            SEED + "\nroute to_binary -> binary\n", show=["route to_binary -> binary"]),
    Example("E104", "interface mismatch", "A producer's output codec differs from the consumer's input, or the "
            "branches of one multiplexer give different outputs.",
            seed("module to_binary : latent(12)", "module to_binary : latent(10)")),
    Example("E105", "multiplexer with one branch", "A `[ ... ] by selector` needs at least two branches.",
            seed("[plus1 | times2] by op", "[plus1] by op")),
    Example("E106", "selector values and branches disagree", "A branch names a value the selector doesn't have, "
            "or a value has no branch.", seed("select op: plus1 | times2", "select op: plus1 | times3")),
    Example("E107", "unreachable module", "No route reaches the module.",
            SEED + "\nmodule orphan : latent(12) -> latent(12) = dense 12\n",
            show=["module orphan : latent(12) -> latent(12) = dense 12"]),
    Example("E108", "decoder without a target", "A module with a data output is decoded as nothing.",
            seed("decode to_binary, to_decimal as y", "decode to_binary as y")),
    Example("E109", "bad field in an expression", "An expression names an unknown field, uses a categorical "
            "field as a number, or matches on a numeric one.", seed("(x + 1) % 10", "(z + 1) % 10")),
    Example("E110", "expression fails", "Division by zero, zero to a negative power, integer overflow or a "
            "non-finite result for some examples: a diagnostic at the failing sub-expression with the first failing example, never a "
            "crash.", seed("(x + 1) % 10", "10 // (x - 3)")),
    Example("E111", "bad layer arguments", "Wrong units, activation or rate for a layer, or a stack whose "
            "width doesn't end at the module's output.", seed("dense 32 relu, dense 12", "dense 32 rleu, dense 12")),
    Example("E112", "target outside the decoder's range", "A target takes values the decoder's codec can't "
            "represent, or has the wrong shape: a vector(n) decoder needs a `vector(n) from data` target, "
            "every other decoder one number per example. `check` evaluates a large domain or sample on at "
            "most 2,000 rows; building the data (compile) checks every row.", seed("(x * 2) % 10", "x * 2")),
    Example("E113", "unknown layer", "Layers are dense, dropout, norm and residual(...).",
            seed("dense 32 relu, dense 12", "dense 32 relu, dens 12")),
    Example("E114", "codec problem", "Unknown codec, missing or bad size.",
            seed("bits(4)    -> latent(12)", "bitz(4)    -> latent(12)")),
    Example("E115", "bad setting", "Unknown training/data/phase setting, or a value out of its range.",
            seed("batch 64", "bacth 64")),
    Example("E116", "bad field type", "An empty range or an empty vector.", seed("int 0..9", "int 9..0")),
    Example("E117", "field and codec don't fit", "An input's values don't fit the codec of the module that "
            "reads it.", seed("input x: int 0..9", "input x: int 0..19")),
    Example("E118", "decoder with a latent output", "Only bits, onehot, scalar, vector (and gray) outputs can "
            "be decoded.", seed("decode to_binary, to_decimal as y", "decode to_binary, to_decimal, plus1 as y")),
    Example("E119", "data problem", "A bad cell in the data file, at file:row:column: missing field, wrong "
            "type, out of range, NaN/inf, wrong width. The first ten are listed with a count of the rest; "
            "nothing is silently dropped.", DATA_SPEC,
            files={"rows.csv": "n,k\n1,2\n12,1\n3,nan\n"}, stage="build",
            show=['data file "rows.csv"', "", "# rows.csv:", "n,k", "1,2", "12,1", "3,nan"]),
    Example("E120", "bad function call", "Functions are min, max (2+ arguments) and abs (1).",
            seed("(x + 1) % 10", "sqrt(x)")),
    Example("E121", "match cases", "A case that is not a value of the matched selector, a duplicate, or "
            "values without a case (and no `_`).", seed("times2: (x * 2) % 10 }", "times3: (x * 2) % 10 }")),
    Example("E122", "multiplexer strategy", "Strategies are where, partition, gather, stacked and auto.",
            seed("[plus1 | times2] by op", "[plus1 | times2] by op using wher")),
    Example("E123", "fan-out not last", "A stage naming several modules must end the route.",
            minimal("route x -> m", "route x -> m, m -> m").replace("module m :", "module n : onehot(4) -> onehot(4) = dense 4\nmodule m :"),
            show=["route x -> m, m -> m"]),
    Example("E124", "target from data without a data file", "`target t: ... from data` needs `data file`.",
            minimal("target y = x", "target y: int 0..3 from data")),
    Example("E125", "can't enumerate", "`data enumerate` over a float/vector field or over more than "
            "1,000,000 combinations.", minimal("input x: int 0..3", "input x: int 0..3\ninput f: float")
            .replace("route x -> m", "route x -> m\nmodule g : scalar -> onehot(4) = dense 4\nroute f -> g")
            .replace("decode m as y", "decode m, g as y") + "data enumerate\n", show=["input f: float", "data enumerate"],
            stage="build"),
    Example("E126", "nothing to train", "The spec declares no decoder (whatever else it declares).", "input x: int 0..9\n",
            show=["input x: int 0..9   # the whole spec"]),
    Example("E127", "limit exceeded", "Caps checked before TensorFlow builds anything: {MAX_MODULES:,} modules "
            "and as many multiplexers, {MAX_PARAMETERS:,} parameters (estimated from the layers), {MAX_ROUTES:,} "
            "routes, {MAX_WIDTH:,} values per codec or vector, {MAX_SAMPLE:,} sampled rows and "
            "{MAX_DATA_CELLS:,} sampled values; and the run's estimated memory against a cap of "
            "4 GB, raised or lowered with `train memory N` (GB): the example table (8 bytes a raw value, 4 an "
            "encoded one), the model 4 times (weights, gradients, two optimizer moments; 4 bytes a "
            "parameter) and one step's activations and their gradients (batch × every dense layer's units). "
            "Each is positioned at its cause: the widest layer, the largest module, the sample.",
            seed("bits(4)    -> latent(12) = dense 64 relu", "bits(4)    -> latent(12) = dense 50000 relu")
            .replace("data enumerate", "data sample 1000000").replace("batch 64", "batch 20000"),
            show=["module binary    : bits(4)    -> latent(12) = dense 50000 relu, dense 64 relu, dense 12",
                  "data sample 1000000", "train steps 300 batch 20000 adam 0.01 seed 0 until exact"]),
    Example("E128", "several producers for one module", "A module reads one producer; choose between several "
            "with a multiplexer.", SEED + "\nroute x -> plus1\n", show=["route x -> plus1"]),
    Example("E129", "chain that doesn't close", "A chain (`[a | b | stop: _] by s1, s2`) feeds each position's "
            "output to the next: its modules must give what they take, and what enters the chain (a latent from "
            "an encoder, not raw data); each position needs its own selector.",
            CHAINS.replace("module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12",
                           "module plus1     : latent(12) -> latent(8) = dense 32 relu, dense 8")
            .replace("align binary, decimal on y weight 1\n", ""),
            show=["module plus1     : latent(12) -> latent(8) = dense 32 relu, dense 8"]),
    Example("E130", "bad query field", "`tanglec query`: an unknown field, a missing one, one given twice "
            "(`gate=xor gate=and`), or a bad value.",
            produce="E130"),
    Example("E131", "a branch reading a field where it can't", "`[a | b from field] by s`: only a branch of the "
            "multiplexer right after the route's source reads a field of its own; later stages and chains read what "
            "the stage before gives, an identity branch `value: _` runs no module.",
            seed("input x: int 0..9", "input x: int 0..9\ninput img: vector(4)").replace("times2] by", "times2 from img] by")),
    Example("E140", "run directory problem", "A run that is missing (for `init`: when compile needs its "
            "weights; `check` only warns, W206), foreign, from an incompatible tanglec or Keras version or "
            "an older run format (tanglec-run/1: recompile it), whose manifest doesn't match its own digest "
            "or whose files don't match the hashes in it (tampered or truncated), are over their size cap or "
            "hold malformed JSON; a run whose spec names a data file or a used spec other than the copies the "
            "run keeps (a run never reads a file outside it); training again from a run's kept evaluation "
            "rows; weights that don't fit the spec or are not finite (a diverged training written by an "
            "older tanglec; see E171); a `.keras` file holding a Lambda layer or naming code "
            "outside Keras and tanglec. Nothing is loaded, nothing is written.", produce="E140"),
    Example("E141", "checkpoint can't be resumed", "`tanglec compile --resume` found a checkpoint that is "
            "damaged, not tanglec's, or made with a different spec, data or options (e.g. another --steps). "
            "Nothing is written; the checkpoint is kept.", produce="E141"),
    Example("E142", "run can't be written", "The disk is full, or the file size limit (`ulimit -f`) is too "
            "low, for the run or a checkpoint: checked before the weights are written, and any write that "
            "still fails is caught. Nothing is written; the previous run is intact.", produce="E142"),
    Example("E150", "used spec unreadable", "A `use` names a file that can't be read (missing, not a regular "
            "file, over 2 MB, not UTF-8), or one parse would read more than {MAX_USES} used specs or more "
            "than 200,000 tokens with the spec's own.",
            'use "shared.tangle"\n' + MINIMAL),
    Example("E151", "`use` cycle or chain too deep", "Specs that use each other (or themselves), or `use` "
            "chains more than {MAX_USE_DEPTH} specs deep.", 'use "spec.tangle"\n' + MINIMAL),
    Example("E160", "align on a field the module doesn't read", "`align a, b on x`: each module must read x.",
            seed("decode to_binary, to_decimal as y", "decode to_binary, to_decimal as y\nalign plus1, times2 on x"),
            show=["align plus1, times2 on x"]),
    Example("E161", "holdout matches no route", "`holdout a -> b` lists modules in route order that some route "
            "runs through; `holdout length 3, 4` lists lengths some chain applies.", seed("decode to_binary, to_decimal as y",
                                 "decode to_binary, to_decimal as y\nholdout times2 -> binary"),
            show=["holdout times2 -> binary"]),
    Example("E162", "init module mismatch", "A module of the spec exists in the `init` run with another "
            "interface or layers.", seed("module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12",
                                         "module plus1     : latent(12) -> latent(12) = dense 16 relu, dense 12")
            + 'init "base"\n', files={"base": "RUN"}, show=["module plus1     : latent(12) -> latent(12) = "
                                                             "dense 16 relu, dense 12", 'init "base"']),
    Example("E163", "no training rows left", "Held-out routes and data filters (`only`, `limit`) leave nothing "
            "to train on.", seed("data enumerate", "holdout binary\nholdout decimal\ndata enumerate"),
            show=["holdout binary", "holdout decimal"], stage="build"),
    Example("E164", "alignment on a target without a chain", "`align enc on y`, y a target: y must be a "
            "`fold` from input fields over the selectors of a chain, in the chain's order; the chain's latent after each position "
            "is then aligned with each encoder's encoding of the fold's value so far.",
            CHAINS.replace("align binary, decimal on y weight 1", "align binary, decimal on z weight 1")
            + "target z = x\n", show=["align binary, decimal on z weight 1"]),
    Example("E190", "Graphviz missing or failing", "`tanglec graph --format svg|png` needs Graphviz's `dot`.",
            produce="E190"),
    Example("E170", "distributed training setup", "`--strategy`/`--devices` or the `TF_CONFIG` cluster "
            "description of `--strategy multiworker` is missing or malformed, or `--devices` asks for more "
            "devices than the machine allows (its GPUs, or 4 logical CPU devices per core; checked before "
            "TensorFlow creates any).", produce="E170"),
    Example("E171", "training diverged", "A loss or a weight became NaN or infinite (too high a learning "
            "rate, huge targets or inputs). Training stops at the end of that chunk of `eval_every` steps; no "
            "run and no checkpoint of the broken weights is written, and a previous run stays as it was.",
            produce="E171"),
    Example("E191", "export problem", "`tanglec export`: a bad output path or an export that doesn't "
            "reproduce the run's predictions.", produce="E191"),
    Example("E192", "output path refused", "An output path (`-o`, `--workdir`, `--png`, the checkpoint folder "
            "beside a run) that the output policy refuses, before any work starts: it contains the current folder "
            "or an input, lies inside an input folder, can't be created, or exists and is not an artifact tanglec "
            "wrote of the same kind (a plain file is replaced only with `--overwrite`). Nothing is written "
            "(docs/cli.md, \"Output paths\").", produce="E192"),
    # ---- warnings ------------------------------------------------------------------------------
    Example("W201", "unused selector", "A selector that chooses no multiplexer and no target value.",
            SEED.replace("route x", "select unused: a | b\nroute x"), show=["select unused: a | b"]),
    Example("W203", "unused target", "A target no module decodes.", SEED + "\ntarget z = x + 1\n",
            show=["target z = x + 1"]),
    Example("W204", "frozen module without initial weights", "`freeze` without `init`: the module keeps its "
            "random weights.", seed("decode to_binary, to_decimal as y", "decode to_binary, to_decimal as y\nfreeze plus1"),
            show=["freeze plus1"]),
    Example("W205", "untrained route through an unaligned latent", "A held-out route depends on a latent that "
            "nothing ties to the ones its next module was trained on; `align` fixes it.",
            seed("align binary, decimal on x weight 1", "holdout binary -> times2"),
            show=["holdout binary -> times2   # instead of `align binary, decimal on x`"]),
    Example("W220", "loaded modules retrained on few rows", "A spec with `init` trains modules loaded from the "
            "run again, unfrozen, on fewer than 200 rows: they fit those rows and forget their other routes. The "
            "hint lists the `freeze` that keeps them.", seed("data enumerate", 'init "base"\ndata enumerate limit 20'),
            files={"base": "RUN"}, show=['init "base"', "data enumerate limit 20"]),
    Example("W221", "new module sees part of its input", "A module new to a transfer spec is trained on rows whose "
            "input (a decoder's target) takes only some of the values it takes over all the data; the message "
            "names the missing values.", seed("data enumerate", 'module is_odd : onehot(10) -> bits(1) = dense 8 '
                                              'relu, dense 1\nroute to_decimal -> is_odd\ntarget odd = y % 2\n'
                                              'decode is_odd as odd\ninit "base"\nfreeze binary, decimal, plus1, '
                                              'times2, to_binary, to_decimal\ndata enumerate only op:times2'),
            files={"base": "RUN"}, show=["module is_odd : onehot(10) -> bits(1) = dense 8 relu, dense 1",
                                         "data enumerate only op:times2"]),
    Example("W206", "init run not there yet", "The `init` run does not exist yet. The spec checks (and its "
            "graph draws); `tanglec compile` stops with E140 until the run is trained, and the alignment "
            "coverage (W205) is checked against it then.", SEED + 'init "runs/base"\n', show=['init "runs/base"']),
]


# ---- producing the messages ---------------------------------------------------------------------

def fake_run(path: Path, spec_text: str) -> None:
    """A run directory with a real manifest around a spec (weights are a placeholder: checks only read the spec)."""
    from tanglec import __version__
    from tanglec.artifacts.run import FORMAT, MANIFEST, METRICS, REPORT, SPEC, WEIGHTS, manifest_digest

    path.mkdir(parents=True)
    files = {SPEC: spec_text.encode(), WEIGHTS: b"weights", REPORT: b"{}", METRICS: b"{}"}
    for name, data in files.items():
        (path / name).write_bytes(data)
    manifest = {"format": FORMAT, "tanglec": __version__, "keras": "3.0.0", "tensorflow": "2.0.0",
                "spec_path": str(path / SPEC), "files": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}
    manifest["digest"] = manifest_digest(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def _produce(key: str, work: Path):
    from tanglec.lang.diagnostics import Diagnostic, TangleError

    if key == "E005":
        from tanglec.lang.parser import parse

        try:
            parse("# " + "x" * 2_000_001, "spec.tangle")
        except TangleError as err:
            return err.diagnostics, ["# (a 2 MB comment)"]
    if key == "E006":
        from tanglec.lang.parser import parse_file

        (work / "spec.tangle").write_bytes("input x: int 0..9  # café\n".encode("latin-1"))
        try:
            parse_file("spec.tangle")
        except TangleError as err:
            return err.diagnostics, ["input x: int 0..9  # caf\\xe9   (Latin-1 bytes)"]
    if key == "E130":
        from tanglec.pipeline import check_spec
        from tanglec.lang.parser import parse
        from tanglec.data.query import parse_fields

        try:
            parse_fields(check_spec(parse(SEED, "spec.tangle")), {"x": "12", "encoding": "binar", "op": "plus1"})
        except TangleError as err:
            return err.diagnostics, ["$ tanglec query runs/arith x=12 encoding=binar op=plus1"]
    if key == "E140":
        from tanglec.artifacts.run import SPEC, read_manifest

        fake_run(work / "runs" / "arith", SEED)
        (work / "runs" / "arith" / SPEC).write_text(SEED.replace("steps 300", "steps 3000"))
        try:
            read_manifest(Path("runs/arith"))
        except TangleError as err:
            return err.diagnostics, ["$ sed -i s/300/3000/ runs/arith/spec.tangle && tanglec eval runs/arith"]
    if key == "E141":
        from tanglec.backend.checkpoint import checkpoint_error

        err = checkpoint_error(Path("runs/.arith.ckpt/checkpoint.npz"), "the checkpoint was made with different "
                               "settings (seed, steps, mux or phases); it can't be resumed",
                               hints=["compile without --resume to start over (the checkpoint is then replaced)",
                                      "or resume with the same spec, data and options"])
        return err.diagnostics, ["$ tanglec compile specs/arith.tangle -o runs/arith --steps 300   # Ctrl-C",
                                 "$ tanglec compile specs/arith.tangle -o runs/arith --steps 400 --resume"]
    if key == "E142":
        import errno

        from tanglec.lang.diagnostics import write_error

        err = write_error(Path("runs/arith"), OSError(errno.ENOSPC, "No space left on device"))
        return err.diagnostics, ["$ tanglec compile specs/arith.tangle -o runs/arith   # on a full disk"]
    if key == "E171":
        from tanglec.pipeline import check_spec
        from tanglec.lang.parser import parse
        from tanglec.backend.train import divergence_error, plan_phases

        checked = check_spec(parse(SEED.replace("adam 0.01", "sgd 10.0"), "spec.tangle"))
        err = divergence_error(checked, plan_phases(checked)[0], 1, 10, "the loss (to_binary, total) is NaN")
        return err.diagnostics, ["train steps 300 batch 64 sgd 10.0 seed 0 until exact"]
    if key == "E190":
        from tanglec.spec.graph_formats import GraphvizMissing

        try:
            raise GraphvizMissing("--format svg needs Graphviz's `dot` program, which is not on PATH. Install "
                                  "Graphviz (...), or write the DOT text with `--format dot`")
        except GraphvizMissing as err:
            return [Diagnostic("E190", str(err), None)], ["$ tanglec graph specs/arith.tangle --format svg"]
    if key == "E170":
        from tanglec.backend.distribute import read_tf_config

        try:
            read_tf_config({})
        except TangleError as err:
            return err.diagnostics, ["$ tanglec compile specs/arith.tangle --strategy multiworker   # no TF_CONFIG"]
    if key == "E191":
        from tanglec.artifacts.export import export_error

        err = export_error(Path("arith.zip"), "a Keras export is a file ending in .keras",
                           hints=["use -o arith.keras"])
        return err.diagnostics, ["$ tanglec export runs/arith --format keras -o arith.zip"]
    if key == "E192":
        from tanglec.lang.diagnostics import output_refused
        from tanglec.util.files import OutputRefused, check_output

        (work / "runs").mkdir()
        (work / "runs" / "notes.txt").write_text("a user's file")
        try:
            check_output(Path("runs"), "run")
        except OutputRefused as err:
            return output_refused(err).diagnostics, ["$ tanglec compile specs/arith.tangle -o runs"]
    raise KeyError(key)


def diagnostics_for(ex: Example, work: Path):
    """(diagnostics, lines to show) for an example, run in `work` (the current directory)."""
    from tanglec.pipeline import check_spec
    from tanglec.data.examples import DataError, build_examples
    from tanglec.lang.diagnostics import TangleError
    from tanglec.lang.parser import parse_partial

    if ex.produce:
        return _produce(ex.produce, work)
    for name, content in ex.files.items():
        if content == "RUN":
            fake_run(work / name, SEED)
        elif isinstance(content, bytes):
            (work / name).write_bytes(content)
        else:
            (work / name).write_text(content)
    (work / "spec.tangle").write_text(ex.spec)
    spec, diags = parse_partial(ex.spec, "spec.tangle")
    checked = check_spec(spec)
    diags = diags + checked.diagnostics
    if ex.stage == "build" and not checked.errors and not diags:
        try:
            build_examples(checked)
        except (DataError, TangleError) as err:
            diags = err.diagnostics
    show = ex.show
    if show is None:
        base = set(SEED.split("\n")) | set(MINIMAL.split("\n"))
        show = [line for line in ex.spec.split("\n") if line.strip() and line not in base]
    return diags, show


def render_example(ex: Example) -> tuple[str, str]:
    """(snippet, rendered diagnostic) with paths relative to the example's folder."""
    from tanglec.lang.diagnostics import render

    from tanglec.lang.diagnostics import SOURCES

    SOURCES._texts.clear()  # each example's files only
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            diags, show = diagnostics_for(ex, Path(tmp))
        finally:
            os.chdir(cwd)
        mine = [d for d in diags if d.code == ex.code]
        if not mine:
            raise AssertionError(f"{ex.code}: the example yields {[d.code for d in diags]}")
        shown = mine if ex.code == "E119" else mine[:1]
        text = "\n\n".join(render(d) for d in shown).replace(tmp + "/", "").replace(tmp, ".")
    return "\n".join(show), text


HEADER = """# Diagnostic codes

Every problem tanglec reports is a diagnostic with a stable code: `E` for errors (exit code 1), `W`
for warnings (reported, never fatal). A diagnostic has a position (`file:line:col`, 1-based; for a
data file `file:row:column`), a message, hints (did-you-mean for names and keywords) and related
positions ("declared here"), and `--json` gives the same as

```json
{"code": "E101", "severity": "error", "message": "unknown module 'binry'",
 "span": {"file": "spec.tangle", "line": 13, "col": 12, "end_line": 13, "end_col": 17},
 "hints": ["did you mean 'binary'?"], "related": []}
```

`tanglec check` reports every problem in one pass: every broken statement, then every semantic
problem in the statements that parsed. Codes are never reused for another meaning.

The examples below change a line or two of the seed spec, `specs/arith.tangle` (unless they show a
whole spec), and the messages are what tanglec prints for them: this file is generated by
`bench/errors_doc.py`, which runs every example, and `tests/test_fuzz.py` checks that every code
the source uses is listed here and that every example still yields its code.

Robustness: a fuzzer (`bench/fuzz.py`: mutated specs, grammar-generated specs, random expressions)
checks that any input gets diagnostics positioned inside the file and never a traceback; the
limits below (E004, E005, E007, E127, E150, E151) bound what a spec can make tanglec do before any
model exists.

Interrupted compiles: `tanglec compile` saves a checkpoint every 100 steps (`--checkpoint-every N`)
beside the run (`runs/.arith.ckpt/` for `runs/arith`) and on Ctrl-C or SIGTERM, after finishing the
current chunk of steps; it then exits 130/143 and prints the command that continues, the same one
with `--resume`. A resumed run ends bit-identical to an uninterrupted one; a run directory is
written atomically (complete or absent, the previous run intact until the new one replaces it).
"""


def generate() -> str:
    parts = [HEADER]
    sections = [("Syntax and limits of the text", "E0"), ("Specs", "E1"), ("Warnings", "W")]
    for title, prefix in sections:
        parts.append(f"\n## {title}\n")
        for ex in [e for e in EXAMPLES if e.code.startswith(prefix)]:
            snippet, rendered = render_example(ex)
            meaning = ex.meaning.format(**limits())
            lang = "console" if snippet.startswith("$") else "tangle"
            parts.append(f"\n### {ex.code} — {ex.title}\n\n{meaning}\n\n```{lang}\n{snippet}\n```\n\n"
                         f"```text\n{rendered}\n```\n")
    return "".join(parts)


def limits() -> dict:
    from tanglec.lang import parser
    from tanglec.spec import check_limits, checks
    from tanglec.spec.graph import MAX_ROUTES

    found = {k: getattr(m, k) for m in (checks, check_limits, parser) for k in dir(m) if k.startswith("MAX_")}
    return found | {"MAX_ROUTES": MAX_ROUTES}


def codes_in_source() -> set[str]:
    found = set()
    for path in (ROOT / "tanglec").rglob("*.py"):
        found |= set(re.findall(r"""["']([EW]\d{3})["']""", path.read_text()))
    return found


def documented(text: str) -> set[str]:
    return set(re.findall(r"^### ([EW]\d{3}) ", text, re.M))
