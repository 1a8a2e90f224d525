"""Card work that its caller gave up on: once its flag is set, no further APDU of it is sent.

A caller's flag travels in a context variable: the API sets one per JSON-RPC call (`caller_scope`) and
sets it when the call is cancelled (its WebSocket closed); the card service sets it when it stops
waiting (TIMEOUT). `CardConnection.submit` takes the flag of the code that submits an operation
(`asyncio.to_thread` carries context variables into its thread; the card service carries them into
the card's worker thread) and checks it before every APDU: an operation in progress stops as soon as
its current APDU returns, and one still queued never starts. The card is then free for the next
caller instead of finishing work nobody waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from bridge.errors import BridgeError, ErrorCode

__all__ = ["WorkAbandoned", "WorkFlag", "caller_scope", "current_flag", "in_context"]


class WorkFlag:
    """Set when the work's caller gave up; a child (one card operation) is also set when its parent is."""

    def __init__(self, parent: WorkFlag | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent

    def set(self) -> None:
        """Abandon the work (and its children's)."""
        self._event.set()

    def is_set(self) -> bool:
        """True once this work or an enclosing one was abandoned."""
        return self._event.is_set() or (self._parent is not None and self._parent.is_set())


_FLAG: ContextVar[WorkFlag | None] = ContextVar("card_work_abandoned", default=None)


class WorkAbandoned(BridgeError):
    """Raised inside abandoned card work (its caller is gone or timed out): nobody awaits it."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.TIMEOUT, "card work abandoned by its caller", stage="card")


def current_flag() -> WorkFlag | None:
    """The flag of the card work running in this context, if any."""
    return _FLAG.get()


def in_context(flag: WorkFlag) -> contextvars.Context:
    """A copy of the current context where `flag` is the current one: run a thread's work in it."""
    context = contextvars.copy_context()
    context.run(_FLAG.set, flag)
    return context


@contextlib.contextmanager
def caller_scope() -> Iterator[WorkFlag]:
    """Card work started inside belongs to one caller: cancelling the caller abandons it."""
    flag = WorkFlag()
    token = _FLAG.set(flag)
    try:
        yield flag
    except asyncio.CancelledError:
        # Only a cancellation: work a call legitimately leaves running (none today) is not cut on return.
        flag.set()
        raise
    finally:
        _FLAG.reset(token)
