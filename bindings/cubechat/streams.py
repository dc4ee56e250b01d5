"""Event streams: every cubechat subscription as an async iterator, and plain callables or
``async def`` functions as listeners.

Threads. The library calls a listener on the subscription's own thread (``cubechat-deliver``),
one event at a time, in order, never on its engine threads. :class:`EventStream` hands each
event to the asyncio loop it was created on (``call_soon_threadsafe``), so ``async for``
bodies run on that loop. At most ``window`` events wait in the stream; beyond that the
delivery thread waits for the consumer (and events wait, in order, in the library's queue of
that subscription: see ``SubscriptionHandle``), so a slow consumer delays only its own stream.

Lifetimes. A stream owns its subscription: leaving ``async for`` with ``break`` (the
iterator is dropped), ``close()``/``aclose()``, leaving ``async with``, garbage collection
and closing the client all cancel it. The stream ends (``StopAsyncIteration``) after the
last event when the subscription ends on the library's side (client gone, store closed for
a live view, or the consumer fell 65,536 events behind).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import threading
import weakref
from typing import (Any, Awaitable, Callable, Coroutine, Deque, Generic, NamedTuple,
                    Optional, Set, TypeVar, Union)

from .cubechat import SubscriptionHandle

__all__ = ["EventStream", "Typing", "MessageError", "LastActivity", "DEFAULT_WINDOW"]

T = TypeVar("T")

#: How many events an :class:`EventStream` holds before its delivery thread waits.
DEFAULT_WINDOW = 256


class Typing(NamedTuple):
    """A typing notification: ``composing`` true when ``user_id`` starts typing, false when
    they pause. ``dialog_id`` is None for a private chat the server did not name."""

    dialog_id: Optional[str]
    user_id: int
    composing: bool


class MessageError(NamedTuple):
    """A message the server bounced (e.g. the recipient blocked this user). ``text`` is the
    server's error text (not shown by ``repr``)."""

    message_id: str
    code: int
    text: str

    def __repr__(self) -> str:
        return f"MessageError(message_id={self.message_id!r}, code={self.code}, text=<redacted>)"


class LastActivity(NamedTuple):
    """One user's login (``seconds`` 0) or logout (seconds since last seen)."""

    user_id: int
    seconds: int


# Tasks waiting for a subscription's end; asyncio keeps only weak references to tasks.
_WATCHERS: Set["asyncio.Task[None]"] = set()


class _Feed:
    """The side of a stream the delivery thread sees. Holds the stream only weakly, so a
    dropped stream is collected (and its subscription cancelled) although the library still
    holds this listener."""

    def __init__(self, stream: "EventStream[Any]", loop: asyncio.AbstractEventLoop,
                 window: int) -> None:
        self.ref = weakref.ref(stream)
        self.loop = loop
        self.slots = threading.Semaphore(window)
        self.closed = threading.Event()

    def put(self, item: Any) -> None:
        """On the delivery thread: waits for a free slot, then hands ``item`` to the loop."""
        while not self.slots.acquire(timeout=0.25):
            if self.closed.is_set() or self.ref() is None or self.loop.is_closed():
                return
        stream = self.ref()
        if stream is None or self.closed.is_set():
            self.slots.release()
            return
        try:
            self.loop.call_soon_threadsafe(stream._push, item)
        except RuntimeError:  # the loop is closed: nobody will read this stream any more
            self.closed.set()
            self.slots.release()


class EventStream(Generic[T]):
    """An async iterator of one subscription's events (see the module docs for threads and
    lifetimes). Create it inside a running loop, through the client's stream methods."""

    def __init__(self, window: int = DEFAULT_WINDOW,
                 loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._items: Deque[T] = collections.deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._done = False
        self._handle: Optional[SubscriptionHandle] = None
        self._feed = _Feed(self, self._loop, window)
        self._on_close: Optional[Callable[[], None]] = None

    # --- wiring (used by the client) -------------------------------------------------
    def _attach(self, handle: SubscriptionHandle) -> None:
        """Takes ownership of ``handle`` and watches for its end."""
        self._handle = handle
        ref = weakref.ref(self)
        task = self._loop.create_task(_watch_end(handle, ref))
        _WATCHERS.add(task)
        task.add_done_callback(_WATCHERS.discard)

    def _push(self, item: T) -> None:
        """On the loop: one event from the feed."""
        if self._done:
            self._feed.slots.release()
            return
        self._items.append(item)
        self._wake()

    def _end(self) -> None:
        """On the loop: the subscription ended; iteration stops after the queued events."""
        self._done = True
        self._handle = None
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # --- the async iterator -----------------------------------------------------------
    def __aiter__(self) -> "EventStream[T]":
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._done:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        self._feed.slots.release()
        return item

    @property
    def active(self) -> bool:
        """True until the stream is closed or its subscription ended."""
        return not self._done and self._handle is not None and self._handle.is_active()

    def close(self) -> None:
        """Cancels the subscription and ends the iteration at once (events not yet read
        are dropped). Idempotent; callable from any thread."""
        self._feed.closed.set()
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        if not self._done:
            self._done = True
            self._items.clear()
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                pass
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    async def aclose(self) -> None:
        """Same as :meth:`close`, for ``contextlib.aclosing`` and friends."""
        self.close()

    async def __aenter__(self) -> "EventStream[T]":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Garbage-collected (e.g. `break` out of `async for` over a fresh stream): end the
        # subscription. Never touches the loop (this may run on any thread, after the loop).
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.closed.set()
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.cancel()

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<EventStream {state}, {len(self._items)} waiting>"


async def _watch_end(handle: SubscriptionHandle, ref: "weakref.ref[EventStream[Any]]") -> None:
    """Ends the stream once the library says its subscription ended."""
    try:
        await handle.ended()
    finally:
        stream = ref()
        if stream is not None:
            stream._end()


# --- callables as listeners ---------------------------------------------------------------

Callback = Callable[..., Union[None, Awaitable[None], object]]


def call_listener(fn: Callback) -> Callable[..., None]:
    """Turns a plain callable or an ``async def`` into a function the delivery thread can
    call with the listener method's arguments. An ``async def`` runs on the loop running
    where this is called (so call it inside that loop), and the delivery thread waits until
    it finishes: events stay in order and a slow handler delays only its own subscription.
    An exception raised by either kind reaches the library, which logs it (with a redacted
    traceback) and keeps delivering."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise TypeError("an `async def` listener needs a running event loop: subscribe "
                            "from inside it") from None

        def run_async(*args: Any) -> None:
            coro: Coroutine[Any, Any, Any] = fn(*args)  # type: ignore[assignment]
            fut: "concurrent.futures.Future[Any]" = asyncio.run_coroutine_threadsafe(coro, loop)
            while True:
                try:
                    fut.result(timeout=1.0)
                    return
                except concurrent.futures.TimeoutError:
                    if loop.is_closed() or not loop.is_running():
                        fut.cancel()
                        return

        return run_async

    def run_sync(*args: Any) -> None:
        fn(*args)

    return run_sync
