"""Completion at the terminal's prompt (``nlets-switch term``, docs/term.md).

Commands, message keys, the terminal's own ORI as origin, destinations and a
key's field tags, read from the schemas the switch validates with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from nlets_switch.wire.schema import SchemaSet

__all__ = ["COMMANDS", "NletsCompleter"]

COMMANDS = ("/help", "/form", "/resend", "/last", "/save", "/quit")


class NletsCompleter(Completer):
    """Completes commands, keys, the origin, destinations and field tags."""

    def __init__(self, ori: str, schemas: SchemaSet, destinations: Sequence[str]) -> None:
        self.ori = ori
        self.schemas = schemas
        self.destinations = sorted(set(destinations))

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterator[Completion]:
        """What may come at the cursor."""
        text = document.text_before_cursor
        if text.startswith("/"):
            if " " not in text:
                yield from _starting(text, COMMANDS)
            elif text.startswith("/form "):
                yield from _starting(text[6:].upper(), self.schemas)
            return
        if ".TXT" in text:
            key = text.split(".", 1)[0]
            schema = self.schemas.get(key)
            if schema is None or schema.free_text:
                return
            word = text.rsplit(".", 1)[-1].rsplit(" ", 1)[-1]
            if "/" in word:
                return
            yield from _starting(word, [f"{t}/" for t in schema.fields])
            return
        parts = text.split(".")
        if len(parts) == 1:
            yield from _starting(parts[0], self.schemas)
        elif len(parts) == 2:
            yield from _starting(parts[1], [self.ori])
        elif len(parts) == 3:
            word = parts[2].rsplit(",", 1)[-1]
            yield from _starting(word, self.destinations)
            if parts[2]:
                yield from _starting(word, [f"{parts[2]}.TXT"], whole=parts[2])


def _starting(word: str, options: Iterable[str], whole: str | None = None) -> Iterator[Completion]:
    base = word if whole is None else whole
    for o in options:
        if o.startswith(base) and o != base:
            yield Completion(o, start_position=-len(base))
