"""cubechat: the ConnectyCube chat SDK with a Rust core.

Everything is generated from the Rust facade into ``cubechat.cubechat`` and re-exported
here, with a thin hand-written layer on top:

- :class:`ChatClient` (``cubechat.client``): event streams as async iterators
  (``async for m in client.messages():``), the connection state as a value and a stream,
  ``async with``, plain callables and ``async def`` as listeners;
- ``cubechat.streams``: :class:`EventStream` and the values of multi-argument events;
- ``cubechat.live``: live dialog lists and timelines as async iterators of lists;
- readable ``repr`` of every record and enum (message text and secrets redacted), and
  listener exceptions logged with their traceback (never their text).

Threads: listeners run on their subscription's own thread, never on the library's engine
threads (see ``SubscriptionHandle``); streams deliver into the asyncio loop that made them.
At interpreter exit the library is shut down first, so that no cubechat thread calls back
into Python while the interpreter is finalizing.
"""
import atexit as _atexit

from .cubechat import *  # noqa: F401,F403
from .cubechat.cubechat import shutdown as _shutdown
from .cubechat.cubechat import uniffi_set_event_loop as uniffi_set_event_loop
from . import _repr, _trace

_repr.install()
_trace.install()

from . import live as live  # noqa: E402
from . import streams as streams  # noqa: E402
from .client import ChatClient as ChatClient  # noqa: E402
from .live import LiveList as LiveList, apply_event as apply_event  # noqa: E402
from .streams import (EventStream as EventStream, LastActivity as LastActivity,  # noqa: E402
                      MessageError as MessageError, Typing as Typing)

_atexit.register(_shutdown)
