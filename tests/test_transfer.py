"""The transfer report (tanglec/transfer.py, `tanglec transfer`): spec variants, summary and rendering on
made-up results (fast), and one real quick run through the CLI (slow: trains 3 small models)."""
from __future__ import annotations

import json

import pytest

from tanglec.reports import transfer, transfer_naive, transfer_render

from support import ROOT, SPECS, run_tanglec

GRAY = SPECS / "transfer_gray.tangle"


def _checked(text, path=GRAY, init=None):
    return transfer.check_text(text, path, init)


def test_spec_variant_edits_only_the_statements_it_names():
    source = GRAY.read_text()
    text = transfer.spec_variant(source, n=3, seed=4, drop_init=True, drop_freeze=True, steps=600)
    assert "\ninit " not in text and "\nfreeze " not in text
    assert "align gray, binary on x weight 1" in text  # kept: the same graph
    assert "data enumerate only encoding:gray only op:plus1 limit 3 seed 4" in text
    assert "train steps 600 batch 20 adam 0.01 seed 4 until exact" in text
    assert text.count("#") == source.count("#")  # comments untouched
    checked = _checked(text)
    assert checked.data.limit == 3 and checked.data.seed == 4 and checked.train.seed == 4
    assert checked.composition.init is None and not checked.composition.frozen
    assert checked.composition.only == {"encoding": "gray", "op": "plus1"}

    widened = transfer.spec_variant(source, only_keep=("encoding",))
    assert "data enumerate only encoding:gray limit 20 seed 0" in widened
    assert _checked(widened).composition.only == {"encoding": "gray"}
    plain = transfer.spec_variant(source, drop_align=True, until_exact=False)
    assert "\nalign " not in plain and "until exact" not in plain and "\ninit " in plain
    base = transfer.spec_variant(transfer.BASE_SPEC.read_text(), seed=2, drop_align=True)
    assert "\nalign " not in base and "seed 2 until exact" in base


def test_set_setting_appends_missing_settings():
    assert transfer._set_setting("data enumerate", "limit", 5) == "data enumerate limit 5"
    assert transfer._set_setting("train steps 10 seed 1  # c", "seed", 7) == "train steps 10 seed 7   # c"


def test_parse_ints():
    assert transfer.parse_ints("5", "seeds") == (0, 1, 2, 3, 4)
    assert transfer.parse_ints("1,2,3,5,10", "n") == (1, 2, 3, 5, 10)
    assert transfer.parse_ints("0-2,2", "seeds") == (0, 1, 2)
    assert transfer.parse_ints("2,", "seeds") == transfer.parse_ints("2-2", "seeds") == (2,)
    with pytest.raises(ValueError):
        transfer.parse_ints("1,x", "n")


def test_naive_model_follows_the_route(tmp_path):
    pytest.importorskip("keras")
    checked = _checked(transfer.spec_variant(transfer.SCENARIOS["prime"].spec.read_text(), drop_init=True,
                                             drop_freeze=True), transfer.SCENARIOS["prime"].spec)
    route = checked.graph.routes()[1]  # binary -> times2 -> to_binary, to_decimal, is_prime
    model = transfer_naive.naive_model(checked, route, seed=0)
    assert set(model.output) == {"to_binary", "to_decimal", "is_prime"}
    assert list(model.input) == ["x"]
    assert transfer_naive._producer(checked.graph, route, "times2") == "binary"
    assert transfer_naive._producer(checked.graph, route, "is_prime") == "to_decimal"


def _fake_results():
    runs = []
    for variant, accs in (("a", {1: (0.5, 0.3), 10: (1.0, 1.0)}), ("b", {1: (0.1, 0.0), 10: (1.0, 0.0)})):
        for n, (trained, unseen) in accs.items():
            for seed in (0, 1):
                routes = [{"name": "gray → plus1", "status": "trained", "training_rows": n, "accuracy": trained,
                           "decoders_accuracy": {}},
                          {"name": "gray → times2", "status": "unseen", "training_rows": 0, "accuracy": unseen,
                           "decoders_accuracy": {}}]
                runs.append({"scenario": "gray", "variant": variant, "n": n, "seed": seed, "routes": routes,
                             **transfer.route_metrics(routes)})
    holdout = [{"seed": s, "align": a, "accuracy": 1.0 if a else 0.4, "exact": a} for a in (True, False)
               for s in (0, 1)]
    config = transfer.Config(scenarios=("gray",), variants=("a", "b"), ns=(1, 10), seeds=(0, 1))
    results = {"config": config.to_json(), "runs": runs, "holdout": holdout}
    results["summary"] = transfer.summarize(results)
    return results


def test_summary_tables_and_figures(tmp_path):
    results = _fake_results()
    summary = results["summary"]
    assert summary["minimal_n"]["gray"]["a"] == {"all_routes": 10, "trained_route": 10, "max_n": 10}
    assert summary["minimal_n"]["gray"]["b"] == {"all_routes": None, "trained_route": 10, "max_n": 10}
    assert summary["minimal_n"]["gray"]["ratio_b_over_a"] is None
    assert summary["holdout"]["align"]["exact_seeds"] == 2 and summary["holdout"]["no_align"]["exact_seeds"] == 0
    cell = next(t for t in summary["table"] if t["variant"] == "a" and t["n"] == 10)
    assert cell["mean"] == 1.0 and cell["all_exact_seeds"] == 2
    text = transfer_render.print_tables(results, file=open(tmp_path / "tables.txt", "w"))
    assert "100% 2/2" in text and "none ≤ 10" in text and "with alignment" in text
    md = transfer_render.markdown(results)
    assert "| gray | a: transfer, frozen + aligned | 40% (0/2) | 100% (2/2) | 10 |" in md
    assert "| gray | 10 | none ≤ 10 | ∞ (never, n ≤ 10) | 10 / 10 |" in md, md
    png = transfer_render.write_png(results, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "new encoder gray" in transfer_render.terminal_plot(results, width=80, height=12)


@pytest.mark.slow
def test_transfer_quick_cli(tmp_path):
    """The real engine, as `tanglec transfer --quick` runs it: the gray encoder from its 10 examples,
    frozen + aligned (a) vs from scratch (b)."""
    out, png = tmp_path / "t.json", tmp_path / "t.png"
    r = run_tanglec("transfer", "--quick", "--scenarios", "gray", "--variants", "a,b", "--no-holdout",
                    "--workdir", str(tmp_path / "work"), "-o", str(out), "--png", str(png), "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert results == json.loads(out.read_text()) | {"json": str(out), "png": str(png)}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert results["config"]["n"] == [10] and results["config"]["seeds"] == [0]
    [base] = results["bases"]
    assert base["name"] == "base_aligned_s0" and base["accuracy"] == 1.0
    runs = {r["variant"]: r for r in results["runs"]}
    assert set(runs) == {"a", "b"}
    for run in runs.values():
        assert run["training_examples"] == 10
        assert [x["name"] for x in run["routes"]] == ["gray → plus1", "gray → times2"]
        assert [x["status"] for x in run["routes"]] == ["trained", "unseen"]
    assert runs["a"]["all_exact"] and runs["a"]["mean"] == 1.0  # both operations, both decoders
    assert runs["b"]["routes"][1]["accuracy"] < 1.0  # times2 never trains from scratch
    assert results["summary"]["minimal_n"]["gray"]["a"]["all_routes"] == 10
    assert "transfer" in ROOT.joinpath("tanglec", "cli", "transfer_command.py").read_text()
