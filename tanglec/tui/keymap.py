"""Every action of `tanglec explore`, its default keys, and the user's overrides.

The footer, the help screen and the command palette are all generated from `ACTIONS`, so a key
changed in `$XDG_CONFIG_HOME/tanglec/keys.toml` (default ~/.config/tanglec/keys.toml) shows everywhere:

    [keys]
    train_start = "t"          # an action id from ACTIONS
    editor = "ctrl+e,f2"       # several keys: comma-separated
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    id: str           # the binding id users override
    action: str       # the Textual action it runs
    keys: str         # default keys, comma-separated
    title: str        # footer and palette
    help: str         # help screen and palette
    group: str        # help screen section
    footer: bool = True


ACTIONS = [
    Action("graph", "show('graph')", "1", "Graph", "the module graph", "Views"),
    Action("train", "show('train')", "2", "Train", "training: progress, route × module grid", "Views"),
    Action("query", "show('query')", "3", "Query", "ask the model; the query's route lights up", "Views"),
    Action("spec", "show('spec')", "4", "Spec", "the spec and its problems", "Views", footer=False),
    Action("editor", "edit", "ctrl+e", "Edit", "edit the spec: problems appear as you type", "Editor"),
    Action("save", "save", "ctrl+s", "Save", "write the edited spec to the file it came from", "Editor",
           footer=False),
    Action("format", "format", "ctrl+t", "Format", "format the edited spec (like `tanglec fmt`)", "Editor",
           footer=False),
    Action("compile", "compile", "ctrl+b", "Compile", "save, then train the edited spec", "Editor",
           footer=False),
    Action("train_start", "train_start", "s", "Start", "start training (again: from scratch)", "Train"),
    Action("train_pause", "train_pause", "p", "Pause/Resume", "pause / resume at the next evaluation", "Train"),
    Action("train_stop", "train_stop", "x", "Stop", "stop: the run directory is left as it was", "Train"),
    Action("train_save", "train_save", "w", "Write stopped", "write a stopped training to the run directory",
           "Train"),
    Action("help", "help", "question_mark,f1", "Help", "every key", "App"),
    Action("reload", "reload", "ctrl+r", "Reload", "reload the spec from disk (drops unsaved edits)", "App"),
    Action("quit", "quit", "q", "Quit", "quit (a running training stops; the run keeps its last state)", "App"),
]


def bindings() -> list[Binding]:
    return [Binding(a.keys, a.action, a.title, show=a.footer, id=a.id) for a in ACTIONS]


def keys_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tanglec" / "keys.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """The user's overrides ({action id: keys}) and what was wrong in the file (ignored, not fatal)."""
    path = keys_file() if path is None else path
    if not path.is_file():
        return {}, []
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        return {}, [f"{path}: {err}"]
    keys = table.get("keys", {})
    if not isinstance(keys, dict):
        return {}, [f"{path}: [keys] must be a table of action = \"key\""]
    known = {a.id for a in ACTIONS}
    keymap, problems = {}, []
    for action, value in keys.items():
        if action not in known:
            problems.append(f"{path}: unknown action {action!r} (known: {', '.join(sorted(known))})")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: {action} must be a key such as \"ctrl+k\"")
        else:
            keymap[action] = ",".join(k.strip() for k in value.split(","))
    return keymap, problems


def effective_keys(keymap: dict[str, str], action: Action) -> str:
    """The keys of one action as shown to the user ("question_mark,f1" -> "? / f1")."""
    keys = keymap.get(action.id, action.keys)
    return " / ".join("?" if k == "question_mark" else k for k in keys.split(","))
