"""Data files (CSV and JSONL): every bad cell is an E119 at file:row:column, the first few are listed
with a count of the rest, and nothing is silently dropped or converted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import measured_tanglec, call_tanglec
from tanglec.pipeline import check_spec
from tanglec.data.examples import DataError, build_examples
from tanglec.data.rows import MAX_REPORTED
from tanglec.lang.diagnostics import render_all
from tanglec.lang.parser import parse

SPEC = """\
input n: int 0..9
input f: float -1..1
input c: category red | blue
input v: vector(2)
select s: a | b
module e  : onehot(10) -> latent(4) = dense 4
module ma : latent(4)  -> latent(4) = dense 4
module mb : latent(4)  -> latent(4) = dense 4
module d  : latent(4)  -> onehot(4) = dense 4
route n -> e -> [a: ma | b: mb] by s -> d
target k: int 0..3 from data
decode d as k
data file "{file}"
"""
HEADER = "n,f,c,v,s,k"
GOOD_CSV = "1,0.5,red,1 2,a,1"
GOOD_JSON = {"n": 1, "f": 0.5, "c": "red", "v": [1, 2], "s": "a", "k": 1}


def diagnose(tmp_path, name: str, content: str | bytes):
    data = tmp_path / name
    (data.write_bytes if isinstance(content, bytes) else data.write_text)(content)
    spec = tmp_path / "spec.tangle"
    spec.write_text(SPEC.format(file=name))
    checked = check_spec(parse(spec.read_text(), str(spec)))
    return checked, data


def errors(tmp_path, name, content):
    checked, data = diagnose(tmp_path, name, content)
    return [d for d in checked.diagnostics if d.is_error], data


def csv_rows(*rows: str) -> str:
    return "\n".join([HEADER, GOOD_CSV, *rows]) + "\n"


def test_good_files_have_no_problems(tmp_path):
    checked, _ = diagnose(tmp_path, "rows.csv", csv_rows("2,-1,blue,0.5 -3,b,3"))
    assert checked.ok, render_all(checked.diagnostics)
    examples = build_examples(checked)
    assert examples.n == 2 and examples.targets["k"].tolist() == [1, 3]
    line = json.dumps(GOOD_JSON)
    checked, _ = diagnose(tmp_path, "rows.jsonl", f"{line}\n\n{line}\n")
    assert checked.ok, render_all(checked.diagnostics)


CSV_CASES = [
    # (bad row, the offending cell's text, message fragment)
    (",0.5,red,1 2,a,1", "", "'' is not an integer"),                      # missing value
    ("abc,0.5,red,1 2,a,1", "abc", "'abc' is not an integer"),             # wrong type
    ("2.5,0.5,red,1 2,a,1", "2.5", "'2.5' is not an integer"),
    ("+-5,0.5,red,1 2,a,1", "+-5", "not an integer"),
    ("٣,0.5,red,1 2,a,1", "٣", "not an integer"),                          # a digit, but not 0-9
    ("10,0.5,red,1 2,a,1", "10", "10 is outside 0..9"),                     # out of range
    ("9" * 5000 + ",0.5,red,1 2,a,1", "9" * 5000, "is outside 0..9"),      # huge, no int() crash
    ("1,x,red,1 2,a,1", "x", "'x' is not a number"),
    ("1,2.0,red,1 2,a,1", "2.0", "2.0 is outside -1..1"),
    ("1,nan,red,1 2,a,1", "nan", "nan is not a finite number"),            # NaN / inf
    ("1,inf,red,1 2,a,1", "inf", "inf is not a finite number"),
    ("1,-Infinity,red,1 2,a,1", "-Infinity", "not a finite number"),
    ("1,0.5,green,1 2,a,1", "green", "'green' is not one of red, blue"),
    ("1,0.5,red,1 2 3,a,1", "1 2 3", "3 values, expected 2"),              # wrong width
    ("1,0.5,red,1 nan,a,1", "1 nan", "finite numbers only"),
    ("1,0.5,red,1 x,a,1", "1 x", "numbers only"),
    ("1,0.5,red,1 2,c,1", "c", "'c' is not one of a, b"),
    ("1,0.5,red,1 2,a,5", "5", "5 is outside 0..3"),                        # target out of range
]


@pytest.mark.parametrize("row,cell,fragment", CSV_CASES, ids=[c[2][:30] for c in CSV_CASES])
def test_csv_bad_cell_is_reported_at_row_and_column(tmp_path, row, cell, fragment):
    errs, data = errors(tmp_path, "rows.csv", csv_rows(row))
    assert len(errs) == 1, render_all(errs)
    d = errs[0]
    col = (row.index(f",{cell},") + 2) if f",{cell}," in row else (1 if row.startswith(cell) else row.rindex(cell) + 1)
    assert (d.code, d.span.file, d.span.line, d.span.col) == ("E119", str(data), 3, col), render_all(errs)
    assert fragment in d.message
    assert f"{data}:3:{col}: error[E119]" in render_all(errs)


def test_csv_wrong_field_count(tmp_path):
    errs, data = errors(tmp_path, "rows.csv", csv_rows("1,0.5,red", "1,0.5,red,1 2,a,1,extra"))
    assert [(d.span.line, d.span.col, d.message) for d in errs] == [
        (3, 1, "3 fields, the header has 6"), (4, 1, "7 fields, the header has 6")]


def test_csv_missing_and_duplicate_columns(tmp_path):
    errs, data = errors(tmp_path, "rows.csv", "n,f,c,v,k\n1,0.5,red,1 2,1\n")
    assert len(errs) == 1 and errs[0].message == "missing column: s" and errs[0].span.line == 1
    errs, _ = errors(tmp_path, "rows.csv", "n,f,c,v,s,k,n\n1,0.5,red,1 2,a,1,2\n")
    assert [(d.message, d.span.line, d.span.col) for d in errs] == [
        ("column n appears more than once in the header", 1, 13)]  # where it appears again
    errs, _ = errors(tmp_path, "rows.csv", "n,f,c,v,s," + ",".join(f"x{i}" for i in range(80_000)) + "\n1\n")
    assert [d.message for d in errs] == ["missing column: k"]  # the hint names a few, not 80,006
    assert errs[0].hints == ["the header has: n, f, c, v, s, " + ", ".join(f"x{i}" for i in range(15))
                             + " and 79,985 more"]


def test_first_offenders_listed_with_a_count_of_the_rest(tmp_path):
    bad = [f"{10 + i},0.5,red,1 2,a,1" for i in range(25)]
    errs, data = errors(tmp_path, "rows.csv", csv_rows(*bad))
    assert len(errs) == MAX_REPORTED
    assert [d.span.line for d in errs] == list(range(3, 3 + MAX_REPORTED))
    assert "15 more problems not shown (25 in all)" in errs[-1].hints
    assert "(25 in all)" in render_all(errs)


def test_nothing_is_silently_dropped(tmp_path):
    """One bad row among good ones fails the whole file: training never runs on what happened to parse."""
    checked, data = diagnose(tmp_path, "rows.csv", csv_rows(GOOD_CSV, "1,0.5,red,1 2,a,9", GOOD_CSV))
    assert not checked.ok
    with pytest.raises(DataError) as err:
        build_examples(checked)
    assert [(d.span.line, d.span.col) for d in err.value.diagnostics] == [(4, len("1,0.5,red,1 2,a,") + 1)]


def test_csv_rows_numbered_as_an_editor_shows_them(tmp_path):
    """CRLF endings, blank lines and a BOM don't shift row numbers; a form feed is not a line break."""
    text = "\ufeff" + HEADER + "\r\n" + GOOD_CSV + "\r\n\r\n" + "1,0.5,red,1 2,\x0cz,1" + "\r\n"
    errs, _ = errors(tmp_path, "rows.csv", text)
    assert [(d.span.line, d.span.col) for d in errs] == [(4, 15)]


def test_csv_file_problems(tmp_path):
    errs, _ = errors(tmp_path, "rows.csv", "")
    assert [d.message for d in errs] == ["the data file is empty"]
    errs, _ = errors(tmp_path, "rows.csv", HEADER + "\n")
    assert [d.message for d in errs] == ["the data file has no rows"]
    errs, data = errors(tmp_path, "rows.csv", (HEADER + "\n" + GOOD_CSV + "\n1,0.5,r\xe9d").encode("latin-1"))
    assert len(errs) == 1 and "not UTF-8" in errs[0].message and errs[0].span.line == 3
    errs, _ = errors(tmp_path, "rows.csv", csv_rows("1\x00,0.5,red,1 2,a,1"))
    assert len(errs) == 1 and "not an integer" in errs[0].message


def jsonl(*rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in (GOOD_JSON, *rows)) + "\n"


JSON_CASES = [
    ({"n": 1, "f": 0.5, "c": "red", "v": [1, 2], "s": "a"}, None, "missing field 'k'"),
    ({**GOOD_JSON, "n": "1"}, "n", 'n: expected an integer, got a string ("1")'),
    ({**GOOD_JSON, "n": 3.0}, "n", "n: expected an integer, got a number (3.0)"),
    ({**GOOD_JSON, "n": True}, "n", "n: expected an integer, got true/false"),
    ({**GOOD_JSON, "n": None}, "n", "n: expected an integer, got null"),
    ({**GOOD_JSON, "n": 12}, "n", "n: 12 is outside 0..9"),
    ({**GOOD_JSON, "f": True}, "f", "f: expected a number, got true/false"),
    ({**GOOD_JSON, "f": "0.5"}, "f", "f: expected a number, got a string"),
    ({**GOOD_JSON, "f": 10 ** 400}, "f", "f: "),
    ({**GOOD_JSON, "c": 1}, "c", "c: expected a string, got an integer (1)"),
    ({**GOOD_JSON, "v": "1 2"}, "v", "v: expected an array of numbers, got a string"),
    ({**GOOD_JSON, "v": [1, "x"]}, "v", "v: expected an array of numbers, got an array holding other values"),
    ({**GOOD_JSON, "v": [1, True]}, "v", "array holding other values"),
    ({**GOOD_JSON, "v": [1, 2, 3]}, "v", "v: 3 values, expected 2"),
    ({**GOOD_JSON, "v": {"a": 1}}, "v", "got an object"),
    ({**GOOD_JSON, "s": "z"}, "s", "s: 'z' is not one of a, b"),
    ({**GOOD_JSON, "k": -1}, "k", "k: -1 is outside 0..3"),
    (json.dumps(GOOD_JSON).replace("0.5", "NaN"), "f", "f: nan is not a finite number"),
    (json.dumps(GOOD_JSON).replace("0.5", "-Infinity"), "f", "not a finite number"),
    ('{"n": 1, "f": ', None, "not JSON"),
    ("[1, 2]", None, "each line must be a JSON object"),
    ('{"n": ' + "9" * 5000 + "}", None, "not JSON this reader accepts"),
    ("[" * 100_000, None, "nested too deeply"),
]


@pytest.mark.parametrize("row,field,fragment", JSON_CASES, ids=[c[2][:30] for c in JSON_CASES])
def test_jsonl_bad_value_is_reported_at_row_and_column(tmp_path, row, field, fragment):
    errs, data = errors(tmp_path, "rows.jsonl", jsonl(row))
    assert len(errs) == 1, render_all(errs)
    d = errs[0]
    line = row if isinstance(row, str) else json.dumps(row)
    assert (d.code, d.span.file, d.span.line) == ("E119", str(data), 2)
    if field is not None:
        assert d.span.col == line.index(f'"{field}"') + 1
    assert fragment in d.message, d.message


def test_data_errors_leave_no_run_behind(tmp_path):
    """`tanglec compile` with bad data: exit 1, every offender listed as file:row:col, nothing written."""
    data = tmp_path / "rows.csv"
    data.write_text(csv_rows("1,nan,red,1 2,a,1", "11,0.5,red,1 2,a,1"))
    spec = tmp_path / "spec.tangle"
    spec.write_text(SPEC.format(file="rows.csv"))
    run = tmp_path / "run"
    proc = call_tanglec("compile", str(spec), "-o", str(run))
    assert proc.returncode == 1, proc.stderr
    assert f"{data}:3:3: error[E119]: f: nan is not a finite number" in proc.stderr
    assert f"{data}:4:1: error[E119]: n: 11 is outside 0..9" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.tangle"]  # no run, no temp dir
    proc = call_tanglec("compile", str(spec), "-o", str(run), "--json")
    assert proc.returncode == 1
    spans = [(d["span"]["line"], d["span"]["col"]) for d in json.loads(proc.stdout)["diagnostics"]]
    assert spans == [(3, 3), (4, 1)] and not run.exists()


def test_jsonl_offenders_listed_with_a_count_and_compile_writes_nothing(tmp_path):
    """JSONL, as CSV: out-of-range / NaN / inf / wrong-width values at file:row:column, the first
    MAX_REPORTED listed with a count of the rest; missing fields and wrong types make `tanglec compile`
    exit 1 with every offender, no traceback, and nothing written."""
    bad = [{**GOOD_JSON, "n": 12}, {**GOOD_JSON, "f": float("nan")}, {**GOOD_JSON, "f": float("inf")},
           {**GOOD_JSON, "v": [1, 2, 3]}, {**GOOD_JSON, "k": 7}, {**GOOD_JSON, "n": -1}] * 2
    errs, data = errors(tmp_path, "rows.jsonl", jsonl(*bad))
    messages = ["n: 12 is outside 0..9", "f: nan is not a finite number", "f: inf is not a finite number",
                "v: 3 values, expected 2", "k: 7 is outside 0..3", "n: -1 is outside 0..9"] * 2
    key = [m.split(":")[0] for m in messages]
    assert [(d.code, d.span.file, d.span.line, d.span.col, d.message) for d in errs] == [
        ("E119", str(data), row, json.dumps(bad[row - 2]).index(f'"{key[row - 2]}"') + 1, messages[row - 2])
        for row in range(2, 2 + MAX_REPORTED)]
    assert "2 more problems not shown (12 in all)" in errs[-1].hints
    assert f"{data}:2:2: error[E119]: n: 12 is outside 0..9" in render_all(errs)

    for p in tmp_path.iterdir():
        p.unlink()
    data = tmp_path / "rows.jsonl"
    missing = {k: v for k, v in GOOD_JSON.items() if k != "k"}
    wrong = {**GOOD_JSON, "n": "1"}
    data.write_text(jsonl(missing, wrong))
    spec = tmp_path / "spec.tangle"
    spec.write_text(SPEC.format(file="rows.jsonl"))
    proc = call_tanglec("compile", str(spec), "-o", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stderr
    assert f"{data}:2:1: error[E119]: missing field 'k'" in proc.stderr
    assert f'{data}:3:2: error[E119]: n: expected an integer, got a string ("1")' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl", "spec.tangle"]  # no run, no temp dir


# ---- through the CLI, read in chunks and in memory alike -------------------------------------------

MODES = ["always", "never"]


def compile_data(tmp_path, mode: str, name: str = "rows.csv", content: str | bytes | None = None,
                 timeout: float = 120):
    """`tanglec compile --steps 5 --json` on SPEC reading `name` with `stream MODE`, in a child process:
    (exit code, diagnostics, stderr, CPU seconds, the child's peak RSS in MB). Nothing may be written."""
    data = tmp_path / name
    if content is not None:
        (data.write_bytes if isinstance(content, bytes) else data.write_text)(content)
    spec = tmp_path / "spec.tangle"
    spec.write_text(SPEC.replace('data file "{file}"', f'data file "{name}" stream {mode}'))
    before = sorted(p.name for p in tmp_path.iterdir())
    returncode, stdout, stderr_text, seconds, peak_mb = measured_tanglec(
        "compile", str(spec), "--steps", "5", "--json", "-o", str(tmp_path / "run"), cwd=tmp_path,
        output=tmp_path.parent / f"{tmp_path.name}.measure", timeout=timeout)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run, no temporary folder
    assert "Traceback" not in stderr_text
    diags = json.loads(stdout)["diagnostics"] if returncode == 1 else []
    return returncode, diags, stderr_text, seconds, peak_mb


def positions(diags) -> list[tuple]:
    return [(d["code"], Path(d["span"]["file"]).name, d["span"]["line"], d["span"]["col"], d["message"])
            for d in diags]


@pytest.mark.parametrize("mode", MODES)
def test_quoted_cells_may_hold_line_breaks(tmp_path, mode):
    """RFC 4180: a quoted cell may span rows; a record is reported at the row where it starts, a bad
    cell at its own row and column, and the rows after it keep their numbers."""
    rows = (HEADER + "\n" + GOOD_CSV + "\n"
            '1,0.5,red,"1\n2",a,1\n'             # rows 3-4: a valid vector with a line break
            '1,0.5,"re\r\nd",1 2,a,1\n'          # rows 5-6: a category can't hold one
            '1,0.5,red,"1\n2",a,1,x\n'           # rows 7-8: 7 fields, at the row where it starts
            '1,0.5,red,"1\n\n2",a,9\n')          # rows 9-11: the bad target is on row 11
    code, diags, *_ = compile_data(tmp_path, mode, content=rows)
    assert code == 1
    assert positions(diags) == [
        ("E119", "rows.csv", 5, 7, r"c: 're\r\nd' is not one of red, blue"),
        ("E119", "rows.csv", 7, 1, "7 fields, the header has 6"),
        ("E119", "rows.csv", 11, 6, "k: 9 is outside 0..3")]


@pytest.mark.parametrize("mode", MODES)
def test_a_quoted_cell_never_closed(tmp_path, mode):
    rows = HEADER + "\n" + GOOD_CSV + "\n9,0.5,red,1 2,a,1\n" + '1,0.5,"red,1 2,a,1\n' + GOOD_CSV + "\n"
    code, diags, *_ = compile_data(tmp_path, mode, content=rows)
    assert code == 1
    assert positions(diags) == [("E119", "rows.csv", 4, 7, "a quoted cell opened here is never closed")]


@pytest.mark.parametrize("mode", MODES)
def test_numbers_are_ascii_decimals(tmp_path, mode):
    """float() takes `1_0` and Arabic-Indic digits; a data file may not."""
    bad = ["1,0_5,red,1 2,a,1", "1,٠,red,1 2,a,1", "1,0.5,red,1_0 2,a,1", "1,0.5,red,١ 2,a,1", "1,１,red,1 2,a,1"]
    code, diags, *_ = compile_data(tmp_path, mode, content=csv_rows(*bad))
    assert code == 1
    assert positions(diags) == [
        ("E119", "rows.csv", 3, 3, "f: '0_5' is not a number"),
        ("E119", "rows.csv", 4, 3, "f: '٠' is not a number"),
        ("E119", "rows.csv", 5, 11, "v: a vector holds numbers only"),
        ("E119", "rows.csv", 6, 11, "v: a vector holds numbers only"),
        ("E119", "rows.csv", 7, 3, "f: '１' is not a number")]


def test_both_readers_give_a_binary_file_the_same_first_error(tmp_path):
    """A header, good rows, then bytes that are not UTF-8: the same code, position and message."""
    content = (csv_rows("11,0.5,red,1 2,a,1") + "1,0.5,r").encode() + bytes(range(128, 256)) + b"\n"
    results = [positions(compile_data(tmp_path, mode, content=content)[1]) for mode in MODES]
    assert results[0] == results[1] == [
        ("E119", "rows.csv", 3, 1, "n: 11 is outside 0..9"),
        ("E119", "rows.csv", 4, 8, f"the data file is not UTF-8 text (invalid start byte at byte "
                                   f"{content.index(128)})")]


@pytest.mark.parametrize("mode", MODES)
def test_a_folder_or_a_fifo_is_named_for_what_it_is(tmp_path, mode):
    """Checked with os.stat: a FIFO is never opened (nothing writes to it: opening it would block)."""
    import os

    (tmp_path / "rows.csv").mkdir()
    code, diags, *_ = compile_data(tmp_path, mode)
    assert code == 1 and [d["message"] for d in diags] == ["the data file is a directory: rows.csv"]
    os.mkfifo(tmp_path / "rows.jsonl")
    code, diags, _, seconds, _ = compile_data(tmp_path, mode, name="rows.jsonl", timeout=30)
    assert code == 1 and [d["message"] for d in diags] == ["the data file is not a regular file: rows.jsonl"]
    assert diags[0]["span"]["file"] == str(tmp_path / "spec.tangle")


@pytest.mark.parametrize("mode", MODES)
def test_a_row_with_too_many_fields_hides_no_other_problem(tmp_path, mode):
    bad = ["1,0.5,red,1 2,a,1,extra", "12,0.5,red,1 2,a,1", "1,0.5", "1,0.5,blue,1 2,b,7"]
    code, diags, *_ = compile_data(tmp_path, mode, content=csv_rows(*bad))
    assert code == 1
    assert positions(diags) == [
        ("E119", "rows.csv", 3, 1, "7 fields, the header has 6"),
        ("E119", "rows.csv", 4, 1, "n: 12 is outside 0..9"),
        ("E119", "rows.csv", 5, 1, "2 fields, the header has 6"),
        ("E119", "rows.csv", 6, 18, "k: 7 is outside 0..3")]
    code, diags, *_ = compile_data(tmp_path, mode, content=csv_rows(*(["1,2"] * 8 + ["12,0.5,red,1 2,a,1"] * 8)))
    assert code == 1 and len(diags) == MAX_REPORTED and diags[-1]["span"]["line"] == 12
    assert "6 more problems not shown (16 in all)" in diags[-1]["hints"]


# Refusals of large inputs: the bar (2 s, 500 MB), in CPU seconds of the whole `tanglec` process so
# that a loaded CI machine doesn't decide it. Measured (this machine shared): 0.5-1.3 s wall, 45-125 MB.
SECONDS, MEGABYTES = 2, 500


def wide_header(columns: int) -> str:
    return HEADER + "," + ",".join(f"extra{i}" for i in range(columns))


LARGE_CASES = {
    # name: (content, expected (row, col, message))
    "80k-column header, one repeated": (
        lambda: wide_header(80_000) + ",extra7\n" + GOOD_CSV + ",0" * 80_001 + "\n",
        (1, len(wide_header(80_000)) + 2, "column extra7 appears more than once in the header")),
    "80k-column header": (
        lambda: wide_header(80_000) + "\n" + GOOD_CSV + ",0" * 80_000 + "\n" + "12" + GOOD_CSV[1:] + ",0" * 80_000,
        (3, 1, "n: 12 is outside 0..9")),
    "200k-character header cell": (
        lambda: HEADER + "," + "h" * 200_000 + "\n" + GOOD_CSV + ",0\n" + GOOD_CSV + "\n",
        (3, 1, "6 fields, the header has 7")),
    "200k-character quoted cell": (
        lambda: HEADER + "\n" + GOOD_CSV + '\n1,0.5,"' + "r\n" * 100_000 + '",1 2,a,1\n',
        (3, 7, "c: 'r\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\nr\\n'… is not one of red, blue")),
    "200k-character plain cell": (
        lambda: HEADER + "\n" + GOOD_CSV + "\n1,0.5,red," + "1 " * 100_000 + ",a,1\n",
        (3, 11, "v: 100000 values, expected 2")),
    "a quoted cell over 16 MiB, in rows of 1 KB": (
        lambda: HEADER + "\n" + GOOD_CSV + '\n1,0.5,"' + ("r" * 1000 + "\n") * 20_000 + '",1 2,a,1\n',
        (3, 1, "this row is longer than 16,777,216 bytes (the limit)")),
    "header over 1 MiB": (
        lambda: wide_header(200_000) + "\n" + GOOD_CSV + "\n",
        (1, 2**20 + 1, "the header is longer than 1,048,576 bytes (the limit)")),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(LARGE_CASES))
def test_large_headers_and_cells_are_read_or_refused_quickly(tmp_path, mode, case):
    content, (row, col, message) = LARGE_CASES[case]
    code, diags, _, seconds, peak = compile_data(tmp_path, mode, content=content())
    print(f"{case}, stream {mode}: {seconds:.2f} s, {peak:.0f} MB")
    assert code == 1 and positions(diags)[0] == ("E119", "rows.csv", row, col, message)
    assert seconds < SECONDS and peak < MEGABYTES


@pytest.mark.parametrize("name", ["rows.csv", "rows.jsonl"])
@pytest.mark.parametrize("mode", MODES)
def test_a_50_mb_row_is_refused_before_it_is_read(tmp_path, mode, name):
    """A row longer than 16 MiB is refused at the byte where it passes the limit, the rest unread."""
    jsonl_file = name.endswith(".jsonl")
    with (tmp_path / name).open("w") as f:
        if jsonl_file:
            f.write(jsonl({**GOOD_JSON, "n": 12}) + '{"c": "')
        else:
            f.write(csv_rows("12,0.5,red,1 2,a,1") + "1,0.5,")
        for _ in range(50):
            f.write("r" * 2**20)
        f.write(",1 2,a,1\n")
    code, diags, _, seconds, peak = compile_data(tmp_path, mode, name=name)
    print(f"50 MB row in {name}, stream {mode}: {seconds:.2f} s, {peak:.0f} MB")
    first = (2, 2) if jsonl_file else (3, 1)
    assert code == 1 and positions(diags) == [
        ("E119", name, *first, "n: 12 is outside 0..9"),
        ("E119", name, first[0] + 1, 2**24 + 1, "this row is longer than 16,777,216 bytes (the limit)")]
    assert seconds < SECONDS and peak < MEGABYTES
