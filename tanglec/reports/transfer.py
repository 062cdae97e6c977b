"""The transfer report (issue 4): how many examples a new module needs, with and without the tangle.

For each scenario — a new encoder (`specs/transfer_gray.tangle`), a new operation
(`specs/transfer_minus1.tangle`), a new decoder (`specs/transfer_prime.tangle`) — and for n training
examples and several seeds, it measures the exact accuracy of every route that runs through the new
module for:

* ``a``         tangled transfer: the arith modules loaded from a trained base run and frozen, with the
                alignment (the base's `align binary, decimal on x`, and the spec's own `align` line);
* ``a_noalign`` the same without any alignment (base trained without its align line; the spec's
                `align` line removed);
* ``b``         the same graph from scratch: the spec without `init` and `freeze` (every module trains
                from random weights) on the same n examples;
* ``c``         the naive approach: one separate network per route (the route's modules, fresh and
                unshared), each trained only on its own route's examples — a route without examples
                gets no network and scores 0;
* ``b_all``     (extra, not in the default set) from scratch with examples spread over *every* route of
                the new module (the `only` filter on the other selector dropped), for n up to all of them:
                how many examples scratch needs when it does see each route.

and, separately, the held-out route of `specs/arith_holdout.tangle` with and without its align line.

Everything goes through the real engine: spec *text* variants are parsed (`parser.parse` with the
original file name, so `use` and relative paths resolve) and checked (`pipeline.check_spec(spec, Overrides(init=RUN))`),
data comes from `data.build_examples`, training from `train.train`, base runs are written with
`run.write_run`. Only the naive networks of ``c`` are built here, from `codegen.module_model`.

Results are cached in `<workdir>/results.jsonl` (keyed by the exact spec texts, seed and settings), so
an interrupted report resumes and re-rendering costs nothing.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.selection import route_mask
from ..util.files import atomic_file, write_atomic

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the report trains the repository's own specs
SPECS = ROOT / "specs"
BASE_SPEC = SPECS / "arith.tangle"
HOLDOUT_SPEC = SPECS / "arith_holdout.tangle"

VARIANTS = ("a", "a_noalign", "b", "c")
EXTRA_VARIANTS = ("b_all",)
VARIANT_LABELS = {
    "a": "transfer, frozen + aligned",
    "a_noalign": "transfer, no alignment",
    "b": "same graph from scratch",
    "c": "naive: a net per route",
    "b_all": "scratch, every route",
}
DEFAULT_N = (1, 2, 3, 5, 10)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
QUICK_N = (10,)
QUICK_SEEDS = (0,)
SCRATCH_STEPS = 600  # cap for the from-scratch graph (b) and the naive networks (c)
CACHE_VERSION = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Path
    what: str  # "encoder" | "operation" | "decoder"
    module: str  # the new module
    selector: str | None  # the selector that picks it (None: on every route)
    n_all: tuple[int, ...]  # n for b_all: every example of the new module's routes (2 or 4 routes x 10)


SCENARIOS = {
    "gray": Scenario("gray", SPECS / "transfer_gray.tangle", "encoder", "gray", "encoding", (20,)),
    "minus1": Scenario("minus1", SPECS / "transfer_minus1.tangle", "operation", "minus1", "op", (20,)),
    "prime": Scenario("prime", SPECS / "transfer_prime.tangle", "decoder", "is_prime", None, (40,)),
}


# ---- spec text variants -------------------------------------------------------------------------

def spec_variant(text: str, *, n: int | None = None, seed: int | None = None, drop_init: bool = False,
                 drop_freeze: bool = False, drop_align: bool = False, until_exact: bool = True,
                 steps: int | None = None, only_keep: tuple[str, ...] | None = None) -> str:
    """Edit a spec's text: the data line's `limit`/`seed`, the train line's `seed`/`steps`/`until exact`;
    drop `init`, `freeze` or `align` statements; with `only_keep`, drop the data line's `only` filters on
    other selectors. Comment lines are never touched."""
    out = []
    for line in text.splitlines():
        head = line.lstrip()
        if (drop_init and re.match(r"init\b", head)) or (drop_freeze and re.match(r"freeze\b", head)) \
                or (drop_align and re.match(r"align\b", head)):
            continue
        if re.match(r"data\b", head):
            if n is not None:
                line = _set_setting(line, "limit", n)
            if seed is not None:
                line = _set_setting(line, "seed", seed)
            if only_keep is not None:
                line = re.sub(r"\s+only\s+(\w+)\s*:\s*\w+",
                              lambda m: m.group(0) if m.group(1) in only_keep else "", line)
        elif re.match(r"train\b", head):
            if seed is not None:
                line = _set_setting(line, "seed", seed)
            if steps is not None:
                line = _set_setting(line, "steps", steps)
            if not until_exact:
                line = re.sub(r"\s+until\s+exact\b", "", line)
        out.append(line)
    return "\n".join(out) + "\n"


def _set_setting(line: str, key: str, value) -> str:
    body, hashmark, comment = line.partition("#")
    pattern = rf"\b{key}\s+[0-9.e+-]+"
    if re.search(pattern, body):
        body = re.sub(pattern, f"{key} {value}", body, count=1)
    else:
        body = body.rstrip() + f" {key} {value}"
    return body + (" " + hashmark + comment if hashmark else "")


def check_text(text: str, path: Path, init: Path | None = None):
    """Parse spec text as if it were the file at `path`, then check it (init overrides the spec's)."""
    from ..lang.diagnostics import TangleError
    from ..lang.parser import parse
    from ..pipeline import Overrides, check_spec

    checked = check_spec(parse(text, file=str(path)), Overrides(init=init))
    if checked.errors:
        raise TangleError(checked.diagnostics)
    return checked


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---- the report engine --------------------------------------------------------------------------

@dataclass
class Config:
    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    variants: tuple[str, ...] = VARIANTS
    ns: tuple[int, ...] = DEFAULT_N
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    holdout: bool = True
    stop: str = "exact"  # "exact": the specs' `until exact` (every route evaluated); "fixed": full budget
    workdir: Path = ROOT / "runs" / "transfer"
    scratch_steps: int = SCRATCH_STEPS
    ns_all: tuple[int, ...] | None = None  # n for b_all (default: each scenario's n_all)
    cached_only: bool = False  # report what the cache holds; train nothing
    threads: int | None = 1  # TensorFlow threads: these models are tiny, one thread is ~2.5x faster on 2 cores

    def n_for(self, scenario: str, variant: str) -> tuple[int, ...]:
        if variant == "b_all":
            return self.ns_all or SCENARIOS[scenario].n_all
        return self.ns

    def to_json(self) -> dict:
        return {"scenarios": list(self.scenarios), "variants": list(self.variants), "n": list(self.ns),
                "cached_only": self.cached_only,
                "n_all": {s: list(self.n_for(s, "b_all")) for s in self.scenarios} if "b_all" in self.variants
                else None,
                "seeds": list(self.seeds), "holdout": self.holdout, "stop": self.stop,
                "scratch_steps": self.scratch_steps}


class Engine:
    """Runs (and caches) the trainings of a report; TensorFlow is imported once, on first use."""

    def __init__(self, config: Config, log: Callable[[str], None] | None = None):
        self.config = config
        self.workdir = Path(config.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = log or (lambda message: None)
        self.cache_path = self.workdir / "results.jsonl"
        self.cache: dict[str, dict] = {}
        self._read = 0  # bytes of the cache file read so far
        self._reload()
        if config.threads and not config.cached_only:
            single_threaded(config.threads)

    def _reload(self) -> None:
        """Read what was appended to the cache file since last time (another process may share it)."""
        if not self.cache_path.exists():
            return
        with self.cache_path.open("rb") as fh:
            fh.seek(self._read)
            data = fh.read()
        complete = data[:data.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
                self.cache[item["key"]] = item["result"]
            except (ValueError, KeyError, TypeError):
                continue

    def _cached(self, key: str) -> dict | None:
        if key not in self.cache:
            self._reload()
        return self.cache.get(key)

    def _remember(self, key: str, result: dict) -> dict:
        self.cache[key] = result
        with self.cache_path.open("a") as fh:
            fh.write(json.dumps({"key": key, "result": result}) + "\n")
        return result

    # -- base runs --
    def base_text(self, seed: int, aligned: bool) -> str:
        return spec_variant(BASE_SPEC.read_text(), seed=seed, drop_align=not aligned,
                            until_exact=self.config.stop == "exact")

    def base_name(self, seed: int, aligned: bool) -> str:
        suffix = "_fixed" if self.config.stop == "fixed" else ""
        return f"base_{'aligned' if aligned else 'plain'}_s{seed}{suffix}"

    def base(self, seed: int, aligned: bool) -> Path:
        """arith.tangle trained with this seed (with or without its align line), written as a run."""
        from ..artifacts.run import REPORT, SPEC

        name = self.base_name(seed, aligned)
        run_dir = self.workdir / name
        text = self.base_text(seed, aligned)
        if (run_dir / SPEC).exists() and (run_dir / SPEC).read_text() == text and (run_dir / REPORT).exists():
            return run_dir
        from ..data.examples import build_examples
        from ..artifacts.run import write_run
        from ..backend.train import train
        from ..pipeline import init_weights

        checked = check_text(text, BASE_SPEC)
        examples = build_examples(checked)
        result = train(checked, examples, seed=seed, init_weights=lambda: init_weights(checked))
        metrics = {"steps_run": result.steps_run, "seconds": result.seconds,
                   "stopped_early": result.stopped_early, "seed": seed, "history": result.history}
        write_run(run_dir, checked, result.model, result.report, metrics, examples)
        self.log(f"base {name}: exact {result.report['accuracy']:.0%} in {result.steps_run} steps")
        _clear()
        return run_dir

    def base_info(self, seed: int, aligned: bool) -> dict | None:
        """What the base run scored (None if it was never written)."""
        name = self.base_name(seed, aligned)
        run_dir = self.workdir / name
        try:
            report = json.loads((run_dir / "routes.json").read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text())
        except (OSError, ValueError):
            return None
        return {"name": name, "seed": seed, "aligned": aligned, "accuracy": report["accuracy"],
                "steps_run": metrics.get("steps_run"),
                "spec_matches": (run_dir / "spec.tangle").read_text() == self.base_text(seed, aligned)}

    # -- one transfer cell --
    def transfer(self, scenario: str, variant: str, n: int, seed: int) -> dict | None:
        """One cell (None when `cached_only` and it was never run)."""
        sc = SCENARIOS[scenario]
        source = sc.spec.read_text()
        until = self.config.stop == "exact"
        base = None  # (seed, aligned) of the base run to start from
        if variant == "a":
            base = (seed, True)
            text = spec_variant(source, n=n, seed=seed, until_exact=until)
            steps = None
        elif variant == "a_noalign":
            base = (seed, False)
            text = spec_variant(source, n=n, seed=seed, drop_align=True, until_exact=until)
            steps = None
        elif variant in ("b", "c", "b_all"):
            text = spec_variant(source, n=n, seed=seed, drop_init=True, drop_freeze=True, until_exact=until,
                                steps=self.config.scratch_steps,
                                only_keep=((sc.selector,) if sc.selector else ()) if variant == "b_all" else None)
            steps = self.config.scratch_steps
        else:
            raise ValueError(f"unknown variant {variant!r}")
        base_text = self.base_text(*base) if base else None
        key = _hash(CACHE_VERSION, "transfer", scenario, variant, n, seed, text, base_text, steps, self.config.stop)
        if self._cached(key) is not None or self.config.cached_only:
            return self.cache.get(key)
        init = self.base(*base) if base else None
        checked = check_text(text, sc.spec, init=init)
        assert checked.data.limit == n and checked.train.seed == seed, "spec variant did not take"
        from ..data.examples import build_examples

        examples = build_examples(checked)
        started = time.perf_counter()
        if variant == "c":
            routes, steps_run = naive_routes(checked, examples, sc.module, seed, steps, until)
        else:
            from ..backend.train import train
            from ..pipeline import init_weights

            result = train(checked, examples, seed=seed, steps=steps, init_weights=lambda: init_weights(checked))
            routes = new_module_routes(result.report, sc.module)
            steps_run = result.steps_run
        seconds = time.perf_counter() - started
        _clear()
        out = {"scenario": scenario, "variant": variant, "n": n, "seed": seed,
               "training_examples": int(len(examples.train_index)),
               **route_metrics(routes, sc.module if sc.what == "decoder" else None),
               "routes": routes, "steps_run": steps_run, "seconds": round(seconds, 2)}
        return self._remember(key, out)

    # -- held-out route of arith_holdout --
    def holdout(self, seed: int, aligned: bool) -> dict | None:
        text = spec_variant(HOLDOUT_SPEC.read_text(), seed=seed, drop_align=not aligned,
                            until_exact=self.config.stop == "exact")
        key = _hash(CACHE_VERSION, "holdout", seed, aligned, text, self.config.stop)
        if self._cached(key) is not None or self.config.cached_only:
            return self.cache.get(key)
        from ..data.examples import build_examples
        from ..backend.train import train
        from ..pipeline import init_weights

        checked = check_text(text, HOLDOUT_SPEC)
        examples = build_examples(checked)
        result = train(checked, examples, seed=seed, init_weights=lambda: init_weights(checked))
        _clear()
        routes = [_route_entry(r) for r in result.report["routes"]]
        held = [r for r in routes if r["status"] == "held-out"]
        trained = [r for r in routes if r["status"] == "trained"]
        out = {"seed": seed, "align": aligned,
               "accuracy": _mean([r["accuracy"] for r in held]),
               "exact": all(r["accuracy"] == 1.0 for r in held),
               "trained_accuracy": _mean([r["accuracy"] for r in trained]),
               "held_out_routes": [r["name"] for r in held], "routes": routes,
               "steps_run": result.steps_run, "seconds": round(result.seconds, 2)}
        return self._remember(key, out)


def single_threaded(threads: int = 1) -> bool:
    """Limit TensorFlow's thread pools (only possible before TensorFlow runs its first op)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        return True
    except RuntimeError:
        return False


def _clear() -> None:
    import keras

    keras.backend.clear_session()


def _route_entry(r: dict) -> dict:
    return {"name": r["name"], "status": r["status"], "training_rows": r["training_rows"],
            "accuracy": r["accuracy"], "decoders_accuracy": r["decoders_accuracy"]}


def new_module_routes(report: dict, module: str) -> list[dict]:
    """The routes that run through `module` (the `new_modules` of a transfer run; for a run without
    `init` every module is new, so routes are picked by name)."""
    return [_route_entry(r) for r in report["routes"] if module in r["modules"]]


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(sum(values) / len(values)) if values else None


def route_metrics(routes: list[dict], decoder: str | None = None) -> dict:
    trained = [r["accuracy"] for r in routes if r["training_rows"] > 0]
    unseen = [r["accuracy"] for r in routes if r["training_rows"] == 0]
    out = {"mean": _mean([r["accuracy"] for r in routes]),
           "all_exact": bool(routes) and all(r["accuracy"] == 1.0 for r in routes),
           "trained_mean": _mean(trained), "unseen_mean": _mean(unseen)}
    if decoder:  # a new decoder: also its own accuracy, apart from the other decoders of its routes
        out["decoder_mean"] = _mean([(r["decoders_accuracy"] or {}).get(decoder) for r in routes])
    return out


# ---- (c) the naive approach: one separate network per route -------------------------------------

def naive_routes(checked, examples, module: str, seed: int, steps: int, until_exact: bool) -> tuple[list[dict], int]:
    """Per route through `module`: a fresh network made of the route's modules (same layers, nothing
    shared), trained only on that route's training rows; no rows, no network (accuracy 0)."""
    g = checked.graph
    routes, steps_total = [], 0
    for index, route in enumerate(g.routes()):
        if module not in route.modules:
            continue
        train_rows = examples.train_index[route_mask(g, examples.columns, route, examples.train_index)]
        eval_rows = examples.eval_index[route_mask(g, examples.columns, route, examples.eval_index)]
        if len(train_rows) == 0:
            routes.append({"name": route.name, "status": "unseen", "training_rows": 0, "accuracy": 0.0,
                           "decoders_accuracy": {d: 0.0 for d in route.decoders}, "network": False})
            continue
        entry, steps_run = _train_naive(checked, examples, route, train_rows, eval_rows, seed + 1000 * index,
                                        steps, until_exact)
        steps_total += steps_run
        routes.append({"name": route.name, "status": "trained", "training_rows": int(len(train_rows)),
                       "accuracy": entry["accuracy"], "decoders_accuracy": entry["decoders_accuracy"],
                       "network": True})
    return routes, steps_total


def naive_model(checked, route, seed: int):
    """The route's modules wired as in the tangle (a decoder read by a module feeds its soft form), with
    fresh weights and no multiplexers: a plain network from the raw input field to the route's decoders."""
    import keras

    from ..backend.codegen import _encoder, field_input, module_model

    g = checked.graph
    inputs, tensors = {}, {}
    for i, node in enumerate(n for n in g.topological() if n in route.modules):
        producer = _producer(g, route, node)
        if g.kind(producer) == "input":
            if producer not in inputs:
                inputs[producer] = field_input(producer, g.inputs[producer].type)
            x = _encoder(g.inputs[producer], g.modules[node].input, f"encode_{producer}")(inputs[producer])
        else:
            x = tensors[producer]
            kind = g.modules[producer].output.kind.text
            if kind in ("onehot", "bits", "gray"):
                x = keras.layers.Activation("softmax" if kind == "onehot" else "sigmoid")(x)
        tensors[node] = module_model(g.modules[node], seed + i)(x)
    return keras.Model(inputs, {d: tensors[d] for d in route.decoders}, name="naive")


def _producer(g, route, node: str) -> str:
    for p in g.predecessors(node):
        kind = g.kind(p)
        if kind == "input":
            return p
        if kind == "mux":
            mux = g.muxes[p]
            if mux.module_for(route.selection.get(mux.selector.text, "")) in route.modules:
                return mux.module_for(route.selection[mux.selector.text])
        elif p in route.modules:
            return p
    raise ValueError(f"no producer of {node} on route {route.name}")


def _train_naive(checked, examples, route, train_rows, eval_rows, seed, steps, until_exact):
    import keras
    import numpy as np
    import tensorflow as tf

    from ..data import codecs
    from ..data.evaluate import route_report
    from ..backend.train import dataset, losses_for, make_optimizer, set_determinism

    g = checked.graph
    set_determinism(seed)
    model = naive_model(checked, route, seed)
    fields = list(model.input.keys()) if isinstance(model.input, dict) else list(g.inputs)

    def inputs_of(rows):
        return {f: examples.columns[f][rows].astype(np.int32 if examples.columns[f].dtype.kind in "iu"
                                                     else np.float32) for f in fields}

    y, w = {}, {}
    for d in route.decoders:
        t, live = codecs.target_array(g.modules[d].output, examples.targets[g.decoders[d]][train_rows])
        y[d], w[d] = t, live
    losses = {d: loss for d, loss in losses_for(checked).items() if d in route.decoders}
    weights = {d: checked.train.weights.get(d, 1.0) for d in route.decoders}
    every = checked.train.eval_every
    model.compile(optimizer=make_optimizer(checked.train.optimizer, checked.train.lr), loss=losses,
                  loss_weights=weights, steps_per_execution=every)
    ev = examples.take(eval_rows)
    ev_x = {k: tf.constant(v) for k, v in inputs_of(eval_rows).items()}
    state = {"entry": None, "steps": 0}

    class Observer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            state["steps"] += every
            out = {k: np.asarray(v) for k, v in model(ev_x, training=False).items()}
            report = route_report(checked, ev, out)
            state["entry"] = next(r for r in report["routes"] if r["name"] == route.name)
            if until_exact and state["entry"]["accuracy"] == 1.0:
                model.stop_training = True

    data = dataset(inputs_of(train_rows), y, w, checked.train.batch, seed)
    model.fit(data, steps_per_epoch=every, epochs=max(1, -(-steps // every)), callbacks=[Observer()], verbose=0)
    return state["entry"], state["steps"]


# ---- the whole report ---------------------------------------------------------------------------

def run_report(config: Config, log: Callable[[str], None] | None = None) -> dict:
    log = log or (lambda message: None)
    engine = Engine(config, log)
    # run order: held-out first, then the variants by priority (a, b, a_noalign, c), so a partial
    # report (the cache) answers the main questions first
    order = sorted(config.variants, key=lambda v: ("a", "b", "a_noalign", "c", "b_all").index(v))
    cells = [(s, v, n, seed) for v in order for s in config.scenarios for n in config.n_for(s, v)
             for seed in config.seeds]
    holdouts = [(seed, aligned) for aligned in (True, False) for seed in config.seeds] if config.holdout else []
    total = len(cells) + len(holdouts)
    started = time.perf_counter()
    runs, held = [], []
    for j, (seed, aligned) in enumerate(holdouts, 1):
        r = engine.holdout(seed, aligned)
        if r is None:
            continue
        held.append(r)
        log(f"[{j}/{total}] holdout {'aligned' if aligned else 'no align'} seed={seed}: held-out route "
            f"{_pct(r['accuracy'])} ({_elapsed(started)})")
    for i, (s, v, n, seed) in enumerate(cells, len(holdouts) + 1):
        r = engine.transfer(s, v, n, seed)
        if r is None:
            continue
        runs.append(r)
        log(f"[{i}/{total}] {s} {v} n={n} seed={seed}: mean {_pct(r['mean'])}, "
            f"all routes exact: {'yes' if r['all_exact'] else 'no'} ({_elapsed(started)})")
    results = {"ok": True, "report": "transfer", "version": CACHE_VERSION,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config.to_json(),
               "variants": {v: VARIANT_LABELS[v] for v in config.variants},
               "scenarios": {s: {"spec": str(SCENARIOS[s].spec.relative_to(ROOT)), "new": SCENARIOS[s].what,
                                 "module": SCENARIOS[s].module} for s in config.scenarios},
               "notes": NOTES,
               "bases": [b for b in (engine.base_info(seed, aligned) for aligned in (True, False)
                                     for seed in config.seeds) if b],
               "runs": runs, "holdout": held}
    results["summary"] = summarize(results)
    return results


NOTES = [
    "Accuracy is exact-match per route on every value of x (10 cases a route); a case is exact when every "
    "decoder the route reaches is right. Only routes running through the new module are counted.",
    "n is the number of distinct training examples; they all come from one route (the spec's `only` "
    "filters), which has 10 examples in all, so n=10 is 'all'.",
    "a_noalign: the base run is arith.tangle without its align line; the gray spec also loses its own align "
    "line; minus1 and prime have no align line of their own, so only the base differs.",
    "b trains every module from random weights on the same n examples of the one route: modules that are "
    "not on that route (e.g. times2 for gray) never get a gradient from a decoder.",
    "c: routes without training examples get no network and score 0.",
    "stop=exact uses the specs' `until exact`, which evaluates every route (unseen and held-out ones too) "
    "to decide when to stop; stop=fixed trains the full step budget and never looks at them.",
]


def summarize(results: dict) -> dict:
    cfg = results["config"]
    cells: dict[tuple, list[dict]] = {}
    for r in results["runs"]:
        cells.setdefault((r["scenario"], r["variant"], r["n"]), []).append(r)
    table = []
    for (s, v, n), rs in cells.items():
        means = [r["mean"] for r in rs]
        table.append({"scenario": s, "variant": v, "n": n, "seeds": len(rs),
                      "mean": _mean(means), "min": min(means), "max": max(means),
                      "trained_mean": _mean([r["trained_mean"] for r in rs]),
                      "unseen_mean": _mean([r["unseen_mean"] for r in rs]),
                      "all_exact_seeds": sum(r["all_exact"] for r in rs),
                      "trained_exact_seeds": sum(all(x["accuracy"] == 1.0 for x in r["routes"]
                                                     if x["training_rows"] > 0) for r in rs),
                      **({"decoder_mean": _mean([r.get("decoder_mean") for r in rs])}
                         if rs[0].get("decoder_mean") is not None else {})})
    minimal: dict[str, dict] = {}
    for s in cfg["scenarios"]:
        minimal[s] = {}
        for v in cfg["variants"]:
            rows = sorted((t for t in table if t["scenario"] == s and t["variant"] == v), key=lambda t: t["n"])
            minimal[s][v] = {
                "all_routes": next((t["n"] for t in rows if t["all_exact_seeds"] == t["seeds"]), None),
                "trained_route": next((t["n"] for t in rows if t["trained_exact_seeds"] == t["seeds"]), None),
                "max_n": max((t["n"] for t in rows), default=None)}
        m = minimal[s]
        a, ta = m.get("a", {}).get("all_routes"), m.get("a", {}).get("trained_route")
        for v in ("b", "b_all"):
            if v in m:
                b, tb = m[v]["all_routes"], m[v]["trained_route"]
                m[f"ratio_{v}_over_a"] = (b / a) if a and b else None
                m[f"ratio_{v}_over_a_trained_route"] = (tb / ta) if ta and tb else None
    hold = {}
    for aligned in (True, False):
        rs = [h for h in results["holdout"] if h["align"] == aligned]
        if rs:
            hold["align" if aligned else "no_align"] = {
                "exact_seeds": sum(h["exact"] for h in rs), "seeds": len(rs),
                "mean": _mean([h["accuracy"] for h in rs]),
                "per_seed": {str(h["seed"]): h["accuracy"] for h in rs}}
    return {"table": table, "minimal_n": minimal, "holdout": hold}


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def _elapsed(started: float) -> str:
    s = int(time.perf_counter() - started)
    return f"{s // 60}m{s % 60:02d}s"


# ---- rendering ----------------------------------------------------------------------------------

def _columns(cfg) -> list[int]:
    ns = set(cfg["n"])
    for values in (cfg.get("n_all") or {}).values():
        ns |= set(values)
    return sorted(ns)


def _ratio_text(m: dict, v: str) -> str:
    if v not in m or "a" not in m:
        return "-"
    ratio, a = m.get(f"ratio_{v}_over_a"), m["a"]["all_routes"]
    if ratio:
        return f"{ratio:.1f}×"
    if a and m[v]["max_n"]:
        return f"∞ (never, n ≤ {m[v]['max_n']})"
    return "-"


def tables(results: dict):
    """rich renderables: the transfer table, the minimal-n table, the held-out table."""
    from rich.table import Table

    cfg, summary = results["config"], results["summary"]
    ns = _columns(cfg)
    seeds = len(cfg["seeds"])
    cell = {(t["scenario"], t["variant"], t["n"]): t for t in summary["table"]}
    out = []
    t = Table(title=f"exact accuracy on the new module's routes, mean over {seeds} seed(s) "
                    f"(k/{seeds}: seeds with every such route 100%)")
    t.add_column("scenario")
    t.add_column("variant")
    for n in ns:
        t.add_column(f"n={n}", justify="right")
    t.add_column("min n", justify="right")
    for s in cfg["scenarios"]:
        for v in cfg["variants"]:
            row = [f"{s} ({SCENARIOS[s].what})", f"{v}: {VARIANT_LABELS[v]}"]
            for n in ns:
                c = cell.get((s, v, n))
                row.append("" if c is None else f"{_pct(c['mean'])} {c['all_exact_seeds']}/{c['seeds']}")
            m = summary["minimal_n"][s][v]
            row.append(_n(m["all_routes"], m["max_n"]))
            t.add_row(*row)
        t.add_section()
    out.append(t)
    r = Table(title=f"examples needed for 100% on every route of the new module, {seeds}/{seeds} seeds")
    r.add_column("scenario")
    for v in cfg["variants"]:
        r.add_column(v, justify="right")
    for v in ("b", "b_all"):
        if v in cfg["variants"]:
            r.add_column(f"{v} / a", justify="right")
    r.add_column("trained route only: a / b", justify="right")
    for s in cfg["scenarios"]:
        m = summary["minimal_n"][s]
        ratios = [_ratio_text(m, v) for v in ("b", "b_all") if v in cfg["variants"]]
        tr = " / ".join(_n(m[v]["trained_route"], m[v]["max_n"]) if v in m else "-" for v in ("a", "b"))
        r.add_row(s, *[_n(m[v]["all_routes"], m[v]["max_n"]) for v in cfg["variants"]], *ratios, tr)
    out.append(r)
    if summary["holdout"]:
        h = Table(title="arith_holdout: accuracy of the held-out route binary → times2")
        h.add_column("")
        for sd in cfg["seeds"]:
            h.add_column(f"seed {sd}", justify="right")
        h.add_column("100%", justify="right")
        for key, label in (("align", "with alignment"), ("no_align", "without alignment")):
            if key in summary["holdout"]:
                hs = summary["holdout"][key]
                h.add_row(label, *[_pct(hs["per_seed"].get(str(sd))) for sd in cfg["seeds"]],
                          f"{hs['exact_seeds']}/{hs['seeds']}")
        out.append(h)
    return out


def _n(v, limit=None) -> str:
    """A minimal n: the number, or 'none ≤ LIMIT' (LIMIT: the largest n tried; no n tried: '-')."""
    if v:
        return str(v)
    return f"none ≤ {limit}" if limit else "-"


def print_tables(results: dict, file=None, width: int = 170) -> str:
    from rich.console import Console

    console = Console(file=file or sys.stdout, width=width, record=True)
    for t in tables(results):
        console.print(t)
    return console.export_text()


def markdown(results: dict) -> str:
    """The same tables as markdown (for docs/transfer.md)."""
    cfg, summary = results["config"], results["summary"]
    ns = _columns(cfg)
    seeds = len(cfg["seeds"])
    cell = {(t["scenario"], t["variant"], t["n"]): t for t in summary["table"]}
    lines = ["| scenario | variant | " + " | ".join(f"n={n}" for n in ns) + " | min n |",
             "|---|---|" + "---:|" * (len(ns) + 1)]
    for s in cfg["scenarios"]:
        for v in cfg["variants"]:
            cells = []
            for n in ns:
                c = cell.get((s, v, n))
                cells.append("" if c is None else f"{_pct(c['mean'])} ({c['all_exact_seeds']}/{c['seeds']})")
            m = summary["minimal_n"][s][v]
            lines.append(f"| {s} | {v}: {VARIANT_LABELS[v]} | " + " | ".join(cells) + " | "
                         + _n(m["all_routes"], m["max_n"]) + " |")
    lines += ["", "| scenario | variant: trained route / unseen routes | " + " | ".join(f"n={n}" for n in ns)
              + " |", "|---|---|" + "---:|" * len(ns)]
    for s in cfg["scenarios"]:
        for v in cfg["variants"]:
            cells = []
            for n in ns:
                c = cell.get((s, v, n))
                cells.append("" if c is None else f"{_pct(c['trained_mean'])} / {_pct(c['unseen_mean'])}")
            lines.append(f"| {s} | {v} | " + " | ".join(cells) + " |")
    ratio_cols = [v for v in ("b", "b_all") if v in cfg["variants"]]
    lines += ["", f"| examples for 100% on every new-module route ({seeds}/{seeds} seeds) | "
              + " | ".join(cfg["variants"]) + " | " + " | ".join(f"{v} / a" for v in ratio_cols)
              + " | trained route only: a / b |", "|---|" + "---:|" * (len(cfg["variants"]) + len(ratio_cols) + 1)]
    for s in cfg["scenarios"]:
        m = summary["minimal_n"][s]
        tr = " / ".join(_n(m[v]["trained_route"], m[v]["max_n"]) if v in m else "-" for v in ("a", "b"))
        lines.append(f"| {s} | " + " | ".join(_n(m[v]["all_routes"], m[v]["max_n"]) for v in cfg["variants"])
                     + " | " + " | ".join(_ratio_text(m, v) for v in ratio_cols) + f" | {tr} |")
    if summary["holdout"]:
        lines += ["", "| arith_holdout, held-out route | " + " | ".join(f"seed {sd}" for sd in cfg["seeds"])
                  + " | 100% |", "|---|" + "---:|" * (len(cfg["seeds"]) + 1)]
        for key, label in (("align", "with alignment"), ("no_align", "without alignment")):
            if key in summary["holdout"]:
                hs = summary["holdout"][key]
                lines.append(f"| {label} | " + " | ".join(_pct(hs["per_seed"].get(str(sd))) for sd in cfg["seeds"])
                             + f" | {hs['exact_seeds']}/{hs['seeds']} |")
    return "\n".join(lines) + "\n"


COLORS = {"a": "tab:green", "a_noalign": "tab:orange", "b": "tab:blue", "c": "tab:red", "b_all": "tab:purple"}


def write_png(results: dict, path: Path) -> Path:
    """One panel per scenario (mean accuracy on the new module's routes vs n, min-max band over seeds,
    one line per variant), plus a panel for the held-out route."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, summary = results["config"], results["summary"]
    ns = _columns(cfg)
    panels = list(cfg["scenarios"]) + (["holdout"] if summary["holdout"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, s in zip(axes[0], panels):
        if s == "holdout":
            seeds = list(cfg["seeds"])
            for k, (key, label, color) in enumerate((("align", "with alignment", "tab:green"),
                                                     ("no_align", "without alignment", "tab:orange"))):
                hs = summary["holdout"].get(key)
                if hs:
                    ax.bar([i + (k - 0.5) * 0.4 for i in range(len(seeds))],
                           [100 * (hs["per_seed"].get(str(sd)) or 0) for sd in seeds], width=0.4, color=color,
                           label=f"{label}: {hs['exact_seeds']}/{hs['seeds']} at 100%")
            ax.set_xticks(range(len(seeds)), [f"seed {sd}" for sd in seeds], fontsize=8)
            ax.set_ylim(0, 118)
            ax.legend(fontsize=7, loc="upper right", frameon=False)
            ax.set_title("arith_holdout: held-out route binary → times2", fontsize=10)
            ax.set_ylabel("exact accuracy (%)")
            continue
        for v in cfg["variants"]:
            rows = sorted((t for t in summary["table"] if t["scenario"] == s and t["variant"] == v),
                          key=lambda t: t["n"])
            if not rows:
                continue
            x = [t["n"] for t in rows]
            ax.plot(x, [100 * t["mean"] for t in rows], marker="o", color=COLORS[v], label=VARIANT_LABELS[v])
            ax.fill_between(x, [100 * t["min"] for t in rows], [100 * t["max"] for t in rows], color=COLORS[v],
                            alpha=0.15)
            for t in rows:
                if t["all_exact_seeds"] == t["seeds"]:
                    ax.plot([t["n"]], [100 * t["mean"]], marker="*", markersize=12, color=COLORS[v])
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_ylim(-3, 105)
        ax.set_xlabel("training examples n")
        ax.set_ylabel("exact accuracy on new-module routes (%)")
        ax.set_title(f"new {SCENARIOS[s].what}: {SCENARIOS[s].module}", fontsize=10)
        ax.grid(alpha=0.3)
    legend = {}
    for ax, s in zip(axes[0], panels):
        if s != "holdout":
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=max(1, len(legend)), fontsize=8,
               frameon=False)
    fig.suptitle(f"tanglec transfer — mean over {len(cfg['seeds'])} seed(s), band = min..max, "
                 f"★ = every seed 100% on every route", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    path = Path(path)
    with atomic_file(path) as fh:
        fig.savefig(fh, dpi=110, format="png")
    plt.close(fig)
    return path


def terminal_plot(results: dict, width: int = 120, height: int = 18) -> str:
    """The same curves in the terminal (plotext), one panel per scenario."""
    import plotext as plt

    cfg, summary = results["config"], results["summary"]
    scenarios = list(cfg["scenarios"])
    plt.clf()
    plt.plotsize(width, height)
    plt.subplots(1, len(scenarios))
    markers = {"a": "a", "a_noalign": "n", "b": "b", "c": "c", "b_all": "B"}
    for i, s in enumerate(scenarios, 1):
        plt.subplot(1, i)
        plt.title(f"new {SCENARIOS[s].what} {SCENARIOS[s].module}")
        for v in cfg["variants"]:
            rows = sorted((t for t in summary["table"] if t["scenario"] == s and t["variant"] == v),
                          key=lambda t: t["n"])
            if rows:
                x = [math.log10(t["n"]) for t in rows]
                plt.plot(x, [100 * t["mean"] for t in rows], marker=markers[v], label=v)
        ns = _columns(cfg)
        plt.xticks([math.log10(n) for n in ns], [str(n) for n in ns])
        plt.ylim(0, 100)
    text = plt.build()
    plt.clf()
    return text


def save(results: dict, json_path: Path | None, png_path: Path | None) -> None:
    from ..util import strict_json

    if json_path:
        write_atomic(Path(json_path), strict_json.dumps(results, indent=2) + "\n")
    if png_path:
        write_png(results, png_path)


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """'0,1,2' or '0-4' or, for seeds, a count '5' (= 0..4; one seed: '2,' or '2-2')."""
    text = text.strip()
    if what == "seeds" and re.fullmatch(r"\d+", text):
        return tuple(range(int(text)))
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"\d+-\d+", part):
            lo, hi = map(int, part.split("-"))
            values += range(lo, hi + 1)
        elif re.fullmatch(r"\d+", part):
            values.append(int(part))
        else:
            raise ValueError(f"bad {what}: {text!r} (e.g. 1,2,3,5,10)")
    if not values:
        raise ValueError(f"no {what} in {text!r}")
    return tuple(dict.fromkeys(values))
