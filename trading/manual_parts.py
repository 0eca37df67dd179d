"""How much of a position a partial /sell sells: the owner's amount or fraction checked against
the position and the market's minimums before anything is sent, so a refusal changes nothing."""

from __future__ import annotations

from trading.book import is_dust
from trading.models import Market
from trading.risk import round_down


def part_to_sell(
    held: float,
    amount: float | None,
    fraction: float | None,
    price: float,
    market: Market | None,
) -> float | str:
    """The base amount to sell of a position of `held`: all of it (neither given), `amount`,
    or `fraction` (0 < f <= 1) of it; or why not (a refusal). A remainder too small to sell
    on its own is sold with the part, so no unsellable dust is left behind."""
    if amount is not None and fraction is not None:
        return "give an amount or a percentage, not both"
    if fraction is not None and not 0 < fraction <= 1:
        return f"a percentage must be above 0 and at most 100, not {fraction * 100:g}"
    if amount is not None and amount > held * (1 + 1e-9):
        return f"{amount:.8g} is more than the position holds ({held:.8g})"
    wanted = held if amount is None and fraction is None else amount or held * fraction
    step = market.amount_step if market else None
    part = min(held, round_down(wanted, step))
    if is_dust(market, held - part, price):
        return held
    if is_dust(market, part, price):
        minimum = ""
        if market is not None:
            minimum = f" (minimum {market.min_amount:g}, or an order value of {market.min_cost:g})"
        return f"{wanted:.8g} is below what the market accepts{minimum}"
    return part
