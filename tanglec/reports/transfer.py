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
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .transfer_digits import acceptance as digits_acceptance
from .transfer_naive import naive_routes
from .transfer_render import elapsed, pct

from .transfer_scenarios import (
    ROOT, SPECS, BASE_SPEC, HOLDOUT_SPEC, VARIANTS, EXTRA_VARIANTS, VARIANT_LABELS,
    DEFAULT_N, DEFAULT_SEEDS, QUICK_N, QUICK_SEEDS, SCRATCH_STEPS, CACHE_VERSION, SCENARIOS, DEFAULT_SCENARIOS,
    Scenario)


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
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    variants: tuple[str, ...] = VARIANTS
    ns: tuple[int, ...] | None = None  # None: each scenario's own (DEFAULT_N; digits: DIGITS_N)
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
        return self.ns or SCENARIOS[scenario].ns

    def to_json(self) -> dict:
        ns = sorted({n for s in self.scenarios for n in self.n_for(s, "a")})
        return {"scenarios": list(self.scenarios), "variants": list(self.variants), "n": ns,
                "n_by_scenario": {s: list(self.n_for(s, "a")) for s in self.scenarios},
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
                                steps=sc.scratch_steps or self.config.scratch_steps,
                                only_keep=((sc.selector,) if sc.selector else ()) if variant == "b_all" else None)
            steps = sc.scratch_steps or self.config.scratch_steps
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
           "trained_mean": _mean(trained), "unseen_mean": _mean(unseen), "unseen_min": min(unseen, default=None),
           "unseen_max": max(unseen, default=None)}
    if decoder:  # a new decoder: also its own accuracy, apart from the other decoders of its routes
        out["decoder_mean"] = _mean([(r["decoders_accuracy"] or {}).get(decoder) for r in routes])
    return out


# ---- (c) the naive approach: one separate network per route -------------------------------------

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
            f"{pct(r['accuracy'])} ({elapsed(started)})")
    for i, (s, v, n, seed) in enumerate(cells, len(holdouts) + 1):
        r = engine.transfer(s, v, n, seed)
        if r is None:
            continue
        runs.append(r)
        log(f"[{i}/{total}] {s} {v} n={n} seed={seed}: mean {pct(r['mean'])}, "
            f"all routes exact: {'yes' if r['all_exact'] else 'no'} ({elapsed(started)})")
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
    "digits: accuracy is the exact fraction of the held-out images (`eval 0.25 group img`: a quarter of the "
    "images, none trained on, each through both operations); n=1797 is every training image.",
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
                      "per_seed": {str(r["seed"]): {"trained": r["trained_mean"], "unseen_min": r.get("unseen_min"),
                                                    "unseen_max": r.get("unseen_max"),
                                                    "training_examples": r.get("training_examples")} for r in rs},
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
    out = {"table": table, "minimal_n": minimal, "holdout": hold}
    if "digits" in cfg["scenarios"]:
        out["digits"] = digits_acceptance(table)
    return out


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
