"""Damaged inputs for the CLI fuzzer (`clifuzz`): mutated data files, tampered runs, odd query fields."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

from tanglec.artifacts.run import file_sha256, manifest_digest
from tanglec.devtools.clifuzz_specs import Spec

RUN_FILES = ("spec.tangle", "model.weights.h5", "routes.json", "metrics.json", "manifest.json")

# ---- mutated data files --------------------------------------------------------------------------

JUNK_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1", "99999999999999999999", "9" * 400, "1_0",
              "٣", "3.5", "0x10", "\"", "\"unterminated", "a,b", "\x00", "\x1b]0;pwned\x07", "é", "\ufeff1",
              "true", "null", "[1,2]", "{}", "1 2 3 4 5 6 7 8", "x" * 200_000]


def mutate_data(rng: random.Random, spec: Spec) -> tuple[Spec, str]:
    """The spec with its data file damaged in one way; the description says how."""
    name = next(iter(spec.files))
    data = spec.files[name]
    lines = data.split(b"\n")
    jsonl = name.endswith(".jsonl")
    kind = rng.choice(["cell", "cell", "drop-field", "extra-field", "header", "encoding", "binary", "truncate",
                       "empty", "header-only", "crlf", "bom", "quoted-newline", "blank-lines", "long-line"])
    row = rng.randint(1, max(1, len(lines) - 2))
    if kind == "cell":
        junk = rng.choice(JUNK_CELLS)
        if jsonl:
            obj = json.loads(lines[row])
            key = rng.choice(list(obj))
            obj[key] = rng.choice([junk, None, [], {}, [1, [2]], True, 1e308, -(2 ** 70), float("nan")])
            lines[row] = json.dumps(obj).encode()  # NaN as the bare literal json writes
        else:
            cells = lines[row].split(b",")
            cells[rng.randrange(len(cells))] = junk.encode("utf-8")
            lines[row] = b",".join(cells)
        how = f"row {row}: junk cell {junk[:20]!r}"
    elif kind == "drop-field":
        lines[row] = lines[row].rsplit(b",", 1)[0] if not jsonl else b"{}"
        how = f"row {row}: a field missing"
    elif kind == "extra-field":
        lines[row] = lines[row] + b",extra" if not jsonl else lines[row][:-1] + b', "extra": 1}'
        how = f"row {row}: an extra field"
    elif kind == "header":
        if jsonl:
            lines[row] = lines[row].replace(b'"x"', b'"X"')
            how = f"row {row}: key renamed"
        else:
            header = lines[0].split(b",")
            choice = rng.choice(["rename", "drop", "duplicate", "add"])
            if choice == "rename":
                header[rng.randrange(len(header))] = b"renamed"
            elif choice == "drop":
                header.pop(rng.randrange(len(header)))
            elif choice == "duplicate":
                header.append(header[0])
            else:
                header.append(b"unused")
            lines[0] = b",".join(header)
            how = f"header: {choice}"
    elif kind == "encoding":
        text = data.decode()
        data = rng.choice([text.encode("utf-16"), text.replace("0", "é").encode("latin-1"), b"\xff\xfe" + data])
        spec = spec.with_data(name, data)
        return spec, "encoding: utf-16 / latin-1 / stray BOM bytes"
    elif kind == "binary":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        at = rng.randrange(len(data))
        spec = spec.with_data(name, data[:at] + junk + data[at:])
        return spec, f"binary junk ({len(junk)} bytes) at byte {at}"
    elif kind == "truncate":
        at = rng.randrange(len(data))
        return spec.with_data(name, data[:at]), f"truncated at byte {at}"
    elif kind == "empty":
        return spec.with_data(name, b""), "empty file"
    elif kind == "header-only":
        lines = lines[:1]
        how = "header only"
    elif kind == "crlf":
        return spec.with_data(name, data.replace(b"\n", b"\r\n")), "CRLF"
    elif kind == "bom":
        return spec.with_data(name, b"\xef\xbb\xbf" + data), "UTF-8 BOM"
    elif kind == "quoted-newline":
        cells = lines[row].split(b",")
        cells[0] = b'"' + cells[0] + b'\n"'
        lines[row] = b",".join(cells)
        how = f"row {row}: a quoted newline"
    elif kind == "blank-lines":
        lines.insert(row, b"")
        lines.insert(row, b"   ")
        how = f"row {row}: blank lines"
    else:
        lines[row] = lines[row] + b"," * 50_000 if not jsonl else b" " * 300_000 + lines[row]
        how = f"row {row}: a very long line"
    return spec.with_data(name, b"\n".join(lines)), kind + ": " + how


# ---- tampered runs -------------------------------------------------------------------------------

def rehash(run: Path) -> None:
    """Make the manifest's hashes and its own digest agree with the files again (a careful forger)."""
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in manifest.get("files", {}):
        if (run / name).is_file():
            manifest["files"][name] = file_sha256(run / name)
    if "digest" in manifest:
        manifest["digest"] = manifest_digest(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2))


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    obj = edit(obj)
    path.write_text(json.dumps(obj))


def _spec_edits(outside: Path) -> list[tuple[str, callable]]:
    """Edits of a run's spec.tangle; the ones naming `outside` must never print its content."""
    def data_line(text: str, line: str) -> str:
        kept = [l for l in text.splitlines() if not l.startswith("data ")]
        return "\n".join(kept + [line]) + "\n"

    return [
        ("data file outside the run (absolute)", lambda t: data_line(t, f'data file "{outside}"')),
        ("data file outside the run (relative ..)", lambda t: data_line(t, f'data file "../../../{outside.name}"')),
        ("data file /proc/self/environ", lambda t: data_line(t, 'data file "/proc/self/environ"')),
        ("data file /dev/zero", lambda t: data_line(t, 'data file "/dev/zero"')),
        ("wider layers", lambda t: re.sub(r"dense (\d+)", lambda m: f"dense {int(m.group(1)) + 1}", t, count=1)),
        ("syntax error", lambda t: t.replace("route", "rout", 1)),
        ("a target that divides by zero", lambda t: t + "target bad = 1 // (x - x)\n"),
        ("x ** -1", lambda t: t + "target bad2 = x ** -1\n"),
        ("init naming a run outside", lambda t: t + f'init "{outside.parent}"\n'),
        ("use naming a file outside", lambda t: t + f'use "{outside}"\n'),
        ("empty spec", lambda t: ""),
        ("a NUL byte", lambda t: t + "\x00"),
        ("huge spec (3 MB comment)", lambda t: t + "#" + "a" * 3_000_000 + "\n"),
        ("invalid UTF-8", None),
    ]


def tamper_run(rng: random.Random, run: Path, other_run: Path, outside: Path) -> str:
    """Damage the run in one way (sometimes recomputing its hashes); the description says how."""
    name = rng.choice(RUN_FILES)
    path = run / name
    kind = rng.choice(["delete", "truncate", "flip", "append", "dir", "symlink-out", "symlink-in", "swap",
                       "foreign", "spec-edit", "spec-edit", "spec-edit", "manifest", "manifest", "json-bad",
                       "json-bad", "huge", "run-symlink", "run-is-file", "empty-run", "extra-file"])
    again = rng.random() < 0.6  # recompute the hashes afterwards
    if kind == "delete":
        path.unlink()
        how = f"{name} deleted"
    elif kind == "truncate":
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.truncate(rng.choice([0, size // 2, max(0, size - 1)]))
        how = f"{name} truncated"
    elif kind == "flip":
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        how = f"{name}: bits flipped"
    elif kind == "append":
        with path.open("ab") as fh:
            fh.write(rng.choice([b"\n", b"junk", b"\x00" * 100, b"\n{}\n"]))
        how = f"{name}: junk appended"
    elif kind == "dir":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
        how = f"{name} replaced by a folder"
    elif kind == "symlink-out":
        path.unlink()
        path.symlink_to(rng.choice([outside, Path("/etc/passwd"), Path("/dev/zero"), Path("/nonexistent")]))
        how = f"{name} -> a symlink outside the run"
    elif kind == "symlink-in":
        target = rng.choice([n for n in RUN_FILES if n != name])
        path.unlink()
        path.symlink_to(target)
        how = f"{name} -> a symlink to {target}"
    elif kind == "swap":
        second = run / rng.choice([n for n in RUN_FILES if n != name])
        tmp = run / ".swap"
        os.replace(path, tmp)
        os.replace(second, path)
        os.replace(tmp, second)
        how = f"{name} swapped with {second.name}"
    elif kind == "foreign":
        shutil.copyfile(other_run / name, path)
        how = f"{name} taken from another run"
    elif kind == "spec-edit":
        what, edit = rng.choice(_spec_edits(outside))
        path = run / "spec.tangle"
        if edit is None:
            path.write_bytes(path.read_bytes() + b"\n# \xff\xfe\xc3\n")
        else:
            path.write_text(edit(path.read_text()))
        how = f"spec.tangle: {what}"
    elif kind == "manifest":
        path = run / "manifest.json"
        edits = {
            "files: a list": lambda m: {**m, "files": list(m["files"])},
            "files: numbers": lambda m: {**m, "files": {k: 123 for k in m["files"]}},
            "files: empty": lambda m: {**m, "files": {}},
            "files: a path outside": lambda m: {**m, "files": {**m["files"], "../../escape": "0" * 64}},
            "files: absolute path": lambda m: {**m, "files": {**m["files"], str(outside): file_sha256(outside)}},
            "format: 5": lambda m: {**m, "format": 5},
            "format: other": lambda m: {**m, "format": "tanglec-run/999"},
            "no format": lambda m: {k: v for k, v in m.items() if k != "format"},
            "spec_path: 7": lambda m: {**m, "spec_path": 7},
            "spec_path: a list": lambda m: {**m, "spec_path": ["a"]},
            "spec_path: outside": lambda m: {**m, "spec_path": str(outside)},
            "spec_path: another run's": lambda m: {**m, "spec_path": str(other_run / "spec.tangle")},
            "spec_path: empty": lambda m: {**m, "spec_path": ""},
            "spec_path: NUL": lambda m: {**m, "spec_path": "a\x00b"},
            "a list": lambda m: [m],
            "null": lambda m: None,
            "a string": lambda m: "manifest",
            "tensorflow: 2": lambda m: {**m, "tensorflow": 2},
        }
        what = rng.choice(sorted(edits))
        _edit_json(path, edits[what])
        how = f"manifest.json: {what}"
        again = False
    elif kind == "json-bad":
        name = rng.choice(["routes.json", "metrics.json", "manifest.json"])
        path = run / name
        bad = rng.choice([b"", b"{", b"[]", b"null", b"42", b'"text"', b"NaN", b'{"modules": 5}',
                          b'{"modules": {"loaded": 7}}', b'{"streamed": "yes", "modules": []}',
                          b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 5000 + b"1" + b"}" * 5000,
                          b"\xff\xfe{}", b'{"accuracy": NaN}'])
        path.write_bytes(bad)
        how = f"{name} := {bad[:40]!r}{'...' if len(bad) > 40 else ''}"
    elif kind == "huge":
        with path.open("ab") as fh:
            fh.truncate(path.stat().st_size + rng.choice([64 << 20, 600 << 20]))  # sparse: no disk used
        how = f"{name} made huge (sparse)"
        again = again and name != "model.weights.h5"  # hashing 600 MB of zeros costs time, not coverage
    elif kind == "run-symlink":
        real = run.with_name(run.name + "_real")
        os.replace(run, real)
        run.symlink_to(real.name)
        return "the run directory is a symlink to a valid run"
    elif kind == "run-is-file":
        shutil.rmtree(run)
        run.write_text("not a run")
        return "the run directory is a file"
    elif kind == "empty-run":
        shutil.rmtree(run)
        run.mkdir()
        return "the run directory is empty"
    else:
        (run / "extra.bin").write_bytes(b"\x00" * 10)
        how = "an extra file in the run"
    if again and (run / "manifest.json").is_file() and not (run / "manifest.json").is_symlink():
        try:
            rehash(run)
            how += " (hashes recomputed)"
        except (ValueError, OSError, AttributeError, TypeError, RecursionError):
            pass
    return how


ODD_VALUES = ["", " ", "nan", "inf", "-inf", "1e400", "-1", "99999999999999999999999", "0x10", "٣", "1_0",
              "3.7", "true", "\x1b]0;pwned\x07", "\x00", "é", "RED", "1,2,3", ",", "1,,2", "nan,1", "7" * 100_000,
              "=", "a=b"]


def odd_query(rng: random.Random, spec: Spec) -> tuple[list[str], str]:
    """Query fields with something odd about them."""
    fields = list(spec.query)
    kind = rng.choice(["value", "value", "value", "unknown", "missing", "duplicate", "no-equals", "empty-name",
                       "none", "case", "spaces"])
    if kind == "value":
        i = rng.randrange(len(fields))
        value = rng.choice(ODD_VALUES)
        fields[i] = fields[i].split("=", 1)[0] + "=" + value
        how = f"{fields[i].split('=', 1)[0]}={value[:20]!r}"
    elif kind == "unknown":
        fields.append(rng.choice(["nosuch=1", "X=1", "x2=3", "é=1", "\x1b[31m=1"]))
        how = "an unknown field"
    elif kind == "missing":
        fields.pop(rng.randrange(len(fields)))
        how = "a field missing"
    elif kind == "duplicate":
        fields.append(fields[0])
        how = "a field given twice"
    elif kind == "no-equals":
        fields.append("x")
        how = "a field without ="
    elif kind == "empty-name":
        fields.append("=3")
        how = "an empty field name"
    elif kind == "none":
        fields = []
        how = "no fields"
    elif kind == "case":
        fields = [f.upper() for f in fields]
        how = "upper-cased"
    else:
        fields = [f.replace("=", " = ") for f in fields]
        how = "spaces around ="
    return fields, how
