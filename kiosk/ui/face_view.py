"""The stage: the talking face, painted from the animator's frames at the display's rate.

A precise QTimer (``[face] fps``, 30 by default) asks the animator for the frame at ``time.monotonic()``
(the animator follows the audio sink's playback clock, so the lips match the sound) and paints it as a
QImage over the array, without copying.  Without an animator (the face module is missing, or the
portrait failed) the exhibit's portrait is shown still; a pack without a portrait shows the drawn host
at rest (the same picture its animator starts from); failing that, a drawn placeholder.  A
soft halo in the state's colour says what the guide is doing.

The view is where frames are presented, so it publishes ``FrameRendered`` / ``FrameDropped`` on the
engine's bus (unless the animator says it publishes them itself): telemetry and the ops panel count them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap, QRadialGradient
from PySide6.QtWidgets import QSizePolicy, QWidget

from kiosk.engine import events as ev
from kiosk.ui import theme
from kiosk.ui.widgets import rounded_path

log = logging.getLogger(__name__)


def portrait_square(path: Any, cache_dir: Any) -> tuple[float, float, float]:
    """The animator's framing of the portrait (checks it once; later starts read the cached landmarks)."""
    from kiosk.engine.face.portrait import check_portrait, face_square

    return face_square(check_portrait(path, cache_dir).landmarks)


def host_still(size: int = 512) -> np.ndarray:
    """The drawn host at rest: the still of a pack that names no portrait (the animator starts from it)."""
    from kiosk.engine.face.backend import FaceState
    from kiosk.engine.face.host import HostFace

    host = HostFace(None, size)
    host.load()
    return host.render(FaceState()).copy()


def frame_array(frame: Any) -> np.ndarray | None:
    """The RGB uint8 image of whatever ``frame_at`` returned (an array, or a record with ``image``)."""
    image = getattr(frame, "image", frame)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
        return None
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


class FaceView(QWidget):
    def __init__(self, fps: int = 30, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self.fps = max(1, int(fps))
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(max(1, round(1000 / self.fps)))
        self._timer.timeout.connect(self._tick)
        self.animator: Any = None
        self.animator_reason = "face: loading"
        self.publish: Callable[[ev.Event], None] | None = None
        self._publishes = True
        self._threaded = False
        self._render_thread: threading.Thread | None = None
        self._render_stop = threading.Event()
        self._delivered: Any = None
        self._shown: Any = None
        self._still: QImage | None = None
        self._still_scaled: QPixmap | None = None
        self._still_key: tuple[int, int] | None = None
        self._halos: dict[tuple[int, int, str], QPixmap] = {}
        self._vignette_key: tuple[int, int] | None = None
        self._vignette_pixmap: QPixmap | None = None
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self.state = "loading"
        self.level = 0.0
        self.turn_id: int | None = None
        self._last_tick: float | None = None
        self._started = time.monotonic()
        self._painted: deque[float] = deque(maxlen=240)
        self.frames_rendered = 0
        self.frames_dropped = 0
        self.frames_presented = 0
        self.last_render_seconds = 0.0
        self._failed_once = False
        self.placeholder_letter = "?"
        self.portrait_ready = True  # False while the window frames the portrait (nothing jumps in)

    # --- inputs ------------------------------------------------------------------------------------------

    def set_portrait(self, path: str | Path | None, square: tuple[float, float, float] | None = None) -> None:
        """The still portrait, framed in ``square`` (centre x, centre y, side: the animator's framing,
        :func:`kiosk.engine.face.portrait.face_square`) so nothing jumps when the animator takes over."""
        image = QImage(str(path)) if path else QImage()
        if not image.isNull() and square is not None:
            cx, cy, side = square
            image = image.copy(round(cx - side / 2), round(cy - side / 2), round(side), round(side))
        self._still = None if image.isNull() else image.convertToFormat(QImage.Format.Format_RGB32)
        self._still_key = None
        self.portrait_ready = True
        self.update()

    def set_still_array(self, array: np.ndarray | None) -> None:
        """A still picture given as an RGB array (the drawn host at rest), shown until the animator runs."""
        image = frame_array(array) if array is not None else None
        if image is None:
            self._still = None
        else:
            height, width, _ = image.shape
            still = QImage(image.data, width, height, image.strides[0], QImage.Format.Format_RGB888)
            self._still = still.convertToFormat(QImage.Format.Format_RGB32)  # a copy: the array may go
        self._still_key = None
        self.portrait_ready = True
        self.update()

    def set_animator(self, animator: Any, reason: str = "") -> None:
        """Show ``animator``'s frames (None: the still portrait).

        An animator with ``run(deliver, stop)`` renders on its own thread (and publishes its frame events
        when it has the bus); the view paints its latest frame.  Otherwise the view calls ``frame_at``
        on each tick and publishes the frame events itself.
        """
        running = self._timer.isActive()
        self._stop_render_thread()
        self.animator = animator
        self.animator_reason = reason
        self._threaded = animator is not None and callable(getattr(animator, "run", None))
        self._publishes = not (self._threaded and getattr(animator, "bus", None) is not None)
        self._array = self._image = None
        self._delivered = self._shown = None
        if running:
            self._start_render_thread()
        self.update()

    def set_state(self, state: str) -> None:
        """The screen's state, for the halo's colour only: the engine owns the animator's state."""
        if state != self.state:
            self.state = state
            self.update()

    def set_level(self, rms: float) -> None:
        from kiosk.ui.widgets import level_from_rms

        self.level = level_from_rms(rms)

    def start(self) -> None:
        self._last_tick = None
        self._timer.start()
        self._start_render_thread()

    def stop(self) -> None:
        self._timer.stop()
        self._stop_render_thread()

    def _start_render_thread(self) -> None:
        if not self._threaded or self._render_thread is not None:
            return
        stop = threading.Event()
        animator = self.animator

        def render() -> None:
            try:
                animator.run(self._deliver, stop)
            except Exception as exc:
                log.exception("face animator stopped; showing the portrait")
                self.animator_reason = f"face: renderer stopped ({type(exc).__name__}: {exc})"

        self._render_stop = stop
        self._render_thread = threading.Thread(target=render, name="face-render", daemon=True)
        self._render_thread.start()

    def _stop_render_thread(self) -> None:
        thread, self._render_thread = self._render_thread, None
        if thread is not None:
            self._render_stop.set()
            thread.join(timeout=1.0)

    def _deliver(self, frame: Any) -> None:
        """Called on the render thread: keep only the newest frame (painting takes it on the next tick)."""
        self._delivered = frame
        self.frames_rendered += 1

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    @property
    def presented_fps(self) -> float:
        """Frames painted in the last second."""
        now = time.monotonic()
        return float(sum(1 for t in self._painted if now - t <= 1.0))

    def _tick(self) -> None:
        now = time.monotonic()
        interval = self._timer.interval() / 1000.0
        missed = 0
        if self._last_tick is not None:
            gap = now - self._last_tick
            if gap > 1.5 * interval:
                missed = min(60, round(gap / interval) - 1)
        self._last_tick = now
        if self.animator is not None and self._threaded:
            frame = self._delivered
            if frame is not None and frame is not self._shown:
                self._shown = frame
                self._show_array(frame_array(frame))
        elif self.animator is not None:
            started = time.perf_counter()
            try:
                array = frame_array(self.animator.frame_at(now))
            except Exception as exc:
                if not self._failed_once:
                    log.exception("face animator frame failed; showing the portrait")
                    self._failed_once = True
                self.animator_reason = f"face: frame failed ({type(exc).__name__}: {exc})"
                array = None
            if array is not None:
                self._show_array(array)
                self.last_render_seconds = time.perf_counter() - started
                self.frames_rendered += 1
                if self.publish is not None and self._publishes:
                    self.publish(
                        ev.FrameRendered(turn_id=self.turn_id, render_seconds=self.last_render_seconds)
                    )
            if missed and self.publish is not None and self._publishes:
                self.frames_dropped += missed
                for _ in range(missed):
                    self.publish(ev.FrameDropped(turn_id=self.turn_id))
        self.update()

    def _show_array(self, array: np.ndarray | None) -> None:
        if array is None:
            return
        height, width, channels = array.shape
        fmt = QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_RGBA8888
        # RGB32 scales about twice as fast as RGB888 when painted; the conversion copies the array
        self._array = array
        self._image = QImage(array.data, width, height, array.strides[0], fmt).convertToFormat(
            QImage.Format.Format_RGB32 if channels == 3 else QImage.Format.Format_ARGB32_Premultiplied
        )

    # --- painting -----------------------------------------------------------------------------------------

    def stage_rect(self) -> QRectF:
        side = min(self.width(), self.height()) * 0.9
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _glow(self) -> float:
        t = time.monotonic() - self._started
        if self.state == "listening":
            return 0.35 + 0.55 * self.level
        if self.state == "thinking":
            return 0.35 + 0.25 * (0.5 + 0.5 * math.sin(t * 2 * math.pi * 0.8))
        if self.state in ("speaking", "not_understood"):
            return 0.55
        return 0.22 + 0.08 * (0.5 + 0.5 * math.sin(t * 2 * math.pi * 0.15))

    def paintEvent(self, event) -> None:  # noqa: N802
        """About 4 ms at 1080 px: the halo and vignette are cached pixmaps, the frame is drawn as RGB32."""
        self._painted.append(time.monotonic())
        self.frames_presented += 1
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = self.stage_rect()
        radius = rect.width() * 0.06
        colour = theme.STATE_COLOURS.get(self.state, theme.ACCENT)
        glow = self._glow()
        painter.setOpacity(max(0.0, min(1.0, glow)))
        painter.drawPixmap(0, 0, self._halo(colour))
        painter.setOpacity(1.0)
        path = rounded_path(rect, radius)
        painter.save()
        painter.setClipPath(path)
        if self.animator is not None and self._image is not None:
            painter.drawImage(rect, self._image)
            painter.drawPixmap(rect.topLeft(), self._vignette(rect))
        elif self._still is not None:
            painter.drawPixmap(rect.topLeft(), self._still_pixmap(rect))
        elif self.portrait_ready:  # not while the portrait is being framed: only the frame shows then
            self._paint_placeholder(painter, rect)
        painter.restore()
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(theme.colour(colour, 0.35 + 0.5 * glow), max(2.0, rect.width() * 0.006)))
        painter.drawPath(path)

    def _halo(self, colour: str) -> QPixmap:
        """The soft light behind the portrait in the state's colour, at full strength (cached per size)."""
        key = (self.width(), self.height(), colour)
        halo = self._halos.get(key)
        if halo is None:
            if len(self._halos) > 8:
                self._halos.clear()
            halo = QPixmap(self.size())
            halo.fill(Qt.GlobalColor.transparent)
            rect = self.stage_rect()
            gradient = QRadialGradient(rect.center(), rect.width() * 0.72)
            gradient.setColorAt(0.0, theme.colour(colour, 0.30))
            gradient.setColorAt(0.62, theme.colour(colour, 0.16))
            gradient.setColorAt(1.0, QColor(0, 0, 0, 0))
            p = QPainter(halo)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(gradient))
            p.drawEllipse(rect.center(), rect.width() * 0.72, rect.height() * 0.72)
            p.end()
            self._halos[key] = halo
        return halo

    def _vignette(self, rect: QRectF) -> QPixmap:
        """A gentle darkening towards the edges, so the portrait sits in the dark room (cached per size)."""
        key = (round(rect.width()), round(rect.height()))
        if self._vignette_key != key or self._vignette_pixmap is None:
            pixmap = QPixmap(*key)
            pixmap.fill(Qt.GlobalColor.transparent)
            shade = QRadialGradient(QPointF(key[0] / 2, key[1] / 2), key[0] * 0.75)
            shade.setColorAt(0.7, QColor(0, 0, 0, 0))
            shade.setColorAt(1.0, QColor(0, 0, 0, 110))
            p = QPainter(pixmap)
            p.fillRect(pixmap.rect(), QBrush(shade))
            p.end()
            self._vignette_key, self._vignette_pixmap = key, pixmap
        return self._vignette_pixmap

    def _still_pixmap(self, rect: QRectF) -> QPixmap:
        """The portrait scaled to the stage, with the vignette baked in (cached per size)."""
        key = (round(rect.width()), round(rect.height()))
        if self._still_key != key or self._still_scaled is None:
            scaled = self._still.scaled(
                key[0],
                key[1],
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            pixmap = QPixmap.fromImage(scaled)
            p = QPainter(pixmap)
            p.drawPixmap(0, 0, self._vignette(rect))
            p.end()
            self._still_scaled, self._still_key = pixmap, key
        return self._still_scaled

    def _paint_placeholder(self, painter: QPainter, rect: QRectF) -> None:
        backdrop = QRadialGradient(rect.center(), rect.width() * 0.7)
        backdrop.setColorAt(0.0, QColor(theme.SURFACE_HIGH))
        backdrop.setColorAt(1.0, QColor(theme.BACKGROUND))
        painter.fillRect(rect, QBrush(backdrop))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.colour(theme.ACCENT, 0.22))
        c = rect.center()
        w = rect.width()
        painter.drawEllipse(QPointF(c.x(), c.y() - w * 0.08), w * 0.17, w * 0.2)
        painter.drawRoundedRect(QRectF(c.x() - w * 0.3, c.y() + w * 0.17, w * 0.6, w * 0.4), w * 0.2, w * 0.2)
        painter.setPen(theme.colour(theme.ACCENT, 0.9))
        painter.setFont(theme.font(theme.SERIF, w * 0.12))
        painter.drawText(
            QRectF(c.x() - w * 0.17, c.y() - w * 0.28, w * 0.34, w * 0.4),
            Qt.AlignmentFlag.AlignCenter,
            self.placeholder_letter,
        )
