"""What a codec means for data, in numpy: training targets, decoding of outputs, confidence, exactness.

The model itself outputs raw scores (logits for bits/onehot/tables, values for scalar/vector); the loss
and the decoding below are both fixed by the decoder's output codec, so they always agree.

A table codec's decoder is trained like bits(n) on its target's pattern, and decodes to the table value
whose pattern is most likely under the per-bit sigmoids (the largest sum of bit log-likelihoods); its
confidence is that value's probability normalised over the table's rows (a softmax of those sums), so
it reads as "which of the table's values is it", not as the chance of one exact bit string.
"""
from __future__ import annotations

import numpy as np

from ..lang import ast


def bits_of(values: np.ndarray, size: int) -> np.ndarray:
    """Ints -> bits, most significant first (so 6 in bits(4) is 0110)."""
    shifts = np.arange(size - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] >> shifts) & 1).astype(np.float32)


def to_gray(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return v ^ (v >> 1)


def from_gray(values: np.ndarray) -> np.ndarray:
    out = values.astype(np.int64).copy()
    shift = out >> 1
    while np.any(shift):
        out ^= shift
        shift >>= 1
    return out


def table_rows(table: ast.CodecDecl, field: ast.FieldType) -> tuple[int, np.ndarray]:
    """An input field's encoding by a table: (offset, patterns), the pattern of value v at row v - offset
    (an int field's lo, or 0 for a category's value index); a value the table lacks (the checker reports
    it, E133) gets zeros."""
    if isinstance(field, ast.CategoryType):
        offset, keys = 0, [v.text for v in field.values]
    else:
        offset, keys = field.lo, list(range(field.lo, field.hi + 1))
    by_key = {e.key.text if e.number is None else e.number: e.pattern.text for e in table.valid_entries()}
    patterns = np.zeros((len(keys), table.base.size), np.float32)
    for row, key in enumerate(keys):
        if key in by_key:
            patterns[row] = [float(b) for b in by_key[key]]
    return offset, patterns


def table_arrays(table: ast.CodecDecl) -> tuple[np.ndarray, np.ndarray]:
    """A decoder's table: its int values [k] and their patterns [k, n] as floats (a key that is not an int
    can't be a target's value: the checker reports it, E132)."""
    entries = [e for e in table.valid_entries() if e.number is not None]
    values = np.array([e.number for e in entries], np.int64)
    patterns = np.array([[float(b) for b in e.pattern.text] for e in entries], np.float32)
    return values, patterns.reshape(len(entries), table.base.size)


def _table_target(table: ast.CodecDecl, values: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each target's pattern; a value with no pattern (or undefined) gets weight 0."""
    keys, patterns = table_arrays(table)
    if not len(keys):
        return np.zeros((len(values), table.base.size), np.float32), np.zeros(len(values), np.float32)
    order = np.argsort(keys)
    keys, patterns = keys[order], patterns[order]
    ints = np.where(live, values, 0).astype(np.int64)
    at = np.clip(np.searchsorted(keys, ints), 0, len(keys) - 1)
    found = live & (keys[at] == ints)
    return np.where(found[:, None], patterns[at], 0).astype(np.float32), found.astype(np.float32)


def table_scores(patterns: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """[batch, k]: each table row's log-likelihood under the per-bit sigmoids of `raw` (logits)."""
    raw = raw.astype(np.float64)
    log_on = -np.logaddexp(0.0, -raw)  # log sigmoid(z)
    log_off = -np.logaddexp(0.0, raw)  # log sigmoid(-z)
    return log_on @ patterns.T.astype(np.float64) + log_off @ (1 - patterns.T.astype(np.float64))


def defined(targets: np.ndarray) -> np.ndarray:
    """Which rows' targets are defined: not NaN (a target undefined for the row, or left out of it)."""
    undefined = np.isnan(targets.astype(np.float64))
    return ~undefined.any(axis=tuple(range(1, undefined.ndim))) if undefined.ndim > 1 else ~undefined


def target_array(codec: ast.Codec, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training target, per-example weight); rows whose target is undefined (NaN) get weight 0."""
    live = defined(values)
    clean = np.where(live.reshape((-1,) + (1,) * (values.ndim - 1)), values, 0)
    if codec.table is not None:
        return _table_target(codec.table, clean, live)
    kind = codec.kind.text
    if kind == "bits":
        return bits_of(clean.astype(np.int64), codec.size), live.astype(np.float32)
    if kind == "gray":
        return bits_of(to_gray(clean), codec.size), live.astype(np.float32)
    if kind == "onehot":
        return clean.astype(np.int32), live.astype(np.float32)
    if kind == "scalar":
        return clean.astype(np.float32).reshape(-1, 1), live.astype(np.float32)
    return clean.astype(np.float32), live.astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decode(codec: ast.Codec, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Model output -> (decoded values, confidence in [0, 1] or None where the codec has none)."""
    if codec.table is not None:
        keys, patterns = table_arrays(codec.table)
        p = _softmax(table_scores(patterns, raw))
        best = p.argmax(axis=-1)
        return keys[best], p[np.arange(len(best)), best]
    kind = codec.kind.text
    if kind in ("bits", "gray"):
        p = _sigmoid(raw)
        bits = (p >= 0.5).astype(np.int64)
        weights = 2 ** np.arange(codec.size - 1, -1, -1, dtype=np.int64)
        confidence = np.prod(np.where(bits == 1, p, 1 - p), axis=-1)
        value = bits @ weights
        return (from_gray(value) if kind == "gray" else value), confidence
    if kind == "onehot":
        p = _softmax(raw)
        return p.argmax(axis=-1), p.max(axis=-1)
    if kind == "scalar":
        return raw.reshape(-1), None
    return raw, None


def loss(codec: ast.Codec, raw: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example loss, as training computes it from `target_array`'s targets: cross-entropy on logits
    for bits and onehot, squared error (mean over components) for scalar and vector."""
    kind = codec.family
    raw = raw.astype(np.float64)
    if kind in ("bits", "gray", "table"):
        return np.mean(np.maximum(raw, 0) - raw * target + np.log1p(np.exp(-np.abs(raw))), axis=-1)
    if kind == "onehot":
        z = raw - raw.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return -np.take_along_axis(log_p, target.reshape(-1, 1).astype(np.int64), axis=-1).reshape(-1)
    return np.mean((raw.reshape(len(raw), -1) - target.reshape(len(target), -1)) ** 2, axis=-1)


def exact(codec: ast.Codec, decoded: np.ndarray, target: np.ndarray, tolerance: float) -> np.ndarray:
    """Per-example exact match; scalars and vectors count as exact within `tolerance` (the decoder's,
    Checked.tolerance)."""
    kind = codec.family
    if kind in ("bits", "gray", "onehot", "table"):
        return decoded == target.astype(np.int64)
    if kind == "scalar":
        return np.abs(decoded - target.reshape(-1)) <= tolerance
    return np.all(np.abs(decoded - target) <= tolerance, axis=-1)
