"""Table codecs (`codec seven: bits(7) table { 0: 1111110, ... }`): syntax, formatting, every diagnostic,
the numpy encoding and decoding, and a trained run decoding through its table in eval, query and predict."""
from __future__ import annotations

import json

import numpy as np
import pytest

from support import SPECS, call_tanglec
from tanglec.data import codecs
from tanglec.lang.fmt import format_source, signature
from tanglec.lang.highlight import TangleLexer
from tanglec.lang.parser import parse
from tanglec.devtools.errors_examples import TABLE_SPEC
from tanglec.pipeline import check_spec
from tanglec.spec.graph import build
from pygments.token import Keyword

SEVEN = SPECS / "seven_segment.tangle"
DIGITS = ["1111110", "0110000", "1101101", "1111001", "0110011", "1011011", "1011111", "1110000", "1111111",
          "1111011"]

SMALL = TABLE_SPEC  # the errors doc's table example: 0..3 as bits(2), encoded and decoded


def diagnostics(text: str) -> list:
    return check_spec(parse(text, "spec.tangle")).diagnostics


def only(text: str, code: str):
    found = [d for d in diagnostics(text) if d.code == code]
    assert len(found) == 1, [f"{d.code} {d.message}" for d in diagnostics(text)]
    return found[0]


# ---- syntax ---------------------------------------------------------------------------------------

def test_a_table_parses_with_its_patterns_text_and_a_span_on_every_entry():
    spec = parse(SEVEN.read_text(), str(SEVEN))
    (table,) = [st for st in spec.statements if type(st).__name__ == "CodecDecl"]
    assert table.name.text == "seven" and str(table.base) == "bits(7)"
    assert [e.key.text for e in table.entries] == [str(d) for d in range(10)]
    assert [e.pattern.text for e in table.entries] == DIGITS  # `0110000` keeps its leading zero
    one = table.entries[1]
    assert (one.span.line, one.span.col) == (10, 5) and (one.pattern.span.col, one.pattern.span.end_col) == (8, 15)


def test_keys_may_be_negative_ints_or_category_names():
    spec = parse("codec c: bits(2) table { -1: 01, red: 10, +2: 11 }\n")
    assert [(e.key.text, e.number) for e in spec.statements[0].entries] == [("-1", -1), ("red", None), ("+2", 2)]


def test_fmt_explodes_a_table_with_aligned_entries_and_round_trips():
    text = "codec c: bits(2) table { 0: 01, 10: 10, red: 11, }\n"
    formatted = format_source(text)
    assert formatted == "codec c: bits(2) table {\n    0:   01,\n    10:  10,\n    red: 11,\n}\n"
    assert format_source(formatted) == formatted
    assert signature(parse(formatted)) == signature(parse(text))
    assert format_source(SEVEN.read_text()) == SEVEN.read_text()


def test_codec_and_table_are_highlighted_as_keywords():
    tokens = {text: kind for kind, text in TangleLexer().get_tokens("codec c: bits(2) table { 0: 01 }\n")}
    assert tokens["codec"] is Keyword.Declaration and tokens["table"] in Keyword


def test_modules_name_the_table_and_get_its_width():
    graph = build(parse(SEVEN.read_text()))
    assert graph.modules["segments"].input.table is graph.tables["seven"]
    assert graph.modules["to_seven"].output.family == "table"


# ---- diagnostics --------------------------------------------------------------------------------

def test_the_shipped_spec_checks_clean():
    assert diagnostics(SEVEN.read_text()) == []


def test_pattern_of_the_wrong_width_is_reported_at_the_entry():
    d = only(SMALL.replace("3: 11", "3: 111"), "E131")
    assert d.message == "pattern 111 has 3 bits, but 'two' is bits(2)"
    assert (d.span.line, d.span.col) == (2, 52)


def test_pattern_digits_must_be_binary_and_the_base_bits():
    assert "digits other than 0 and 1" in only(SMALL.replace("3: 11", "3: 12"), "E131").message
    d = only(SMALL.replace("bits(2) table", "onehot(2) table"), "E131")
    assert "declare it bits(n), not onehot(2)" in d.message


def test_key_outside_the_field_is_reported_at_the_key():
    d = only(SMALL.replace("int 0..3", "int 0..2").replace("target y = x", "target y = 3 - x"), "E132")
    assert d.message == "'3' is not a value of 'x' (int 0..2)" and (d.span.line, d.span.col) == (2, 49)


def test_category_keys_are_checked_against_the_category():
    text = SMALL.replace("int 0..3", "category red | green").replace(
        "{ 0: 00, 1: 01, 2: 10, 3: 11 }", "{ red: 01, blu: 10 }").replace("target y = x", "target y = 1")
    found = {d.code: d for d in diagnostics(text)}
    assert found["E132"].message == "'blu' is not a value of 'x' (category red | green)"
    assert found["E133"].message == "table 'two' lacks value green of 'x' (category red | green)"


def test_missing_values_are_listed_at_the_table():
    d = only(SMALL.replace(", 2: 10, 3: 11", ""), "E133")
    assert d.message == "table 'two' lacks values 2, 3 of 'x' (int 0..3)"
    assert (d.span.line, d.span.col) == (2, 7) and d.hints == ["add an entry for each: `2: 00`"]


def test_target_values_missing_from_a_decoders_table():
    d = only(SMALL.replace("target y = x", "target y = x + 1"), "E133")
    assert d.message == "table 'two' lacks value 4 of target 'y' (decoded by 'dec')"
    assert d.span.line == 2 and d.related[0].span.line == 6


DECODED = """\
input x: int 0..3
codec three: bits(3) table { 0: 000, 1: 001, 2: 010, 3: 011, red: 100 }
module enc: onehot(4) -> latent(4) = dense 4
module dec: latent(4) -> three = dense 3
route x -> enc -> dec
target y: int 0..2 from data
decode dec as y
data file "rows.csv"
"""


def test_a_decoders_table_keys_are_numbers_within_its_targets_declared_range(tmp_path):
    (tmp_path / "rows.csv").write_text("x,y\n0,0\n1,1\n2,2\n3,2\n")
    spec = tmp_path / "spec.tangle"
    spec.write_text(DECODED)
    found = sorted((d.span.col, d.message) for d in check_spec(parse(DECODED, str(spec))).diagnostics
                   if d.code == "E132")
    assert found == [(54, "'3' is not a value of target 'y' (int 0..2)"),
                     (62, "'red' is not a value of target 'y': targets are numbers, and decoder 'dec' decodes "
                          "it with 'three'")]


def test_duplicate_keys_and_patterns():
    d = only(SMALL.replace("3: 11", "3: 11, 1: 00"), "E102")
    assert d.message == "value '1' appears twice in table 'two'"
    shared = SMALL.replace("3: 11", "3: 10")
    assert "a decoder can't tell them apart" in only(shared, "E134").message
    input_only = shared.replace("latent(4) -> two = dense 2", "latent(4) -> onehot(4) = dense 4")
    warning = only(input_only, "W207")
    assert not warning.is_error and not any(x.is_error for x in diagnostics(input_only))


def test_unknown_codec_suggests_the_table_and_a_table_takes_no_size():
    d = only(SMALL.replace("module enc: two", "module enc: tow"), "E114")
    assert d.message == "unknown codec 'tow'" and "did you mean 'two'?" in d.hints
    assert "takes no size" in only(SMALL.replace("module enc: two", "module enc: two(2)"), "E114").message
    assert "built-in codec" in only(SMALL + "codec bits: bits(1) table { 0: 1 }\n", "E114").message


def test_a_table_for_a_float_field_is_an_interface_mismatch():
    text = SMALL.replace("input x: int 0..3", "input x: int 0..3\ninput f: float 0..1").replace(
        "route x -> enc -> dec", "route f -> enc -> dec") + "data sample 10\n"
    d = only(text, "E117")
    assert "table codec 'two' keys ints or category names, but 'f' is float 0..1" in d.message


# ---- encoding and decoding ----------------------------------------------------------------------------

def seven_codec():
    return build(parse(SEVEN.read_text())).modules["to_seven"].output


def test_table_rows_encode_an_int_field_from_its_lowest_value():
    table = seven_codec().table
    offset, patterns = codecs.table_rows(table, parse("input x: int 0..9\n").statements[0].type)
    assert offset == 0 and patterns.shape == (10, 7)
    assert patterns[1].tolist() == [0, 1, 1, 0, 0, 0, 0]


def test_targets_become_patterns_and_unknown_values_weigh_nothing():
    target, weight = codecs.target_array(seven_codec(), np.array([8.0, 1.0, np.nan, 12.0]))
    assert target[0].tolist() == [1] * 7 and target[1].tolist() == [0, 1, 1, 0, 0, 0, 0]
    assert weight.tolist() == [1, 1, 0, 0] and target[2].tolist() == [0] * 7


def test_decoding_picks_the_nearest_pattern_with_a_normalised_confidence():
    codec = seven_codec()
    logits = np.where(np.array([[int(b) for b in DIGITS[d]] for d in (3, 1)]) == 1, 4.0, -4.0)
    logits[1, 6] = 0.5  # bit by bit 0110001, in no row: 1 (0110000) is nearer than 4 (0110011)
    values, confidence = codecs.decode(codec, logits)
    assert values.tolist() == [3, 1]
    assert confidence[0] > 0.95 and 0.5 < confidence[1] < confidence[0]
    scores = codecs.table_scores(codecs.table_arrays(codec.table)[1], logits)
    assert np.allclose(np.exp(scores - scores.max(1, keepdims=True)).sum(1) * confidence,
                       np.ones(2))  # confidence = the best row's share of all rows
    assert codecs.exact(codec, values, np.array([3.0, 2.0]), 0.5).tolist() == [True, False]


def test_loss_is_binary_cross_entropy_on_the_pattern():
    codec = seven_codec()
    target, _ = codecs.target_array(codec, np.array([0.0]))
    logits = np.zeros((1, 7))
    assert np.isclose(codecs.loss(codec, logits, target)[0], np.log(2))


# ---- a trained run ------------------------------------------------------------------------------

@pytest.mark.slow
def test_seven_segment_compiles_to_100_percent_and_decodes_through_its_table(tmp_path):
    run = tmp_path / "seven"
    proc = call_tanglec("compile", str(SEVEN), "-o", str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["accuracy"] == 1.0 and all(r["accuracy"] == 1.0 for r in payload["routes"])

    evaluated = json.loads(call_tanglec("eval", str(run), "--json").stdout)  # the run's spec, re-parsed
    assert evaluated["accuracy"] == 1.0 and evaluated["cases"] == 20

    answer = json.loads(call_tanglec("query", str(run), "x=7", "encoding=segments", "--json").stdout)
    seven = next(a for a in answer["answers"] if a["decoder"] == "to_seven")
    assert seven["value"] == 8 and seven["expected"] == 8 and 0.5 < seven["confidence"] <= 1

    rows = tmp_path / "rows.csv"
    rows.write_text("x,encoding\n3,segments\n9,decimal\n")
    predicted = call_tanglec("predict", str(run), str(rows))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().splitlines()
    assert lines[0].startswith("x,encoding,to_seven,to_seven_confidence")
    assert [line.split(",")[2] for line in lines[1:]] == ["4", "0"]


@pytest.mark.parametrize("stream", ["never", "always"])
def test_a_data_files_target_values_are_checked_against_the_table(tmp_path, stream):
    (tmp_path / "rows.csv").write_text("x,y\n0,0\n1,1\n2,2\n3,3\n")
    spec = tmp_path / "spec.tangle"
    text = DECODED.replace("int 0..2 from data", "int 0..3 from data").replace(", 3: 011, red: 100", "") \
        .replace('"rows.csv"', f'"rows.csv" stream {stream}')
    spec.write_text(text)
    found = [d for d in check_spec(parse(text, str(spec))).diagnostics if d.is_error]
    assert [(d.code, d.message) for d in found] == [("E133", "table 'three' lacks value 3 of target 'y' "
                                                             "(decoded by 'dec')")]


@pytest.mark.slow
def test_a_trained_table_decoder_exports_and_the_savedmodel_decodes_like_the_run(tmp_path):
    """`export` loads the SavedModel back and compares its decoded answers and confidences with the run's."""
    run = tmp_path / "seven"
    assert call_tanglec("compile", str(SEVEN), "-o", str(run), "--steps", "20").returncode == 0
    exported = call_tanglec("export", str(run), "-o", str(tmp_path / "served"), "--json")
    assert exported.returncode == 0, exported.stderr
    outputs = json.loads(exported.stdout)["signature"]["outputs"]
    assert outputs["to_seven"]["dtype"] == "int64" and outputs["to_seven"]["codec"] == "seven"
    assert "to_seven.confidence" in outputs
