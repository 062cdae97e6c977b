"""The output policy (tanglec/util/files.py) through the real CLI: every command that writes refuses a
path it may not replace before any work starts, the user's files byte for byte intact; the crash log;
control characters in human output.

Refusals run with a `tensorflow` module that can't be imported first on the path: a refusal that needed
TensorFlow (or training) would fail differently, so exit 1 with E192 shows it came first.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import ARITH, SPECS, call_tanglec, run_tanglec

ESCAPE = "\x1b]0;pwned\x07"
SHOWN = "\\x1b]0;pwned\\x07"


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root: its bytes' hash, or 'dir'/'link -> target'."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def no_tensorflow(tmp_path_factory) -> dict:
    """An environment in which importing TensorFlow fails."""
    stub = tmp_path_factory.mktemp("no_tf")
    (stub / "tensorflow.py").write_text("raise ImportError('the test forbids TensorFlow here')\n")
    return {"PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A user's folder: the spec, a file, a folder of their own, an empty .keras-named file."""
    (tmp_path / "specs").mkdir()
    shutil.copy(ARITH, tmp_path / "specs" / "arith.tangle")
    (tmp_path / "keep.txt").write_text("the user's notes\n")
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "thesis.tex").write_text("chapter 1\n")
    (tmp_path / "user.keras").write_bytes(b"not a model, but theirs")
    (tmp_path / "runs").mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, arith_run) -> Path:
    """A folder with runs/arith: a copy of the session's trained arith run."""
    root = tmp_path_factory.mktemp("trained")
    arith_run.copy_to(root / "runs" / "arith")
    return root


def refused(proc, path: str, flag: str | None) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "error[E192]" in proc.stderr and f"refusing to write {path}:" in proc.stderr, proc.stderr
    if flag:
        assert flag in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("out, shown", [
    (".", "."),
    ("ABS", None),  # the current folder by its absolute path
    ("/", "/"),
    ("userdir", "userdir"),  # finding 1: a user's folder
    ("keep.txt", "keep.txt"),  # finding 3: a user's file
    ("keep.txt/run", "keep.txt/run"),  # its parent is a file
    ("specs", "specs"),  # contains the spec
    ("specs/arith.tangle", "specs/arith.tangle"),
    ("/proc/tanglec/run", "/proc/tanglec/run"),  # can't be created
])
def test_compile_refuses_before_training_and_keeps_every_file(workspace, no_tensorflow, out, shown):
    if out == "ABS":
        out = shown = str(workspace)
    before = snapshot(workspace)
    proc = run_tanglec("compile", "specs/arith.tangle", "-o", out, "--steps", "20", cwd=workspace, env=no_tensorflow)
    refused(proc, shown, "-o")
    assert snapshot(workspace) == before


@pytest.mark.parametrize("planted", ["file", "folder"])
def test_compile_refuses_a_checkpoint_path_it_did_not_write(workspace, no_tensorflow, planted):
    ckpt = workspace / "runs" / ".arith.ckpt"
    if planted == "file":
        ckpt.write_text("mine")
    else:
        ckpt.mkdir()
        (ckpt / "notes.txt").write_text("mine")
    before = snapshot(workspace)
    proc = run_tanglec("compile", "specs/arith.tangle", "-o", "runs/arith", cwd=workspace, env=no_tensorflow)
    refused(proc, "runs/.arith.ckpt", "-o")
    assert snapshot(workspace) == before


def test_compile_refuses_a_path_holding_the_data_file(workspace, no_tensorflow):
    shutil.copy(SPECS / "gates.tangle", workspace / "specs" / "gates.tangle")
    shutil.copytree(SPECS / "data", workspace / "specs" / "data")
    before = snapshot(workspace)
    proc = run_tanglec("compile", "specs/gates.tangle", "-o", "specs/data", cwd=workspace, env=no_tensorflow)
    refused(proc, "specs/data", "-o")
    assert "gates.csv" in proc.stderr
    assert snapshot(workspace) == before


def test_json_refusal_is_one_object(workspace, no_tensorflow):
    proc = run_tanglec("compile", "specs/arith.tangle", "-o", "userdir", "--json", cwd=workspace, env=no_tensorflow)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["diagnostics"][0]["code"] == "E192"
    assert report["diagnostics"][0]["span"]["file"] == "userdir"


def test_recompiling_into_a_run_replaces_it_and_leaves_nothing_beside_it(trained, tmp_path):
    shutil.copytree(trained / "runs", tmp_path / "runs")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "runs" / f".arith.{dead.stdout.strip()}.abcd1234.tmp"  # a killed compile's folder
    stale.mkdir()
    old = (tmp_path / "runs" / "arith" / "manifest.json").read_bytes()
    proc = call_tanglec("compile", str(ARITH), "-o", "runs/arith", "--steps", "20", "--seed", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "arith" / "manifest.json").read_bytes() != old
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["arith"]


@pytest.mark.parametrize("args, shown", [
    (["-o", "runs"], "runs"),  # finding 2: the folder holding the run and its siblings
    (["-o", "runs/arith"], "runs/arith"),
    (["-o", "runs/arith/export"], "runs/arith/export"),
    (["-o", "userdir"], "userdir"),
    (["-o", "keep.txt"], "keep.txt"),  # savedmodel onto a file
    (["--format", "keras", "-o", "userdir.keras"], "userdir.keras"),  # keras onto a folder
    (["--format", "keras", "-o", "user.keras"], "user.keras"),  # a user's file
    (["-o", "."], "."),
])
def test_export_refuses_before_tensorflow_and_keeps_every_file(trained, workspace, no_tensorflow, args, shown):
    shutil.copytree(trained / "runs" / "arith", workspace / "runs" / "arith")
    (workspace / "userdir.keras").mkdir()
    before = snapshot(workspace)
    proc = run_tanglec("export", "runs/arith", *args, cwd=workspace, env=no_tensorflow)
    refused(proc, shown, "-o")
    assert snapshot(workspace) == before


def test_export_replaces_its_own_export_only_and_cleans_a_killed_exports_leftovers(trained, tmp_path):
    shutil.copytree(trained / "runs", tmp_path / "runs")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.keras.{dead.stdout.strip()}.abcd1234.tmp.keras"
    stale.write_bytes(b"half")
    for _ in range(2):  # the second export replaces the first
        proc = call_tanglec("export", "runs/arith", "--format", "keras", "-o", "model.keras", "--no-verify",
                            cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    proc = call_tanglec("export", "runs/arith", "-o", "model.keras", cwd=tmp_path)  # another kind
    refused(proc, "model.keras", "-o")
    assert "a tanglec .keras export, not a tanglec SavedModel export" in proc.stderr


def test_graph_replaces_a_file_only_with_overwrite(workspace):
    proc = run_tanglec("graph", "specs/arith.tangle", "--format", "dot", "-o", "keep.txt", cwd=workspace)
    refused(proc, "keep.txt", "--overwrite")
    assert (workspace / "keep.txt").read_text() == "the user's notes\n"
    proc = run_tanglec("graph", "specs/arith.tangle", "--format", "dot", "-o", "keep.txt", "--overwrite",
                       cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    assert (workspace / "keep.txt").read_text().startswith("digraph")
    before = snapshot(workspace)
    proc = run_tanglec("graph", "specs/arith.tangle", "--format", "dot", "-o", "specs/arith.tangle", "--overwrite",
                       cwd=workspace)
    refused(proc, "specs/arith.tangle", None)  # an input, even with --overwrite
    assert snapshot(workspace) == before


@pytest.mark.parametrize("args, shown, flag", [
    (["--workdir", "userdir"], "userdir", "--workdir"),
    (["--workdir", "w", "-o", "keep.txt"], "keep.txt", "--overwrite"),
    (["--workdir", "w", "--png", "keep.txt"], "keep.txt", "--overwrite"),
    (["--workdir", "."], ".", "--workdir"),
])
def test_transfer_refuses_its_outputs_before_training(workspace, no_tensorflow, args, shown, flag):
    before = snapshot(workspace)
    proc = run_tanglec("transfer", "--quick", *args, cwd=workspace, env=no_tensorflow)
    refused(proc, shown, flag)
    assert snapshot(workspace) == before


def test_explore_refuses_to_train_into_a_users_folder(workspace, monkeypatch):
    from tanglec.tui.app import ExploreApp

    monkeypatch.chdir(workspace)
    before = snapshot(workspace)

    async def scenario() -> list[str]:
        app = ExploreApp(workspace / "specs" / "arith.tangle", workspace / "userdir", load_tensorflow=False)
        async with app.run_test(size=(110, 34)) as pilot:
            await pilot.press("2")
            await pilot.pause(0.2)
            await pilot.press("s")
            await pilot.pause(0.2)
            assert app.train_state == "idle"
            return [str(n.message) for n in app._notifications]

    messages = asyncio.run(scenario())
    assert any("refusing to write" in m and "userdir" in m for m in messages), messages
    assert snapshot(workspace) == before


@pytest.mark.parametrize("special", ["/dev/zero", "FIFO"])
def test_explore_reads_a_spec_the_guarded_way(tmp_path, special):
    if special == "FIFO":
        special = str(tmp_path / "pipe.tangle")
        os.mkfifo(special)
    code = ("import sys; from pathlib import Path; from tanglec.tui.session import open_target; "
            "s = open_target(Path(sys.argv[1])); print(s.diagnostics[0].code, s.diagnostics[0].message)")
    proc = subprocess.run([sys.executable, "-c", code, special], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("E006 ") and "not a regular file" in proc.stdout


# ---- the crash log ------------------------------------------------------------------------------

def crash(monkeypatch, capsys) -> tuple[int, str]:
    """Run `tanglec check` in-process with its checker broken: an internal error."""
    from tanglec import cli, pipeline

    def broken(path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "check_file", broken)
    monkeypatch.setattr(sys, "argv", ["tanglec", "check", str(ARITH)])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    return stop.value.code, capsys.readouterr().err


def test_crash_log_is_new_private_and_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code, err = crash(monkeypatch, capsys)
    assert code == 3 and "internal error: RuntimeError: a bug" in err
    log = Path(err.split("details in ")[1].split(";")[0])
    assert log.parent == tmp_path / "state" / "tanglec"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and "Traceback" in log.read_text()
    code, err = crash(monkeypatch, capsys)
    assert Path(err.split("details in ")[1].split(";")[0]) != log  # one log per crash


def test_crash_log_never_follows_a_planted_link(tmp_path, monkeypatch, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "blocked"))
    (tmp_path / "blocked").write_text("a file where the state folder would be")  # falls back to the temp folder
    (tmp_path / "tanglec-crash.log").symlink_to(victim)  # the old fixed name
    code, err = crash(monkeypatch, capsys)
    assert code == 3 and victim.read_text() == "precious"
    log = Path(err.split("details in ")[1].split(";")[0])
    assert log.parent == tmp_path and not log.is_symlink()


def test_a_crash_log_that_cant_be_written_still_reports_and_exits_3(tmp_path, monkeypatch, capsys):
    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "blocked"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "blocked" / "tmp"))
    code, err = crash(monkeypatch, capsys)
    assert code == 3 and "internal error: RuntimeError: a bug" in err and "no crash log" in err


# ---- control characters ---------------------------------------------------------------------------

def test_spec_lines_and_data_cells_print_escaped(tmp_path):
    (tmp_path / "spec.tangle").write_text(ARITH.read_text() + f"\nmodule bad {ESCAPE}\n")
    proc = run_tanglec("check", "spec.tangle", cwd=tmp_path)
    assert proc.returncode == 1 and ESCAPE not in proc.stderr and "\x1b" not in proc.stderr
    assert SHOWN in proc.stderr, proc.stderr
    shutil.copy(SPECS / "gates.tangle", tmp_path / "gates.tangle")
    (tmp_path / "data").mkdir()
    rows = (SPECS / "data" / "gates.csv").read_text().splitlines()
    (tmp_path / "data" / "gates.csv").write_text("\n".join([rows[0], f"{ESCAPE},and,0", *rows[2:]]) + "\n")
    proc = run_tanglec("check", "gates.tangle", cwd=tmp_path)
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and SHOWN in proc.stderr, proc.stderr


def test_query_arguments_print_escaped(trained):
    proc = call_tanglec("query", "runs/arith", f"x={ESCAPE}", "encoding=binary", "op=plus1", cwd=trained)
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and "\x07" not in proc.stderr, proc.stderr
    proc = call_tanglec("query", "runs/arith", "x=3", f"encoding=binary{ESCAPE}", "op=plus1", "--json", cwd=trained)
    assert proc.returncode == 1 and "\x1b" not in proc.stdout  # JSON escapes it too


def test_fmt_reads_a_spec_the_guarded_way(tmp_path):
    os.mkfifo(tmp_path / "pipe.tangle")
    proc = run_tanglec("fmt", "/dev/zero", "pipe.tangle", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("error[E006]") == 2 and "not a regular file" in proc.stderr
