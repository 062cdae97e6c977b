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
from pathlib import Path

from .errors_examples import EXAMPLES, MINIMAL, ROOT, SEED, Example  # noqa: F401  (ROOT: bench/errors_doc.py)


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

Interrupted compiles: `tanglec compile` saves a checkpoint every 100 steps and 30 s (`--checkpoint-every N`)
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
