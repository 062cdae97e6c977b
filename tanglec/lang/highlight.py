"""Syntax highlighting for .tangle: a Pygments lexer, and its uses in the CLI and the TUI.

`TangleLexer` is registered with Pygments under the alias `tangle` (entry point
`pygments.lexers` in pyproject.toml), so once tanglec is installed `pygmentize -l tangle`,
`pygments.lexers.get_lexer_by_name("tangle")`, rich's `Syntax(code, "tangle")` and Sphinx/MkDocs
code blocks tagged `tangle` all use it.

Keywords come from the grammar itself (every keyword terminal of the parser's Lark grammar; a statement
keyword is the word a `*_decl` rule starts with), so a statement added to the grammar is highlighted
without touching this file. Codecs, layers, activations and setting names are listed below and
completed from the language's own tables (lang/vocabulary.py);
tests/test_highlight.py checks the lexer covers them all.
"""
from __future__ import annotations

import re

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from . import vocabulary

STATEMENTS = ("input", "select", "module", "route", "target", "decode", "data", "train")
KEYWORDS = ("by", "using", "as", "from", "enumerate", "sample", "file", "if", "then", "else", "match",
            "and", "or", "not")
FIELD_TYPES = ("int", "float", "category", "vector", "text")
CODECS = tuple(sorted(vocabulary.CODECS))
LAYERS = tuple(sorted(vocabulary.LAYER_KINDS))
ACTIVATIONS = tuple(sorted(vocabulary.ACTIVATIONS))
FUNCTIONS = tuple(vocabulary.FUNCTIONS)


def _grammar_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(statement keywords, other keywords) of the parser's grammar, in the order its rules use them."""
    from .parser import lark_parser

    grammar = lark_parser()
    keywords = {t.name: t.pattern.value for t in grammar.terminals
                if t.pattern.type == "str" and re.fullmatch(r"[a-z][a-z_]*", t.pattern.value)}
    statements, others = {}, {}
    for rule in grammar.rules:
        for position, symbol in enumerate(rule.expansion):
            if symbol.name in keywords:
                starts_statement = position == 0 and rule.origin.name.endswith("_decl")
                (statements if starts_statement else others)[keywords[symbol.name]] = None
    return tuple(statements), tuple(w for w in others if w not in statements)


_grammar_statements, _grammar_others = _grammar_words()
STATEMENTS = tuple(dict.fromkeys(STATEMENTS + _grammar_statements))
_TYPED = set(FIELD_TYPES + CODECS)
KEYWORDS = tuple(dict.fromkeys(KEYWORDS + tuple(w for w in _grammar_others if w not in _TYPED)))
_SETTING_WORDS = (vocabulary.UNTIL_VALUES | vocabulary.TRAIN_KEYS | vocabulary.DATA_KEYS | vocabulary.OPTIMIZERS | vocabulary.MUX_STRATEGIES
                  | vocabulary.PHASE_KEYS | vocabulary.ALIGN_KEYS | vocabulary.DECODE_KEYS
                  | frozenset(vocabulary.SCHEDULES))
SETTINGS = tuple(w for w in sorted(_SETTING_WORDS)
                                               if w not in set(STATEMENTS + KEYWORDS + LAYERS + CODECS))

_NAME_END = r"(?![A-Za-z0-9_])"


class TangleLexer(RegexLexer):
    """Pygments lexer for tanglec's .tangle spec language."""

    name = "Tangle"
    aliases = ["tangle"]
    filenames = ["*.tangle"]
    mimetypes = ["text/x-tangle"]

    tokens = {
        "root": [
            (r"[ \t\r\n\f]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            (words(STATEMENTS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Keyword.Declaration),
            (words(KEYWORDS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Keyword),
            # `vector` is both a field type and a codec: it is coloured as a codec
            (words(("int", "float", "category"), prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Keyword.Type),
            (words(CODECS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Name.Builtin),
            (words(LAYERS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Name.Function),
            (words(ACTIVATIONS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Name.Constant),
            (words(SETTINGS, prefix=r"(?<![A-Za-z0-9_])", suffix=_NAME_END), Name.Attribute),
            (words(FUNCTIONS, prefix=r"(?<![A-Za-z0-9_])", suffix=r"(?=\s*\()"), Name.Builtin),
            (r"_(?![A-Za-z0-9_])", Keyword.Pseudo),  # the wildcard case of a match
            (r"[A-Za-z][A-Za-z0-9_]*", Name),
            (r"[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+|[0-9]+\.[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"->|\.\.|\*\*|//|==|!=|<=|>=|[<>=+\-*/%]", Operator),
            (r"[\[\](){},:|]", Punctuation),
            (r".", Text),
        ],
    }


# ---- uses -------------------------------------------------------------------------------------------

_EXCERPT = re.compile(r"^(\s*\d+ \| )(.*)$")
_CARET = re.compile(r"^(\s*\| )(\s*)(\^+)(.*)$")
_HEADER = re.compile(r"^(.*?: )?(error|warning)(\[[A-Z]\d+\])(: .*)$")
_HINT = re.compile(r"^(\s*)(hint|note)(:)(.*)$")

_RED, _YELLOW, _CYAN, _BOLD, _DIM, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


def highlight_line(code: str) -> str:
    """One line of .tangle source with ANSI colours (16-colour terminal palette)."""
    from pygments import highlight
    from pygments.formatters import TerminalFormatter

    return highlight(code, TangleLexer(), TerminalFormatter()).rstrip("\n")


def colorize_diagnostics(text: str) -> str:
    """Rendered diagnostics (tanglec.lang.diagnostics.render_all) with colours for a terminal: the
    quoted source highlighted by TangleLexer, errors red, warnings yellow, carets and hints marked.
    Removing the ANSI escapes gives back `text` exactly."""
    out = []
    severity_colour = _RED
    for line in text.split("\n"):
        m = _HEADER.match(line)
        if m:
            where, sev, code, rest = m.groups()
            severity_colour = _RED if sev == "error" else _YELLOW
            out.append(f"{_BOLD}{where or ''}{severity_colour}{sev}{code}{_RESET}{_BOLD}{rest}{_RESET}")
            continue
        m = _EXCERPT.match(line)
        if m:
            out.append(f"{_DIM}{m.group(1)}{_RESET}{highlight_line(m.group(2)) if m.group(2) else ''}")
            continue
        m = _CARET.match(line)
        if m:
            out.append(f"{_DIM}{m.group(1)}{_RESET}{m.group(2)}{_BOLD}{severity_colour}{m.group(3)}{_RESET}"
                       f"{severity_colour}{m.group(4)}{_RESET}" if m.group(4) else
                       f"{_DIM}{m.group(1)}{_RESET}{m.group(2)}{_BOLD}{severity_colour}{m.group(3)}{_RESET}")
            continue
        m = _HINT.match(line)
        if m:
            out.append(f"{m.group(1)}{_BOLD}{_CYAN}{m.group(2)}{m.group(3)}{_RESET}{m.group(4)}")
            continue
        out.append(line)
    return "\n".join(out)


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def rich_syntax(source: str, **options):
    """A rich `Syntax` renderable of a spec (the TUI's spec view): `rich_syntax(text, line_numbers=True)`."""
    from rich.syntax import Syntax

    options.setdefault("theme", "ansi_dark")
    return Syntax(source, lexer=TangleLexer(), **options)
