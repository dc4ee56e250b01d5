"""``ChatClient``: the generated client plus what Python code expects of it.

- Every event family as an async iterator (:class:`~cubechat.streams.EventStream`):
  ``async for m in client.messages(): ...``; the connection state as a current value
  (:attr:`ChatClient.state`) and a stream (:meth:`ChatClient.connection_states`).
- ``async with ChatClient(config) as client:`` ends every stream and subscription of the
  client, disconnects chat and closes the local store on the way out.
- ``subscribe_*``/``watch_*`` accept a plain callable or an ``async def`` wherever a listener
  object is expected, and the client keeps the handle they return: events keep coming until
  ``handle.cancel()`` or the client is closed, whether or not the app keeps the handle.

Glue only: order, filtering and every decision come from the engine. The generated class
without these additions is ``cubechat.cubechat.ChatClient``.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, List, Optional, TypeVar, Union

from .cubechat import cubechat as _gen
from .cubechat import (ConnectionListener, ConnectionState, Dialog, DialogListListener,
                       LastActivityListener, MessageChange, MessageChangeListener,
                       MessageErrorListener, MessageListener, MessageStatus, PresenceEvent,
                       PresenceListener, ReceivedMessage, SessionEvent, SessionListener,
                       StatusListener, SubscriptionHandle, SystemMessage,
                       SystemMessageListener, TimelineListener, TimelineMessage,
                       TypingListener)
from .live import LiveList
from .streams import (DEFAULT_WINDOW, EventStream, LastActivity, MessageError, Typing,
                      call_listener)

__all__ = ["ChatClient", "Relay"]

L = TypeVar("L")


class Relay(ConnectionListener, MessageListener, StatusListener, TypingListener,
            MessageChangeListener, SystemMessageListener, MessageErrorListener,
            PresenceListener, LastActivityListener, SessionListener, DialogListListener,
            TimelineListener):
    """One listener object for every listener interface, forwarding each event to ``emit``.
    With ``pack`` the events with several arguments arrive as one value (:class:`Typing`,
    :class:`MessageError`, :class:`LastActivity`); without it ``emit`` gets the arguments of
    the listener method as they are."""

    def __init__(self, emit: Callable[..., None], pack: bool = True) -> None:
        self._emit = emit
        self._pack = pack

    def on_state(self, state: ConnectionState) -> None:
        self._emit(state)

    def on_message(self, message: ReceivedMessage) -> None:
        self._emit(message)

    def on_status(self, status: MessageStatus) -> None:
        self._emit(status)

    def on_typing(self, dialog_id: Optional[str], user_id: int, composing: bool) -> None:
        if self._pack:
            self._emit(Typing(dialog_id, user_id, composing))
        else:
            self._emit(dialog_id, user_id, composing)

    def on_change(self, change: MessageChange) -> None:
        self._emit(change)

    def on_system_message(self, message: SystemMessage) -> None:
        self._emit(message)

    def on_message_error(self, message_id: str, code: int, text: str) -> None:
        if self._pack:
            self._emit(MessageError(message_id, code, text))
        else:
            self._emit(message_id, code, text)

    def on_presence(self, event: PresenceEvent) -> None:
        self._emit(event)

    def on_last_activity(self, user_id: int, seconds: int) -> None:
        if self._pack:
            self._emit(LastActivity(user_id, seconds))
        else:
            self._emit(user_id, seconds)

    def on_session_event(self, event: SessionEvent) -> None:
        self._emit(event)

    def on_dialog_list_event(self, event: _gen.DialogListEvent) -> None:
        self._emit(event)

    def on_timeline_event(self, event: _gen.TimelineEvent) -> None:
        self._emit(event)


def as_listener(listener: Union[L, Callable[..., Any]], kind: type) -> L:
    """``listener`` itself when it implements ``kind``; else a callable (plain or
    ``async def``) wrapped so the library can call it with the listener method's
    arguments (see :func:`cubechat.streams.call_listener`)."""
    if isinstance(listener, kind):
        return listener  # type: ignore[return-value]
    if callable(listener):
        return Relay(call_listener(listener), pack=False)  # type: ignore[return-value]
    raise TypeError(f"expected a {kind.__name__} or a callable, got {type(listener).__name__}")


class ChatClient(_gen.ChatClient):
    """The cubechat client (see the module docs for what this layer adds to the generated
    one). Thread-safe like the generated client; streams belong to the loop they were made
    on."""

    def __init__(self, config: _gen.ClientConfig) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._streams: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._kept: List[SubscriptionHandle] = []

    # --- lifetime ------------------------------------------------------------------------
    async def __aenter__(self) -> "ChatClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Ends every stream and every subscription made through this client (their
        iterators stop, their listeners are not called again). Idempotent."""
        with self._lock:
            streams = list(self._streams)
            kept, self._kept = self._kept, []
        for s in streams:
            s.close()
        for h in kept:
            h.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then disconnects chat and closes the local store (queued messages
        stay in it). The session stays valid."""
        self.close()
        await self.disconnect_chat()
        self.close_store()

    def _keep(self, handle: SubscriptionHandle) -> SubscriptionHandle:
        with self._lock:
            self._kept = [h for h in self._kept if h.is_active()]
            self._kept.append(handle)
        return handle

    def _track(self, stream: Any) -> None:
        with self._lock:
            self._streams.add(stream)

    def _stream(self, subscribe: Callable[[Relay], SubscriptionHandle],
                window: int) -> EventStream[Any]:
        stream: EventStream[Any] = EventStream(window)
        stream._attach(subscribe(Relay(stream._feed.put)))
        self._track(stream)
        return stream

    # --- streams -------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        """The chat connection state now."""
        return self.connection_state()

    def connection_states(self, window: int = DEFAULT_WINDOW) -> EventStream[ConnectionState]:
        """The connection state now, then every change. Call inside a running loop."""
        return self._stream(super().subscribe_connection, window)

    def messages(self, window: int = DEFAULT_WINDOW) -> EventStream[ReceivedMessage]:
        """New messages (each id once), from now on. Call inside a running loop."""
        return self._stream(super().subscribe_messages, window)

    def statuses(self, window: int = DEFAULT_WINDOW) -> EventStream[MessageStatus]:
        """Sent / failed / delivered / read statuses. Call inside a running loop."""
        return self._stream(super().subscribe_statuses, window)

    def typing(self, window: int = DEFAULT_WINDOW) -> EventStream[Typing]:
        """Typing notifications. Call inside a running loop."""
        return self._stream(super().subscribe_typing, window)

    def message_changes(self, window: int = DEFAULT_WINDOW) -> EventStream[MessageChange]:
        """Edits, deletions and reaction changes. Call inside a running loop."""
        return self._stream(super().subscribe_message_changes, window)

    def system_messages(self, window: int = DEFAULT_WINDOW) -> EventStream[SystemMessage]:
        """System messages. Call inside a running loop."""
        return self._stream(super().subscribe_system_messages, window)

    def message_errors(self, window: int = DEFAULT_WINDOW) -> EventStream[MessageError]:
        """Messages the server bounced. Call inside a running loop."""
        return self._stream(super().subscribe_message_errors, window)

    def presence(self, window: int = DEFAULT_WINDOW) -> EventStream[PresenceEvent]:
        """Last-activity pushes, room occupants joining and leaving, kicks. Call inside a
        running loop."""
        return self._stream(super().subscribe_presence, window)

    def session_events(self, window: int = DEFAULT_WINDOW) -> EventStream[SessionEvent]:
        """The current session, then every change. Call inside a running loop."""
        return self._stream(super().subscribe_session, window)

    async def last_activities(self, user_id: int,
                              window: int = DEFAULT_WINDOW) -> EventStream[LastActivity]:
        """One user's logins and logouts (subscribes on the server too)."""
        stream: EventStream[LastActivity] = EventStream(window)
        stream._attach(await super().watch_last_activity(user_id, Relay(stream._feed.put)))
        self._track(stream)
        return stream

    def timeline(self, dialog_id: str, limit: int,
                 window: int = DEFAULT_WINDOW) -> LiveList[TimelineMessage]:
        """The live timeline of a dialog as an async iterator of whole lists (the newest
        ``limit`` cached messages, oldest first, then the list after each change)."""
        events: EventStream[Any] = EventStream(window)
        events._attach(super().watch_timeline(dialog_id, limit, Relay(events._feed.put)))
        self._track(events)
        return LiveList(events)

    def dialog_list(self, limit: int, window: int = DEFAULT_WINDOW) -> LiveList[Dialog]:
        """The live dialog list as an async iterator of whole lists (the first ``limit``
        dialogs, newest activity first, then the list after each change)."""
        events: EventStream[Any] = EventStream(window)
        events._attach(super().watch_dialogs(limit, Relay(events._feed.put)))
        self._track(events)
        return LiveList(events)

    # --- listeners: objects, plain callables or async def; handles kept by the client ---
    def subscribe_connection(
            self, listener: Union[ConnectionListener, Callable[[ConnectionState], Any]]
    ) -> SubscriptionHandle:
        """See the generated method; also takes a callable, and the client keeps the
        handle (events keep coming until ``cancel()`` or :meth:`close`)."""
        return self._keep(super().subscribe_connection(
            as_listener(listener, ConnectionListener)))

    def subscribe_messages(
            self, listener: Union[MessageListener, Callable[[ReceivedMessage], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_messages(as_listener(listener, MessageListener)))

    def subscribe_statuses(
            self, listener: Union[StatusListener, Callable[[MessageStatus], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_statuses(as_listener(listener, StatusListener)))

    def subscribe_typing(
            self, listener: Union[TypingListener, Callable[[Optional[str], int, bool], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`; a callable gets ``(dialog_id, user_id,
        composing)``."""
        return self._keep(super().subscribe_typing(as_listener(listener, TypingListener)))

    def subscribe_message_changes(
            self, listener: Union[MessageChangeListener, Callable[[MessageChange], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_message_changes(
            as_listener(listener, MessageChangeListener)))

    def subscribe_system_messages(
            self, listener: Union[SystemMessageListener, Callable[[SystemMessage], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_system_messages(
            as_listener(listener, SystemMessageListener)))

    def subscribe_message_errors(
            self, listener: Union[MessageErrorListener, Callable[[str, int, str], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`; a callable gets ``(message_id, code, text)``."""
        return self._keep(super().subscribe_message_errors(
            as_listener(listener, MessageErrorListener)))

    def subscribe_presence(
            self, listener: Union[PresenceListener, Callable[[PresenceEvent], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_presence(as_listener(listener, PresenceListener)))

    def subscribe_session(
            self, listener: Union[SessionListener, Callable[[SessionEvent], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().subscribe_session(as_listener(listener, SessionListener)))

    async def watch_last_activity(
            self, user_id: int,
            listener: Union[LastActivityListener, Callable[[int, int], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`; a callable gets ``(user_id, seconds)``."""
        return self._keep(await super().watch_last_activity(
            user_id, as_listener(listener, LastActivityListener)))

    def watch_dialogs(
            self, limit: int,
            listener: Union[DialogListListener, Callable[[_gen.DialogListEvent], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().watch_dialogs(limit, as_listener(listener, DialogListListener)))

    def watch_timeline(
            self, dialog_id: str, limit: int,
            listener: Union[TimelineListener, Callable[[_gen.TimelineEvent], Any]]
    ) -> SubscriptionHandle:
        """See :meth:`subscribe_connection`."""
        return self._keep(super().watch_timeline(
            dialog_id, limit, as_listener(listener, TimelineListener)))
