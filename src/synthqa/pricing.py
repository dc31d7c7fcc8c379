"""Approximate list prices, to estimate what a run costs. USD per 1M tokens, as published in 2026-11.

Prices change; these are for orders of magnitude in --dry-run and `inspect`, never for billing.
A model not listed (local, self-hosted) has no estimate rather than a wrong one.
"""

from __future__ import annotations

# model → (input, output) USD per 1M tokens
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
PRICES_AS_OF = "2026-11"


def estimate_cost(model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Estimated USD for these token counts, or None when the model's price is not known."""
    if not model or model.startswith("local"):
        return None
    price = PRICES.get(model) or PRICES.get(model.split("/")[-1])
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
