"""A visitor's key never quits the kiosk: close requests from the window system are ignored.

Alt+F4, a title bar's close button or a window manager's "close" arrive as *spontaneous* close events;
the kiosk ignores them (one warning line).  The kiosk quits only when the program asks: the technician
panel's exit and SIGTERM from systemd both go through ``QApplication.quit()``, whose close is not
spontaneous.  Whatever way it ends, the systemd unit restarts it (``Restart=always``).
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QCloseEvent

log = logging.getLogger(__name__)


def should_close(event: QCloseEvent) -> bool:
    """False (and the event ignored) for a close request from outside the program."""
    if event.spontaneous():
        event.ignore()
        log.warning("screen: a close request from the window system was ignored (use the technician panel)")
        return False
    return True
