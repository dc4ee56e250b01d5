"""cubechat: the ConnectyCube chat SDK with a Rust core.

Everything is generated from the Rust facade into ``cubechat.cubechat`` and re-exported
here; ``cubechat.live`` turns live views into async iterators. At interpreter exit the library's runtime is stopped first, so that no cubechat thread
calls back into Python while the interpreter is finalizing.
"""
import atexit as _atexit

from .cubechat import *  # noqa: F401,F403
from .cubechat.cubechat import shutdown as _shutdown
from .cubechat.cubechat import uniffi_set_event_loop  # noqa: F401  (for listeners on other loops)
from . import live  # noqa: F401  (live views as async iterators: live.timeline, live.dialog_list)
from .live import apply_event  # noqa: F401

_atexit.register(_shutdown)
