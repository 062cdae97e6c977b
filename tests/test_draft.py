"""`tanglec draft DATA`: a spec for a data set's file as it is, from what its columns hold — checked clean,
trained through the CLI on real data sets (iris, digits, diabetes), every column it leaves out said why,
and never a file written over."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from support import call_tanglec
from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec


def write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def draft(*args: str, cwd: Path) -> str:
    result = call_tanglec("draft", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def checks_clean(text: str, folder: Path) -> None:
    checked = check_spec(parse(text, str(folder / "drafted.tangle")))
    assert not checked.errors, [d.message for d in checked.errors]


def test_iris_as_published_is_drafted_trained_and_answered(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    write_csv(tmp_path / "iris.csv", [*iris.feature_names, "Species name"],
              ([*x, f"Iris-{iris.target_names[y]}"] for x, y in zip(iris.data.tolist(), iris.target)))
    result = call_tanglec("draft", "iris.csv", "-o", "specs/iris.tangle", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["read"] == iris.feature_names
    text = (tmp_path / "specs" / "iris.tangle").read_text()
    assert 'from "sepal length (cm)", "sepal width (cm)"' in text
    assert 'target species_name: category "Iris-setosa" | "Iris-versicolor" | "Iris-virginica" from data ' \
           '"Species name"' in text
    assert 'data file "../iris.csv"' in text  # relative to the spec's folder
    compiled = call_tanglec("compile", "specs/iris.tangle", "-o", "run", "--json", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert json.loads(compiled.stdout)["accuracy"] >= 0.85


def test_a_digits_file_one_column_per_pixel_reads_them_as_one_run(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    write_csv(tmp_path / "digits.csv", ["label", *(f"pixel{i}" for i in range(64))],
              ([y, *x] for x, y in zip(digits.data.astype(int).tolist(), digits.target.tolist())))
    text = draft("digits.csv", "--target", "label", cwd=tmp_path)
    assert "input features: vector(64) from pixel0..pixel63" in text  # constant pixels are kept: images
    assert "target label: int 0..9 from data" in text and "-> onehot(10)" in text
    checks_clean(text, tmp_path)


def test_a_number_with_many_values_is_regressed_with_a_tolerance(tmp_path):
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(scaled=False)
    write_csv(tmp_path / "diabetes.csv", [*diabetes.feature_names, "progression"],
              ([*x, int(y)] for x, y in zip(diabetes.data.tolist(), diabetes.target.tolist())))
    text = draft("diabetes.csv", cwd=tmp_path)
    assert "from age, sex, bmi, bp, s1..s6" in text
    assert "target progression: float 25..346 from data" in text and "tolerance 16" in text
    checks_clean(text, tmp_path)


def test_columns_it_cant_use_are_left_out_and_said_why(tmp_path):
    rows = [[i, f"{i * 0.5}", "" if i == 3 else "7", "red" if i % 2 else "blue", i % 3] for i in range(1, 41)]
    write_csv(tmp_path / "mixed.csv", ["Id", "x", "sometimes", "colour", "data"], rows)
    text = draft("mixed.csv", cwd=tmp_path)
    assert "# Not read: Id: counts up by one from row to row: a row number." in text
    assert "# Not read: sometimes: 1 of the rows sampled leave it empty." in text
    assert "# Not read: colour: category, 2 values: the draft reads the number columns (an encoder" in text
    assert "input features: vector(1) from x" in text
    assert 'target target: int 0..2 from data "data"' in text  # a keyword as a column: quoted, renamed
    checks_clean(text, tmp_path)


def test_text_in_jsonl_is_read_by_ngrams(tmp_path):
    reviews = [{"text": t, "label": label} for t, label in
               [("good movie, loved it", "pos"), ("bad film", "neg"), ("great acting", "pos"), ("boring", "neg")]]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    text = draft("reviews.jsonl", cwd=tmp_path)
    assert 'input features: text from "text"' in text and "ngrams(1024)" in text
    checks_clean(text, tmp_path)


@pytest.mark.parametrize("content, args, message", [
    (None, [], "the data file does not exist"),
    ("a,b\n", [], "the data file has no rows"),
    (b"\xff\xfe,b\n1,2\n", [], "the data file is not UTF-8 text"),
    ("a,b\n1,2\n", ["--target", "c"], "no column 'c' in the data file"),
    ("a,b\n1,two words here\n2,other words there\n", [], "the target column 'b' holds text"),
    ("a,b\n,1\n,2\n", [], "no column besides the target"),
])
def test_a_file_it_cant_draft_from_is_E119(tmp_path, content, args, message):
    if content is not None:
        (tmp_path / "d.csv").write_bytes(content if isinstance(content, bytes) else content.encode())
    result = call_tanglec("draft", "d.csv", *args, cwd=tmp_path)
    assert result.returncode == 1 and "E119" in result.stderr and message in result.stderr, result.stderr


def test_it_never_writes_over_a_file(tmp_path):
    write_csv(tmp_path / "d.csv", ["x", "y"], [[1, 0], [2, 1], [5, 0]])
    (tmp_path / "mine.tangle").write_text("# my own spec\n")
    result = call_tanglec("draft", "d.csv", "-o", "mine.tangle", cwd=tmp_path)
    assert result.returncode == 1 and "E192" in result.stderr
    assert (tmp_path / "mine.tangle").read_text() == "# my own spec\n"
    assert call_tanglec("draft", "d.csv", "-o", "d.csv", cwd=tmp_path).returncode == 1
    assert (tmp_path / "d.csv").read_text().startswith("x,y")


def test_edge_values_still_make_a_spec_that_checks(tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"": 1, "x": 1e300, "y": 5.5}, {"": 2, "x": 10**30, "y": 5.5}, {"": 3, "x": -2, "y": 5.5}]))
    text = draft("d.jsonl", cwd=tmp_path)
    assert "# Not read: (unnamed): no name in the header" in text
    assert "target y: float from data" in text  # one value: no range to write
    checks_clean(text, tmp_path)


def test_random_files_draft_a_spec_that_checks_or_are_refused(tmp_path):
    """Seeded random CSV and JSONL files (odd headers, keywords, quotes, mixed kinds, ragged rows): the
    draft is refused (E119) or parses and checks, but for the file's own data problems."""
    import random

    from tanglec.data.draft import draft_spec
    from tanglec.data.rows import DataError

    rng = random.Random(5)
    names = ["a", "b c", "data", "from", "x1", "x2", "", "Ωmega", "1st", "id", "a,b", "text"]
    cells = ["1", "2", "-3", "0.5", "1e3", "nan", "", "red", "two words", '"q, c"', "1 2 3", "1_0", "00"]
    values = [1, -3, 0.5, 1e300, None, True, "red", "two words", [1, 2], [1, "a"], {"k": 1}, "", 10 ** 30]
    for case in range(150):
        columns = rng.sample(names, rng.randint(1, 5))
        if case % 2:
            path = tmp_path / f"c{case}.csv"
            rows = [",".join(rng.choice(cells) for _ in range(len(columns) + (rng.random() < 0.1)))
                    for _ in range(rng.randint(0, 25))]
            path.write_text(",".join(f'"{c}"' if "," in c else c for c in columns) + "\n" + "\n".join(rows) + "\n")
        else:
            path = tmp_path / f"j{case}.jsonl"
            path.write_text("".join(json.dumps({c: rng.choice(values) for c in columns if rng.random() < 0.9}) + "\n"
                                    for _ in range(rng.randint(0, 25))))
        try:
            result = draft_spec(path, rng.choice(columns) if rng.random() < 0.3 else None)
        except DataError:
            continue
        checked = check_spec(parse(result.text, str(tmp_path / "drafted.tangle")))
        assert [d.message for d in checked.errors if d.code != "E119"] == [], (path.read_text(), result.text)


def test_draft_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys

    from support import ROOT

    write_csv(tmp_path / "d.csv", ["x", "y"], [[1, 0], [2, 1], [5, 0]])
    code = ("import sys; from tanglec.cli import cli\n"
            "try:\n    cli.main(['draft', sys.argv[1]], standalone_mode=False)\n"
            "finally:\n    print('HEAVY', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.csv")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "target y: int 0..1 from data" in proc.stdout and "HEAVY []" in proc.stdout
