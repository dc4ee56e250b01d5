"""cubechat: the ConnectyCube chat SDK with a Rust core.

Everything is generated from the Rust facade into ``cubechat.cubechat`` and re-exported
here. At interpreter exit the library's runtime is stopped first, so that no cubechat thread
calls back into Python while the interpreter is finalizing.
"""
import atexit as _atexit

from .cubechat import *  # noqa: F401,F403
from .cubechat.cubechat import shutdown as _shutdown
from .cubechat.cubechat import uniffi_set_event_loop  # noqa: F401  (for listeners on other loops)

_atexit.register(_shutdown)
