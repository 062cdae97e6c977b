"""Text fields that apply backspace and delete in the order they were typed.

Textual inserts a printable key as soon as the field handles it, but runs backspace and delete as
bindings, a step later: in a burst (a fast typist, a paste of keys, tmux), "⌫5" inserts the 5 and then
deletes it, so both keys seem lost. These fields apply the two edits on the key itself, in order.
"""
from __future__ import annotations

from textual import events
from textual.widgets import Input, TextArea

IN_ORDER = {"backspace": "action_delete_left", "delete": "action_delete_right"}


class _EditsInOrder:
    async def _on_key(self, event: events.Key) -> None:
        edit = IN_ORDER.get(event.key)
        if edit is None or getattr(self, "read_only", False):
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        getattr(self, edit)()


class OrderedInput(_EditsInOrder, Input):
    """An Input whose backspace and delete keep their place in a burst of keys."""


class OrderedTextArea(_EditsInOrder, TextArea):
    """A TextArea whose backspace and delete keep their place in a burst of keys."""
