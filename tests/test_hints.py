"""The sharper hints of issue 16, each on its broken spec through the real `tanglec check`."""
from __future__ import annotations

import shutil

from support import ARITH, SPECS, call_tanglec

SEED = ARITH.read_text()


def _check(path):
    proc = call_tanglec("check", str(path))
    assert proc.returncode == 1
    return proc.stderr


def test_branches_named_by_module_suggest_the_value_form(write_spec):
    spec = write_spec(SEED.replace("[binary | decimal] by encoding -> [plus1 | times2] by op",
                                   "[binary | decimal] by encoding -> [plus1 | times2] by encoding")
                      .replace("select op: plus1 | times2", "select op: plus1 | times2\nselect mode: fast | slow")
                      .replace("by encoding -> [plus1 | times2] by encoding",
                               "by encoding -> [plus1 | times2] by mode"))
    err = _check(spec)
    assert err.count("error[E106]") == 1
    assert "the branches plus1, times2 are not values of selector 'mode' (fast, slow)" in err
    assert "hint: name each branch's value: `[fast: plus1 | slow: times2] by mode`" in err


def test_a_single_equals_in_an_expression_suggests_double_equals(write_spec):
    spec = write_spec(SEED.replace("target y = match op { plus1: (x + 1) % 10, times2: (x * 2) % 10 }",
                                   "target y = if x = 3 then 1 else 0"))
    err = _check(spec)
    assert "error[E001]: unexpected '='" in err and "hint: to compare, write `==`" in err


def test_a_missing_comma_between_layers_shows_where_it_goes(write_spec):
    spec = write_spec(SEED.replace("= dense 32 relu, dense 12", "= dense 32 relu dense 12", 1))
    err = _check(spec)
    assert "'dense' starts another layer, but no comma separates it from 'dense'" in err
    assert "hint: separate layers with commas: `dense 32 relu, dense 12`" in err
    assert err.count("error[") == 1


def test_redeclaring_what_a_used_spec_declares_points_to_use_modules(tmp_path):
    shutil.copy(ARITH, tmp_path / "arith.tangle")
    text = (SPECS / "transfer_gray.tangle").read_text()
    text = text.replace('use "arith.tangle" modules binary, decimal, plus1, times2, to_binary, to_decimal',
                        'use "arith.tangle"').replace('init "../runs/arith"', "")
    (tmp_path / "gray.tangle").write_text(text)
    err = _check(tmp_path / "gray.tangle")
    assert "error[E102]: 'encoding' is already declared" in err
    assert ("hint: 'encoding' comes from \"arith.tangle\": to declare your own, bring only its modules: "
            "`use \"arith.tangle\" modules binary, decimal, plus1, times2, to_binary, to_decimal`") in err


def test_a_row_with_too_many_fields_does_not_hide_the_other_bad_cells(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gates.csv").write_text("pair,gate,out\n0 0 0 0 0 0,and,0,9\n0 0 0 0 0 0,nand,0\n"
                                                 "0 0 0 0 0 0,or,x\n")
    shutil.copy(SPECS / "gates.tangle", tmp_path / "gates.tangle")
    err = _check(tmp_path / "gates.tangle")
    assert "gates.csv:2:1: error[E119]: 4 fields, the header has 3" in err
    assert "gates.csv:3:13: error[E119]" in err and "gates.csv:4:16: error[E119]" in err


def test_check_counts_in_the_singular_when_there_is_one(write_spec):
    spec = write_spec("input x: int 0..3\nmodule m : onehot(4) -> onehot(4) = dense 4\nroute x -> m\n"
                      "target y = x\ndecode m as y\n")
    assert "ok — 1 module, 1 route, 1 decoder" in call_tanglec("check", str(spec)).stdout



def test_habits_from_other_languages_get_a_hint_each(write_spec):
    spec = write_spec("// a C-style comment\n" + SEED.replace("= dense 64 relu, dense 4", "= dense(64, relu), dense 4")
                      .replace("= dense 64 relu, dense 10", "= dense 64 relu, dense 10 softmax"))
    err = _check(spec)
    assert "1:1: error[E001]: unexpected '//'\n" in err
    assert "hint: comments start with `#` and run to the end of the line" in err
    assert "error[E001]: unexpected number '64'\n" in err
    assert "hint: a layer's arguments follow its name without brackets, e.g. `dense 64 relu`" in err
    assert "error[E111]: unknown activation 'softmax'" in err
    assert "hint: end with a linear `dense N`: a decoder's codec applies the softmax (onehot)" in err


def test_a_trailing_c_style_comment_gets_the_hint_and_a_bad_division_does_not(write_spec):
    err = _check(write_spec(SEED.replace("dense 32 relu, dense 12", "dense 32 relu, dense 12  // the op", 1)))
    assert "error[E001]: unexpected '//'" in err and "hint: comments start with `#`" in err
    err = _check(write_spec(SEED.replace("(x * 2) % 10 }", "(x * 2) // }")))
    assert "error[E001]: unexpected '}'" in err and "comments start with" not in err


def test_other_tools_spellings_point_at_tanglecs(write_spec):
    cases = [("int 0..9", "int[0..9]", "hint: a range is two bounds and `..`: `int 0..9`"),
             ("int 0..9", "category a, b", "hint: values are separated by `|`: `category red | green | blue`"),
             ("binary | decimal\n", "binary, decimal\n", "hint: values are separated by `|`: `select op: plus1 | times2`"),
             ("-> to_binary, to_decimal", "=> to_binary, to_decimal", "hint: a route's stages are joined by `->`"),
             ("train steps 300", "train epochs 10", "hint: training is counted in steps, one batch each"),
             ("train steps 300", "train learning_rate 0.1 steps 300", "hint: tanglec calls it `lr`")]
    for old, new, hint in cases:
        assert hint in _check(write_spec(SEED.replace(old, new, 1))), new
