"""Generators of specs and data shared by the fuzz tests and bench/ (fuzz.py, stream_memory.py).

The corpus of valid specs mutations start from (the checkout's specs/ plus a few that use every feature),
the mutations themselves (tokens, characters, lines, bytes), random target expressions, sentences of the
grammar (Hypothesis), and large gates-like CSV files. Deterministic under a seeded `random.Random`.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from pathlib import Path

from tanglec.lang.diagnostics import TangleError
from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec

ROOT = Path(__file__).resolve().parents[2]  # the checkout: specs/ is not shipped in the wheel

# ---- the corpus: valid specs that mutations start from ----------------------------------------

EVERYTHING = """\
# Every kind of statement, layer, codec, setting and expression the language has.
input a: int 0..7
input colour: category red | green | blue
select op: add | sub | pick
select view: bin | dec

module enc_bits : bits(3)   -> latent(8) = dense 16 relu, norm, dense 8
module enc_hot  : onehot(8) -> latent(8) = dense 16 tanh, dropout 0.1, dense 8
module add      : latent(8) -> latent(8) = residual(dense 8 relu, dense 8)
module sub      : latent(8) -> latent(8) = dense 8 gelu
module pick     : latent(8) -> latent(8) = dense 8 linear
module out_bits : latent(8) -> bits(4)   = dense 4
module out_val  : latent(8) -> scalar    = dense 1

route a -> [bin: enc_bits | dec: enc_hot] by view using partition -> [add | sub | pick] by op using where -> out_bits, out_val

target r = match op { add: min(a + 1, 15), sub: abs(a - 3), _: if a > 3 and not (a == 5) then a // 2 else a % 3 }
target v: float = a * 0.5 + 1 - -2 ** 2 / 4
decode out_bits as r
decode out_val as v

data enumerate seed 3 eval 0.2
train steps 100 batch 16 lr 0.01 seed 1 weight out_val:0.5 mux auto eval_every 5 optimizer adam
"""

SAMPLED = """\
input f: float -1..1
input g: float
input n: int -3..3
select mode: lo | hi

module fenc : scalar    -> latent(4) = dense 4 tanh
module lo   : latent(4) -> latent(4) = dense 4
module hi   : latent(4) -> latent(4) = dense 4 sigmoid
module fout : latent(4) -> scalar    = dense 1
module nout : latent(4) -> onehot(7) = dense 7

route f -> fenc -> [lo | hi] by mode using gather -> fout, nout

target t: float = match mode { lo: f ** 2, hi: if f > 0 then f / 2 else -f }
target m = max(n, 0 - n, 0) + (n >= 0)
decode fout as t
decode nout as m

data sample 200 seed 2
train sgd 0.1 steps 50 batch 32
"""

JSONL = """\
input n: int 0..3
input tag: category p | q
input v: vector(2)
select s: u | w

module e  : onehot(4) -> latent(4) = dense 4
module u  : latent(4) -> latent(4) = dense 4
module w  : latent(4) -> latent(4) = dense 4
module d  : latent(4) -> onehot(4) = dense 4

route n -> e -> [u | w] by s -> d

target k: int 0..3 from data
decode d as k

data file "rows.jsonl" eval 0.5
train adamw 0.001 steps 20 rmsprop 0.01
"""

COLUMNS = """\
input img: vector(4) from px0..px3
input age: float 0..100 from "Age (years)"
select s: pic | years
module pic  : vector(4) -> latent(4) = dense 4
module years: scalar -> latent(4) = dense 4
module d    : latent(4) -> onehot(2) = dense 2
route img -> [pic | years from age] by s -> d
target k: int 0..1 from data
decode d as k
data file "columns.csv" eval 0.25
train steps 20
"""

DATA_FILES = {
    "columns.csv": "px0,px1,px2,px3,Age (years),s,k\n" + "".join(
        f"{i},{-i},0.5,{i % 3},,pic,{i % 2}\n" if i % 2 else f",,,,{i * 3},years,{i % 3 % 2}\n" for i in range(16)),
    "rows.jsonl": "".join(json.dumps({"n": i % 4, "tag": "pq"[i % 2], "v": [i, -i], "s": "uw"[i % 2], "k": (i * 3) % 4})
                          + "\n" for i in range(16)),
    "rows.csv": "n,s,k\n" + "".join(f"{i % 4},{'uw'[i % 2]},{(i + 1) % 4}\n" for i in range(16)),
}


OWN = {"everything.tangle": EVERYTHING, "sampled.tangle": SAMPLED, "jsonl.tangle": JSONL, "columns.tangle": COLUMNS}


def corpus(work: Path | None = None) -> dict[str, str]:
    """The specs mutations start from: the repo's specs that check cleanly on their own (a spec that
    needs a trained `init` run does not) and the ones above, which use every feature."""
    specs = {}
    for p in sorted((ROOT / "specs").glob("*.tangle")):
        text = p.read_text()
        try:
            if work is None or not check_spec(parse(text, str(work / p.name))).errors:
                specs[p.name] = text
        except TangleError:
            pass
    specs.update(OWN)
    return specs


def make_workdir() -> Path:
    """A folder with the repo's specs and the data files the corpus names, so `data file` and `use`
    statements resolve."""
    work = Path(tempfile.mkdtemp(prefix="tanglec-fuzz-"))
    for name, text in DATA_FILES.items():
        (work / name).write_text(text)
    for p in (ROOT / "specs").glob("*.tangle"):
        shutil.copy(p, work / p.name)
    if (ROOT / "specs" / "data").is_dir():
        shutil.copytree(ROOT / "specs" / "data", work / "data")
    return work


# ---- mutations -------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|->|\.\.|\*\*|//|==|!=|<=|>="
                    r'|"[^"\n]*"|#[^\n]*|.', re.S)
KEYWORDS = ["input", "select", "module", "route", "target", "decode", "data", "train", "int", "float",
            "category", "vector", "by", "using", "from", "as", "enumerate", "sample", "file", "if", "then",
            "else", "or", "and", "not", "match", "exact", "until", "dense", "dropout", "norm", "residual",
            "relu", "bits", "onehot", "scalar", "latent", "steps", "seed", "batch", "weight", "eval", "mux",
            "text", "ngrams"]
SYMBOLS = [":", "|", "->", "=", ",", "(", ")", "[", "]", "{", "}", "..", "**", "//", "%", "+", "-", "*", "/",
           "==", "!=", "<", ">=", "_", '"x"', '"rows.csv"', '"rows.jsonl"', '"../x"', '""', "#", "\n", " ", "."]
NUMBERS = ["0", "1", "-1", "2", "7", "62", "63", "64", "100001", "0.5", "1e9", "1e308", "1e999", "-0", "00",
           "9" * 17, "9" * 40, "9" * 5000, "9007199254740992", "1" + "0" * 30, "2.5e-400", "3.", ".5", "+4"]
UNICODE = ["é", "\u2028", "\u2029", "\x00", "\ufeff", "\u200b", "😀", "٣", "１", "\u0301", "\r", "\x0c", "\x0b",
           "\t", "\x85", "\u202e", "ß", "ǅ", "\U0010ffff", "\x1c", "\u3000", "Ⅻ", "²"]


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def random_char(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(UNICODE)
    if roll < 0.7:
        return chr(rng.randrange(0x20, 0x7f))
    while True:
        c = rng.randrange(0x110000)
        if not 0xD800 <= c <= 0xDFFF:  # a file can't hold a lone surrogate (parse_file reports E006)
            return chr(c)


def _vocab(rng: random.Random, words: list[str]) -> str:
    pool = rng.choice([KEYWORDS, SYMBOLS, NUMBERS, words])
    return rng.choice(pool) if pool else "x"


def mutate(text: str, rng: random.Random) -> str:
    """One random mutation of `text` (token, character, line, number, repetition or truncation)."""
    toks = _tokens(text)
    solid = [i for i, t in enumerate(toks) if not t.isspace()]
    words = [t for t in toks if t[:1].isalpha()]
    op = rng.randrange(16)
    if not solid:
        op = 5
    if op == 0:  # delete a token
        del toks[rng.choice(solid)]
    elif op == 1:  # duplicate a token
        i = rng.choice(solid)
        toks.insert(i, toks[i] + rng.choice(["", " "]))
    elif op == 2:  # swap two tokens
        i, j = rng.choice(solid), rng.choice(solid)
        toks[i], toks[j] = toks[j], toks[i]
    elif op == 3:  # insert a token
        toks.insert(rng.randrange(len(toks) + 1), rng.choice(["", " "]) + _vocab(rng, words) + rng.choice(["", " "]))
    elif op == 4:  # replace a token
        toks[rng.choice(solid)] = _vocab(rng, words)
    elif op == 5:  # insert characters
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + "".join(random_char(rng) for _ in range(rng.randint(1, 4))) + text[pos:]
    elif op == 6:  # delete characters
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + text[pos + rng.randint(1, 8):]
    elif op == 7:  # replace one character
        if text:
            pos = rng.randrange(len(text))
            return text[:pos] + random_char(rng) + text[pos + 1:]
    elif op == 8:  # truncate
        return text[:rng.randrange(len(text) + 1)]
    elif op in (9, 10):  # line operations
        lines = text.split("\n")
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        kind = rng.randrange(4)
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(j, lines[i])
        elif kind == 2:
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines.insert(j, lines.pop(i))
        return "\n".join(lines)
    elif op == 11:  # blow up a number
        nums = [i for i in solid if toks[i][:1].isdigit()]
        if nums:
            toks[rng.choice(nums)] = rng.choice(NUMBERS)
    elif op == 12:  # repeat a fragment many times (long flat statements, deep expression chains)
        i = rng.choice(solid)
        frag = "".join(toks[i:i + rng.randint(1, 4)])
        toks.insert(i, frag * rng.choice([2, 10, 300, 1500, 4000]))
    elif op == 13:  # wrap a fragment in many brackets
        i = rng.choice(solid)
        j = min(len(toks), i + rng.randint(1, 6))
        opener = rng.choice("([{")
        closer = {"(": ")", "[": "]", "{": "}"}[opener]
        k = rng.choice([1, 3, 63, 64, 65, 100])
        toks[i:j] = [opener * k, *toks[i:j], closer * k]
    elif op == 14:  # misspell a keyword or name
        i = rng.choice([i for i in solid if toks[i][:1].isalpha()] or solid)
        w = toks[i]
        if len(w) > 1:
            k = rng.randrange(len(w))
            w = rng.choice([w[:k] + w[k + 1:], w[:k] + w[k] + w[k:], w[:k] + "x" + w[k + 1:]])
        toks[i] = w
    else:  # splice a statement from another place in the same file
        lines = [l for l in text.split("\n") if l.strip()]
        if lines:
            pos = rng.randrange(len(toks) + 1)
            toks.insert(pos, rng.choice(["\n", " "]) + rng.choice(lines) + "\n")
    return "".join(toks)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(b) + 1)
        kind = rng.randrange(3)
        if kind == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif kind == 1:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        else:
            del b[pos:pos + rng.randint(1, 3)]
    return bytes(b)


def mutation_case(rng: random.Random, specs: dict[str, str]) -> tuple[str, bytes | None]:
    text = specs[rng.choice(sorted(specs))]
    if rng.random() < 0.05:
        return text, mutate_bytes(text.encode("utf-8"), rng)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        text = mutate(text, rng)
    return text, None


# ---- random expressions ------------------------------------------------------------------------

EXPR_ENUMERATED = """\
input x: int -5..5
input c: category red | green | blue
select sel: a | b
module enc : onehot(11) -> latent(4) = dense 4
module ma  : latent(4) -> latent(4) = dense 4
module mb  : latent(4) -> latent(4) = dense 4
module out : latent(4) -> scalar = dense 1
route x -> enc -> [a: ma | b: mb] by sel -> out
target base = x * 2
target y: float = {expr}
decode out as y
data enumerate
"""
EXPR_SAMPLED = EXPR_ENUMERATED.replace("input x: int -5..5", "input x: int -5..5\ninput f: float -3..3") \
    .replace("data enumerate", "data sample 64 seed 5")

_LEAVES = ["x", "x", "0", "1", "2", "-1", "3", "0.5", "0", "1e300", "9007199254740991", "62", "base", "nope", "c"]
_BINOPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]


def random_expr(rng: random.Random, depth: int = 0, names: list[str] | None = None) -> str:
    leaves = _LEAVES + (names or [])
    if depth > rng.choice([2, 3, 4, 5]) or rng.random() < 0.2:
        return rng.choice(leaves)
    kind = rng.randrange(8)
    sub = lambda: random_expr(rng, depth + 1, names)  # noqa: E731
    if kind <= 2:
        return f"{sub()} {rng.choice(_BINOPS)} {sub()}"
    if kind == 3:
        return f"({sub()})"
    if kind == 4:
        return rng.choice(["-", "not ", "- -"]) + sub()
    if kind == 5:
        fn = rng.choice(["min", "max", "abs", "abs", "sqrt"])
        return f"{fn}({', '.join(sub() for _ in range(rng.choice([1, 2, 3])))})"
    if kind == 6:
        return f"if {sub()} then {sub()} else {sub()}"
    cases = rng.sample(["a: ", "b: ", "_: ", "c: "], rng.randint(1, 3))
    return f"match {rng.choice(['sel', 'sel', 'c', 'x'])} {{ " + ", ".join(c + sub() for c in cases) + " }"


def expression_case(rng: random.Random) -> str:
    sampled = rng.random() < 0.4
    template = EXPR_SAMPLED if sampled else EXPR_ENUMERATED
    return template.replace("{expr}", random_expr(rng, names=["f"] if sampled else []))


# ---- grammar-generated cases (Hypothesis) ------------------------------------------------------

NAME_POOL = ["x", "y", "a", "op", "encoding", "binary", "decimal", "plus1", "times2", "bits", "onehot", "latent",
             "scalar", "vector", "dense", "relu", "dropout", "norm", "residual", "steps", "batch", "seed", "until",
             "exact", "weight", "mux", "where", "auto", "lr", "eval", "adam", "to_binary", "enc", "m", "t"]


def grammar_strategy():
    """Sentences of the grammar, tokens separated by spaces, names mostly from NAME_POOL."""
    from hypothesis import strategies as st
    from hypothesis.extra.lark import from_lark

    from tanglec.lang.parser import open_grammar

    lark = open_grammar()  # not the cached parser: a parser loaded from Lark's cache lacks .grammar
    spaced = lambda s: s.map(lambda v: f" {v} ")  # noqa: E731
    small_int = st.one_of(st.integers(0, 16), st.integers(0, 2**70), st.sampled_from([0, 1, 62, 63, 100001]))
    number = st.one_of(small_int.map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr)
                       .filter(lambda s: re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", s) is not None),
                       st.sampled_from(["0.5", "1e999", "2.5"]))
    explicit = {
        "NAME": spaced(st.one_of(st.sampled_from(NAME_POOL), st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True))),
        "INT": spaced(small_int.map(str)),
        "SIGNED_INT": spaced(st.tuples(st.sampled_from(["", "-", "+"]), small_int).map(lambda t: f"{t[0]}{t[1]}")),
        "NUMBER": spaced(number),
        "SIGNED_NUMBER": spaced(st.tuples(st.sampled_from(["", "-"]), number).map("".join)),
        "STRING": spaced(st.sampled_from(['"rows.csv"', '"rows.jsonl"', '"missing.csv"', '""', '"data/gates.csv"'])),
        "COMMENT": st.just("# comment\n"),
    }
    for t in lark.terminals:
        if t.name not in explicit and t.pattern.type == "str":
            explicit[t.name] = st.just(f" {t.pattern.value} ")
    return from_lark(lark, start="start", explicit=explicit)


# ---- data files ------------------------------------------------------------------------------

GATES = {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b}


def write_rows(path: Path, rows: int, seed: int = 0, block: int = 100_000) -> int:
    """A CSV of `rows` random gates rows (header: pair,gate,out); returns its size in bytes."""
    rng = random.Random(seed)
    names = list(GATES)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("pair,gate,out\n")
        for start in range(0, rows, block):
            lines = []
            for _ in range(min(block, rows - start)):
                a, b, gate = rng.randrange(8), rng.randrange(8), rng.choice(names)
                bits = f"{a >> 2 & 1} {a >> 1 & 1} {a & 1} {b >> 2 & 1} {b >> 1 & 1} {b & 1}"
                lines.append(f"{bits},{gate},{GATES[gate](a, b)}\n")
            fh.write("".join(lines))
    return path.stat().st_size
