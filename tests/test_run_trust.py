"""A run directory is self-contained and trusted only as far as it is verified.

`query`, `eval` and `export` read nothing but the run: a `data file` spec keeps its evaluation rows in
it, and no path the run's spec names is ever opened, so a crafted run (hashes and digest recomputed)
can't make tanglec read, or print, a file outside it. The manifest is covered by its own digest, every
file has a size cap checked before it is read, and malformed JSON inside a run is E140, not a crash.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from support import SPECS, call_tanglec, run_tanglec
from tanglec.artifacts.run import FORMAT, MANIFEST, METRICS, REPORT, ROWS, SPEC, manifest_digest

SECRET = "tanglec-test-secret-5a1f0c"
GATE_QUERY = ("pair=0 0 1 0 1 1", "gate=xor")


@pytest.fixture(scope="module")
def gates_run(tmp_path_factory):
    """specs/gates.tangle compiled (20 steps) from a copy of it and its CSV; the CSV is then deleted."""
    folder = tmp_path_factory.mktemp("gates")
    (folder / "data").mkdir()
    shutil.copy(SPECS / "gates.tangle", folder / "gates.tangle")
    shutil.copy(SPECS / "data" / "gates.csv", folder / "data" / "gates.csv")
    run = folder / "run"
    proc = call_tanglec("compile", str(folder / "gates.tangle"), "-o", str(run), "--steps", "20", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder / "data" / "gates.csv").unlink()
    return run


@pytest.fixture
def run(gates_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(gates_run, copy)
    return copy


def reseal(run: Path) -> None:
    """Recompute every file's hash and the manifest's digest, as someone crafting a run would."""
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"] = {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in manifest["files"]}
    manifest["digest"] = manifest_digest(manifest)
    (run / MANIFEST).write_text(json.dumps(manifest))


def refused(proc, fragment: str, code: str = "E140") -> dict:
    """The --json answer of a command that must exit 1 with `code`, without a traceback or the secret."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and SECRET not in proc.stdout + proc.stderr
    diagnostic = json.loads(proc.stdout)["diagnostics"][0]
    assert diagnostic["code"] == code and fragment in diagnostic["message"], diagnostic
    return diagnostic


def test_query_eval_and_export_need_no_original_data(gates_run, tmp_path):
    assert not (gates_run.parent / "data" / "gates.csv").exists()
    manifest = json.loads((gates_run / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["data_file"] == "data/gates.csv" and ROWS in manifest["files"]

    evaluated = call_tanglec("eval", str(gates_run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    compiled = json.loads((gates_run / REPORT).read_text())
    result = json.loads(evaluated.stdout)
    assert (result["cases"], result["exact"]) == (compiled["cases"], compiled["exact"]) == (48, compiled["exact"])
    assert [(r["training_rows"], r["status"]) for r in result["routes"]] == \
        [(r["training_rows"], r["status"]) for r in compiled["routes"]]

    answered = call_tanglec("query", str(gates_run), *GATE_QUERY, "--json")
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert json.loads(answered.stdout)["route"]["selection"] == {"gate": "xor"}

    exported = call_tanglec("export", str(gates_run), "-o", str(tmp_path / "model"), "--json")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout)["verified_rows"] == 48  # checked on the rows the run keeps


def _name_in_spec(run: Path, path: str) -> None:
    spec = run / SPEC
    spec.write_text(spec.read_text().replace('data file "data/gates.csv"', f'data file "{path}"'))


@pytest.mark.parametrize("command", [("query", *GATE_QUERY), ("eval",), ("export",)])
def test_spec_naming_a_file_outside_the_run_is_refused_unread(run, tmp_path, command):
    """A run whose spec names /proc/self/environ (hashes recomputed) is refused; the environment (with
    a planted secret) never reaches the output."""
    _name_in_spec(run, "/proc/self/environ")
    reseal(run)
    proc = call_tanglec(command[0], str(run), *command[1:], "--json", env={"TANGLEC_SECRET": SECRET})
    refused(proc, 'spec.tangle names data file "/proc/self/environ", but the run holds the rows of data/gates.csv')


def test_a_consistently_crafted_run_still_reads_only_itself(run, tmp_path):
    """Spec and manifest both edited to name a FIFO, every hash recomputed: nothing refuses it, but the
    FIFO is never opened (opening it would block the command) and the run answers from its own rows."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _name_in_spec(run, str(fifo))
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["data_file"] = str(fifo)
    (run / MANIFEST).write_text(json.dumps(manifest))
    reseal(run)
    proc = run_tanglec("eval", str(run), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["cases"] == 48


def test_a_use_of_a_file_outside_the_run_is_refused_unread(run, tmp_path):
    fifo = tmp_path / "fifo.tangle"
    os.mkfifo(fifo)  # opening it would block
    spec = run / SPEC
    spec.write_text(f'use "{fifo}"\nuse "/etc/passwd"\n' + spec.read_text())
    reseal(run)
    proc = run_tanglec("query", str(run), *GATE_QUERY, "--json", timeout=60)
    refused(proc, f"spec.tangle uses {fifo}, which is not stored in the run")
    assert "root:" not in proc.stdout + proc.stderr


def test_a_run_answers_from_its_stored_used_specs(tmp_path):
    """A spec that `use`s another and reads a data file: compiled, then both originals deleted (and the
    spec folder renamed): query and eval answer from the run's own copies."""
    folder = tmp_path / "project"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "arith.tangle").write_text((SPECS / "arith.tangle").read_text())
    (folder / "rows.csv").write_text("n,z\n" + "".join(f"{n},{(n + 1) % 10}\n" for n in range(10)))
    (folder / "uses.tangle").write_text(
        'use "lib/arith.tangle" modules decimal, plus1, to_decimal\n'
        "input n: int 0..9\nroute n -> decimal -> plus1 -> to_decimal\n"
        'target z: int 0..9 from data\ndecode to_decimal as z\ndata file "rows.csv"\ntrain steps 20\n')
    run = tmp_path / "run"
    proc = call_tanglec("compile", str(folder / "uses.tangle"), "-o", str(run), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    shutil.rmtree(folder / "lib")
    (folder / "rows.csv").unlink()
    folder.rename(tmp_path / "moved")
    answered = call_tanglec("query", str(run), "n=3", "--json")
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert [a["decoder"] for a in json.loads(answered.stdout)["answers"]] == ["to_decimal"]
    evaluated = call_tanglec("eval", str(run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["cases"] == 10


MANIFEST_EDITS = [
    ("spec_path", lambda m: m.__setitem__("spec_path", "/etc/passwd")),
    ("versions", lambda m: m.__setitem__("tensorflow", "2.99.0")),
    ("data_file", lambda m: m.__setitem__("data_file", "/proc/self/environ")),
    ("dropped rows", lambda m: m["files"].pop(ROWS)),
]


@pytest.mark.parametrize("name,change", MANIFEST_EDITS, ids=[e[0] for e in MANIFEST_EDITS])
def test_an_edited_manifest_is_refused(run, name, change):
    manifest = json.loads((run / MANIFEST).read_text())
    change(manifest)
    (run / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for command in (("eval",), ("query", *GATE_QUERY)):
        diagnostic = refused(call_tanglec(command[0], str(run), *command[1:], "--json"),
                             "manifest.json does not match its digest")
        assert diagnostic["hints"] == ["recompile the run; tanglec refuses files it did not write"]


MALFORMED = [
    (METRICS, "{not json", "metrics.json is not valid JSON"),
    (METRICS, "[1, 2]", "metrics.json does not hold a JSON object"),
    (METRICS, '{"modules": 5}', "metrics.json does not list the modules the run loaded"),
    (METRICS, '{"modules": {"loaded": [1]}}', "metrics.json does not list the modules the run loaded"),
    (METRICS, "[" * 100_000, "metrics.json is not valid JSON"),
    (REPORT, "{}", "routes.json does not describe this spec's 3 routes"),
    (REPORT, '{"routes": [{"training_rows": -1}, {}, {}]}', "routes.json does not describe this spec's 3 routes"),
    (REPORT, "\xff", "routes.json is not valid JSON"),
]


@pytest.mark.parametrize("name,text,fragment", MALFORMED, ids=[f"{m[0]}:{m[1][:12]}" for m in MALFORMED])
def test_malformed_json_with_valid_hashes_is_e140(run, name, text, fragment):
    (run / name).write_text(text)
    reseal(run)
    refused(call_tanglec("eval", str(run), "--json"), fragment)


def test_export_refuses_a_run_whose_rows_it_can_not_verify_on(run, tmp_path):
    (run / REPORT).write_text('{"routes": []}')
    reseal(run)
    refused(call_tanglec("export", str(run), "-o", str(tmp_path / "model"), "--json"),
            "routes.json does not describe this spec's 3 routes")
    assert not (tmp_path / "model").exists()


def test_malformed_stored_rows_are_positioned_in_the_run(run):
    rows = (run / ROWS).read_text().splitlines()
    rows[2] = rows[2].replace('"xor"', '"nand"').replace('"or"', '"nand"').replace('"and"', '"nand"')
    (run / ROWS).write_text("\n".join(rows) + "\n")
    reseal(run)
    diagnostic = refused(call_tanglec("eval", str(run), "--json"), "gate: 'nand' is not one of and, or, xor",
                         code="E119")
    assert diagnostic["span"]["file"] == str(run / ROWS) and diagnostic["span"]["line"] == 3


@pytest.mark.parametrize("name,size", [(SPEC, 3_000_000), (METRICS, 70_000_000), (ROWS, 1_100_000_000)])
def test_oversized_files_are_refused_before_they_are_read(run, name, size):
    """Sparse files over each cap: refused from their size (hashing or reading them would take seconds)."""
    os.truncate(run / name, size)
    proc = run_tanglec("query", str(run), *GATE_QUERY, "--json", timeout=60)
    refused(proc, f"{name} is larger than tanglec writes it")


def test_a_run_of_the_previous_format_asks_for_a_recompile(run):
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["format"] = "tanglec-run/1"
    (run / MANIFEST).write_text(json.dumps(manifest))
    diagnostic = refused(call_tanglec("eval", str(run), "--json"), "written by an older tanglec (tanglec-run/1)")
    assert diagnostic["hints"] == ["recompile the run: `tanglec compile SPEC -o DIR`"]


def test_a_repeated_query_field_is_e130(gates_run):
    proc = call_tanglec("query", str(gates_run), *GATE_QUERY, "gate=and", "--json")
    diagnostic = refused(proc, "'gate' is given 2 times: gate=xor, gate=and", code="E130")
    assert diagnostic["hints"] == ["give each field once: gate=<value>"]
    human = call_tanglec("query", str(gates_run), "gate=and", *GATE_QUERY)
    assert human.returncode == 1 and "error[E130]: 'gate' is given 2 times: gate=and, gate=xor" in human.stderr


def test_explore_on_a_run_shows_it_but_does_not_train_on_its_kept_rows(gates_run, tmp_path, monkeypatch):
    """`tanglec explore RUN` of a data-file run opens from the run alone; training is refused (E140 with the
    way to train again) instead of silently training on the evaluation rows."""
    import asyncio

    from tanglec.tui.app import ExploreApp

    monkeypatch.chdir(tmp_path)

    async def body():
        app = ExploreApp(gates_run, load_tensorflow=False)
        async with app.run_test(size=(110, 34)) as pilot:
            for _ in range(100):
                if app.session.data_problems:
                    break
                await pilot.pause(0.1)
            assert app.session.run_state == "current" and app.examples is None
            assert [d.code for d in app.session.data_problems] == ["E140"]
            assert "keeps only its evaluation rows" in app.session.data_problems[0].message
            assert not app.session.can_train

    asyncio.run(body())


def test_explore_opens_a_damaged_run_without_reading_outside_it(run, tmp_path):
    """`explore RUN` on a run with a malformed routes.json (hashes recomputed) opens without its route
    table; on a run whose spec.tangle is a link (here to a file holding the secret) it shows the E140
    and never the linked file's text."""
    from tanglec.tui.session import open_target

    (run / REPORT).write_text('{"routes": 5}')
    reseal(run)
    session = open_target(run)
    assert session.checked is not None and session.report is None and session.run_state == "current"

    secret_file = tmp_path / "secret.tangle"
    secret_file.write_text(f"# {SECRET}\n")
    (run / SPEC).unlink()
    (run / SPEC).symlink_to(secret_file)
    session = open_target(run)
    assert session.checked is None and session.source == ""
    assert [d.code for d in session.diagnostics] == ["E140"]
    assert "spec.tangle is a link" in session.diagnostics[0].message
