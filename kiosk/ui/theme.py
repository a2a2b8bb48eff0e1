"""The dark museum theme: colours, type and the style sheet, scaled to the screen.

Everything is sized from one unit, ``u`` = the shorter side of the window / 1080, so a 1080x1920
portrait screen and a 1920x1080 landscape one get the same type sizes, and a small development window
gets a proportionally smaller kiosk.  Large text multiplies every type size by ``LARGE_TEXT``; the
high-contrast palette swaps the colours (one screen per process: the palette is module-wide).  Every
text colour reaches WCAG AA's 4.5:1 on every surface it is drawn on (tests/ui/test_theme.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont

# --- colours -------------------------------------------------------------------------------------------

STANDARD = {
    "BACKGROUND": "#0d0e11",
    "BACKGROUND_TOP": "#17181d",
    "BACKGROUND_BOTTOM": "#08090b",
    "SURFACE": "#1b1d23",
    "SURFACE_HIGH": "#262932",
    "HAIRLINE": "#33363f",
    "TEXT": "#f3eee4",  # warm ivory
    "TEXT_SOFT": "#b9b2a6",
    "TEXT_FAINT": "#9a9489",  # 4.8:1 on the lightest surface (it was #7d786f: 4.3:1 on the background)
    "ACCENT": "#d8b26e",  # brass
    "ACCENT_DEEP": "#a8844a",
    "LISTENING": "#5cc8b8",  # teal
    "THINKING": "#e3a857",  # amber
    "PROBLEM": "#e07a6b",  # coral
    "GOOD": "#7fcb8a",
}
HIGH_CONTRAST = {
    **STANDARD,
    "BACKGROUND": "#000000",
    "BACKGROUND_TOP": "#000000",
    "BACKGROUND_BOTTOM": "#000000",
    "SURFACE": "#101010",
    "SURFACE_HIGH": "#1e1e1e",
    "HAIRLINE": "#9a9a9a",
    "TEXT": "#ffffff",
    "TEXT_SOFT": "#f2f2f2",
    "TEXT_FAINT": "#dddddd",
    "ACCENT": "#ffd24a",
    "ACCENT_DEEP": "#ffd24a",
    "LISTENING": "#6ff0de",
    "THINKING": "#ffc266",
    "PROBLEM": "#ff9a8a",
    "GOOD": "#9df0a8",
}
TEXT_COLOURS = ("TEXT", "TEXT_SOFT", "TEXT_FAINT", "ACCENT", "LISTENING", "THINKING", "PROBLEM", "GOOD")
SURFACES = ("BACKGROUND", "BACKGROUND_TOP", "SURFACE", "SURFACE_HIGH")
LARGE_TEXT = 1.3

BACKGROUND = BACKGROUND_TOP = BACKGROUND_BOTTOM = SURFACE = SURFACE_HIGH = HAIRLINE = ""
TEXT = TEXT_SOFT = TEXT_FAINT = ACCENT = ACCENT_DEEP = LISTENING = THINKING = PROBLEM = GOOD = ""
SPEAKING = ""
STATE_COLOURS: dict[str, str] = {}
high_contrast = False


def use_palette(high: bool) -> None:
    """Switch every colour of the screen (the caller re-applies the style sheet and repaints)."""
    global high_contrast, SPEAKING
    high_contrast = bool(high)
    globals().update(HIGH_CONTRAST if high else STANDARD)
    SPEAKING = ACCENT
    STATE_COLOURS.clear()
    STATE_COLOURS.update(
        {
            "loading": TEXT_FAINT,
            "attract": ACCENT,
            "idle": ACCENT,
            "listening": LISTENING,
            "thinking": THINKING,
            "speaking": SPEAKING,
            "not_understood": PROBLEM,
            "still_there": ACCENT,
        }
    )


use_palette(False)


def _luminance(name: str) -> float:
    value = name.lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2's contrast ratio of two opaque colours (#rrggbb)."""
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)

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
    """Sizes in pixels for one window size and text size: ``px`` for space, ``text`` for type."""

    u: float
    large: bool = False

    def px(self, value: float) -> int:
        return max(1, round(value * self.u))

    def text(self, value: float) -> int:
        """A type size (or a size that holds text): larger with large text, like every other size of type."""
        return max(1, round(value * self.u * (LARGE_TEXT if self.large else 1.0)))

    @property
    def caption(self) -> int:
        return self.text(40)

    @property
    def question(self) -> int:
        return self.text(30)

    @property
    def chip(self) -> int:
        return self.text(26)

    @property
    def body(self) -> int:
        return self.text(26)

    @property
    def title(self) -> int:
        return self.text(46)

    @property
    def small(self) -> int:
        return self.text(22)

    @property
    def status(self) -> int:
        return self.text(30)

    @property
    def attract(self) -> int:
        return self.text(42)

    @property
    def margin(self) -> int:
        return self.px(56)

    @property
    def gap(self) -> int:
        return self.px(28)


def unit_for(width: int, height: int) -> float:
    return max(0.3, min(width, height) / 1080.0)


def rgba(name: str, alpha: float) -> str:
    c = QColor(name)
    return f"rgba({c.red()},{c.green()},{c.blue()},{alpha:.2f})"


def style_sheet(m: Metrics) -> str:
    """The window's style sheet for these sizes and the palette in use (set again on every change)."""
    px, tx = m.px, m.text
    sans = ", ".join(f'"{f}"' for f in SANS)
    serif = ", ".join(f'"{f}"' for f in SERIF)
    accent = rgba(ACCENT, 0.07 if not high_contrast else 0.0)
    return f"""
    QWidget {{ color: {TEXT}; font-family: {sans}; font-size: {m.body}px; }}
    QLabel {{ background: transparent; }}
    QLabel#Title {{ font-family: {serif}; font-size: {m.title}px; color: {TEXT}; }}
    QLabel#Subtitle {{ font-size: {m.small}px; color: {TEXT_SOFT}; letter-spacing: {px(3)}px; }}
    QLabel#StatusLine {{ font-size: {m.status}px; color: {TEXT_SOFT}; }}
    QLabel#Hint {{ font-size: {m.small}px; color: {TEXT_SOFT}; }}
    QLabel#Notice {{ font-size: {m.small}px; color: {THINKING}; background: {rgba(THINKING, 0.10)};
                     border: 1px solid {rgba(THINKING, 0.45)}; border-radius: {px(14)}px;
                     padding: {px(12)}px {px(20)}px; }}
    QLabel#Progress {{ font-size: {m.small}px; color: {TEXT_FAINT}; }}
    QLabel#VisitorCaption {{ font-size: {m.question}px; color: {TEXT_SOFT}; font-style: italic; }}
    QLabel#GuideCaption {{ font-size: {m.caption}px; color: {TEXT}; }}
    QLabel#AttractLine {{ font-family: {serif}; font-size: {m.attract}px; color: {TEXT}; font-style: italic; }}
    QLabel#GuideCaptionOld {{ font-size: {m.question}px; color: {TEXT_FAINT}; }}
    QLabel#ChipsHeading {{ font-size: {m.small}px; color: {TEXT_FAINT}; letter-spacing: {px(3)}px; }}
    QPushButton {{ background: {SURFACE}; border: 1px solid {HAIRLINE}; border-radius: {px(22)}px;
                   padding: {px(14)}px {px(26)}px; color: {TEXT}; }}
    QPushButton:pressed {{ background: {SURFACE_HIGH}; }}
    QPushButton:disabled {{ color: {TEXT_FAINT}; border-color: {SURFACE_HIGH}; }}
    QPushButton#Secondary {{ font-size: {m.small}px; border-radius: {px(40)}px;
                             padding: {px(18)}px {px(30)}px; min-height: {tx(44)}px; }}
    QPushButton#Secondary:checked {{ background: {rgba(ACCENT, 0.20)}; border-color: {ACCENT}; }}
    QPushButton#Offer {{ font-size: {m.chip}px; border-radius: {px(40)}px; padding: {px(20)}px {px(40)}px;
                         min-height: {tx(56)}px; color: {BACKGROUND}; background: {ACCENT};
                         border: 2px solid {ACCENT}; font-weight: 600; }}
    QPushButton#Offer:pressed {{ background: {ACCENT_DEEP}; }}
    QPushButton#Stop {{ font-size: {m.small}px; border-radius: {px(40)}px; padding: {px(18)}px {px(34)}px;
                        min-height: {tx(44)}px; color: {TEXT}; background: {rgba(PROBLEM, 0.16)};
                        border: 1px solid {rgba(PROBLEM, 0.65)}; }}
    QPushButton#Stop:pressed {{ background: {rgba(PROBLEM, 0.35)}; }}
    QWidget#Keyboard {{ background: {SURFACE}; border-top: 1px solid {HAIRLINE}; }}
    QLabel#TypedQuestion {{ font-size: {m.question}px; color: {TEXT}; background: {BACKGROUND};
                            border: 1px solid {HAIRLINE}; border-radius: {px(16)}px;
                            padding: {px(14)}px {px(20)}px; }}
    QPushButton#Key {{ font-size: {tx(34)}px; min-height: {tx(84)}px; min-width: {tx(60)}px;
                       border-radius: {px(16)}px; padding: 0px; background: {SURFACE_HIGH}; }}
    QPushButton#KeyAction {{ font-size: {m.small}px; min-height: {tx(84)}px; border-radius: {px(16)}px;
                             padding: 0px {px(18)}px; background: {accent}; border-color: {ACCENT}; }}
    QPushButton#KeyAsk {{ font-size: {m.chip}px; min-height: {tx(84)}px; border-radius: {px(16)}px;
                          color: {BACKGROUND}; background: {ACCENT}; border: 2px solid {ACCENT}; font-weight: 600; }}
    QPushButton#KeyAsk:disabled {{ color: {TEXT_FAINT}; background: {SURFACE_HIGH}; border-color: {HAIRLINE}; }}
    """
