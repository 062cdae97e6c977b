"""The front end's fuzz oracle: run one case through everything the front end does, and judge it.

A case fails on any exception other than TangleError, on a formatter problem, on a diagnostic without a
position or positioned outside its file, or on a malformed code (bench/fuzz.py describes the families).
tests/test_fuzz.py runs a CI-sized share; bench/fuzz.py runs 10,000+ cases.
"""
from __future__ import annotations

import json
import random
import re
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tanglec.devtools.specgen import corpus, expression_case, grammar_strategy, mutation_case
from tanglec.lang import ast
from tanglec.lang.diagnostics import Diagnostic, TangleError, render_all
from tanglec.lang.fmt import format_source
from tanglec.lang.parser import parse, parse_file, parse_partial
from tanglec.pipeline import check_spec
from tanglec.spec.onepass import check_text

# ---- running one case ----------------------------------------------------------------------

class CaseTimeout(BaseException):
    """Raised by the bench's alarm when a case runs too long (a BaseException, so nothing swallows it)."""


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    diagnostics: int = 0
    parsed: bool = False
    seconds: float = 0.0


def _line_lengths(text: str) -> list[int]:
    return [len(line) for line in text.split("\n")]


def _span_problem(span: ast.Span, where: str, lines_of: dict[str, list[int] | None]) -> str | None:
    if span is None:
        return f"{where}: no position"
    if span.file not in lines_of:
        try:
            lines_of[span.file] = _line_lengths(Path(span.file).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            lines_of[span.file] = None
    lengths = lines_of[span.file]
    if not (isinstance(span.line, int) and isinstance(span.col, int) and span.line >= 1 and span.col >= 1):
        return f"{where}: bad position {span.line}:{span.col}"
    if (span.end_line, span.end_col) < (span.line, span.col):
        return f"{where}: span ends before it starts ({span.line}:{span.col}-{span.end_line}:{span.end_col})"
    if lengths is not None:
        if span.line > len(lengths):
            return f"{where}: line {span.line} is past the end of {span.file} ({len(lengths)} lines)"
        if span.col > lengths[span.line - 1] + 2:
            return f"{where}: column {span.col} is past the end of line {span.line} ({lengths[span.line - 1]} chars)"
    return None


def validate(diagnostics: list, file: str, text: str) -> list[str]:
    problems = []
    lines_of: dict[str, list[int] | None] = {file: _line_lengths(text)}
    for d in diagnostics:
        if not isinstance(d, Diagnostic):
            problems.append(f"not a Diagnostic: {d!r}")
            continue
        tag = f"{d.code} {d.message[:60]!r}"
        if not re.fullmatch(r"[EW]\d{3}", d.code or ""):
            problems.append(f"{tag}: malformed code")
        if d.severity not in ("error", "warning") or (d.severity == "warning") != d.code.startswith("W"):
            problems.append(f"{tag}: severity {d.severity} does not match its code")
        for where, span in [(tag, d.span)] + [(f"{tag} related", r.span) for r in d.related]:
            p = _span_problem(span, where, lines_of)
            if p:
                problems.append(p)
        json.dumps(d.to_json())
    render_all(diagnostics)
    return problems


def formatter_problems(text: str, file: str) -> list[str]:
    """`tanglec fmt` must be idempotent. (That it keeps the meaning, format_source checks itself:
    FormatterBug, which fails the case like any exception.)"""
    formatted = format_source(text, file)
    return [] if format_source(formatted, file) == formatted else ["fmt is not idempotent: fmt(fmt(x)) != fmt(x)"]


def run_case(text: str, file: str, via_file: bytes | None = None) -> Outcome:
    """Everything the front end does with a spec; exceptions other than TangleError are failures."""
    out = Outcome()
    started = time.perf_counter()
    try:
        if via_file is not None:
            Path(file).write_bytes(via_file)
            try:
                spec = parse_file(file)
                diags = []
            except TangleError as err:
                diags = err.diagnostics
                spec = None
            try:
                text = via_file.decode("utf-8")
            except UnicodeDecodeError:
                out.problems += validate(diags, file, via_file.decode("utf-8", "replace"))
                out.diagnostics = len(diags)
                return out
            if spec is None:
                spec, diags = parse_partial(text, file)
        else:
            spec, diags = parse_partial(text, file)
            try:
                parse(text, file)
                if diags:
                    out.problems.append("parse() accepted what parse_partial() reported problems in")
            except TangleError as err:
                if not err.diagnostics:
                    out.problems.append("TangleError without diagnostics")
        out.parsed = not diags
        if out.parsed:  # the formatter on every valid spec
            out.problems += formatter_problems(text, file)
        checked = check_spec(spec)
        diags = diags + checked.diagnostics
        out.diagnostics = len(diags)
        out.problems += validate(diags, file, text)
        one_checked, one_pass = check_text(text, file)  # what `tanglec check` reports
        out.problems += validate(one_pass, file, text)
        if out.parsed != (one_checked is not None):
            out.problems.append("check_text disagrees with parse_partial about syntax errors")
    except CaseTimeout:
        out.problems.append("timeout")
    except TangleError as err:  # check() itself may raise for data problems in some paths: fine if positioned
        out.problems += validate(err.diagnostics, file, text)
    except BaseException as err:  # noqa: BLE001 - the whole point: any other exception is a failure
        if isinstance(err, KeyboardInterrupt):
            raise
        out.problems.append("traceback: " + "".join(traceback.format_exception(err)[-6:]))
    out.seconds = time.perf_counter() - started
    return out


# ---- driver ----------------------------------------------------------------------------------

@dataclass
class Report:
    cases: int = 0
    failures: list[dict] = field(default_factory=list)
    parsed: int = 0
    diagnostics: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")
    by_family: dict[str, int] = field(default_factory=dict)

    def add(self, family: str, label: str, text: str, out: Outcome) -> None:
        self.cases += 1
        self.by_family[family] = self.by_family.get(family, 0) + 1
        self.parsed += out.parsed
        self.diagnostics += out.diagnostics
        if out.seconds > self.slowest[0]:
            self.slowest = (out.seconds, label)
        if out.problems:
            self.failures.append({"case": label, "problems": out.problems, "text": text[:2000]})

    def to_json(self) -> dict:
        return {"cases": self.cases, "by_family": self.by_family, "failures": len(self.failures),
                "tracebacks": sum(any(p.startswith("traceback") for p in f["problems"]) for f in self.failures),
                "parsed_cleanly": self.parsed, "diagnostics": self.diagnostics, "seconds": round(self.seconds, 1),
                "slowest_case": {"seconds": round(self.slowest[0], 3), "case": self.slowest[1]}}


def _with_alarm(seconds: float | None, fn):
    if not seconds or not hasattr(signal, "setitimer"):
        return fn()

    def on_alarm(signum, frame):
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_mutations(report: Report, count: int, seed: int, work: Path, timeout: float | None = None,
                  family: str = "mutation") -> None:
    specs = corpus(work)
    file = str(work / "fuzz.tangle")
    for i in range(count):
        rng = random.Random(f"{seed}:{family}:{i}")
        if family == "expression":
            text, raw = expression_case(rng), None
        else:
            text, raw = mutation_case(rng, specs)
        out = _with_alarm(timeout, lambda: run_case(text, file, raw))
        report.add(family, f"{family} seed={seed} case={i}", text if raw is None else repr(raw[:2000]), out)


def run_grammar(report: Report, count: int, work: Path, timeout: float | None = None) -> None:
    from hypothesis import HealthCheck, Phase, given, settings

    file = str(work / "grammar.tangle")

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(grammar_strategy())
    def one(text):
        out = _with_alarm(timeout, lambda: run_case(text, file))
        report.add("grammar", f"grammar case {report.by_family.get('grammar', 0)}", text, out)

    one()
