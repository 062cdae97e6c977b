"""tf.distribute: `--strategy default | mirrored | multiworker` (tanglec/distribute.py, docs/distributed.md).

* TF_CONFIG, the spec setting and the CLI's refusals: no TensorFlow, milliseconds.
* mirrored, in one fresh process whose CPU is split into 2 logical devices: `tanglec compile
  --strategy mirrored --devices 2 --mux where` trains the seed spec to 100% on every route and writes
  a run that loads; a checkpoint written under `default` resumes under
  `mirrored` to 100% (multiplexers: `partition`); `gather` trains 20 steps under mirrored.
* multiworker: two worker processes on loopback ports (started, bounded in time and stopped here)
  train the seed spec to 100%; only the chief writes the run; both end with the same weights.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from support import ARITH, ROOT, run_tanglec
from tanglec.backend.distribute import Cluster, read_tf_config

TIMEOUT = 420  # seconds for one distributed training process (2 shared cores; typically 30-60 s)


def worker_env(**extra: str) -> dict[str, str]:
    """A worker's environment: quiet TF, one thread per pool (2 cores shared), no proxy for loopback gRPC."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "grpc_proxy",
                                                                    "all_proxy", "tf_config")}
    env.update({"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    env.update(extra)
    return env


# ---- TF_CONFIG (no TensorFlow) -----------------------------------------------------------------------

def tf_config(cluster: dict, task_type: str = "worker", index: int = 0) -> dict[str, str]:
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


def test_tf_config_names_the_chief():
    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert read_tf_config(tf_config(workers, index=0)).is_chief
    assert not read_tf_config(tf_config(workers, index=1)).is_chief
    with_chief = {"chief": ["127.0.0.1:3"], **workers}
    assert read_tf_config(tf_config(with_chief, "chief", 0)).is_chief
    assert not read_tf_config(tf_config(with_chief, "worker", 0)).is_chief
    assert read_tf_config(tf_config(with_chief, "chief", 0)).workers == 3
    assert Cluster({"worker": ["a:1"]}, "worker", 0).to_json() == {"task": "worker:0", "workers": 1, "chief": True}


@pytest.mark.parametrize("environ, message", [
    ({}, "TF_CONFIG, which is not set"),
    ({"TF_CONFIG": "{cluster"}, "TF_CONFIG is not JSON"),
    ({"TF_CONFIG": "[]"}, "needs a \"cluster\" object"),
    (tf_config({"worker": ["127.0.0.1:1"]}, index=1), "is not in the cluster"),
    (tf_config({"worker": ["127.0.0.1:1"]}, "chief"), "is not in the cluster"),
    (tf_config({"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}), "ps is not used"),
    (tf_config({"worker": [1]}), "list of \"host:port\""),
])
def test_bad_tf_config_is_e170(environ, message):
    from tanglec.lang.diagnostics import TangleError

    with pytest.raises(TangleError) as err:
        read_tf_config(environ)
    d = err.value.diagnostics[0]
    assert d.code == "E170" and message in d.message, d.message


def test_a_lost_worker_is_e170():
    from tanglec.backend.distribute import peer_failure

    class UnavailableError(Exception):  # tf.errors.UnavailableError, as raised when a peer is gone
        pass

    err = UnavailableError("Graph execution error:\n\nCollective ops is aborted by: Error reported from "
                           "/job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):\n"
                           "/job:worker/replica:0/task:1\nThe tasks have crashed.")
    d = peer_failure(err, "multiworker", "runs/.arith.ckpt").diagnostics[0]
    assert d.code == "E170" and d.message == ("the cluster lost a worker: /job:worker/replica:0/task:1 stopped "
                                              "sending heartbeats")
    assert "--resume (the chief's last checkpoint is in runs/.arith.ckpt)" in d.hints[0]
    assert peer_failure(err, "mirrored") is None and peer_failure(ValueError("x"), "multiworker") is None


def test_strategy_spec_setting(write_spec):
    from tanglec.pipeline import check_spec
    from tanglec.lang.parser import parse_file

    good = check_spec(parse_file(write_spec(ARITH.read_text().replace("until exact", "until exact strategy mirrored"))))
    assert good.ok and good.train.strategy == "mirrored"
    assert check_spec(parse_file(ARITH)).train.strategy == "default"
    bad = check_spec(parse_file(write_spec(ARITH.read_text().replace("until exact", "until exact strategy mirror"))))
    assert [d.code for d in bad.errors] == ["E115"] and "default, mirrored, multiworker" in bad.errors[0].message


def test_cli_refuses_before_loading_tensorflow(tmp_path):
    """No TF_CONFIG, or --devices for multiworker: E170, exit 1, and TensorFlow never starts."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    r = subprocess.run([sys.executable, "-m", "tanglec.cli", "compile", str(ARITH), "-o", str(tmp_path / "r"),
                        "--strategy", "multiworker", "--json"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["diagnostics"][0]["code"] == "E170" and "TF_CONFIG" in out["diagnostics"][0]["message"]
    assert not (tmp_path / "r").exists()
    r = run_tanglec("compile", str(ARITH), "-o", str(tmp_path / "r"), "--strategy", "multiworker", "--devices",
                    "2", "--json", env=tf_config({"worker": ["127.0.0.1:1"]}), timeout=300)
    assert r.returncode == 1, r.stderr
    assert "--devices applies to --strategy mirrored" in json.loads(r.stdout)["diagnostics"][0]["message"]


# ---- mirrored: one fresh process, the CPU split into 2 logical devices ------------------------------

MIRRORED_SCRIPT = textwrap.dedent('''
    import json, sys, io, contextlib
    from pathlib import Path
    from tanglec.backend.distribute import split_cpu
    split_cpu(2)  # before TensorFlow initialises its devices
    out = Path(sys.argv[2])
    results = {}

    # 1. the CLI: compile the seed spec under mirrored on 2 devices, then load the run it wrote
    from tanglec.cli import cli
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            cli.main(["compile", sys.argv[1], "-o", str(out / "run"), "--strategy", "mirrored", "--devices", "2",
                      "--mux", "where", "--json"], standalone_mode=False)
        except SystemExit as exc:
            assert not exc.code, buf.getvalue()
    results["compile"] = json.loads(buf.getvalue())
    from tanglec.artifacts.run import load_checked, load_model
    from tanglec.data.examples import build_examples
    from tanglec.data.evaluate import route_report
    from tanglec.backend.predict import predict_raw
    from tanglec.backend.train import train
    checked, _ = load_checked(out / "run")
    examples = build_examples(checked)
    model = load_model(out / "run", checked)  # the weights a mirrored run wrote load without a strategy
    report = route_report(checked, examples, predict_raw(model, checked, examples.columns))
    results["reloaded_accuracy"] = report["accuracy"]

    # 2. every multiplexer strategy trains under mirrored: `where` was the compile above, `partition`
    #    is the resumed run below, `gather` here
    from tanglec.pipeline import load
    checked = load(sys.argv[1])
    examples = build_examples(checked)
    results["mux"] = {}
    for mux in ("gather",):
        r = train(checked, examples, steps=20, mux=mux, strategy="mirrored", devices=2)
        losses = [h["losses"]["total"] for h in r.history]
        results["mux"][mux] = {"steps": r.steps_run, "losses": losses, "accuracy": r.report["accuracy"],
                               "replicas": r.distribution["replicas"]}

    # 3. a checkpoint written under `default` resumes under `mirrored` (multiplexers: partition)
    from tanglec.backend.checkpoint import Checkpointer
    ckpt_dir = out / "ckpt"
    first = Checkpointer(ckpt_dir, every=10, handle_signals=False)
    stop = {"at": None}
    def progress(p):
        stop["at"] = p.step
    r1 = train(checked, examples, strategy="default", mux="partition", checkpoint=first, on_progress=progress,
               should_stop=lambda: (stop["at"] or 0) >= 10)
    second = Checkpointer(ckpt_dir, every=10, resume=True, handle_signals=False)
    r2 = train(checked, examples, strategy="mirrored", devices=2, mux="partition", checkpoint=second)
    results["resume"] = {"first_steps": r1.steps_run, "first_interrupted": r1.interrupted,
                         "resumed_step": second.resumed_step, "steps": r2.steps_run,
                         "accuracy": r2.report["accuracy"], "routes": [x["accuracy"] for x in r2.report["routes"]],
                         "strategy": r2.distribution["name"], "replicas": r2.distribution["replicas"]}
    (out / "results.json").write_text(json.dumps(results))
''')


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), str(ARITH), str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, env=worker_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    print(f"mirrored process: {time.monotonic() - started:.1f}s; compile: {results['compile']['steps_run']} steps, "
          f"accuracy {results['compile']['accuracy']}; mux: {json.dumps(results['mux'])}; "
          f"resume: {json.dumps(results['resume'])}")

    compiled = results["compile"]
    assert compiled["strategy"] == {"name": "mirrored", "replicas": 2, "devices": ["/cpu:0", "/cpu:1"]}
    assert compiled["accuracy"] == 1.0, compiled
    assert [r["accuracy"] for r in compiled["routes"]] == [1.0] * 4
    assert (tmp_path / "run" / "manifest.json").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["strategy"]["name"] == "mirrored"
    assert results["reloaded_accuracy"] == 1.0

    assert list(results["mux"]) == ["gather"]  # (where: the compile; partition: the resumed run)
    for mux, r in results["mux"].items():
        assert r["steps"] == 20 and r["replicas"] == 2, (mux, r)
        assert all(np.isfinite(r["losses"])) and r["losses"][-1] < r["losses"][0], (mux, r)

    resume = results["resume"]
    assert resume["first_interrupted"] and resume["first_steps"] == 10
    assert resume["resumed_step"] == 10, resume
    assert resume["strategy"] == "mirrored" and resume["replicas"] == 2
    assert resume["steps"] > 10 and resume["accuracy"] == 1.0 and resume["routes"] == [1.0] * 4, resume


# ---- multiworker: two worker processes on loopback ------------------------------------------------------

def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_multiworker_two_processes_on_loopback(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run = tmp_path / "run"
    procs, logs = [], []
    started = time.monotonic()
    try:
        for index in range(2):
            out, err = (tmp_path / f"worker{index}.out").open("w"), (tmp_path / f"worker{index}.err").open("w")
            logs += [out, err]
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tanglec.cli", "compile", str(ARITH), "-o", str(run), "--strategy",
                 "multiworker", "--json", "--save-weights-npz", str(tmp_path / f"worker{index}.npz")],
                stdout=out, stderr=err, cwd=ROOT, env=worker_env(**tf_config(cluster, index=index))))
        deadline = started + TIMEOUT
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                pytest.fail(f"the workers did not finish within {TIMEOUT}s")
            if any(p.returncode not in (None, 0) for p in procs):
                break  # one failed: the other would wait for it forever
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        for f in logs:
            f.close()
    print(f"multiworker: {time.monotonic() - started:.1f}s")
    for index, p in enumerate(procs):
        assert p.returncode == 0, (tmp_path / f"worker{index}.err").read_text()[-4000:]
    results = [json.loads((tmp_path / f"worker{i}.out").read_text()) for i in range(2)]
    for index, r in enumerate(results):
        assert r["accuracy"] == 1.0 and [x["accuracy"] for x in r["routes"]] == [1.0] * 4, r
        assert r["strategy"]["name"] == "multiworker" and r["strategy"]["replicas"] == 2
        assert r["strategy"]["cluster"] == {"task": f"worker:{index}", "workers": 2, "chief": index == 0}
    assert results[0]["run"] == str(run) and results[1]["run"] is None  # only the chief writes the run
    assert (run / "manifest.json").is_file()
    assert results[0]["steps_run"] == results[1]["steps_run"]
    a, b = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert a.files == b.files and len(a.files) > 10
    for key in a.files:
        assert np.array_equal(a[key], b[key]), f"the workers disagree on {key}"
