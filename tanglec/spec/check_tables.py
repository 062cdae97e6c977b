"""Checks of table codecs (`codec segments: bits(7) table { 0: 1111110, ... }`): the patterns themselves,
and their keys against every field a table encodes and every target it decodes.

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations

from ..lang import ast
from ..lang.diagnostics import Diagnostic, Related
from ..lang.vocabulary import CODECS
from .check_limits import MAX_WIDTH

SHOWN_MISSING = 10  # missing values listed by name in E133; the rest are counted


def table_usable(decl: ast.CodecDecl) -> bool:
    """A sound bits(n) base (else E131/E114 at the table): modules using the table have a width."""
    base = decl.base
    return base.kind.text == "bits" and base.size is not None and 1 <= base.size <= MAX_WIDTH


def table_key(entry: ast.TableEntry) -> int | str:
    """The value a key stands for: an int (so `+3` and `3` are one key), or a category's name."""
    number = entry.number
    return entry.key.text if number is None else number


class TableChecks:
    def check_tables(self) -> None:
        decoded = {m.output.kind.text for name, m in self.g.modules.items()
                   if m.output.table is not None and name in self.g.decoders}
        for decl in self.spec.of(ast.CodecDecl):
            if decl.name.text in CODECS:
                self.error("E114", f"'{decl.name.text}' is a built-in codec; name the table otherwise",
                           decl.name.span)
                continue
            if self.g.tables.get(decl.name.text) is not decl:
                continue  # a second declaration of the name: E102
            if not self.check_table_base(decl):
                continue
            self.check_table_entries(decl, decoded=decl.name.text in decoded)

    def check_table_base(self, decl: ast.CodecDecl) -> bool:
        base = decl.base
        if base.kind.text != "bits" or base.size is None:
            self.error("E131", f"a table codec gives bit patterns: declare it bits(n), not {base}", base.span,
                       hints=[f"`codec {decl.name.text}: bits(7) table {{ ... }}`"])
            return False
        return self.check_codec(base)

    def check_table_entries(self, decl: ast.CodecDecl, decoded: bool) -> None:
        width = decl.base.size
        keys: dict[int | str, ast.TableEntry] = {}
        patterns: dict[str, ast.TableEntry] = {}
        for e in decl.entries:
            pattern = e.pattern.text
            if not set(pattern) <= {"0", "1"}:
                self.error("E131", f"pattern {pattern} has digits other than 0 and 1", e.pattern.span,
                           hints=["a pattern is one binary digit per bit, first bit first"])
                continue
            if len(pattern) != width:
                self.error("E131", f"pattern {pattern} has {len(pattern)} bits, but '{decl.name.text}' is "
                                   f"{decl.base}", e.pattern.span,
                           hints=[f"write {width} digits (leading zeros count)"],
                           related=[Related(decl.base.span, "width declared here")])
                continue
            key = table_key(e)
            if key in keys:
                self.error("E102", f"value '{e.key.text}' appears twice in table '{decl.name.text}'", e.key.span,
                           related=[Related(keys[key].span, "first written here")])
                continue
            keys[key] = e
            if pattern in patterns:
                first = patterns[pattern]
                message = f"'{e.key.text}' and '{first.key.text}' have the same pattern {pattern}"
                related = [Related(first.span, f"'{first.key.text}' written here")]
                if decoded:
                    self.error("E134", message + "; a decoder can't tell them apart", e.pattern.span,
                               hints=["give every value its own pattern"], related=related)
                else:
                    self.warn("W207", message + "; the modules reading it can't tell them apart", e.pattern.span,
                              hints=["give every value its own pattern"], related=related)
            patterns.setdefault(pattern, e)

    def check_table_field(self, decl: ast.CodecDecl, field_decl: ast.InputDecl) -> str | None:
        """Keys against the values of a field the table encodes: E132 at a key that isn't one, E133 at the
        table for values without a key. Returns the interface problem when the field can't be keyed at all."""
        t, name = field_decl.type, field_decl.name.text
        if isinstance(t, ast.IntType):
            values: range | list = range(t.lo, t.hi + 1)
        elif isinstance(t, ast.CategoryType):
            values = [v.text for v in t.values]
        else:
            return f"table codec '{decl.name.text}' keys ints or category names, but '{name}' is {t.describe()}"
        where = Related(field_decl.span, f"'{name}' declared here")
        self.report_table_keys(decl, values, f"'{name}' ({t.describe()})", where)
        return None

    def report_table_keys(self, decl: ast.CodecDecl, values, what: str, where: Related) -> None:
        reported = getattr(self, "_table_reports", None)
        if reported is None:
            reported = self._table_reports = set()
        valid = decl.valid_entries()
        for e in valid:
            key = table_key(e)
            if key not in values and ("E132", e.key.span) not in reported:
                reported.add(("E132", e.key.span))
                self.error("E132", f"'{e.key.text}' is not a value of {what}", e.key.span, related=[where])
        if (decl.name.span, what) not in reported:
            reported.add((decl.name.span, what))
            problem = missing_problem(decl, values, what, where)
            if problem is not None:
                self.diags.append(problem)


def missing_problem(decl: ast.CodecDecl, values, what: str, where: Related) -> Diagnostic | None:
    """E133 at the table when some of `values` (a range, list or set) have no pattern, the first listed."""
    keys = {table_key(e) for e in decl.valid_entries()}
    missing_count = len(values) - sum(v in values for v in keys)
    if missing_count <= 0:
        return None
    shown = []
    for v in values:
        if v not in keys:
            shown.append(str(v))
            if len(shown) == SHOWN_MISSING:
                break
    listed = ", ".join(shown) + (f" and {missing_count - len(shown)} more" if missing_count > len(shown) else "")
    noun = "value" if missing_count == 1 else "values"
    return Diagnostic("E133", f"table '{decl.name.text}' lacks {noun} {listed} of {what}", decl.name.span,
                      hints=[f"add an entry for each: `{shown[0]}: {'0' * decl.base.size}`"], related=[where])
