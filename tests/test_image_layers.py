"""Image layers (`image H W [C]`, `conv2d F K [act]`, `pool P`): checked from the spec alone, built as Keras
layers with the parameter count the checker estimates, and trained end to end."""
from __future__ import annotations

import pytest

from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec
from tanglec.spec.check_limits import estimate_parameters

SPEC = """\
input x: int 0..3
input img: vector(16)
module pixels: vector(16) -> onehot(4) = image 4 4, conv2d 6 3 relu, pool 2, conv2d 5 2, dense 4
route img -> pixels
target y = x
decode pixels as y
data file "rows.csv"
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """The spec's data file, in a folder of its own (a check reads the file's header)."""
    rows = ["x,img"]
    for i in range(200):
        x = i % 4
        picture = [1.0 if r == x else 0.0 for r in range(4) for _ in range(4)]
        picture[(i * 7) % 16] += 0.3  # a little noise off the bar
        rows.append(f"{x},{' '.join(f'{v:g}' for v in picture)}")
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)


def errors(text: str) -> list[tuple[str, str]]:
    checked = check_spec(parse(text, "spec.tangle"))
    return [(d.code, d.message) for d in checked.diagnostics if d.severity == "error"]


def test_a_conv_net_checks_clean():
    assert errors(SPEC) == []


@pytest.mark.parametrize("old, new, message", [
    ("image 4 4,", "image 4 3,", "image 4 3 1 holds 12 values, but its input has 16"),
    ("image 4 4, ", "", "conv2d works on an image: read the vector as one first, e.g. `image 8 8, conv2d ...`"),
    ("pool 2", "pool 5", "pool 5 is larger than the 4 x 4 image"),
    ("conv2d 6 3 relu", "conv2d 6 relu", "conv2d takes filters, a kernel size and an optional activation: "
                                         "`conv2d 16 3 relu`"),
    ("conv2d 6 3 relu", "conv2d 6 3 fancy", "conv2d takes filters, a kernel size and an optional activation: "
                                            "`conv2d 16 3 relu`"),
    ("pool 2", "pool", "pool takes a window size: `pool 2`"),
    ("image 4 4", "image 4", "image takes a height, a width and optionally channels: `image 8 8`"),
    ("dense 4", "dense 3", "module 'pixels' ends with width 3 but its output onehot(4) needs 4"),
])
def test_image_layer_mistakes_are_positioned_errors(old, new, message):
    assert errors(SPEC.replace(old, new, 1)) == [("E111", message)]


def test_the_end_of_a_module_flattens_an_image():
    ends_as_image = SPEC.replace("conv2d 5 2, dense 4", "conv2d 1 2").replace("onehot(4)", "onehot(4)")
    assert errors(ends_as_image) == []  # 2 x 2 x 1 = 4 values: onehot(4)


def test_keras_builds_the_layers_with_the_estimated_parameter_count():
    from tanglec.backend.codegen import module_model

    decl = check_spec(parse(SPEC, "spec.tangle")).graph.modules["pixels"]
    model = module_model(decl, seed=0)
    assert model.output.shape[-1] == 4
    assert model.count_params() == estimate_parameters(decl) == (3 * 3 * 1 * 6 + 6) + (2 * 2 * 6 * 5 + 5) + \
        (2 * 2 * 5 * 4 + 4)


def test_a_conv_encoder_learns_pictures_of_its_digit(tmp_path):
    """Each value of x drawn as a 4 x 4 picture (a bar in its own row, rows.csv), read back exactly."""
    from tanglec.pipeline import train

    spec = tmp_path / "pictures.tangle"
    spec.write_text(SPEC + "train steps 300 batch 32 adam 0.01 until exact\n")
    result = train(spec).result
    assert result.report["accuracy"] == 1.0
