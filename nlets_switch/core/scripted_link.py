"""The link a conformance script plays by hand (:class:`ScriptedLink`).

The same protocol object as the switch's and the client's
(:class:`~nlets_switch.core.link.Link`), with its decisions taken out: the
scenario runner (tools/scenario.py) sends what it likes and sees every frame.
"""

from __future__ import annotations

from nlets_switch.core.link import Link, Role
from nlets_switch.core.link_events import LinkEvent
from nlets_switch.errors import FrameError
from nlets_switch.wire import frames as fr

__all__ = ["ScriptedLink"]


class ScriptedLink(Link):
    """An endpoint's side that decides nothing: a script plays the protocol by hand.

    For conformance tools that must send what a correct endpoint never would
    (a frame before sign-on, an unanswered heartbeat) and see every frame the
    switch sends, as it is. What goes out is queued with :meth:`Link.send_frame`
    (numbered by this side unless the script gives a seq); every whole frame
    read is kept, heartbeats included, nothing is answered, and the state
    moves only on a framing error (closed, reported as :class:`FramingError`),
    :meth:`Link.receive_eof` or :meth:`Link.close`. It keeps no timers.
    """

    __slots__ = ("_received",)

    def __init__(self, now: float, *, max_frame: int = fr.DEFAULT_MAX_FRAME) -> None:
        super().__init__(Role.ENDPOINT, now, max_frame=max_frame)
        self._received: list[fr.Frame] = []

    def receive_data(self, data: bytes, now: float) -> list[LinkEvent]:
        """Keep the frames ``data`` completes (see :meth:`frames_received`).

        Returns ``[FramingError]`` when the stream broke (the frames before
        the break are still kept), else nothing.
        """
        self.last_rx = now
        if not self.takes_input:
            return []
        try:
            self._received += self._buffer.feed(data)
        except FrameError:
            pass
        if self._buffer.failed:
            events: list[LinkEvent] = []
            self._broken(events)
            return events
        return []

    def frames_received(self) -> list[fr.Frame]:
        """The frames read since the last call, in order; the list is emptied."""
        got, self._received = self._received, []
        return got

    def next_deadline(self) -> float | None:
        """Never: the script keeps its own time."""
        return None
