"""Benchmark (a): tanglec's training step rate on the seed spec against a hand-written TensorFlow loop.

The baseline is what a person writes from the essay: the same modules (same layer sizes), `tf.where`
multiplexers, summed losses, Adam, a `@tf.function` train step called once per step from Python over
a tf.data iterator. tanglec trains the model it compiles from specs/arith.tangle as `tanglec compile` does:
one call per chunk of steps run in one TensorFlow loop (`eval_every` steps while every chunk is
evaluated, up to LONGEST_CHUNK between sparse evaluations), rows gathered from blocks of index
batches, as one XLA program when the run is long enough to earn the compilation back
(`tanglec.backend.mux_cost.xla_pays_off`). Everything runs in this process, on the same data and batch size,
after a warm-up (tracing and compiling excluded); the hand-written loop runs first and last, and
the ratios are against the mean of its two rates (absolute rates depend on the machine's load).

Beside them, what users run: `tanglec compile` of specs/arith.tangle without `until exact`, as a
whole process for `--steps N`, `--steps 2N` and `--steps L` (`--cli-longer-steps`); the marginal rate
N / (time(2N) - time(N)) is the training rate with every evaluation and every per-chunk cost
included, start-up and compilation excluded, and (L - N) / (time(L) - time(N)) the same over more
steps, which the machine's noise moves less (`cli_rates`). XLA programs come from tanglec's cache
after the first run (docs/cli.md, `compile`), as they do for a user who runs a spec again.

    python bench/train_rate.py [--steps 2000] [--cli-steps 3000] [--cli-longer-steps 30000] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tanglec.pipeline import load  # noqa: E402
from tanglec.backend.codegen import build_model  # noqa: E402
from tanglec.data.examples import build_examples  # noqa: E402
from tanglec.backend.mux_cost import XLA_MIN_STEPS  # noqa: E402
from tanglec.backend.datasets import dataset, in_blocks, index_batches  # noqa: E402
from tanglec.backend.chunks import LONGEST_CHUNK  # noqa: E402
from tanglec.backend.train import compile_model, xla_pays_off_for  # noqa: E402
from tanglec.data.features import training_arrays  # noqa: E402

BATCH = 64


def mlp(sizes: list[tuple[int, str | None]], name: str) -> keras.Sequential:
    return keras.Sequential([keras.layers.Dense(u, activation=a) for u, a in sizes], name=name)


class HandWritten:
    """The seed essay's network, written directly in TensorFlow."""

    def __init__(self) -> None:
        self.binary = mlp([(64, "relu"), (64, "relu"), (12, None)], "binary")
        self.decimal = mlp([(64, "relu"), (64, "relu"), (12, None)], "decimal")
        self.plus1 = mlp([(32, "relu"), (12, None)], "plus1")
        self.times2 = mlp([(32, "relu"), (12, None)], "times2")
        self.to_binary = mlp([(64, "relu"), (4, None)], "to_binary")
        self.to_decimal = mlp([(64, "relu"), (10, None)], "to_decimal")
        self.optimizer = keras.optimizers.Adam(0.01)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.sce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def forward(self, x, use_binary, use_plus1):
        bits = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(x[:, None], tf.range(3, -1, -1)), 1), tf.float32)
        onehot = tf.one_hot(x, 10)
        latent = tf.where(use_binary[:, None], self.binary(bits), self.decimal(onehot))
        latent = tf.where(use_plus1[:, None], self.plus1(latent), self.times2(latent))
        return self.to_binary(latent), self.to_decimal(latent)

    @tf.function
    def train_step(self, x, use_binary, use_plus1, y_bits, y_digit):
        with tf.GradientTape() as tape:
            out_bits, out_digit = self.forward(x, use_binary, use_plus1)
            loss = self.bce(y_bits, out_bits) + self.sce(y_digit, out_digit)
        variables = [v for m in (self.binary, self.decimal, self.plus1, self.times2, self.to_binary,
                                 self.to_decimal) for v in m.trainable_variables]
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss


def baseline_rate(steps: int) -> float:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, 4096).astype(np.int32)
    use_binary = rng.integers(0, 2, 4096).astype(bool)
    use_plus1 = rng.integers(0, 2, 4096).astype(bool)
    y = np.where(use_plus1, (x + 1) % 10, (x * 2) % 10).astype(np.int32)
    y_bits = ((y[:, None] >> np.arange(3, -1, -1)) & 1).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, use_binary, use_plus1, y_bits, y)).shuffle(4096).repeat()
    it = iter(ds.batch(BATCH).prefetch(tf.data.AUTOTUNE))
    net = HandWritten()
    for _ in range(50):
        net.train_step(*next(it))
    start = time.perf_counter()
    for _ in range(steps):
        loss = net.train_step(*next(it))
    float(loss)
    return steps / (time.perf_counter() - start)


def tanglec_rate(steps: int, planned: int, eval_every: int | None = None, mux: str | None = None,
                 chunked: bool = True, longest: bool = False) -> tuple[float, bool]:
    """(steps/s, XLA on) for the seed spec as the essay has it (no alignment term, which the
    hand-written loop lacks), trained as `tanglec.backend.train.train` does: a chunk of steps per call
    (`chunked`; a block of `eval_every` steps, or LONGEST_CHUNK steps if `longest`, as between
    sparse evaluations), as XLA programs when a run of `planned` steps earns the compilation back
    (`mux_cost.xla_pays_off`), or Keras's loop with `steps_per_execution`."""
    from tanglec.spec.checks import check_or_raise
    from tanglec.lang.parser import parse

    path = ROOT / "specs" / "arith.tangle"
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("align "))
    checked = check_or_raise(parse(text, str(path)))
    examples = build_examples(checked)
    if eval_every:
        checked.train.eval_every = eval_every
    per = checked.train.eval_every
    xla = chunked and xla_pays_off_for(checked, planned)
    model = build_model(checked, mux=mux, xla=xla)
    x, y, w = training_arrays(checked, examples, examples.train_index)
    trainer = compile_model(model, checked, chunk_arrays=(x, y, w) if chunked else None, xla=xla)
    if not chunked:
        ds = dataset(x, y, w, BATCH, 0)
        model.fit(ds, steps_per_epoch=per * 5, epochs=1, verbose=0)  # warm-up: trace and compile
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps // per * per, epochs=1, verbose=0)
        return steps // per * per / (time.perf_counter() - start), False
    blocks = in_blocks(index_batches(len(x["x"]), BATCH, 0), per)
    take = trainer.longest if longest else 1

    def chunks(n: int) -> None:
        for _ in range(n):
            trainer.run([next(blocks) for _ in range(take)], take * per)

    chunks(5)  # warm-up: trace and compile
    calls = max(1, steps // (take * per))
    start = time.perf_counter()
    chunks(calls)
    return calls * take * per / (time.perf_counter() - start), trainer.xla


def cli_compile_seconds(steps: int, folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of a whole `tanglec compile --steps N` process (seed spec, no `until exact`).
    CPU time (user + system, all threads) moves far less than wall time with other processes' load."""
    spec = folder / "arith_fixed_steps.tangle"
    spec.write_text((ROOT / "specs" / "arith.tangle").read_text().replace(" until exact", ""))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tanglec.cli", "compile", str(spec), "--steps", str(steps),
                             "-o", str(folder / f"run{steps}"), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tanglec compile --steps {steps} failed")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def cli_rates(steps: int, longer: int, repeats: int) -> dict[str, float]:
    """`tanglec compile`: whole-process seconds for `steps`, 2 x `steps` and `longer` steps, run back to
    back `repeats` times. The marginal rate of the steps beyond `steps` is the difference of each count's
    fastest run (other load only ever adds time), beside the median of each round's difference and the
    CPU-time rate (median of the rounds' differences). The whole process of a 3,000-step run moved by up
    to 7 s between rounds here, several times what 3,000 more steps cost: the `longer` run's marginal is
    the steadier figure, its extra steps taking tens of seconds."""
    runs: dict[int, list[tuple[float, float]]] = {steps: [], 2 * steps: [], longer: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for count in runs:
                runs[count].append(cli_compile_seconds(count, Path(tmp)))
    out = {}
    for count, name in ((2 * steps, "double"), (longer, "longer")):
        extra = count - steps
        walls = [b[0] - a[0] for a, b in zip(runs[steps], runs[count])]
        cpus = [b[1] - a[1] for a, b in zip(runs[steps], runs[count])]
        fastest = min(w for w, _ in runs[count]) - min(w for w, _ in runs[steps])
        out[name] = {"steps": count, "seconds": [round(w, 2) for w, _ in runs[count]],
                     "marginal_steps_per_s": extra / fastest,
                     "marginal_steps_per_s_median_of_rounds": extra / statistics.median(walls),
                     "marginal_steps_per_cpu_s": extra / statistics.median(cpus)}
    out["short"] = {"steps": steps, "seconds": [round(w, 2) for w, _ in runs[steps]]}
    return out


def baseline_cpu_rate(steps: int) -> float:
    """The hand-written loop's steps per CPU second of this process (the CLI's cross-check)."""
    start = time.process_time()
    baseline_rate(steps)
    return steps / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--cli-steps", type=int, default=3000)
    parser.add_argument("--cli-longer-steps", type=int, default=30000)
    parser.add_argument("--cli-repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    long_run, spec_run = max(args.steps, XLA_MIN_STEPS), 300
    load_before = os.getloadavg()
    rates, xla = {"hand-written loop": baseline_rate(args.steps)}, {}
    cli = cli_rates(args.cli_steps, args.cli_longer_steps, args.cli_repeats)
    cli_double = f"tanglec compile (CLI), marginal rate of {args.cli_steps} more steps"
    cli_longer = f"tanglec compile (CLI), marginal rate of {args.cli_longer_steps - args.cli_steps} more steps"
    rates[cli_double] = cli["double"]["marginal_steps_per_s"]
    rates[cli_longer] = cli["longer"]["marginal_steps_per_s"]
    cpu = {"hand-written loop": baseline_cpu_rate(args.steps),
           "tanglec compile (CLI)": cli["double"]["marginal_steps_per_cpu_s"],
           "tanglec compile (CLI), longer run": cli["longer"]["marginal_steps_per_cpu_s"]}
    xla[cli_double] = xla[cli_longer] = True
    variants = {
        f"tanglec default, a run of {long_run} steps (auto mux: where + XLA)": {"planned": long_run},
        f"tanglec default, the spec's {spec_run} steps (auto mux: partition, no XLA)": {"planned": spec_run},
        f"tanglec, where + XLA, chunks of {LONGEST_CHUNK} steps (between sparse evaluations)":
            {"planned": long_run, "longest": True},
        "tanglec, Keras's loop instead of chunks (steps_per_execution 10)": {"planned": spec_run, "chunked": False},
        "tanglec, Keras's loop, steps_per_execution 1": {"planned": spec_run, "chunked": False, "eval_every": 1},
    }
    for name, options in variants.items():
        rates[name], xla[name] = tanglec_rate(args.steps, **options)
    rates["hand-written loop, again (the machine's noise)"] = baseline_rate(args.steps)
    base = (rates["hand-written loop"] + rates["hand-written loop, again (the machine's noise)"]) / 2
    # last: op determinism, which `tanglec compile` turns on for reproducible runs, can't be turned off
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    rates["hand-written loop under op determinism (as tanglec trains)"] = baseline_rate(args.steps)
    name = f"tanglec default, a run of {long_run} steps, under op determinism (as tanglec trains)"
    rates[name], xla[name] = tanglec_rate(args.steps, long_run)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}",
              "load_average": [round(x, 2) for x in load_before], "batch": BATCH, "steps": args.steps,
              "cli_compile": cli,
              "steps_per_cpu_second": {k: round(v, 1) for k, v in cpu.items()},
              "cli_vs_hand_written_by_cpu_time": {k: round(v / cpu["hand-written loop"], 2) for k, v in cpu.items()},
              "ratios_against": "mean of the two hand-written runs",
              "rates_steps_per_s": {k: round(v, 1) for k, v in rates.items()},
              "xla": xla,
              "ratio_vs_hand_written": {k: round(v / base, 2) for k, v in rates.items()}}
    print(json.dumps(result, indent=2))
    print("\n| training loop | XLA | steps/s | × hand-written |\n|---|---|---:|---:|")
    for k, v in rates.items():
        print(f"| {k} | {'yes' if xla.get(k) else 'no'} | {v:.0f} | {v / base:.2f} |")
    print(f"\nby CPU time (other processes' load hardly moves it): hand-written loop "
          f"{cpu['hand-written loop']:.0f} steps per CPU second, `tanglec compile` marginal "
          f"{cpu['tanglec compile (CLI)']:.0f} and over the longer run {cpu['tanglec compile (CLI), longer run']:.0f}: "
          f"{result['cli_vs_hand_written_by_cpu_time']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
