"""Colour contrast of the page's palette (WCAG AA, 4.5:1 for text) in light and dark
mode, read from the stylesheet itself, and the markup that does not rely on colour."""

import re
from pathlib import Path

import pytest

BASE = (Path(__file__).resolve().parents[2] / "templates" / "statuspage" / "base.html").read_text()


def luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def palette(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):(#[0-9a-f]{6})", block))


LIGHT = palette(BASE[BASE.index(":root{") : BASE.index("@media (prefers-color-scheme:dark)")])
DARK = {**LIGHT, **palette(BASE[BASE.index("@media (prefers-color-scheme:dark)") :].split("}}")[0])}
TEXT = ["text", "muted", "link", "ok", "degraded", "partial", "major", "maint"]


@pytest.mark.parametrize(("mode", "colours"), [("light", LIGHT), ("dark", DARK)])
@pytest.mark.parametrize("name", TEXT)
def test_text_colours_meet_aa_on_both_backgrounds(mode, colours, name):
    for background in ("bg", "card"):
        ratio = contrast(colours[name], colours[background])
        assert ratio >= 4.5, f"{mode}: --{name} on --{background} is {ratio:.2f}:1"


@pytest.mark.parametrize(
    "status", ["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]
)
def test_banner_text_is_readable(status):
    colour = re.search(rf"\.banner\.{status}{{background:(#[0-9a-f]{{6}})}}", BASE).group(1)
    assert contrast(colour, "#ffffff") >= 4.5


def test_status_is_never_colour_alone(client, page, api_component):
    html = client.get("/status/acme/").content.decode()
    # Every status carries a symbol and a word; the bars have a text equivalent.
    assert '<span aria-hidden="true">\u2714</span> Operational' in html
    assert 'role="img" aria-label="Payments API: uptime per day for the last 90 days"' in html
    assert '<html lang="en">' in html and 'href="#main"' in html
