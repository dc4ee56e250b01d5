"""Live views as Python async iterators.

``ChatClient.watch_timeline`` and ``ChatClient.watch_dialogs`` call a listener with the
snapshot first (``RESET``), then one positional diff per change (``PUSH_BACK``,
``PUSH_FRONT``, ``INSERT``, ``SET``, ``REMOVE``, ``RESET``). :func:`apply_event` applies
one to a list; :func:`timeline` and :func:`dialog_list` wrap a view as an async iterator
of whole lists (the snapshot, then the list after each change). Glue only: the order and
the diffs come from the engine.
"""
import asyncio

from .cubechat import DialogListListener, TimelineListener

__all__ = ["apply_event", "timeline", "dialog_list", "LiveList"]


def apply_event(items, event):
    """Applies one live-view event (``TimelineEvent`` or ``DialogListEvent``) to the list
    ``items`` in place. Raises ``IndexError`` for an index the list does not have (a list
    that did not follow the view from its first event)."""
    kind = type(event).__name__.rsplit(".", 1)[-1]  # "TimelineEvent.RESET" -> "RESET"
    if kind == "RESET":
        items[:] = list(event.messages if hasattr(event, "messages") else event.dialogs)
        return
    value = event.message if hasattr(event, "message") else getattr(event, "dialog", None)
    if kind == "PUSH_BACK":
        items.append(value)
    elif kind == "PUSH_FRONT":
        items.insert(0, value)
    elif kind == "INSERT":
        if event.index > len(items):
            raise IndexError(f"insert at {event.index} into {len(items)} items")
        items.insert(event.index, value)
    elif kind == "SET":
        if event.index >= len(items):
            raise IndexError(f"set at {event.index} of {len(items)} items")
        items[event.index] = value
    elif kind == "REMOVE":
        if event.index >= len(items):
            raise IndexError(f"remove at {event.index} of {len(items)} items")
        del items[event.index]
    else:
        raise ValueError(f"not a live-view event: {event!r}")


class LiveList(DialogListListener, TimelineListener):
    """An async iterator of whole lists for one live view: the snapshot, then the list after
    each change. ``close()`` (or leaving ``async with``) cancels the view."""

    def __init__(self, loop=None):
        self._loop = loop or asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._items = []
        self.handle = None

    def _event(self, event):
        # On a cubechat thread: hand the event to the loop, in order.
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def on_timeline_event(self, event):
        self._event(event)

    def on_dialog_list_event(self, event):
        self._event(event)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.handle is None:
            raise StopAsyncIteration
        event = await self._queue.get()
        apply_event(self._items, event)
        return list(self._items)

    def close(self):
        """Stops the view (idempotent)."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


def timeline(client, dialog_id, limit):
    """The live timeline of ``dialog_id`` (the newest ``limit`` cached messages, then every
    change) as an async iterator of lists, oldest message first. Call inside a running loop."""
    live = LiveList()
    live.handle = client.watch_timeline(dialog_id, limit, live)
    return live


def dialog_list(client, limit):
    """The live dialog list (the first ``limit`` dialogs, then every change) as an async
    iterator of lists, newest activity first. Call inside a running loop."""
    live = LiveList()
    live.handle = client.watch_dialogs(limit, live)
    return live
