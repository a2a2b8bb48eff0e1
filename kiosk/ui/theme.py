"""The dark museum theme: colours, type and the style sheet, scaled to the screen.

Everything is sized from one unit, ``u`` = the shorter side of the window / 1080, so a 1080x1920
portrait screen and a 1920x1080 landscape one get the same type sizes, and a small development window
gets a proportionally smaller kiosk.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont

# --- colours -------------------------------------------------------------------------------------------

BACKGROUND = "#0d0e11"
BACKGROUND_TOP = "#17181d"
SURFACE = "#1b1d23"
SURFACE_HIGH = "#262932"
HAIRLINE = "#33363f"
TEXT = "#f3eee4"  # warm ivory
TEXT_SOFT = "#b9b2a6"
TEXT_FAINT = "#7d786f"
ACCENT = "#d8b26e"  # brass
ACCENT_DEEP = "#a8844a"
LISTENING = "#5cc8b8"  # teal
THINKING = "#e3a857"  # amber
SPEAKING = ACCENT
PROBLEM = "#e07a6b"  # coral
GOOD = "#7fcb8a"

STATE_COLOURS = {
    "loading": TEXT_FAINT,
    "attract": ACCENT,
    "idle": ACCENT,
    "listening": LISTENING,
    "thinking": THINKING,
    "speaking": SPEAKING,
    "not_understood": PROBLEM,
    "still_there": ACCENT,
}

SANS = ["Inter", "Source Sans 3", "Noto Sans", "DejaVu Sans", "Sans Serif"]
SERIF = ["Source Serif 4", "Noto Serif", "DejaVu Serif", "Serif"]
MONO = ["JetBrains Mono", "Noto Sans Mono", "DejaVu Sans Mono", "Monospace"]


def colour(name: str, alpha: float = 1.0) -> QColor:
    c = QColor(name)
    c.setAlphaF(max(0.0, min(1.0, alpha)))
    return c


def font(
    families: list[str], px: float, weight: QFont.Weight = QFont.Weight.Normal, italic: bool = False
) -> QFont:
    f = QFont()
    f.setFamilies(families)
    f.setPixelSize(max(6, round(px)))
    f.setWeight(weight)
    f.setItalic(italic)
    f.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return f


@dataclass(frozen=True)
class Metrics:
    """Sizes in pixels for one window size and text size."""

    u: float
    large: bool = False

    def px(self, value: float) -> int:
        return max(1, round(value * self.u))

    @property
    def caption(self) -> int:
        return self.px(50 if self.large else 40)

    @property
    def question(self) -> int:
        return self.px(36 if self.large else 30)

    @property
    def chip(self) -> int:
        return self.px(30 if self.large else 26)

    @property
    def body(self) -> int:
        return self.px(30 if self.large else 26)

    @property
    def title(self) -> int:
        return self.px(46)

    @property
    def small(self) -> int:
        return self.px(22)

    @property
    def margin(self) -> int:
        return self.px(56)

    @property
    def gap(self) -> int:
        return self.px(28)


def unit_for(width: int, height: int) -> float:
    return max(0.3, min(width, height) / 1080.0)


def style_sheet(m: Metrics) -> str:
    """The window's style sheet for these sizes (set again when the window is resized)."""
    px = m.px
    sans = ", ".join(f'"{f}"' for f in SANS)
    serif = ", ".join(f'"{f}"' for f in SERIF)
    return f"""
    QWidget {{ color: {TEXT}; font-family: {sans}; font-size: {m.body}px; }}
    QWidget#KioskRoot {{ background: qlineargradient(x1:0, y1:0, x2:0, y2:1,
                         stop:0 {BACKGROUND_TOP}, stop:0.55 {BACKGROUND}, stop:1 #08090b); }}
    QLabel {{ background: transparent; }}
    QLabel#Title {{ font-family: {serif}; font-size: {m.title}px; color: {TEXT}; }}
    QLabel#Subtitle {{ font-size: {m.small}px; color: {TEXT_SOFT}; letter-spacing: {px(3)}px; }}
    QLabel#StatusLine {{ font-size: {px(34 if m.large else 30)}px; color: {TEXT_SOFT}; }}
    QLabel#Hint {{ font-size: {m.small}px; color: {TEXT_FAINT}; }}
    QLabel#Notice {{ font-size: {m.small}px; color: {THINKING}; background: rgba(227,168,87,0.10);
                     border: 1px solid rgba(227,168,87,0.35); border-radius: {px(14)}px;
                     padding: {px(12)}px {px(20)}px; }}
    QLabel#Progress {{ font-size: {m.small}px; color: {TEXT_FAINT}; }}
    QLabel#VisitorCaption {{ font-size: {m.question}px; color: {TEXT_SOFT}; font-style: italic; }}
    QLabel#GuideCaption {{ font-size: {m.caption}px; color: {TEXT}; }}
    QLabel#AttractLine {{ font-family: {serif}; font-size: {px(48 if m.large else 42)}px; color: {TEXT};
                          font-style: italic; }}
    QLabel#GuideCaptionOld {{ font-size: {m.question}px; color: {TEXT_FAINT}; }}
    QLabel#ChipsHeading {{ font-size: {m.small}px; color: {TEXT_FAINT}; letter-spacing: {px(3)}px; }}
    QScrollArea, QScrollArea > QWidget > QWidget {{ background: transparent; border: none; }}
    QScrollBar:vertical {{ width: 0px; }}
    QPushButton {{ background: {SURFACE}; border: 1px solid {HAIRLINE}; border-radius: {px(22)}px;
                   padding: {px(14)}px {px(26)}px; color: {TEXT}; }}
    QPushButton:pressed {{ background: {SURFACE_HIGH}; }}
    QPushButton:disabled {{ color: {TEXT_FAINT}; border-color: {SURFACE_HIGH}; }}
    QPushButton#Chip {{ font-size: {m.chip}px; background: rgba(216,178,110,0.07);
                        border: 1px solid rgba(216,178,110,0.38); border-radius: {px(26)}px;
                        padding: {px(16)}px {px(30)}px; text-align: left; }}
    QPushButton#Chip:pressed {{ background: rgba(216,178,110,0.22); }}
    QPushButton#Secondary {{ font-size: {m.small}px; border-radius: {px(40)}px;
                             padding: {px(18)}px {px(30)}px; min-height: {px(44)}px; }}
    QPushButton#Secondary:checked {{ background: rgba(216,178,110,0.20); border-color: {ACCENT}; }}
    QPushButton#Stop {{ font-size: {m.small}px; border-radius: {px(40)}px; padding: {px(18)}px {px(34)}px;
                        min-height: {px(44)}px; color: {TEXT}; background: rgba(224,122,107,0.16);
                        border: 1px solid rgba(224,122,107,0.65); }}
    QPushButton#Stop:pressed {{ background: rgba(224,122,107,0.35); }}
    """
