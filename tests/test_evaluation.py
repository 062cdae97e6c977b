"""Evaluation during training: one compiled function per run, the same report as direct model calls,
an interval that widens only once accuracy stays put, and `until exact` stopping no later than before."""
from __future__ import annotations

import json

import numpy as np
import pytest

from support import ARITH, call_tanglec
from tanglec.data.evaluate import route_report
from tanglec.data.examples import build_examples
from tanglec.pipeline import load

# The seed spec's first step with every route exact at a chunk's end, where evaluation by eager calls after
# every chunk stopped; under the alignment term normalised by the latents' spread (codegen.Disagreement;
# with the raw squared term it was 30, 30, 30, 40, 30).
STEPS_TO_EXACT = {0: 30, 1: 40, 2: 40, 3: 50, 4: 30}


@pytest.mark.parametrize("seed", sorted(STEPS_TO_EXACT))
def test_until_exact_stops_no_later_than_with_eager_evaluation(seed):
    from tanglec.backend.train import train

    checked = load(ARITH)
    result = train(checked, build_examples(checked), seed=seed)
    assert result.stopped_early and result.report["accuracy"] == 1.0
    assert result.steps_run <= STEPS_TO_EXACT[seed]


def test_compiled_evaluation_reports_what_direct_calls_report():
    from tanglec.backend.predict import Predictor, predict_raw
    from tanglec.backend.train import train

    checked = load(ARITH)
    examples = build_examples(checked)
    model = train(checked, examples, seed=1, steps=20).model
    direct = predict_raw(model, checked, examples.columns)
    compiled = Predictor(model, checked, batch=16)(examples.columns)  # several calls, a short last one
    assert direct.keys() == compiled.keys()
    for name in direct:
        np.testing.assert_allclose(compiled[name], direct[name], rtol=1e-5, atol=1e-6)
    assert route_report(checked, examples, compiled) == route_report(checked, examples, direct)


def test_long_runs_evaluate_less_often_once_accuracy_stays_put(tmp_path):
    spec = tmp_path / "spec.tangle"
    spec.write_text(ARITH.read_text().replace(" until exact", " eval_every 2"))
    proc = call_tanglec("compile", str(spec), "--steps", "400", "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    steps = [h["step"] for h in history]
    gaps = np.diff([0] + steps)
    assert steps[-1] == 400 and steps[:2] == [2, 4]
    assert gaps.max() == 2 * 4  # 400 steps // (eval_every 2 x 50 evaluations) chunks at most
    assert len(steps) < 100
    for before, after, gap in zip(history, history[1:], gaps[1:]):
        if gap > 2:  # a wider gap only after an evaluation whose accuracy equalled the one before it
            earlier = history[history.index(before) - 1] if history.index(before) else None
            assert earlier is not None and earlier["accuracy"] == before["accuracy"]
