"""Signals a user (or a supervisor) sends to stop a run: Ctrl-C and SIGTERM end it the same clean way.

Installed explicitly, whatever the parent process set: a run started from a background job or a script
inherits SIGINT *ignored*, and ``docker stop``, systemd, Kubernetes and CI timeouts send SIGTERM, whose
default would end the process without a word. SIGHUP is left alone, so ``nohup`` keeps working.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


_received: list[int] = []


def _on_term(signum, frame) -> None:
    # Hand over to SIGINT's handler: inside asyncio.run that is asyncio's own, which cancels the main task
    # cleanly (an exception raised here would end whichever task was running and leave it unretrieved);
    # elsewhere it is default_int_handler, which raises KeyboardInterrupt.
    _received.append(signum)
    signal.raise_signal(signal.SIGINT)


def _redeliver(unraisable) -> None:
    # A signal that arrives while a weakref callback or __del__ runs raises its KeyboardInterrupt there, and
    # Python drops it ("Exception ignored in ..."): the process went on as if it had never been stopped (a
    # `synthqa review` server kept serving after SIGTERM). Deliver it again once that code has returned: from
    # another thread, as here it would be raised (and dropped) again at once; dropped again, it comes back here.
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        timer = threading.Timer(0.05, _thread.interrupt_main, (signal.SIGINT,))
        timer.daemon = True
        timer.start()
    else:
        sys.__unraisablehook__(unraisable)


def install_handlers() -> None:
    """Ctrl-C raises KeyboardInterrupt, and SIGTERM does the same (every ``except KeyboardInterrupt`` cleans
    up); ``exit_code`` tells them apart."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (synthqa called from a worker thread)
    _received.clear()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_term)
    sys.unraisablehook = _redeliver


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The conventional shell status for the signal behind ``interrupt``."""
    return EXIT_TERMINATED if signal.SIGTERM in _received else EXIT_INTERRUPTED
