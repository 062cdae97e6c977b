"""`text` fields read by the `ngrams(n)` codec: checked from the spec, read from CSV and JSONL, hashed inside
the model (so query, predict and export take the words themselves), and learnt well enough that compound
number words never trained come out right (specs/number_words.tangle)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec

from support import SPECS, call_tanglec


def spec(module: str = "module enc: ngrams(64) -> latent(8) = dense 8", field: str = "input word: text",
         target: str = "target label: int 0..1 from data", data: str = 'data file "rows.csv"') -> str:
    return f"""\
{field}
{module}
module dec: latent(8) -> onehot(2) = dense 2
route word -> enc -> dec
{target}
decode dec as label
{data}
"""


@pytest.fixture(autouse=True)
def rows_csv(tmp_path, monkeypatch):
    (tmp_path / "rows.csv").write_text("word,label\ncat,0\n  Big dog ,1\n")
    monkeypatch.chdir(tmp_path)


def errors(text: str) -> list[tuple[str, str]]:
    checked = check_spec(parse(text, "spec.tangle"))
    return [(d.code, d.message) for d in checked.diagnostics if d.is_error]


def test_a_text_field_read_by_ngrams_checks_clean():
    assert errors(spec()) == []


@pytest.mark.parametrize("text, code, message", [
    (spec(field="input word: int 0..9"), "E117", "ngrams(64) reads a text field, but 'word' is int 0..9"),
    (spec(module="module enc: onehot(10) -> latent(8) = dense 8"), "E117", "'word' is text"),
    (spec(module="module enc: ngrams(64) -> latent(8) = dense 8\nmodule bad: latent(8) -> ngrams(8) = dense 8\n"
                 "route word -> enc -> bad"), "E114", "ngrams(8) reads a text field: it can be a module's input"),
    (spec(module="module enc: ngrams -> latent(8) = dense 8"), "E114", "ngrams needs a size"),
    (spec(target="target label: text from data"), "E112", "target 'label' is text"),
    (spec(target="target label = word"), "E109", "unknown field 'word' in expression"),
    (spec(data="data sample 100"), "E125", "can't sample 'word' (text)"),
    (spec(data="data enumerate"), "E125", "can't enumerate 'word' (text)"),
])
def test_text_is_only_read_by_ngrams_and_never_decoded_sampled_or_computed(text, code, message):
    found = errors(text)
    assert any(c == code and message in m for c, m in found), found


@pytest.mark.parametrize("rows, problem", [
    ('{"word": 7, "label": 0}\n', "expected a string, got an integer (7)"),
    ('{"word": "  ", "label": 0}\n', "the text is empty"),
])
def test_a_jsonl_text_cell_must_be_a_string_with_something_in_it(tmp_path, rows, problem):
    (tmp_path / "rows.jsonl").write_text(rows)
    found = errors(spec(data='data file "rows.jsonl"'))
    assert found and found[0][0] == "E119" and problem in found[0][1], found


def test_csv_text_cells_are_read_as_written_without_the_spaces_around_them():
    from tanglec.data.examples import read_file

    checked = check_spec(parse(spec(), "spec.tangle"))
    inputs, targets = read_file(checked)
    assert list(inputs["word"]) == ["cat", "Big dog"] and inputs["word"].dtype == object
    assert list(targets["label"]) == [0, 1]


def test_ngram_features_are_fixed_unit_length_case_blind_and_shared_by_a_word_inside_a_text():
    import tensorflow as tf

    from tanglec.backend.ngrams import NgramEncode

    layer = NgramEncode(256)
    words = ["seventy-three", "Seventy Three", "three", "soixante", "", "日本語"]
    features = layer(tf.constant(words)).numpy()
    assert features.shape == (6, 256) and np.allclose(np.linalg.norm(features, axis=1), 1.0)
    np.testing.assert_array_equal(features[0], features[1])  # case and the separator don't matter
    cosine = features @ features.T
    assert cosine[0, 2] > 0.4 > cosine[0, 3]  # "three" alone shares the pieces of "...-three"
    again = NgramEncode.from_config(layer.get_config())(tf.constant(words)).numpy()
    np.testing.assert_array_equal(features, again)  # no state: the hash is the same in every process


def test_held_out_groups_can_be_drawn_by_a_text_field(tmp_path):
    from tanglec.data.examples import group_split, read_file

    (tmp_path / "rows.csv").write_text("word,label\n" + "".join(f"w{i % 4},{i % 2}\n" for i in range(40)))
    checked = check_spec(parse(spec(data='data file "rows.csv" eval 0.25 group word'), "spec.tangle"))
    words = read_file(checked)[0]["word"]
    held, trained = group_split(checked, {"word": words}, len(words))
    assert len(held) == 10 and not set(words[held]) & set(words[trained])


def test_the_shipped_number_words_csv_is_what_its_script_writes(tmp_path):
    from support import rewrite_shipped_csv

    rewrite_shipped_csv("make_number_words", tmp_path / "words.csv")
    assert (tmp_path / "words.csv").read_bytes() == (SPECS / "data" / "number_words.csv").read_bytes()


def test_number_words_never_trained_come_out_right_when_they_are_compounds_through_the_cli(tmp_path):
    """Through the commands a person types: compile, predict on the held-out rows, query, export."""
    run = tmp_path / "words"
    assert call_tanglec("compile", str(SPECS / "number_words.tangle"), "-o", str(run)).returncode == 0
    held = [json.loads(line) for line in (run / "eval_rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len({row["n"] for row in held}) == 25  # `eval 0.25 group n`: every row of a held-out number
    with (tmp_path / "held.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["word", "n", "language"])
        writer.writerows((row["word"], row["n"], row["language"]) for row in held)
    out = tmp_path / "answers.csv"
    assert call_tanglec("predict", str(run), str(tmp_path / "held.csv"), "-o", str(out)).returncode == 0
    right: dict[bool, list[bool]] = {True: [], False: []}
    for row in csv.DictReader(out.open(encoding="utf-8")):
        n = int(row["n"])
        compound = n > 20 and n % 10 != 0  # "seventy-three": two words that each also appear elsewhere
        right[compound].append(row["to_tens"] == str(n // 10) and row["to_units"] == str(n % 10))
    assert len(right[True]) >= 20 and np.mean(right[True]) >= 0.8, right

    query = call_tanglec("query", str(run), "word=quatre-vingt-dix-sept", "language=french", "--json")
    answers = {a["decoder"]: a["value"] for a in json.loads(query.stdout)["answers"]}
    assert query.returncode == 0 and set(answers) == {"to_tens", "to_units"}

    exported = tmp_path / "words.keras"
    assert call_tanglec("export", str(run), "--format", "keras", "-o", str(exported)).returncode == 0
    import keras
    import tensorflow as tf

    model = keras.models.load_model(exported, safe_mode=True)
    outputs = model({"word": tf.constant(["quatre-vingt-dix-sept"]), "n": tf.constant([0]),
                     "language": tf.constant([1])}, training=False)
    assert int(np.argmax(outputs["to_tens"][0])) == answers["to_tens"]


def test_a_wrong_answer_names_its_example_by_its_inputs(tmp_path):
    """`eval --failures` says which example went wrong: the row's text, numbers and category names."""
    lines = ["word,label"] + [f"{w},{i % 2}" for i, w in enumerate(["cat", "dog", "multi\nline", "x" * 90] * 10)]
    (tmp_path / "rows.csv").write_text("\n".join(f'"{ln.split(",")[0]}",{ln.split(",")[1]}' if i else ln
                                                 for i, ln in enumerate(lines)) + "\n")
    text = spec(data='data file "rows.csv"') + "train steps 1 batch 4 adam 0.001 seed 0\n"
    (tmp_path / "words.tangle").write_text(text)
    assert call_tanglec("compile", "words.tangle", "-o", "run", cwd=tmp_path).returncode == 0
    report = json.loads(call_tanglec("eval", "run", "--failures", "40", "--json", cwd=tmp_path).stdout)
    assert report["failures"] and {f["inputs"]["word"] for f in report["failures"]} <= {"cat", "dog", "multi\nline",
                                                                                        "x" * 90}
    shown = call_tanglec("eval", "run", "--failures", "40", cwd=tmp_path).stdout
    first = report["failures"][0]["inputs"]["word"]
    assert f"word={first[:10].replace(chr(10), chr(92) + 'n')}" in shown and "x" * 60 not in shown


def test_a_value_in_the_failures_table_stays_on_one_short_line():
    from tanglec.reports.evaluation import _brief

    assert _brief("multi\nline") == "multi\\nline"
    assert _brief("x" * 90) == "x" * 39 + "…"


def test_a_checkpoint_fingerprint_of_text_is_its_strings_not_where_they_sit():
    """A resumed run compares the training data's fingerprint with its checkpoint's: equal texts in another
    process (other string objects) must give the same one, or --resume is refused (E141)."""
    from tanglec.backend.checkpoint import _digest

    words = ["seventy-" + str(3), "soixante-" + "treize"]
    again = np.array(["".join(w) for w in words], dtype=object)  # equal strings, other objects
    assert _digest(np.array(words, dtype=object)) == _digest(again)
    assert _digest(np.array(words, dtype=object)) != _digest(np.array(words[::-1], dtype=object))
    assert _digest(np.array(["ab", "c"], dtype=object)) != _digest(np.array(["a", "bc"], dtype=object))
