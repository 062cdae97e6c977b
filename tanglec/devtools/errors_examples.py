"""The examples of docs/errors.md, one per diagnostic code: the spec (or the producer) that yields it.

tanglec/devtools/errors_doc.py runs each through the library and renders the real message.
"""
from __future__ import annotations

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


TABLE_SPEC = """\
input x: int 0..3
codec two: bits(2) table { 0: 00, 1: 01, 2: 10, 3: 11 }
module enc: two -> latent(4) = dense 4
module dec: latent(4) -> two = dense 2
route x -> enc -> dec
target y = x
decode dec as y
"""


def table(old: str, new: str) -> str:
    assert old in TABLE_SPEC, old
    return TABLE_SPEC.replace(old, new, 1)


def table_example(code: str, title: str, meaning: str, spec: str) -> Example:
    """A table codec's example, shown whole (its few lines are all part of the problem)."""
    return Example(code, title, meaning, spec, show=spec.strip().split("\n"))


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
            "every spec under both caps is checked in seconds of CPU (a 10,000-line spec of modules in about 2 s).",
            produce="E005"),
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
    Example("E116", "bad field type", "An empty range, an empty vector, or a quoted category value that is empty "
            "or starts or ends with a space (cells are read without the spaces around them).", seed("int 0..9", "int 9..0")),
    Example("E117", "field and codec don't fit", "An input's values don't fit the codec of the module that "
            "reads it.", seed("input x: int 0..9", "input x: int 0..19")),
    Example("E118", "decoder with a latent output", "Only bits, onehot, scalar, vector, gray and table codec outputs can "
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
    table_example("E131", "bad table pattern", "A table codec is declared bits(n), and each of its patterns is n "
            "binary digits (leading zeros count).", table("3: 11", "3: 111")),
    table_example("E132", "table key that is no value", "A table's key is not a value of the field a module reads "
            "through it (an int outside its range, a name not among its categories), or not a value a decoder's "
            "target can take (targets are numbers; an int target declared with a range bounds them).",
            table("input x: int 0..3", "input x: int 0..2").replace("target y = x", "target y = 3 - x")),
    table_example("E133", "value missing from a table", "A value of a field read through a table, or of a target "
            "decoded through one, has no pattern in it; the message lists the missing values.",
            table(", 3: 11", "")),
    table_example("E134", "two values share a decoder's pattern", "A decoder's table gives two values the same "
            "pattern, so the answer can't be told apart (a table only modules read gets W207 instead).",
            table("3: 11", "3: 10")),
    Example("E135", "a branch reading a field where it can't", "`[a | b from field] by s`: only a branch of the "
            "multiplexer right after the route's source reads a field of its own; later stages and chains read what "
            "the stage before gives, an identity branch `value: _` runs no module.",
            seed("input x: int 0..9", "input x: int 0..9\ninput img: vector(4)").replace("times2] by", "times2 from img] by")),
    Example("E136", "an input's columns can't be read", "`input v: vector(n) from ...` names the data file's "
            "columns a field is read from: a vector takes n columns (or one holding all n numbers), any other field "
            "one. A run `pixel0..pixel63` goes up between two names that differ only in their number; no column "
            "may be named twice.",
            seed("input x: int 0..9", 'input x: int 0..9\ninput img: vector(4) from "px 1", px2..px4, px2')),
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
    Example("E160", "align a module that reads no field", "`align a, b on x`: each module must read an input "
            "field (its own: a label alignment's differ), and at least one of them must read x.",
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
    table_example("W207", "two values share an input table's pattern", "A table only read by modules (no decoder "
            "outputs it) gives two values the same pattern: the modules can't tell them apart.",
            table("3: 11", "3: 10").replace("latent(4) -> two = dense 2", "latent(4) -> onehot(4) = dense 4")),
    Example("W208", "norm over one or two values", "A `norm` (layer normalisation: one example's values "
            "rescaled to mean 0 and variance 1) reads one value, which it turns into a constant, or two, of which "
            "it keeps only which is larger. Scaling an input field's values across examples is `standardize`'s work.",
            "input x: float 0..100\nmodule enc: scalar -> latent(8) = norm, dense 16 relu, dense 8\n"
            "module dec: latent(8) -> scalar = dense 16 relu, dense 1\nroute x -> enc -> dec\ntarget y = x / 2\n"
            "decode dec as y\ndata sample 200\n", show=["module enc: scalar -> latent(8) = norm, dense 16 relu, dense 8"]),
    Example("W209", "decoder ending with an activation", "A bits, gray, onehot or table decoder's last layer gives "
            "logits, which the codec turns into probabilities itself (sigmoid or softmax): an activation there bounds "
            "them, so the confidences stay low and training slows. One that is never negative (relu, sigmoid, "
            "softplus) on a bit-pattern output is an error instead (E111): every bit would read 1.",
            seed("dense 64 relu, dense 10\n", "dense 64 relu, dense 10 tanh\n")),
]
