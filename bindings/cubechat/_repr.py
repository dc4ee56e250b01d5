"""Readable ``repr``/``str`` for every generated record and enum: the type and its fields,
with message text and secrets replaced by ``<redacted>`` and custom parameters shown by key
only. Types that print through Rust's own ``Debug`` (already redacted) keep it."""
from __future__ import annotations

import enum
import inspect
from typing import Any, Callable, List

from .cubechat import cubechat as _gen

#: Fields never shown: secrets and message text (a message body, a dialog's last message,
#: a search text, a bounced message's error text).
REDACTED = frozenset({"password", "old_password", "auth_secret", "token", "session_token",
                      "body", "last_message", "text", "custom_data"})
#: Fields shown by key only (custom parameters may carry app content).
KEYS_ONLY = frozenset({"custom"})


def show(name: str, value: Any) -> str:
    """One field as printed."""
    if name in REDACTED and value is not None and value != "":
        return "<redacted>"
    if name in KEYS_ONLY and isinstance(value, dict) and value:
        return "<keys: " + ", ".join(sorted(map(str, value))) + ">"
    return repr(value)


def _own(cls: type, attr: str) -> Any:
    """``attr`` as the class defines it (a variant class is an empty subclass of the class
    that defines it and of its enum)."""
    for c in cls.__mro__:
        if attr in c.__dict__:
            return c.__dict__[attr]
    return None


def _fields(cls: type) -> List[str]:
    init = _own(cls, "__init__")
    if init is None:
        return []
    try:
        params = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _rust_debug(cls: type) -> bool:
    """True when the class prints through Rust's ``Debug`` (its own ``__repr__`` lives in
    the generated file, not one made by ``@dataclass``)."""
    fn = _own(cls, "__repr__")
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_filename == _gen.__file__


def _printer(label: str, fields: List[str]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{f}={show(f, getattr(self, f, None))}" for f in fields)
        return f"{label}({inner})"
    return __repr__


def _install(cls: type, label: str) -> None:
    if _rust_debug(cls):
        return
    printer = _printer(label, _fields(cls))
    setattr(cls, "__repr__", printer)
    setattr(cls, "__str__", printer)


def _error_text(cls: type) -> Callable[[Any], str]:
    doc = (cls.__doc__ or cls.__name__).strip().split("\n\n")[0]
    text = " ".join(doc.split())

    def __str__(self: Any) -> str:
        return text
    return __str__


def install() -> None:
    """Installs the printers on every record and enum of the generated module."""
    for name, obj in list(vars(_gen).items()):
        if name.startswith("_") or not isinstance(obj, type) or obj.__module__ != _gen.__name__:
            continue
        if issubclass(obj, enum.Enum):
            setattr(obj, "__repr__", lambda self: f"{type(self).__name__}.{self.name}")
            continue
        variants = [v for v in vars(obj).values() if isinstance(v, type)
                    and v.__qualname__.startswith(obj.__name__ + ".")]
        if name == "ChatError":
            # Exceptions print their fields already; a variant without fields gets its
            # doc's first paragraph instead of an empty message.
            for v in variants:
                if not _fields(v) and isinstance(v, type) and issubclass(v, BaseException):
                    setattr(v, "__str__", _error_text(v))
            continue
        if variants:
            for v in variants:
                _install(v, f"{name}.{v.__name__.rsplit('.', 1)[-1]}")
        elif "__eq__" in obj.__dict__ and "__str__" in obj.__dict__:
            _install(obj, name)
