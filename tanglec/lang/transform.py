"""The parse's ast builder: Lark's LALR parser calls it at every reduction (no parse tree is built).

Lark can't hand positions to callbacks of this mode, so every rule is given all its tokens
(`keep_all_tokens`) and computes its span from its first and last token, as Lark's
`propagate_positions` would: keywords included, and an expression in brackets counts its brackets
when it begins or ends a larger rule. The punctuation is then dropped and the rule's method sees
the same children as a tree transformer would.

The parser calls the functions reductions.py makes of these methods, not Lark's wrappers around a
transformer.
"""
from __future__ import annotations

from .scanning import Token

from . import ast
from .diagnostics import Diagnostic
from .expr import INT_LIMIT, children

MAX_EXPR_DEPTH = 200  # operators nested in one expression (`1+1+...` nests one per `+`)
_new_span = tuple.__new__  # ast.Span(...) without the NamedTuple's Python-level __new__


def _rule(method):
    """A grammar rule's callback: `method(self, span, children)`, its children without the rule's punctuation."""
    method.spans = True
    return method


class AstBuilder:
    """The parser's callbacks (Lark's tree-less LALR mode): each grammar rule becomes its ast node the
    moment it is reduced, so no parse tree is built. `begin` sets the file and the line offset (a
    statement parsed alone is placed at its real line); number literals out of range become E007
    diagnostics in `problems`.

    Why this size: Lark calls one method per grammar rule, by the rule's name, on one object; the
    methods are as many as the grammar's rules, and splitting them over classes would only scatter
    the grammar's mirror image."""

    def __init__(self):
        self.begin("<spec>")

    def begin(self, file: str, line_offset: int = 0) -> None:
        self.file = file
        self.line_offset = line_offset
        self.problems: list[Diagnostic] = []
        self.brackets: dict[int, tuple[int, int, int, int]] = {}  # id(expression) -> extent with its ( )

    def literal(self, tok: Token, integer: bool = False) -> int | float:
        """A number token's value; 0 and an E007 diagnostic when it is too large to compute with."""
        text = tok.value
        if len(text) < 16 and text.isdigit():  # plain digits (the common case): exact and within range
            return int(text)
        digits = len(text.lstrip("+-").split(".")[0].split("e")[0].split("E")[0])
        value = None
        if digits <= 30:
            value = int(text) if integer else _number(text)
        if value is None or abs(value) >= INT_LIMIT and isinstance(value, int) or value != value \
                or abs(value) == float("inf"):
            shown = text if len(text) <= 24 else text[:20] + "…"
            self.problems.append(Diagnostic("E007", f"number {shown} is too large", self.span(tok),
                                            hints=[f"integers must lie within ±2**53 ({INT_LIMIT:,}); "
                                                   f"floats must be finite"]))
            return 0
        return value

    # -- positions
    def span(self, tok: Token) -> ast.Span:
        offset = self.line_offset
        return _new_span(ast.Span, (self.file, tok.line + offset, tok.column, tok.end_line + offset, tok.end_column))

    def _start(self, child) -> tuple[int, int]:
        """Where `child` starts: a token, an ast node, an expression in brackets (at its `(`), a list or
        tuple of those (at its first)."""
        while not isinstance(child, Token):
            bracketed = self.brackets.get(id(child))
            if bracketed is not None:
                return bracketed[0], bracketed[1]
            if isinstance(child, ast.Span):
                return child.line, child.col
            child = child.span if hasattr(child, "span") else child[0]
        return child.line + self.line_offset, child.column

    def _end(self, child) -> tuple[int, int]:
        """Where `child` ends (as _start)."""
        while not isinstance(child, Token):
            bracketed = self.brackets.get(id(child))
            if bracketed is not None:
                return bracketed[2], bracketed[3]
            if isinstance(child, ast.Span):
                return child.end_line, child.end_col
            child = child.span if hasattr(child, "span") else child[-1]
        return child.end_line + self.line_offset, child.end_column

    def rule_span(self, first, last) -> ast.Span:
        """From a rule's first token to its last, keywords and brackets included (`first` and `last`:
        its first and last child)."""
        offset = self.line_offset
        if first.__class__ is Token:  # most rules start with a keyword or a name
            line, col = first.line + offset, first.column
        else:
            line, col = self._start(first)
        if last.__class__ is Token:
            return _new_span(ast.Span, (self.file, line, col, last.end_line + offset, last.end_column))
        return _new_span(ast.Span, (self.file, line, col, *self._end(last)))

    def name(self, tok: Token) -> ast.Name:
        offset = self.line_offset
        return ast.Name(tok.value, _new_span(ast.Span, (self.file, tok.line + offset, tok.column,
                                                        tok.end_line + offset, tok.end_column)))

    def names(self, children) -> list[ast.Name]:
        return [self.name(c) for c in children if isinstance(c, Token) and c.type == "NAME"]

    # -- statements
    def start(self, children):
        return children

    @_rule
    def atom(self, span, c):
        """`( expr )`: the expression itself; rules around it start or end at its brackets."""
        self.brackets[id(c[0])] = span[1:]
        return c[0]

    @_rule
    def input_decl(self, span, c):
        return ast.InputDecl(self.name(c[0]), c[1], span, c[2] if len(c) > 2 else [])

    @_rule
    def input_columns(self, span, c):
        return list(c)

    @_rule
    def column(self, span, c):
        first, last = (self.label(t) for t in (c[0], c[-1]))
        return ast.Column(first, last if len(c) > 1 else None, span)

    def label(self, tok: Token) -> ast.Name:
        """A name, or a "string" without its quotes: a column ("petal length (cm)"), a category value as
        the data spells it ("Iris-setosa"), a match case or table key of such a value."""
        name = self.name(tok)
        if tok.type == "STRING":
            return ast.Name(name.text[1:-1], name.span)
        return name

    @_rule
    def select_decl(self, span, c):
        return ast.SelectDecl(self.name(c[0]), self.names(c[1:]), span)

    @_rule
    def int_type(self, span, c):
        return ast.IntType(self.literal(c[0], integer=True), self.literal(c[1], integer=True), span)

    @_rule
    def float_type(self, span, c):
        lo, hi = (self.literal(c[0]), self.literal(c[1])) if c else (None, None)
        return ast.FloatType(lo, hi, span)

    @_rule
    def category_type(self, span, c):
        return ast.CategoryType([self.label(t) for t in c if t.type in ("NAME", "STRING")], span)

    @_rule
    def vector_type(self, span, c):
        return ast.VectorType(self.literal(c[0], integer=True), span)

    @_rule
    def text_type(self, span, c):
        return ast.TextType(span)

    def signed_int(self, c):
        """The token, kept for its position; the rule using it takes its value."""
        return c[0]

    signed_int.passes_child = True
    signed_number = signed_int

    @_rule
    def number(self, span, c):
        return ast.Number(self.literal(c[0]), span)

    @_rule
    def module_decl(self, span, c):
        return ast.ModuleDecl(self.name(c[0]), c[1], c[2], list(c[3:]), span)

    @_rule
    def codec(self, span, c):
        return ast.Codec(self.name(c[0]), self.literal(c[1], integer=True) if len(c) > 1 else None, span)

    @_rule
    def codec_decl(self, span, c):
        return ast.CodecDecl(self.name(c[0]), c[1], list(c[2:]), span)

    @_rule
    def table_entry(self, span, c):
        return ast.TableEntry(self.label(c[0]), self.name(c[1]), span)

    @_rule
    def layer(self, span, c):
        args = [self.name(a) if a.type == "NAME" else self.literal(a) for a in c[1:]]
        return ast.Layer(self.name(c[0]), args, [], span)

    @_rule
    def block(self, span, c):
        return ast.Layer(self.name(c[0]), [], list(c[1:]), span, is_block=True)

    @_rule
    def route_decl(self, span, c):
        return ast.RouteDecl(self.name(c[0]), list(c[1:]), span)

    @_rule
    def fanout(self, span, c):
        return ast.FanOut(self.names(c), span)

    @_rule
    def mux(self, span, c):
        branches = [x for x in c if isinstance(x, ast.Branch)]
        selectors = [self.name(x) for x in c if isinstance(x, Token)]
        strategy = next((x for x in c if isinstance(x, ast.Name)), None)
        return ast.Mux(branches, selectors, strategy, span)

    @_rule
    def mux_strategy(self, span, c):
        return self.name(c[0])

    @_rule
    def branch(self, span, c):
        """`value`, `value: module` or `value: _`, then optionally `from field` (its own input field)."""
        source = c.pop() if isinstance(c[-1], ast.Name) else None
        value = self.name(c[0])
        module = self.name(c[1]) if len(c) > 1 else value
        return ast.Branch(value, module, span, identity=len(c) > 1 and c[1].type == "WILDCARD", source=source)

    @_rule
    def branch_source(self, span, c):
        return self.name(c[0])

    @_rule
    def target_expr(self, span, c):
        type_ = c[1] if len(c) == 3 else None
        return ast.TargetDecl(self.name(c[0]), type_, c[-1], span)

    @_rule
    def target_data(self, span, c):
        return ast.TargetDecl(self.name(c[0]), c[1], None, span, self.label(c[2]) if len(c) > 2 else None)

    @_rule
    def decode_decl(self, span, c):
        settings = [x for x in c if isinstance(x, ast.Setting)]
        names = self.names([x for x in c if not isinstance(x, ast.Setting)])
        return ast.DecodeDecl(names[:-1], names[-1], span, settings)

    @_rule
    def data_decl(self, span, c):
        source, arg, _ = c[0]
        return ast.DataDecl(source, arg, list(c[1:]), span)

    @_rule
    def enumerate_source(self, span, c):
        return ("enumerate", None, span)

    @_rule
    def sample_source(self, span, c):
        return ("sample", self.literal(c[0], integer=True), span)

    @_rule
    def file_source(self, span, c):
        return ("file", str(c[0])[1:-1], span)

    @_rule
    def train_decl(self, span, c):
        return ast.TrainDecl(list(c), span)

    @_rule
    def setting(self, span, c):
        value = c[1]
        if isinstance(value, tuple) and isinstance(value[1], Token):  # `key:number`
            value = (value[0], self.literal(value[1]))
        elif isinstance(value, Token):
            value = str(value)[1:-1] if value.type == "STRING" else \
                self.name(value) if value.type == "NAME" else self.literal(value)
        return ast.Setting(self.name(c[0]), value, span)

    @_rule
    def keyed_value(self, span, c):
        return (self.name(c[0]), c[1])  # the number's token: `setting` takes its value

    @_rule
    def keyed_name(self, span, c):
        return (self.name(c[0]), self.name(c[1]))

    @_rule
    def name_list(self, span, c):
        return self.names(c)

    @_rule
    def phase_decl(self, span, c):
        return ast.PhaseDecl(self.name(c[0]), list(c[1:]), span)

    @_rule
    def align_decl(self, span, c):
        names = [x for x in c if isinstance(x, Token)]
        settings = [x for x in c if isinstance(x, ast.Setting)]
        return ast.AlignDecl([self.name(t) for t in names[:-1]], self.name(names[-1]), settings, span)

    @_rule
    def holdout_decl(self, span, c):
        return ast.HoldoutDecl(self.names(c), span)

    @_rule
    def holdout_length(self, span, c):
        return ast.HoldoutDecl([self.name(c[0])], span, lengths=[int(t) for t in c[1:]])

    @_rule
    def freeze_decl(self, span, c):
        return ast.FreezeDecl(self.names(c), span)

    @_rule
    def use_decl(self, span, c):
        only = self.names(c[1:]) if len(c) > 1 else None
        return ast.UseDecl(str(c[0])[1:-1], only, span)

    @_rule
    def init_decl(self, span, c):
        return ast.InitDecl(str(c[0])[1:-1], span)

    # -- expressions
    @_rule
    def if_expr(self, span, c):
        return ast.IfElse(c[0], c[1], c[2], span)

    @_rule
    def or_op(self, span, c):
        return ast.BinOp("or", c[0], c[1], span)

    @_rule
    def and_op(self, span, c):
        return ast.BinOp("and", c[0], c[1], span)

    @_rule
    def not_op(self, span, c):
        return ast.UnaryOp("not", c[0], span)

    @_rule
    def compare(self, span, c):
        return ast.BinOp(str(c[1]), c[0], c[2], span)

    @_rule
    def arith(self, span, c):
        return ast.BinOp(str(c[1]), c[0], c[2], span)

    @_rule
    def neg(self, span, c):
        return ast.UnaryOp("-", c[0], span)

    @_rule
    def power(self, span, c):
        return ast.BinOp("**", c[0], c[1], span)

    @_rule
    def ref(self, span, c):
        return ast.Ref(self.name(c[0]), span)

    @_rule
    def call(self, span, c):
        return ast.Call(self.name(c[0]), list(c[1:]), span)

    @_rule
    def match(self, span, c):
        return ast.Match(self.name(c[0]), list(c[1:]), span)

    @_rule
    def fold(self, span, c):
        names = [self.name(t) for t in c if isinstance(t, Token)]
        expr = next(x for x in c if not isinstance(x, (Token, ast.MatchCase)))
        return ast.Fold(names[0], expr, names[1:], [x for x in c if isinstance(x, ast.MatchCase)], span)

    @_rule
    def case(self, span, c):
        value = None if c[0].type == "WILDCARD" else self.label(c[0])
        return ast.MatchCase(value, c[1], span)


def _number(text: str) -> int | float:
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def depth_problems(statements: list) -> list[Diagnostic]:
    """E004 for an expression nested deeper than MAX_EXPR_DEPTH (measured without recursion), so the
    evaluators and every later pass that walks expressions recursively stay far from the stack limit."""
    out = []
    for st in statements:
        if not isinstance(st, ast.TargetDecl) or st.expr is None:
            continue
        deepest, stack = 0, [(st.expr, 1)]
        while stack and deepest <= MAX_EXPR_DEPTH:
            node, depth = stack.pop()
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in children(node)]
        if deepest > MAX_EXPR_DEPTH:
            out.append(Diagnostic("E004", f"expression nested more than {MAX_EXPR_DEPTH} levels deep",
                                  st.expr.span, hints=["each operator in a chain like `1 + 1 + ... + 1` "
                                                       "adds a level; simplify it or split it into targets"]))
    return out


