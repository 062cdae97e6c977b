"""JSON that every parser accepts: NaN and infinities become `null`, and the payload says where and why.

`json.dumps` writes bare `NaN`/`Infinity` by default, which is not JSON (RFC 8259) and which strict
parsers (JavaScript's JSON.parse, jq, Go, Rust) reject. Every JSON tanglec prints or writes goes
through `dumps`, which never emits them (`allow_nan=False` backs the conversion up).
"""
from __future__ import annotations

import json
import math

NON_FINITE_REASON = "NaN or infinite: not representable in JSON, written as null"


def finite(value, path: str = "$", found: list[str] | None = None):
    """`value` with every non-finite float replaced by None (numpy scalars and arrays made plain
    first); the JSON paths of the replaced values are appended to `found`."""
    found = [] if found is None else found
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        found.append(path)
        return None
    if isinstance(value, dict):
        return {k: finite(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def dumps(payload, **kwargs) -> str:
    """Strict JSON text of `payload`. A dict payload that held non-finite numbers gains a
    `non_finite` entry: the paths of the values written as null, and why."""
    found: list[str] = []
    clean = finite(payload, found=found)
    if found and isinstance(clean, dict):
        clean["non_finite"] = {"paths": found, "reason": NON_FINITE_REASON}
    return json.dumps(clean, allow_nan=False, default=str, **kwargs)
