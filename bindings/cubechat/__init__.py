"""cubechat: the ConnectyCube chat SDK with a Rust core.

Everything is generated from the Rust facade into ``cubechat.cubechat`` and re-exported
here. At interpreter exit the library's runtime is stopped first, so that no cubechat thread
calls back into Python while the interpreter is finalizing.
"""
import atexit as _atexit

from .cubechat import *  # noqa: F401,F403
from .cubechat import shutdown as _shutdown

_atexit.register(_shutdown)
