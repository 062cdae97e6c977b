"""Training-time augmentation (`shift P`, `rotate D`, `zoom F`): checked from the spec alone, random only while
training, the same as no layer at all in evaluation and prediction, seeded by the spec, saved and loaded safely."""
from __future__ import annotations

import numpy as np
import pytest

from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec
from tanglec.spec.check_limits import estimate_parameters

STACK = "image 4 4, shift 1, rotate 10, zoom 0.2, conv2d 6 3 relu, pool 2, dense 4"
SPEC = f"""\
input x: int 0..3
input img: vector(16)
module pixels: vector(16) -> onehot(4) = {STACK}
route img -> pixels
target y = x
decode pixels as y
data file "rows.csv"
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """The spec's data file: a bright square whose corner is x, in a folder of its own."""
    rows = ["x,img"]
    for i in range(120):
        x = i % 4
        picture = np.zeros((4, 4))
        picture[(x // 2) * 2:(x // 2) * 2 + 2, (x % 2) * 2:(x % 2) * 2 + 2] = 1.0
        rows.append(f"{x},{' '.join(f'{v:g}' for v in picture.ravel())}")
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)


def diagnostics(text: str) -> list[tuple[str, str, list[str]]]:
    checked = check_spec(parse(text, "spec.tangle"))
    return [(d.code, d.message, d.hints) for d in checked.diagnostics if d.severity == "error"]


def pixels(text: str):
    return check_spec(parse(text, "spec.tangle")).graph.modules["pixels"]


def test_augmentations_after_an_image_check_clean():
    assert diagnostics(SPEC) == []


@pytest.mark.parametrize("stack, message, hint", [
    ("shift 1, image 4 4, dense 4", "shift changes an image: put it after `image H W` and before any dense layer",
     "read the vector as an image first: `image 8 8, shift 1`"),
    ("image 4 4, dense 8, zoom 0.1, dense 4", "zoom changes an image: put it after `image H W` and before any "
     "dense layer", "read the vector as an image first: `image 8 8, zoom 0.1`"),
    ("image 4 4, shift 4, dense 4", "shift 4 is out of range on this 4 x 4 image",
     "shift takes the largest move in pixels, at least 0 and less than the image's side"),
    ("image 4 4, rotate 200, dense 4", "rotate 200 is out of range",
     "rotate takes the largest turn in degrees, 0 to 180"),
    ("image 4 4, zoom 1, dense 4", "zoom 1 is out of range",
     "zoom takes the largest zoom in or out as a fraction, in [0, 1)"),
    ("image 4 4, zoom -0.1, dense 4", "zoom -0.1 is out of range",
     "zoom takes the largest zoom in or out as a fraction, in [0, 1)"),
    ("image 4 4, shift 1 2, dense 4", "shift takes one number: `shift 1`",
     "shift takes the largest move in pixels, at least 0 and less than the image's side"),
    ("image 4 4, rotate, dense 4", "rotate takes one number: `rotate 10`",
     "rotate takes the largest turn in degrees, 0 to 180"),
])
def test_misplaced_or_out_of_range_augmentation_is_E111_with_a_hint(stack, message, hint):
    assert diagnostics(SPEC.replace(STACK, stack)) == [("E111", message, [hint])]


def test_augmentations_add_no_parameters():
    from tanglec.backend.codegen import module_model

    decl = pixels(SPEC)
    plain = pixels(SPEC.replace("shift 1, rotate 10, zoom 0.2, ", ""))
    assert estimate_parameters(decl) == estimate_parameters(plain) == module_model(decl, seed=0).count_params()


def _models():
    """The module with augmentations, and the same module without them holding the same weights."""
    from tanglec.backend.codegen import module_model

    augmented = module_model(pixels(SPEC), seed=3)
    plain = module_model(pixels(SPEC.replace("shift 1, rotate 10, zoom 0.2, ", "")), seed=3)
    weighted = [layer for layer in augmented.layers if layer.weights]
    for source, target in zip(weighted, [layer for layer in plain.layers if layer.weights], strict=True):
        target.set_weights(source.get_weights())
    return augmented, plain


def _images():
    return np.random.default_rng(0).random((8, 16), dtype=np.float32)


def test_augmentation_is_identity_outside_training():
    augmented, plain = _models()
    images = _images()
    first, second = np.asarray(augmented(images)), np.asarray(augmented(images, training=False))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, np.asarray(plain(images)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(augmented.predict(images, verbose=0), first, rtol=1e-6, atol=1e-6)


def test_augmentation_changes_the_output_while_training():
    augmented, plain = _models()
    images = _images()
    training = np.asarray(augmented(images, training=True))
    assert not np.allclose(training, np.asarray(plain(images, training=True)), atol=1e-4)
    assert not np.allclose(training, np.asarray(augmented(images, training=True)), atol=1e-4)


def test_save_and_safe_load_keep_the_layers(tmp_path):
    import keras

    from tanglec.backend.augment import Rotate, Shift, Zoom

    augmented, _ = _models()
    augmented.save(tmp_path / "pixels.keras")
    loaded = keras.models.load_model(tmp_path / "pixels.keras", safe_mode=True)
    kinds = [type(layer) for layer in loaded.layers if isinstance(layer, (Shift, Rotate, Zoom))]
    assert kinds == [Shift, Rotate, Zoom]
    shift = next(layer for layer in loaded.layers if isinstance(layer, Shift))
    assert (shift.height_factor, shift.width_factor) == (0.25, 0.25)  # 1 pixel of a 4 x 4 image
    images = _images()
    np.testing.assert_array_equal(np.asarray(loaded(images)), np.asarray(augmented(images)))
    assert not np.allclose(np.asarray(loaded(images, training=True)), np.asarray(loaded(images)), atol=1e-4)


def test_training_with_augmentation_is_reproducible_from_the_spec_seed(tmp_path):
    from tanglec.pipeline import train

    spec = tmp_path / "squares.tangle"
    spec.write_text(SPEC + "train steps 40 batch 16 adam 0.01 seed 5\n")
    first, second = (train(spec).result.model.get_weights() for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_augmented_models_train_outside_xla():
    """XLA has no CPU kernel for the image transform, so a long run (where XLA would pay off) must not use it."""
    from tanglec.backend.codegen import build_model
    from tanglec.backend.train import xla_compiles

    assert not xla_compiles(build_model(check_spec(parse(SPEC, "spec.tangle")), seed=0))
    plain = SPEC.replace("shift 1, rotate 10, zoom 0.2, ", "")
    assert xla_compiles(build_model(check_spec(parse(plain, "spec.tangle")), seed=0))
