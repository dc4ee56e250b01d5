"""A listener's exception, as the library logs it: the traceback (files, lines, functions,
source lines) and the exception's type, never the exception's own text, which may quote a
message body. Installed over the generated callback dispatcher, which would hand the
library ``repr(exception)`` (reduced to the type name there) instead."""
from __future__ import annotations

import traceback
from typing import Any, Callable, List, Optional, Set

from .cubechat import cubechat as _gen

#: The first line the library looks for (``TRACE_MARK`` in bindings/src/handle.rs).
TRACE_MARK = "[cubechat-trace]\n"


def redacted_trace(e: BaseException) -> str:
    """The traceback of ``e`` and of the exceptions it was raised from, each ending with the
    exception's qualified type name; no exception text."""
    parts: List[str] = []
    seen: Set[int] = set()

    def walk(x: BaseException) -> None:
        seen.add(id(x))
        cause: Optional[BaseException] = x.__cause__
        context: Optional[BaseException] = x.__context__
        if cause is not None and id(cause) not in seen:
            walk(cause)
            parts.append("\nThe above exception was the direct cause of the following "
                         "exception:\n\n")
        elif context is not None and not x.__suppress_context__ and id(context) not in seen:
            walk(context)
            parts.append("\nDuring handling of the above exception, another exception "
                         "occurred:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(x.__traceback__)))
        t = type(x)
        parts.append(f"{t.__module__}.{t.__qualname__} (exception text withheld)\n")

    walk(e)
    return "".join(parts)


def _call_with_error(call_status: Any, make_call: Callable[[], Any],
                     write_return_value: Callable[[Any], Any], error_type: Any,
                     lower_error: Callable[[Any], Any]) -> Any:
    try:
        try:
            return write_return_value(make_call())
        except error_type as e:
            call_status.code = getattr(_gen, "_UniffiRustCallStatus").CALL_ERROR
            call_status.error_buf = lower_error(e)
    except Exception as e:  # noqa: BLE001 - every app exception goes back to the library
        call_status.code = getattr(_gen, "_UniffiRustCallStatus").CALL_UNEXPECTED_ERROR
        call_status.error_buf = getattr(_gen, "_UniffiFfiConverterString").lower(
            TRACE_MARK + redacted_trace(e))


def install() -> None:
    """Replaces the generated dispatcher (fails loudly if the generated code changed)."""
    if not hasattr(_gen, "_uniffi_trait_interface_call_with_error"):
        raise ImportError("cubechat: the generated callback dispatcher was not found")
    setattr(_gen, "_uniffi_trait_interface_call_with_error", _call_with_error)
