"""The brand's look as the operator sets it (IDP_BRAND_*, IDP_THEME_DIR), checked at start-up:
colours for contrast (WCAG 2.2 SC 1.4.3 and 1.4.11), theme files for existence, links for
their scheme. Plain functions over plain values, so the settings can refuse a brand before
anything is served.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

# WCAG 2.2 SC 1.4.3: text and images of text; SC 1.4.11: focus rings and control boundaries.
TEXT_CONTRAST = 4.5
NON_TEXT_CONTRAST = 3.0
# What the pages use when the operator sets no colour of that kind.
DEFAULT_ERROR = "#b00020"
LIGHT_CANVAS = "#ffffff"
# idp.css draws secondary text (`.muted`, links in it included) at this opacity.
MUTED_OPACITY = 0.8
IMAGE_SUFFIXES = frozenset({".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".ico"})
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_colour(value: str) -> str:
    """`#rgb` or `#rrggbb` as lower-case `#rrggbb`; ValueError otherwise. Only hex, so a
    value can go into the generated stylesheet as it is."""
    if not _HEX.fullmatch(value):
        raise ValueError(f"{value[:32]!r} is not a colour written #rrggbb or #rgb")
    digits = value[1:].lower()
    return "#" + (digits if len(digits) == 6 else "".join(c * 2 for c in digits))


def relative_luminance(colour: str) -> float:
    """WCAG 2.2 definition of relative luminance (sRGB, threshold 0.04045)."""
    hexa = parse_colour(colour)
    linear = []
    for start in (1, 3, 5):
        channel = int(hexa[start:start + 2], 16) / 255
        linear.append(channel / 12.92 if channel <= 0.04045
                      else ((channel + 0.055) / 1.055) ** 2.4)
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.2 contrast ratio, from 1 (same) to 21 (black on white)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def blend(colour: str, background: str, opacity: float) -> str:
    """`colour` drawn at `opacity` over `background`, as the browser composites it."""
    top, bottom = parse_colour(colour), parse_colour(background)
    channels = (round(int(top[i:i + 2], 16) * opacity + int(bottom[i:i + 2], 16) * (1 - opacity))
                for i in (1, 3, 5))
    return "#" + "".join(f"{c:02x}" for c in channels)


def is_dark(colour: str) -> bool:
    """Whether white text reads better on it than black (for the page's color-scheme)."""
    return contrast_ratio(colour, "#ffffff") > contrast_ratio(colour, "#000000")


def palette_problems(primary: str, on_primary: str, text: str | None,
                     background: str | None, error: str | None) -> list[str]:
    """Why these colours cannot be the brand's, one sentence each; empty when they can.
    Without a text and background colour the pages keep the browser's own (light or dark)."""
    if (text is None) != (background is None):
        return ["set both IDP_BRAND_TEXT_COLOR and IDP_BRAND_BACKGROUND_COLOR, or neither"]
    problems: list[str] = []

    def check(fg: str, fg_colour: str, bg: str, bg_colour: str, least: float, what: str
              ) -> bool:
        ratio = contrast_ratio(fg_colour, bg_colour)
        if ratio < least:
            problems.append(f"{fg} on {bg} has a contrast of {ratio:.2f}:1; {what} needs at "
                            f"least {least:g}:1 (WCAG 2.2)")
        return ratio >= least

    check(f"IDP_BRAND_ON_PRIMARY_COLOR {on_primary}", on_primary,
          f"IDP_BRAND_PRIMARY_COLOR {primary}", primary, TEXT_CONTRAST, "button text")
    canvas = background or LIGHT_CANVAS
    named = (f"IDP_BRAND_BACKGROUND_COLOR {background}" if background
             else f"the default white background {LIGHT_CANVAS}")
    check(f"IDP_BRAND_PRIMARY_COLOR {primary}", primary, named, canvas, NON_TEXT_CONTRAST,
          "a focus ring or button edge")
    if text is not None:
        if check(f"IDP_BRAND_TEXT_COLOR {text}", text, named, canvas, TEXT_CONTRAST, "text"):
            # Secondary text is the text colour drawn lighter; it must still read as text.
            muted = blend(text, canvas, MUTED_OPACITY)
            check(f"IDP_BRAND_TEXT_COLOR {text} at 80 % opacity ({muted})", muted, named,
                  canvas, TEXT_CONTRAST, "secondary text")
        check(f"IDP_BRAND_ERROR_COLOR {error or DEFAULT_ERROR}", error or DEFAULT_ERROR, named,
              canvas, TEXT_CONTRAST, "an error message")
    return problems


def link_colour(primary: str, text: str, background: str) -> str:
    """Links in the brand's primary colour where it reads as text on the background, in
    secondary text too, else in the text colour (links are underlined either way, WCAG 2.2
    SC 1.4.1)."""
    muted = blend(primary, background, MUTED_OPACITY)
    return primary if contrast_ratio(muted, background) >= TEXT_CONTRAST else text


def theme_file_problem(theme_dir: Path | None, name: str, setting: str) -> str | None:
    """Why `name` cannot be served as the brand's logo or favicon from the theme folder's
    static/ (at /theme/<name>), or None."""
    if theme_dir is None:
        return f"{setting} names a file in IDP_THEME_DIR/static/; set IDP_THEME_DIR"
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return f"{setting} must be a path inside IDP_THEME_DIR/static/"
    if relative.suffix.lower() not in IMAGE_SUFFIXES:
        return f"{setting} must be an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
    if not (theme_dir / "static" / relative).is_file():
        return f"{setting}: no file {theme_dir / 'static' / relative}"
    return None


def link_problem(url: str, setting: str) -> str | None:
    """Why `url` cannot be a footer link (https, or mailto: for a support address), or None."""
    parts = urlsplit(url)
    if parts.scheme == "mailto" and parts.path and not parts.netloc:
        return None
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "[::1]", "::1"):
        return None
    return f"{setting} must be an https URL or a mailto: address"
