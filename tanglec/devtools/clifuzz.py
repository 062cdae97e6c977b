"""CLI-level fuzzing of `compile`, `eval`, `query` and `export`.

Three kinds of input, all seeded so a case is reproducible from (seed, case number):

* generated **valid specs** of varied shapes (encoders, operations, decoders; multiplexers of 2..4
  branches; fan-out; every data codec; targets as expressions or data columns; data enumerated,
  sampled or read from CSV/JSONL; align, holdout, freeze, phases) with tiny step counts;
* **mutated data files** (cells, rows, headers, encodings, binary junk, truncation);
* **tampered runs** (files edited, truncated, swapped, deleted, replaced by links or folders, made
  huge; manifests with wrong types; a spec naming files outside the run) and **odd query fields**.

Cases run through the real command line (`tanglec.cli.main`) in a driver process that imports
tanglec once (TensorFlow costs seconds per process), each case in its own folder; a share of the
cases, every case that kills the driver, and every exit 3 are re-run in a fresh `python -m
tanglec.cli` process. The oracle (`judge`): no exit 3, no signal, no "Traceback", nothing written on
failure (the `-o` path absent, files that were there byte-identical), `--json` output strict JSON
(no NaN), every error diagnostic positioned.

The inputs come from `clifuzz_specs` (valid specs) and `clifuzz_damage` (data, runs, queries), the
processes from `clifuzz_driver`; this module holds the oracle and the campaign. They need only the
standard library and numpy; TensorFlow loads in the driver process, through the command it runs. `bench/cli_fuzz.py` is the long run, `tests/test_cli_fuzz.py` CI's share.
"""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tanglec.devtools.clifuzz_damage import mutate_data, odd_query, tamper_run
from tanglec.devtools.clifuzz_driver import Driver, Outcome, fresh_run
from tanglec.devtools.clifuzz_specs import Spec, generate_spec

SECRET = "TANGLEC-FUZZ-SECRET-7f3a"  # planted in a file outside every run: it must never be printed
UNPLACED_CODES = {"E130", "E190"}  # documented as having no place: a query field, a missing tool


# ---- the oracle ----------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` with its content hash (links as their target), to see what changed."""
    state = {}
    if folder.is_symlink() or not folder.exists():
        return {str(folder): "link:" + os.readlink(folder) if folder.is_symlink() else "absent"}
    if folder.is_file():
        return {str(folder): _file_digest(folder)}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(base) / name
            if path.is_symlink():
                state[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                state[str(path)] = _file_digest(path)
            elif path.is_dir():
                state[str(path)] = "dir"
            else:
                state[str(path)] = "special"
    return state


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if size > 32 << 20:  # sparse giants: their size and ends say enough
        with path.open("rb") as fh:
            head = fh.read(4096)
            fh.seek(size - 4096)
            tail = fh.read()
        return f"{size}:{hashlib.sha256(head + tail).hexdigest()}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nan_refused(token: str):
    raise ValueError(f"not JSON: {token}")


def judge(outcome: Outcome, as_json: bool) -> list[str]:
    """What is wrong with a command's outcome, whatever its input (empty: nothing)."""
    problems = []
    if outcome.rc is None:
        problems.append(f"hang: no answer in {outcome.seconds:.0f} s")
        return problems
    if outcome.rc < 0:
        problems.append(f"signal {-outcome.rc} ({signal.Signals(-outcome.rc).name})")
    elif outcome.rc == 3:
        first = next((l for l in outcome.stderr.splitlines() if l.startswith("internal error")), "")
        problems.append(f"exit 3: {first[:300]}")
    elif outcome.rc not in (0, 1, 2):
        problems.append(f"exit {outcome.rc}")
    if "Traceback" in outcome.stdout or "Traceback" in outcome.stderr:
        problems.append("a traceback in the output")
    if SECRET in outcome.stdout or SECRET in outcome.stderr:
        problems.append("printed the content of a file outside the run")
    if as_json and outcome.rc in (0, 1):
        problems += _json_problems(outcome)
    elif outcome.rc == 1:
        for line in outcome.stderr.splitlines():
            found = re.match(r"(.*?)error\[(E\d{3})\]", line)
            if found and found.group(2) not in UNPLACED_CODES and not re.search(r":\d+:\d+: $", found.group(1)):
                problems.append(f"{found.group(2)} not positioned: {line[:200]}")
    return problems


def _json_problems(outcome: Outcome) -> list[str]:
    try:
        payload = json.loads(outcome.stdout, parse_constant=_nan_refused)
    except ValueError as err:
        return [f"--json output is not strict JSON: {str(err)[:200]}"]
    if not isinstance(payload, dict) or "ok" not in payload:
        return ["--json output has no 'ok'"]
    problems = []
    if payload["ok"] != (outcome.rc == 0):
        problems.append(f"--json ok={payload['ok']} with exit {outcome.rc}")
    for diag in payload.get("diagnostics", []):
        if diag.get("severity") != "error" or diag.get("code") in UNPLACED_CODES:
            continue
        span = diag.get("span")
        if not span or not (isinstance(span.get("line"), int) and span["line"] >= 1 and span.get("col", 0) >= 1):
            problems.append(f"{diag.get('code')} not positioned: {diag.get('message', '')[:200]}")
    return problems


def _spec_text(cwd: Path, argv: list[str]) -> str:
    """The spec a failing command worked from, for the report (the case folder may be temporary)."""
    path = cwd / (argv[1] if argv[0] == "compile" else Path(argv[1]) / "spec.tangle")
    try:
        return path.read_bytes()[:4000].decode("utf-8", "replace") if path.is_file() else ""
    except OSError:
        return ""


# ---- the campaign --------------------------------------------------------------------------------

@dataclass
class Failure:
    family: str
    case: int
    seed: int
    what: str  # the input: spec shape, mutation, tampering
    argv: list[str]
    problems: list[str]
    process: str
    folder: str  # the case's files, kept for reproducing
    exit_code: int | None = None
    output: str = ""  # the end of stderr and stdout
    spec: str = ""  # the spec compiled (compile cases) or the run's spec after tampering


@dataclass
class Campaign:
    """Runs cases and collects figures; `folder` keeps the files of every failing case."""

    folder: Path
    seed: int = 0
    fresh_share: float = 0.1
    timeout: float = 180.0
    log: callable = print
    driver: Driver = None
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    fresh_commands: int = 0
    generated_invalid: int = 0
    refused_after_check: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    trained: list[tuple[Path, Spec]] = field(default_factory=list)  # runs compile cases wrote: tamper bases

    def __post_init__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.driver = self.driver or Driver(self.folder / "driver-stderr.log")

    def close(self) -> None:
        self.driver.close()

    # -- one command, judged ------------------------------------------------------------------------
    def command(self, family: str, case: int, what: str, argv: list[str], cwd: Path, rng: random.Random,
                watched: tuple[Path, ...] = (), absent: tuple[Path, ...] = ()) -> Outcome:
        """Run argv (in the driver, or a fresh process for a share of cases), judge it, record failures.
        `watched` must be byte-identical afterwards unless the command succeeded and wrote them;
        `absent` must not exist after a failure."""
        before = {p: snapshot(p) for p in watched}
        spawnable = not any("\x00" in a for a in argv)  # execve refuses a NUL (and no shell can type one)
        fresh = rng.random() < self.fresh_share and spawnable
        outcome = fresh_run(argv, cwd, self.timeout) if fresh else self.driver.run(argv, cwd, self.timeout)
        if not fresh and spawnable and (outcome.rc is None or outcome.rc < 0 or outcome.rc == 3):
            confirm = fresh_run(argv, cwd, self.timeout)  # a dead driver or exit 3: the real process decides
            if confirm.rc != outcome.rc:
                self.log(f"  [{family} {case}] driver said {outcome.rc}, a fresh process {confirm.rc}")
            outcome = confirm
        self.commands += 1
        self.fresh_commands += outcome.process == "fresh"
        key = "timeout" if outcome.rc is None else str(outcome.rc)
        self.exit_codes[key] = self.exit_codes.get(key, 0) + 1
        problems = judge(outcome, "--json" in argv)
        if fresh and argv[0] in ("eval", "query"):  # read-only: the driver must answer as a fresh process did
            again = self.driver.run(argv, cwd, self.timeout)
            if (again.rc, again.stdout) != (outcome.rc, outcome.stdout):
                problems.append(f"the driver answered differently (exit {again.rc}) from a fresh process "
                                f"(exit {outcome.rc}): state leaks between in-process cases")
        if outcome.rc != 0:
            for path in absent:
                if path.exists() or path.is_symlink():
                    problems.append(f"failed (exit {outcome.rc}) but wrote {path.name}")
            for path, state in before.items():
                if snapshot(path) != state:
                    problems.append(f"failed (exit {outcome.rc}) but changed {path.name}")
        else:
            for path, state in before.items():
                if argv[0] != "compile" and snapshot(path) != state:
                    problems.append(f"{argv[0]} changed {path.name}, which it only reads")
        if problems:
            self.failures.append(Failure(family, case, self.seed, what, argv, problems, outcome.process, str(cwd),
                                         outcome.rc, outcome.stderr[-1500:] + "\n--- stdout\n" + outcome.stdout[-500:],
                                         _spec_text(cwd, argv)))
            self.log(f"  FAIL [{family} {case}] {what}: {' '.join(argv)[:160]} -> {problems}")
        return outcome

    def _count(self, family: str) -> None:
        self.counts[family] = self.counts.get(family, 0) + 1

    def _rng(self, family: str, case: int) -> random.Random:
        return random.Random(f"{self.seed}:{family}:{case}")

    # -- compile cases ------------------------------------------------------------------------------
    def valid_spec(self, rng: random.Random, folder: Path) -> Spec:
        """A generated spec that `check` accepts, written to `folder`."""
        from tanglec.spec.onepass import check_file

        for _ in range(20):
            spec = generate_spec(rng)
            shutil.rmtree(folder, ignore_errors=True)
            path = spec.write(folder)
            checked, _ = check_file(path)
            if checked is not None and not checked.errors:
                return spec
            self.generated_invalid += 1
        raise RuntimeError(f"no valid spec in 20 tries: last one\n{spec.text}")

    def compile_case(self, case: int) -> None:
        """Compile a generated spec (its data sometimes damaged); then eval, query and sometimes export it."""
        family = "compile"
        rng = self._rng(family, case)
        folder = self.folder / f"compile-{case:04d}"
        spec = self.valid_spec(rng, folder)
        what = "spec: " + " ".join(spec.shape)
        if any(feature.startswith("edge:") for feature in spec.shape):
            family = "edge"  # valid specs at the edges of what the checks allow (issue 12 findings 8, 9)
        mutated = bool(spec.files) and rng.random() < 0.35
        if mutated:
            family = "data"
            spec, how = mutate_data(rng, spec)
            spec.write(folder)
            what += f"; data {how}"
        self._count(family)
        argv = ["compile", "spec.tangle", "-o", "out/run"]
        if rng.random() < 0.5:
            argv.append("--json")
        if rng.random() < 0.3:
            argv += ["--steps", str(rng.randint(1, 12))]
        if rng.random() < 0.15:
            argv += ["--mux", rng.choice(["where", "partition", "gather", "auto"])]
        if spec.files and rng.random() < 0.3:
            argv.append(rng.choice(["--stream", "--no-stream"]))
        keep = None
        if rng.random() < 0.1:  # a user's folder in the way: its file must survive (finding 1)
            keep = folder / "out" / "run" / "notes.txt"
            keep.parent.mkdir(parents=True)
            keep.write_text("a user's file\n")
            what += "; -o names an existing folder holding a user's file"
        run = folder / "out" / "run"
        outcome = self.command(family, case, what, argv, folder, rng, watched=(folder / "spec.tangle",),
                               absent=() if keep else (run,))
        if keep is not None and not keep.is_file():
            self.failures.append(Failure("output-path", case, self.seed, what, argv,
                                         ["compile -o deleted a user's file in the folder it replaced"],
                                         outcome.process, str(folder)))
        if outcome.rc == 1 and not mutated and keep is None:
            codes = sorted(set(re.findall(r"\b([EW]\d{3})\b", outcome.stdout + outcome.stderr)))
            self.refused_after_check.append({"case": case, "codes": codes, "what": what})
        if outcome.rc != 0 or keep is not None:
            return
        if "--json" in argv:
            self.check_steps(family, case, what, argv, outcome, spec, folder)
        self.after_compile(family, case, what, spec, folder, rng)
        if not mutated:
            self.trained.append((run, spec))

    def check_steps(self, family: str, case: int, what: str, argv: list[str], outcome: Outcome, spec: Spec,
                    folder: Path) -> None:
        """A compile trains exactly the steps asked for, unless it stopped early (`until exact`)."""
        payload = json.loads(outcome.stdout)
        override = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else None
        planned = sum(override or steps for steps in spec.phase_steps)
        if payload["steps_run"] != planned and not payload["stopped_early"]:
            self.failures.append(Failure("steps", case, self.seed, what, argv,
                                         [f"trained {payload['steps_run']} steps, asked for {planned}"],
                                         outcome.process, str(folder), 0, "", spec.text))

    def after_compile(self, family: str, case: int, what: str, spec: Spec, folder: Path, rng: random.Random) -> None:
        run = folder / "out" / "run"
        watched = (run,)
        self.command(family, case, what, ["eval", "out/run", *(["--json"] * (rng.random() < 0.7))], folder, rng,
                     watched=watched)
        self.command(family, case, what, ["query", "out/run", *spec.query, "--json"], folder, rng, watched=watched)
        fields, how = odd_query(rng, spec)
        self._count("query")
        self.command("query", case, f"{what}; query {how}",
                     ["query", "out/run", *fields, *(["--json"] * (rng.random() < 0.6))], folder, rng,
                     watched=watched)
        if rng.random() < 0.2:
            fmt = rng.choice(["savedmodel", "keras"])
            target = folder / "out" / ("export.keras" if fmt == "keras" else "export_sm")
            self._count("export")
            self.command("export", case, what,
                         ["export", "out/run", "--format", fmt, "-o", str(target.relative_to(folder)), "--json",
                          *(["--no-verify"] * (rng.random() < 0.5))], folder, rng, watched=watched,
                         absent=(target,))

    # -- tampered runs ------------------------------------------------------------------------------
    def base_runs(self, count: int = 3) -> list[tuple[Path, Spec]]:
        """Trained runs to tamper with: the compile cases' (their data stays beside them), else new ones."""
        runs = self.trained[:count]
        case = 0
        while len(runs) < count and case < 50:
            rng = self._rng("base", case)
            folder = self.folder / f"base-{case:02d}"
            spec = self.valid_spec(rng, folder)
            outcome = self.driver.run(["compile", "spec.tangle", "-o", "run", "--json"], folder, self.timeout)
            if outcome.rc == 0:
                runs.append((folder / "run", spec))
            case += 1
        if len(runs) < 2:
            raise RuntimeError("could not compile two base runs to tamper with")
        return runs

    def tamper_case(self, case: int, bases: list) -> None:
        """Copy a trained run, damage it, and run eval, query or export on it."""
        family = "tamper"
        rng = self._rng(family, case)
        self._count(family)
        (origin, spec), (other, _) = rng.sample(bases, 2)  # run directories
        folder = self.folder / f"tamper-{case:04d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        outside = folder / "secret.csv"
        outside.write_text(f"{SECRET},y\n{SECRET},1\n")  # the header and a cell: both show up in messages
        run = folder / "runs" / "run"
        shutil.copytree(origin, run, symlinks=True)
        try:
            how = tamper_run(rng, run, other, outside)
        except (OSError, ValueError, TypeError, RecursionError) as err:
            how = f"(tampering failed: {err})"
        command = rng.choices(["eval", "query", "odd-query", "export"], [4, 4, 2, 2])[0]
        json_flag = ["--json"] * (rng.random() < 0.6)
        absent: tuple[Path, ...] = ()
        if command == "eval":
            argv = ["eval", "runs/run", *json_flag]
        elif command == "query":
            argv = ["query", "runs/run", *spec.query, *json_flag]
        elif command == "odd-query":
            fields, odd = odd_query(rng, spec)
            how += f"; query {odd}"
            argv = ["query", "runs/run", *fields, *json_flag]
        else:
            fmt = rng.choice(["savedmodel", "keras"])
            target = folder / "runs" / ("export.keras" if fmt == "keras" else "export_sm")
            argv = ["export", "runs/run", "--format", fmt, "-o", str(target.relative_to(folder)), *json_flag,
                    *(["--no-verify"] * (rng.random() < 0.5))]
            absent = (target,)
        self.command(family, case, f"run {origin.relative_to(self.folder)}: {how}", argv, folder, rng,
                     watched=(run, outside, origin), absent=absent)

    # -- everything ---------------------------------------------------------------------------------
    def run(self, compile_cases: int, tamper_cases: int) -> dict:
        start = time.perf_counter()
        for case in range(compile_cases):
            self.compile_case(case)
            if (case + 1) % 10 == 0:
                self.log(f"compile cases: {case + 1}/{compile_cases} ({time.perf_counter() - start:.0f} s)")
        self.seconds["compile"] = time.perf_counter() - start
        start = time.perf_counter()
        if tamper_cases:
            bases = self.base_runs()
            for case in range(tamper_cases):
                self.tamper_case(case, bases)
                if (case + 1) % 20 == 0:
                    self.log(f"tamper cases: {case + 1}/{tamper_cases} ({time.perf_counter() - start:.0f} s)")
        self.seconds["tamper"] = time.perf_counter() - start
        return self.report(compile_cases, tamper_cases)

    def report(self, compile_cases: int, tamper_cases: int) -> dict:
        total = sum(self.seconds.values())
        return {
            "seed": self.seed, "compile_cases": compile_cases, "tamper_cases": tamper_cases,
            "cases_by_family": self.counts, "commands": self.commands, "fresh_process_commands": self.fresh_commands,
            "driver_restarts": self.driver.restarts, "exit_codes": self.exit_codes,
            "generated_specs_rejected_by_check": self.generated_invalid,
            "valid_specs_refused_by_compile": self.refused_after_check,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "cases_per_minute": round((compile_cases + tamper_cases) / total * 60, 1) if total else None,
            "failures": [asdict(f) for f in self.failures],
        }
