"""Caps on a spec's size and on its run's estimated memory, computed from the spec alone.

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations



from ..lang import ast
from .graph import MAX_ROUTES, TangleGraph, codec_width

MAX_ENUMERATION = 1_000_000
MAX_MODULES = 9_000
MAX_PARAMETERS = 50_000_000
MAX_WIDTH = 100_000  # values in one codec or vector field
MAX_SAMPLE = 1_000_000  # rows of `data sample N`
MAX_DATA_CELLS = 50_000_000  # rows x values per row of sampled data (memory before anything trains)


class LimitChecks:
    def check_limits(self) -> None:
        """Caps on the spec's size and on its run's estimated memory, checked before any data or model
        exists; each positioned at what is over the cap."""
        modules, muxes = list(self.g.modules.values()), list(self.g.muxes.values())
        if len(modules) > MAX_MODULES:
            self.error("E127", f"{len(modules)} modules exceed the limit of {MAX_MODULES}",
                       modules[MAX_MODULES].name.span)
        sizes = {name: estimate_parameters(m) for name, m in self.g.modules.items()}
        total = sum(sizes.values())
        if total > MAX_PARAMETERS:
            largest = max(sizes, key=sizes.get)
            self.error("E127", f"about {total:,} parameters exceed the limit of {MAX_PARAMETERS:,} "
                               f"('{largest}' has {sizes[largest]:,})", self.g.modules[largest].span,
                       hints=["use narrower dense layers"])
        if len(muxes) > MAX_MODULES:
            self.error("E127", f"{len(muxes)} multiplexers exceed the limit of {MAX_MODULES}", muxes[MAX_MODULES].span)
        routes = self.g.route_count()
        if routes > MAX_ROUTES:
            self.error("E127", f"{routes:,} routes (one per combination of selector values) exceed the limit "
                               f"of {MAX_ROUTES:,}", muxes[-1].span,
                       hints=["use fewer selectors or fewer values per selector"]
                       + [f"the chain by {', '.join(s.text for s in mux.selectors)} has {len(mux.selectors)} "
                          f"positions, each multiplying the routes by its values: use fewer positions"
                          for mux in self.g.muxes.values() if mux.is_chain][:1])
        examples = self.example_count()
        if self.data.source == "sample" and self.data.count:
            widths = sum(d.type.size if isinstance(d.type, ast.VectorType) else 1 for d in self.g.inputs.values())
            cells = self.data.count * (widths + len(self.g.selectors) + len(self.g.targets))
            if cells > MAX_DATA_CELLS:
                self.error("E127", f"the sample holds {cells:,} values, over the limit of {MAX_DATA_CELLS:,}",
                           self.data.span, hints=["sample fewer examples or use narrower vector fields"])
        if not any(d.is_error for d in self.diags):
            self.check_memory(examples, sizes)

    def example_count(self) -> int | None:
        """Examples the data holds, from the spec alone (None for a file); E125 when an enumeration
        is impossible or over MAX_ENUMERATION (counted without building the product)."""
        if self.data.source == "sample":
            for name, decl in self.g.inputs.items():
                if isinstance(decl.type, ast.TextType):  # no distribution of words to draw from
                    self.error("E125", f"can't sample '{name}' (text)", decl.type.span,
                               hints=["read the examples from a file: `data file \"rows.csv\"`"])
                    return None
            return self.data.count
        if self.data.source != "enumerate":
            return None
        size = 1
        for name, decl in self.g.inputs.items():
            if not isinstance(decl.type, (ast.IntType, ast.CategoryType)):
                self.error("E125", f"can't enumerate '{name}' ({decl.type.describe()})", decl.type.span,
                           hints=["use `data sample 1000` or `data file \"rows.csv\"`"])
                return None
            size = min(size * domain_size(decl.type), MAX_ENUMERATION + 1)  # never a number too long to print
        for decl in self.g.selectors.values():
            size = min(size * len(decl.values), MAX_ENUMERATION + 1)
        if size > MAX_ENUMERATION:
            widest = max(self.g.inputs.values(), key=lambda d: domain_size(d.type), default=None)
            where = self.data.span or (widest.type.span if widest else ast.Span(self.spec.path, 1, 1, 1, 2))
            self.error("E125", f"enumerating every combination gives more than {MAX_ENUMERATION:,} examples",
                       where, hints=["use `data sample N` instead"])
            return None
        return size

    def check_memory(self, examples: int | None, parameters: dict[str, int]) -> None:
        """E127 when the run's estimated memory is over the cap (`train memory N`, GB): the example
        table, the model with its gradients and optimizer state, and one step's activations."""
        parts = memory_estimate(self.g, examples, parameters, self.largest_batch(examples))
        total = sum(size for size, _, _ in parts.values())
        cap = self.train.memory_gb * 1e9
        if total <= cap:
            return
        worst = max(parts, key=lambda k: parts[k][0])
        size, what, where = parts[worst]
        breakdown = "; ".join(f"{k} {_gb(v[0])}" for k, v in parts.items())
        self.error("E127", f"the run needs about {_gb(total)} of memory, over the {_gb(cap)} cap "
                           f"(mostly {what})", where or self.data.span or ast.Span(self.spec.path, 1, 1, 1, 2),
                   hints=[breakdown, "raise the cap with `train memory N` (GB) if the machine has it"])

    def largest_batch(self, examples: int | None) -> int:
        batches = [self.train.batch] + [p.batch for p in self.composition.phases if p.batch]
        return min(max(batches), examples) if examples else max(batches)


def memory_estimate(g: TangleGraph, examples: int | None, parameters: dict[str, int],
                    batch: int) -> dict[str, tuple[int, str, ast.Span | None]]:
    """Bytes per part of a run, from the spec alone: (bytes, what dominates it, where it is written).
    Raw columns are 8 bytes a value, encoded and model values 4 (float32); the model counts 4 times
    (weights, gradients, two optimizer moments); a step keeps each layer's output and its gradient."""
    raw = {name: (d.type.size if isinstance(d.type, ast.VectorType) else 1, d.type.span) for name, d in g.inputs.items()}
    raw_width = sum(w for w, _ in raw.values()) + len(g.selectors) + len(g.targets)
    encoded = sum(codec_width(g.modules[m].output) or 0 for m in g.decoders if m in g.modules)
    widest_input = max(raw.items(), key=lambda kv: kv[1][0], default=(None, (0, None)))
    data = (examples or 0) * (8 * raw_width + 4 * encoded)
    parts = {"data": (data, f"{examples or 0:,} examples of {raw_width:,} values", widest_input[1][1])}
    largest = max(parameters, key=parameters.get, default=None)
    parts["model"] = (16 * sum(parameters.values()), f"{sum(parameters.values()):,} parameters",
                      g.modules[largest].span if largest else None)
    widths, widest = 0, (0, None)
    for m in g.modules.values():
        for layer in _flatten(m.layers):
            units = layer.args[0] if layer.kind.text == "dense" and layer.args and isinstance(layer.args[0], int) else 0
            widths += units
            if units > widest[0]:  # the first of the widest
                widest = (units, layer.span)
    parts["a step"] = (8 * batch * widths, f"a batch of {batch:,} through {widths:,} units (widest: {widest[0]:,})",
                       widest[1])
    return parts


def _gb(size: float) -> str:
    return f"{size / 1e9:,.1f} GB" if size >= 1e8 else f"{size / 1e6:,.1f} MB"


def domain_size(t: ast.IntType | ast.CategoryType) -> int:
    return t.hi - t.lo + 1 if isinstance(t, ast.IntType) else len(t.values)


def estimate_parameters(m: ast.ModuleDecl) -> int:
    """Weights a module will have, computed from the spec alone (before TensorFlow builds anything)."""
    width = codec_width(m.input) or 0
    channels = width  # the last axis: what a layer's weights see (an image's channels, else the width)
    total = 0
    for layer in _flatten(m.layers):
        kind, numbers = layer.kind.text, [a for a in layer.args if isinstance(a, int)]
        if kind == "dense" and layer.args and isinstance(layer.args[0], int):
            units = layer.args[0]
            total += width * units + units
            width = channels = units
        elif kind in ("norm", "standardize"):
            total += 2 * channels
        elif kind == "image" and len(numbers) >= 2:
            channels = numbers[2] if len(numbers) > 2 else 1
        elif kind == "conv2d" and len(numbers) >= 2:
            filters, size = numbers[:2]
            total += size * size * channels * filters + filters
            width, channels = width // max(channels, 1) * filters, filters
        elif kind == "pool" and numbers and numbers[0] >= 1:  # a window below 1 is E111, estimated as none
            width //= numbers[0] ** 2
    return total


def _flatten(layers: list[ast.Layer]):
    for layer in layers:
        if layer.is_block:
            yield from _flatten(layer.children)
        else:
            yield layer
