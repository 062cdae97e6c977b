"""The command line never crashes on compile, eval, query or export: CI's share of bench/cli_fuzz.py.

The cases (generated specs, damaged data files, tampered runs, odd query fields) and the oracle are
`tanglec.devtools.clifuzz`; every case runs the real `tanglec` command line, in a driver process or
(a share, and every exit 3) in a process of its own. One campaign runs for the whole module; each
test looks at the failures of its own family of cases.
"""
from __future__ import annotations

import fcntl
import json
import os
import random
from pathlib import Path

import pytest

from tanglec.devtools import clifuzz
from tanglec.spec.onepass import check_file

SEED = 12
COMPILE_CASES, TAMPER_CASES = 3, 16


def _run_campaign(folder: Path) -> dict:
    run = clifuzz.Campaign(folder, seed=SEED, fresh_share=0.1, timeout=120)
    try:
        return run.run(COMPILE_CASES, TAMPER_CASES)
    finally:
        run.close()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """The campaign's report, computed once per test session even when xdist spreads these tests over workers."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _run_campaign(tmp_path_factory.mktemp("clifuzz"))
    shared = tmp_path_factory.getbasetemp().parent  # this session's folder, common to its workers
    cached = shared / "clifuzz-report.json"
    with open(shared / "clifuzz.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.is_file():
            cached.write_text(json.dumps(_run_campaign(shared / "clifuzz")))
        return json.loads(cached.read_text())


def _failures(report: dict, *families: str) -> list[str]:
    return [f"[{f['family']} {f['case']}] {f['what']}: {' '.join(f['argv'])} -> {f['problems']}\n"
            f"{f['output'][-600:]}" for f in report["failures"] if f["family"] in families]


def test_generated_specs_pass_check(tmp_path):
    """The generator's specs are valid (compile cases are about compile, not about check's refusals), but
    for the one edge family that check must refuse."""
    rejected = []
    shapes = set()
    for case in range(120):
        spec = clifuzz.generate_spec(random.Random(case))
        shapes.update(s.split(":")[0] for s in spec.shape)
        checked, diagnostics = check_file(spec.write(tmp_path / str(case)))
        if "edge:vector-decoder-number-target" in spec.shape:  # finding 9: refused by check, positioned
            assert [d.code for d in diagnostics if d.is_error] == ["E112"], diagnostics
            continue
        if checked is None or checked.errors:
            rejected.append((spec.text, [d.message for d in diagnostics if d.is_error]))
    assert not rejected, rejected[:2]
    assert {"encoder-mux", "op-mux", "fan-out", "align", "holdout", "freeze", "phases"} <= shapes


def test_oracle_catches_what_it_must():
    """Exit 3, signals, tracebacks, NaN in --json and unpositioned errors are all failures."""
    def outcome(rc, stdout="", stderr=""):
        return clifuzz.Outcome(["eval", "run"], rc, stdout, stderr, 0.1, "driver")

    assert clifuzz.judge(outcome(0, '{"ok": true}'), as_json=True) == []
    assert clifuzz.judge(outcome(3, "", "internal error: ZeroDivisionError"), as_json=False)
    assert clifuzz.judge(outcome(-11), as_json=False)
    assert clifuzz.judge(outcome(None), as_json=False)
    assert clifuzz.judge(outcome(1, "", "Traceback (most recent call last):"), as_json=False)
    assert clifuzz.judge(outcome(0, '{"ok": true, "accuracy": NaN}'), as_json=True)
    assert clifuzz.judge(outcome(1, '{"ok": false, "diagnostics": [{"code": "E140", "severity": "error", '
                                    '"span": null, "message": "m"}]}'), as_json=True)
    assert clifuzz.judge(outcome(1, "", "error[E119]: bad cell"), as_json=False)
    assert clifuzz.judge(outcome(1, "", "runs/x:1:1: error[E140]: damaged"), as_json=False) == []
    assert clifuzz.judge(outcome(1, "", f"hint: the header has: {clifuzz.SECRET}"), as_json=False)


def test_generated_specs_compile_eval_query_export(campaign):
    assert campaign["cases_by_family"].get("compile", 0) >= 1
    assert campaign["fresh_process_commands"] >= 1  # some commands ran as a user runs them, in their own process
    assert not _failures(campaign, "compile", "query", "export")


def test_damaged_data_is_refused_cleanly(campaign):
    assert not _failures(campaign, "data")


def test_tampered_runs_are_refused_cleanly(campaign):
    assert campaign["cases_by_family"]["tamper"] == TAMPER_CASES
    assert not _failures(campaign, "tamper")


def test_specs_at_the_edges_compile_or_are_refused(campaign):
    assert not _failures(campaign, "edge")


def test_compile_trains_the_steps_asked_for(campaign):
    assert not _failures(campaign, "steps")


def test_compile_output_never_deletes_a_users_file(campaign):
    assert not _failures(campaign, "output-path")



RESIDUAL_BRANCH = """\
input x: int 0..3
select via: a | b
module a: onehot(4) -> latent(4) = residual(dense 4 relu, dense 4)
module b: onehot(4) -> latent(4) = dense 4
module d: latent(4) -> onehot(4) = dense 4
route x -> [a | b] by via using {strategy} -> d
target y = x
decode d as y
data enumerate
train steps 2 batch 8
"""


@pytest.mark.slow
def test_a_residual_branch_no_row_takes_answers_a_query(tmp_path):
    """One query row takes branch b: branch a, residual, runs on 0 rows and must not crash."""
    from support import run_tanglec

    (tmp_path / "spec.tangle").write_text(RESIDUAL_BRANCH.format(strategy="gather"))
    compiled = run_tanglec("compile", "spec.tangle", "-o", "run", "--json", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    answered = run_tanglec("query", "run", "x=1", "via=b", "--json", cwd=tmp_path)
    assert answered.returncode == 0, answered.stderr[-600:]
    assert json.loads(answered.stdout)["ok"] is True
