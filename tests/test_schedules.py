"""`train schedule ... warmup ...` and `until loss patience N`: checked like every setting, and acting."""
from __future__ import annotations

import json

import pytest

from support import call_tanglec

SPEC = """\
input x: int 0..9
module enc : onehot(10) -> latent(8) = dense 16 relu, dense 8
module half: latent(8)  -> scalar    = dense 16 relu, dense 1
route x -> enc -> half
target y = x / 2
decode half as y
data enumerate
train steps 400 adam 0.01 seed 0 eval_every 10 {extra}
"""


def test_the_schedules_follow_their_shapes():
    from tanglec.backend.schedules import TangleSchedule

    warm = TangleSchedule(0.01, 100, "cosine", warmup=10)
    rates = [float(warm(s)) for s in (0, 4, 9, 10, 55, 99)]
    assert rates[0] == pytest.approx(0.001) and rates[1] == pytest.approx(0.005)
    assert rates[2] == pytest.approx(0.01) and rates[3] == pytest.approx(0.01)
    assert rates[4] == pytest.approx(0.005, rel=0.05) and rates[5] < 0.0001
    step = TangleSchedule(0.01, 90, "step", decay=0.5, decay_every=30)
    assert [float(step(s)) for s in (0, 29, 30, 60)] == pytest.approx([0.01, 0.01, 0.005, 0.0025])


def test_until_loss_stops_when_the_evaluation_loss_stops_improving(write_spec):
    spec = write_spec(SPEC.format(extra="schedule cosine warmup 20 until loss patience 3"))
    proc = call_tanglec("compile", str(spec), "-o", str(spec.parent / "run"), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["stopped_early"] and result["steps_run"] < 400


@pytest.mark.parametrize("extra, message", [
    ("schedule cosin", "schedule is one of constant, cosine, step"),
    ("warmup -5", "warmup takes an integer in 0..10000000"),
    ("schedule step decay 2", "decay takes a number in 0.0001..1"),
    ("until los", "until is `until exact`"),
    ("until loss patience 0", "patience takes an integer in 1..10000000"),
])
def test_schedule_and_stopping_settings_are_checked(write_spec, extra, message):
    proc = call_tanglec("check", str(write_spec(SPEC.format(extra=extra))))
    assert proc.returncode == 1 and "E115" in proc.stderr and message in proc.stderr
