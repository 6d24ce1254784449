"""Incremental detokenization: token ids in, safe text deltas out.

Two things are held back from a delta until they are settled:

- an incomplete UTF-8 character: byte-level tokenizers split multi-byte characters
  (emoji, CJK) across tokens, and a partial one decodes to U+FFFD;
- a possible beginning of a stop sequence: "Ans" may become "Answer:", so it is only
  sent once the next tokens show it is not a stop.

Decoding re-reads only a short window of recent tokens (``prefix``..end), not the whole
answer, so each token costs the same however long the answer grows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Turns a growing list of token ids into text pieces that never split a character."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self.ids: list[int] = []
        #: Tokens before ``_prefix`` are done with; ``_prefix``..``_read`` were already emitted.
        self._prefix = 0
        self._read = 0

    def push(self, token: int) -> str:
        """Add one token; return the newly completed text (may be "")."""
        self.ids.append(token)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        # Decoding a window may change earlier characters (e.g. a space merge), so only
        # text beyond the already-emitted window's text is new.
        if len(after) > len(before) and not after.endswith(REPLACEMENT):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Text still held back at the end, minus a character that never completed."""
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return after[len(before) :].rstrip(REPLACEMENT) if len(after) > len(before) else ""


class StopMatcher:
    """Finds stop sequences in streamed text and holds back possible partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add ``text``; return (text safe to emit, whether a stop sequence was found).

        After a stop is found, the emitted text ends right before it.
        """
        if not self._stops:
            return text, False
        pending = self._pending + text
        cut = min((i for i in (pending.find(stop) for stop in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._pending = ""
            return pending[:cut], True
        keep = self._held_back(pending)
        self._pending = pending[len(pending) - keep :] if keep else ""
        return pending[: len(pending) - keep], False

    def flush(self) -> str:
        """The held-back text at the end of a generation that was not a stop after all."""
        pending, self._pending = self._pending, ""
        return pending

    def _held_back(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop sequence."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest


class TextStream:
    """Decoder and stop matcher together: what one sequence sends as it grows."""

    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str]) -> None:
        self.decoder = IncrementalDecoder(decode)
        self.stops = StopMatcher(stops)

    def push(self, token: int) -> tuple[str, bool]:
        """Add one token; return (delta, stopped)."""
        piece = self.decoder.push(token)
        if not piece:
            return "", False
        return self.stops.feed(piece)

    def finish(self) -> tuple[str, bool]:
        """The last delta of a generation that ended for another reason, and whether the
        held-back tail turned out to hold a stop sequence after all."""
        tail, stopped = self.stops.feed(self.decoder.flush())
        return (tail, True) if stopped else (tail + self.stops.flush(), False)
