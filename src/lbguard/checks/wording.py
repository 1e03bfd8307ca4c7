"""Number and list formatting shared by finding reasons."""

from __future__ import annotations

from collections.abc import Sequence


def percent(fraction: float) -> str:
    """Format a fraction as a percentage with one decimal: ``0.8333`` → ``83.3 %``."""
    return f"{fraction * 100:.1f} %"


def times(ratio: float) -> str:
    """Format a ratio as a multiple: ``10.0`` → ``10x``, ``2.5`` → ``2.5x``."""
    text = f"{ratio:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text}x"


def join_names(names: Sequence[str], limit: int = 5) -> str:
    """Join names as English prose, naming at most ``limit`` of them."""
    shown = list(names[:limit])
    rest = len(names) - len(shown)
    if rest > 0:
        return ", ".join(shown) + f" and {rest} more"
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + f" and {shown[-1]}"
