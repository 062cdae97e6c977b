"""Checks of declarations: unique names, field types, selectors, codecs, modules and their layers.

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations

import os

from ..lang import ast, expr
from ..lang.diagnostics import Related, did_you_mean
from ..lang.vocabulary import ACTIVATIONS, AUGMENT_LAYERS, CODECS, LAYER_KINDS, SIZED_CODECS, TEXT_CODECS
from .graph import codec_width
from .check_limits import MAX_WIDTH
from .check_tables import table_usable
from .columns import columns_problem


_BLANK = " \t"  # what a quoted category value may not start or end with (a cell is read stripped)


_LOGIT_CODECS = frozenset({"bits", "gray", "onehot"})  # outputs whose last layer gives logits (and tables')
_NEVER_NEGATIVE = frozenset({"relu", "sigmoid", "softplus"})


class ModuleChecks:
    def check_names(self) -> None:
        seen: dict[str, ast.Name] = {}
        kinds = ((ast.InputDecl, "input"), (ast.SelectDecl, "selector"), (ast.ModuleDecl, "module"),
                 (ast.TargetDecl, "target"), (ast.CodecDecl, "codec"))
        for st in self.spec.statements:
            for cls, what in kinds:
                if isinstance(st, cls):
                    name = st.name
                    if name.text in seen:
                        first = seen[name.text]
                        self.error("E102", f"'{name.text}' is already declared", name.span,
                                   hints=self._used_spec_hint(first, name) +
                                   ["names of inputs, selectors, modules and targets share one namespace"],
                                   related=[Related(first.span, "first declared here")])
                    else:
                        seen[name.text] = name
        for sel in self.spec.of(ast.SelectDecl):
            self._unique_values(sel.values, f"selector {sel.name.text}")

    def _used_spec_hint(self, first: ast.Name, again: ast.Name) -> list[str]:
        """When the first declaration comes from a spec brought in whole by `use`: bring only its modules."""
        if first.span.file == again.span.file:
            return []
        used = os.path.relpath(first.span.file, os.path.dirname(os.path.abspath(again.span.file)))
        modules = [m for m, decl in self.g.modules.items() if decl.name.span.file == first.span.file]
        return [f"'{again.text}' comes from \"{used}\": to declare your own, bring only its modules: "
                f"`use \"{used}\" modules {', '.join(modules)}`"] if modules else []

    def _unique_values(self, values: list[ast.Name], what: str) -> None:
        first: dict[str, ast.Name] = {}
        for v in values:
            if v.text in first:
                self.error("E102", f"value '{v.text}' appears twice in {what}", v.span,
                           related=[Related(first[v.text].span, "first written here")])
            first.setdefault(v.text, v)

    def check_field_type(self, t: ast.FieldType) -> None:
        if isinstance(t, ast.IntType) and t.lo > t.hi:
            self.error("E116", f"empty range {t.lo}..{t.hi}", t.span, hints=[f"write {t.hi}..{t.lo}"])
        elif isinstance(t, ast.FloatType) and t.lo is not None and not t.lo < t.hi:
            self.error("E116", f"empty range {t.lo}..{t.hi}", t.span)
        elif isinstance(t, ast.CategoryType):
            self._unique_values(t.values, "category")
            for v in t.values:
                if v.text != v.text.strip(_BLANK) or not v.text:
                    self.error("E116", f"category value \"{v.text}\" is empty or starts or ends with a space",
                               v.span, hints=["a data file's cells are read without the spaces around them"])
        elif isinstance(t, ast.VectorType) and t.size < 1:
            self.error("E116", "a vector needs at least 1 element", t.span)
        elif isinstance(t, ast.VectorType) and t.size > MAX_WIDTH:
            self.error("E127", f"vector({t.size}) exceeds the limit of {MAX_WIDTH:,} values", t.span)

    def check_input_columns(self, decl: ast.InputDecl) -> None:
        problem = columns_problem(decl)
        if problem is not None:
            message, span, hints = problem
            self.error("E136", f"input '{decl.name.text}': {message}", span, hints=hints)

    def check_selector(self, decl: ast.SelectDecl) -> None:
        used = any(s.text == decl.name.text for m in self.g.muxes.values() for s in m.selectors)
        in_expr = any(decl.name.text in expr.referenced_names(t.expr)
                      for t in self.spec.of(ast.TargetDecl) if t.expr is not None)
        if not used and not in_expr:
            self.warn("W201", f"selector '{decl.name.text}' chooses no multiplexer", decl.name.span,
                      hints=["use it in a route: `[a | b] by " + decl.name.text + "`"])

    def check_codec(self, codec: ast.Codec) -> bool:
        kind = codec.kind.text
        if kind in self.g.tables and kind not in CODECS:
            if codec.size is not None:
                self.error("E114", f"table codec '{kind}' takes no size: its patterns give it", codec.span,
                           hints=[f"write `{kind}`"])
                return False
            return table_usable(self.g.tables[kind])
        if kind not in CODECS:
            self.error("E114", f"unknown codec '{kind}'", codec.kind.span,
                       hints=did_you_mean(kind, CODECS | set(self.g.tables)) +
                       ["codecs: bits(n), gray(n), onehot(n), scalar, latent(n), vector(n), ngrams(n), or a `codec ... table`"])
            return False
        if kind in SIZED_CODECS and codec.size is None:
            self.error("E114", f"{kind} needs a size, e.g. {kind}(8)", codec.span)
            return False
        if kind == "scalar" and codec.size is not None:
            self.error("E114", "scalar takes no size", codec.span, hints=["use vector(n) for several values"])
            return False
        if codec.size is not None and codec.size < 1:
            self.error("E114", f"{kind} size must be at least 1", codec.span)
            return False
        if kind in ("bits", "gray") and codec.size > 62:
            self.error("E114", f"{kind}(n) supports at most 62 bits", codec.span)
            return False
        if codec.size is not None and codec.size > MAX_WIDTH:
            self.error("E127", f"{codec} exceeds the limit of {MAX_WIDTH:,} values", codec.span)
            return False
        return True

    def check_module(self, m: ast.ModuleDecl) -> None:
        ok_in = self.check_codec(m.input)
        ok_out = self.check_codec(m.output)
        if ok_out and m.output.kind.text in TEXT_CODECS:
            self.error("E114", f"{m.output} reads a text field: it can be a module's input, not its output",
                       m.output.span, hints=["output latent(n) to other modules, or a data codec to a target"])
            ok_out = False
        self.check_standardize(m)
        width = codec_width(m.input) if ok_in else None
        width = flat_width(self.check_layers(m.layers, width))
        if ok_out and width is not None and width != codec_width(m.output):
            last = m.layers[-1].span if m.layers else m.span
            self.error("E111", f"module '{m.name.text}' ends with width {width} but its output "
                               f"{m.output} needs {codec_width(m.output)}", last,
                       hints=[f"end the layer stack with `dense {codec_width(m.output)}`"],
                       related=[Related(m.output.span, "output interface declared here")])
        if ok_out:
            self.check_logits(m)

    def check_logits(self, m: ast.ModuleDecl) -> None:
        """A bits, gray, onehot or table output's last layer gives logits, which the codec turns into
        probabilities itself: an activation there squashes them. One that is never negative makes every
        bit's probability at least one half, so every bit reads 1 (E111); any other bounds the logits, so
        the confidences stay low and training slows (W209)."""
        kind = m.output.kind.text
        last = m.layers[-1] if m.layers else None
        if kind not in _LOGIT_CODECS and kind not in self.g.tables or last is None or last.kind.text != "dense":
            return
        act = last.args[1] if len(last.args) == 2 and isinstance(last.args[1], ast.Name) else None
        if act is None or act.text == "linear" or act.text not in ACTIVATIONS:
            return
        squash = "sigmoid" if kind != "onehot" else "softmax"
        hints = [f"end with a linear `dense {last.args[0]}`: the codec applies the {squash} itself, in its loss "
                 "and when it decodes"]
        if act.text in _NEVER_NEGATIVE and kind != "onehot":
            self.error("E111", f"'{m.name.text}' ends with {act.text}, which is never negative: every bit of its "
                               f"{m.output} output would read 1", act.span, hints=hints)
        else:
            self.warn("W209", f"'{m.name.text}' ends with {act.text}: the {m.output} codec reads that layer's "
                              f"outputs as logits, which {act.text} squashes, so the answers stay unsure", act.span,
                      hints=hints)

    def check_standardize(self, m: ast.ModuleDecl) -> None:
        """`standardize` scales an input field's values by their statistics over the training rows, so it
        comes first, in a module that reads an input field (a latent's statistics change as it trains)."""
        for layer in _all_layers(m.layers):
            if layer.kind.text != "standardize":
                continue
            if layer is not m.layers[0]:
                self.error("E111", "standardize must be the module's first layer: it scales the input field's "
                                   "values", layer.span, hints=["start the stack with it: `= standardize, ...`"])
            producers = self.g.predecessors(m.name.text) if m.name.text in self.g.modules else []
            if producers and self.g.encoded_field(m.name.text) is None:
                self.error("E111", f"standardize scales an input field's values, but '{m.name.text}' reads "
                                   f"'{producers[0]}'", layer.span,
                           hints=["use it in an encoder, a module an input field feeds; between modules, `norm` "
                                  "normalises each example's values"])

    def check_layers(self, layers: list[ast.Layer], width: int | None) -> int | None:
        for layer in layers:
            width = self.check_layer(layer, width)
        return width

    def check_layer(self, layer: ast.Layer, width: int | None) -> int | None:
        kind = layer.kind.text
        if kind not in LAYER_KINDS:
            self.error("E113", f"unknown layer '{kind}'", layer.kind.span,
                       hints=did_you_mean(kind, LAYER_KINDS) + ["layers: dense N [activation], dropout P, norm, "
                                                                "residual(...)"])
            return None
        joined = next((i for i, a in enumerate(layer.args) if isinstance(a, ast.Name) and a.text in LAYER_KINDS), None)
        if joined is not None:
            words = [kind] + [a.text if isinstance(a, ast.Name) else str(a) for a in layer.args]
            fixed = " ".join(words[:joined + 1]) + ", " + " ".join(words[joined + 1:])
            self.error("E111", f"'{layer.args[joined].text}' starts another layer, but no comma separates it from "
                               f"'{kind}'", layer.args[joined].span, hints=[f"separate layers with commas: `{fixed}`"])
            return None
        if kind == "residual":
            if not layer.is_block:
                self.error("E111", "residual wraps layers: residual(dense 32 relu, dense 32)", layer.span)
                return width
            inner = self.check_layers(layer.children, width)
            if inner is not None and width is not None and inner != width:
                self.error("E111", f"residual block maps width {width} to {inner}; its output is added to its "
                                   f"input, so both must match", layer.span,
                           hints=[f"end the block with `dense {width}`"])
            return width
        if layer.is_block:
            self.error("E111", f"'{kind}' is not a block; only residual(...) takes layers", layer.span)
            return width
        args = layer.args
        if kind in ("image", "conv2d", "pool"):
            return self.check_image_layer(layer, width)
        if kind in AUGMENT_LAYERS:
            return self.check_augmentation(layer, width)
        if kind == "dense":
            if not args or not isinstance(args[0], int) or args[0] < 1:
                self.error("E111", "dense needs a positive number of units: `dense 64 relu`", layer.span)
                return None
            if len(args) > 2:
                self.error("E111", "dense takes units and an optional activation", layer.span)
            if len(args) == 2:
                act = args[1]
                if not isinstance(act, ast.Name) or act.text not in ACTIVATIONS:
                    text = act.text if isinstance(act, ast.Name) else str(act)
                    span = act.span if isinstance(act, ast.Name) else layer.span
                    output_hint = ["end with a linear `dense N`: a decoder's codec applies the softmax (onehot) or "
                                   "sigmoid (bits) itself, in its loss and when it decodes"] if text == "softmax" else []
                    self.error("E111", f"unknown activation '{text}'", span,
                               hints=output_hint + did_you_mean(text, ACTIVATIONS) + [", ".join(sorted(ACTIVATIONS))])
            if args[0] > 100_000:
                self.error("E111", f"dense {args[0]} is wider than the 100000-unit limit", layer.span)
                return None
            return args[0]
        if kind == "dropout":
            if len(args) != 1 or isinstance(args[0], ast.Name) or not 0 <= args[0] < 1:
                self.error("E111", "dropout takes one rate in [0, 1): `dropout 0.1`", layer.span)
            return width
        if kind == "standardize":
            if args:
                self.error("E111", "standardize takes no arguments", layer.span)
            return width
        if kind == "norm":
            if args:
                self.error("E111", "norm takes no arguments", layer.span)
            elif isinstance(width, int) and width <= 2:
                self.warn_narrow_norm(layer, width)
        return width

    def warn_narrow_norm(self, layer: ast.Layer, width: int) -> None:
        """Layer normalisation rescales one example's values to mean 0 and variance 1: over one value that
        leaves a constant, over two only which of them is larger, so whatever follows can't learn from it."""
        kept = "the same value for every example" if width == 1 else "only which of the two values is larger"
        self.warn("W208", f"norm over {width} value{'s' if width > 1 else ''} leaves {kept}", layer.span,
                  hints=["norm normalises across one example's values (layer normalisation); to scale each input "
                         "value by its spread over the training rows, start an encoder with `standardize`"])

    def check_image_layer(self, layer: ast.Layer, shape: Shape) -> Shape:
        """`image H W [C]` reads a flat vector as an H x W x C image; `conv2d FILTERS KERNEL [activation]`
        (same padding) and `pool P` (max pooling, P x P) work on it; a `dense` or the module's end flattens
        it again. Returns the shape after the layer (None when unknown)."""
        kind, args = layer.kind.text, layer.args
        numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        if kind == "image":
            if len(args) not in (2, 3) or len(numbers) != len(args) or min(numbers) < 1:
                self.error("E111", "image takes a height, a width and optionally channels: `image 8 8`", layer.span)
                return None
            h, w, c = (*numbers, 1)[:3]
            width = flat_width(shape)
            if width is not None and h * w * c != width:
                self.error("E111", f"image {h} {w} {c} holds {h * w * c} values, but its input has {width}",
                           layer.span, hints=[f"an image of {width} values, e.g. `image {width} 1`"])
                return None
            return (h, w, c)
        if shape is not None and not isinstance(shape, tuple):
            self.error("E111", f"{kind} works on an image: read the vector as one first, e.g. `image 8 8, {kind} ...`",
                       layer.span)
            return None
        if kind == "conv2d":
            act = args[2] if len(args) == 3 else None
            if len(args) not in (2, 3) or len(numbers) != 2 or min(numbers) < 1 or \
                    (act is not None and (not isinstance(act, ast.Name) or act.text not in ACTIVATIONS)):
                self.error("E111", "conv2d takes filters, a kernel size and an optional activation: "
                                   "`conv2d 16 3 relu`", layer.span)
                return None
            return None if shape is None else (shape[0], shape[1], numbers[0])
        if len(args) != 1 or len(numbers) != 1 or numbers[0] < 1:
            self.error("E111", "pool takes a window size: `pool 2`", layer.span)
            return None
        if shape is not None and (shape[0] < numbers[0] or shape[1] < numbers[0]):
            self.error("E111", f"pool {numbers[0]} is larger than the {shape[0]} x {shape[1]} image", layer.span)
            return None
        return None if shape is None else (shape[0] // numbers[0], shape[1] // numbers[0], shape[2])

    def check_augmentation(self, layer: ast.Layer, shape: Shape) -> Shape:
        """`shift P` (pixels), `rotate D` (degrees), `zoom F` (a fraction): random changes of an image while
        training, none in evaluation or prediction. The image's shape is unchanged."""
        kind, args = layer.kind.text, layer.args
        example = AUGMENT_EXAMPLES[kind]
        if shape is not None and not isinstance(shape, tuple):
            self.error("E111", f"{kind} changes an image: put it after `image H W` and before any dense layer",
                       layer.span, hints=[f"read the vector as an image first: `image 8 8, {example}`"])
            return None
        amount = args[0] if len(args) == 1 and isinstance(args[0], (int, float)) else None
        if amount is None or isinstance(amount, bool):
            self.error("E111", f"{kind} takes one number: `{example}`", layer.span,
                       hints=[AUGMENT_RANGES[kind]])
            return shape
        largest = min(shape[:2]) if kind == "shift" and shape is not None else None
        if amount < 0 or (kind == "rotate" and amount > 180) or (kind == "zoom" and amount >= 1) or \
                (largest is not None and amount >= largest):
            where = f" on this {shape[0]} x {shape[1]} image" if largest is not None else ""
            self.error("E111", f"{kind} {amount} is out of range{where}", layer.span, hints=[AUGMENT_RANGES[kind]])
        return shape


AUGMENT_EXAMPLES = {"shift": "shift 1", "rotate": "rotate 10", "zoom": "zoom 0.1"}
AUGMENT_RANGES = {"shift": "shift takes the largest move in pixels, at least 0 and less than the image's side",
                  "rotate": "rotate takes the largest turn in degrees, 0 to 180",
                  "zoom": "zoom takes the largest zoom in or out as a fraction, in [0, 1)"}

Shape = int | tuple[int, int, int] | None  # a flat width, an image's height, width and channels, or unknown


def flat_width(shape: Shape) -> int | None:
    """The width of a layer's output once flattened (dense layers and the module's output are flat)."""
    if isinstance(shape, tuple):
        return shape[0] * shape[1] * shape[2]
    return shape


def _all_layers(layers: list[ast.Layer]):
    """Every layer of a stack, those inside blocks too."""
    for layer in layers:
        yield layer
        if layer.is_block:
            yield from _all_layers(layer.children)
