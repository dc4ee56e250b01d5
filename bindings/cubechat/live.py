"""Live views as Python async iterators.

``ChatClient.watch_timeline`` and ``ChatClient.watch_dialogs`` call a listener with the
snapshot first (``RESET``), then one positional diff per change (``PUSH_BACK``,
``PUSH_FRONT``, ``INSERT``, ``SET``, ``REMOVE``, ``RESET``). :func:`apply_event` applies
one to a list; :class:`LiveList` (from :func:`timeline`, :func:`dialog_list`, or
``ChatClient.timeline``/``ChatClient.dialog_list``) wraps a view as an async iterator of
whole lists (the snapshot, then the list after each change). Glue only: the order and the
diffs come from the engine.
"""
from __future__ import annotations

from typing import Any, Generic, List, TypeVar, Union

from .cubechat import cubechat as _gen
from .cubechat import Dialog, DialogListEvent, TimelineEvent, TimelineMessage
from .streams import DEFAULT_WINDOW, EventStream

__all__ = ["apply_event", "timeline", "dialog_list", "LiveList"]

V = TypeVar("V")


def apply_event(items: List[Any], event: Union[TimelineEvent, DialogListEvent]) -> None:
    """Applies one live-view event (``TimelineEvent`` or ``DialogListEvent``) to the list
    ``items`` in place. Raises ``IndexError`` for an index the list does not have (a list
    that did not follow the view from its first event)."""
    e: Any = event
    kind = type(e).__name__.rsplit(".", 1)[-1]  # "TimelineEvent.RESET" -> "RESET"
    if kind == "RESET":
        items[:] = list(e.messages if hasattr(e, "messages") else e.dialogs)
        return
    value = e.message if hasattr(e, "message") else getattr(e, "dialog", None)
    if kind == "PUSH_BACK":
        items.append(value)
    elif kind == "PUSH_FRONT":
        items.insert(0, value)
    elif kind == "INSERT":
        if e.index > len(items):
            raise IndexError(f"insert at {e.index} into {len(items)} items")
        items.insert(e.index, value)
    elif kind == "SET":
        if e.index >= len(items):
            raise IndexError(f"set at {e.index} of {len(items)} items")
        items[e.index] = value
    elif kind == "REMOVE":
        if e.index >= len(items):
            raise IndexError(f"remove at {e.index} of {len(items)} items")
        del items[e.index]
    else:
        raise ValueError(f"not a live-view event: {event!r}")


class LiveList(Generic[V]):
    """An async iterator of whole lists for one live view: the snapshot, then the list after
    each change. It owns the view's subscription: ``close()``, leaving ``async with``,
    dropping the iterator or closing the client ends it; it ends by itself when the store
    closes."""

    def __init__(self, events: EventStream[Any]) -> None:
        self._events = events
        self._items: List[V] = []

    def __aiter__(self) -> "LiveList[V]":
        return self

    async def __anext__(self) -> List[V]:
        event = await self._events.__anext__()
        apply_event(self._items, event)
        return list(self._items)

    @property
    def active(self) -> bool:
        """True until closed or until the view ended."""
        return self._events.active

    def close(self) -> None:
        """Stops the view (idempotent)."""
        self._events.close()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    async def __aenter__(self) -> "LiveList[V]":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LiveList of {len(self._items)}, {'active' if self.active else 'ended'}>"


def _view(subscribe: Any, window: int) -> EventStream[Any]:
    from .client import Relay  # the client module imports this one

    events: EventStream[Any] = EventStream(window)
    events._attach(subscribe(Relay(events._feed.put)))
    return events


def timeline(client: _gen.ChatClient, dialog_id: str, limit: int,
             window: int = DEFAULT_WINDOW) -> LiveList[TimelineMessage]:
    """The live timeline of ``dialog_id`` (the newest ``limit`` cached messages, then every
    change) as an async iterator of lists, oldest message first. Call inside a running loop."""
    return LiveList(_view(
        lambda r: _gen.ChatClient.watch_timeline(client, dialog_id, limit, r), window))


def dialog_list(client: _gen.ChatClient, limit: int,
                window: int = DEFAULT_WINDOW) -> LiveList[Dialog]:
    """The live dialog list (the first ``limit`` dialogs, then every change) as an async
    iterator of lists, newest activity first. Call inside a running loop."""
    return LiveList(_view(lambda r: _gen.ChatClient.watch_dialogs(client, limit, r), window))
