"""Order-level commands end to end: /orders, /cancelorder, partial /sell, limit /buy and
/debug SYMBOL through the real python-telegram-bot Application polling the loopback fake Bot
API, in front of a paper account holding BTC/USDT with its stop resting at the exchange."""

from __future__ import annotations

import io

import pytest

from chatbot.notifier import Notifier
from chatbot.senders import ConsoleSender
from sim.clock import FakeClock
from tests.handlers_support import make_office
from tests.telegram_support import (  # noqa: F401 (fixtures)
    CHAT,
    OWNER,
    api_fixture,
    office_holding_btc,
    polling,
    say,
)
from trading.events import (
    Emergency,
    StateChanged,
    SymbolBanned,
    TradeClosed,
    TradeOpened,
    replying,
)
from trading.models import Order, OrderRequest, OrderType, Side

BTC = "BTC/USDT"


async def _owners_order(office) -> Order:
    """The owner's own limit buy, placed on the exchange by hand, and seen by a sync."""
    rig = office.rig
    price = rig.paper.price("ETH/USDT") * 0.5
    order = await rig.paper.create_order(
        OrderRequest("ETH/USDT", Side.BUY, OrderType.LIMIT, 0.05, "user-eth-1", price=price)
    )
    await rig.trader.sync()
    return order


def _ids(office) -> dict[str, str]:
    return {w.purpose: w.short_id for w in office.rig.trader.order_commands.orders().orders}


def _book(office) -> tuple:
    """What must not change when a command is refused."""
    rig = office.rig
    positions = {s: p.amount for s, p in rig.trader.book.positions.items()}
    return positions, rig.paper.calls["create_order"], [(o.id, o.amount) for o in rig.stops()]


async def test_orders_lists_the_bots_stop_and_the_owners_order_under_ids_stable_across_calls(
    api, office
):
    await _owners_order(office)
    async with polling(api, office):
        first = await say(api, "/orders", "working order")
        second = await say(api, "/orders", "working order")
    ids = _ids(office)
    assert f"<code>{ids['guard']}</code> guard · sell" in first.text
    assert f"<code>{ids['yours']}</code> yours · buy" in first.text
    assert "never touches them" in first.text
    assert second.text == first.text


async def test_the_owners_own_order_is_never_cancelled(api, office):
    mine = await _owners_order(office)
    before = _book(office)
    async with polling(api, office):
        reply = await say(api, f"/cancelorder {_ids(office)['yours']}", "is yours")
    assert "never cancels your orders" in reply.text and "Confirm" not in reply.text
    assert any(o.id == mine.id and o.is_open for o in office.rig.paper.order_log)
    assert _book(office) == before


async def test_an_unknown_order_id_is_answered_and_changes_nothing(api, office):
    before = _book(office)
    async with polling(api, office):
        await say(api, "/cancelorder abc123", "No working order abc123")
        await say(api, "/cancelorder", "Which order?")
    assert _book(office) == before


async def test_cancelling_the_protective_stop_asks_first_then_says_the_cycle_rests_it_again(
    api, office
):
    rig = office.rig
    guard = _ids(office)["guard"]
    async with polling(api, office):
        ask = await say(api, f"/cancelorder {guard}", "Confirm /cancelorder")
        assert "protective stop of BTC/USDT" in ask.text and rig.stops()  # nothing done yet
        confirm = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        message_id = max(m for c, m in api.messages if c == CHAT)
        api.queue_callback(CHAT, OWNER, confirm, message_id=message_id)
        done = await api.wait_for_call("editMessageText", lambda c: "cancelled" in c.text)
    assert "unguarded until the next cycle rests its stop again" in done.text
    assert rig.stops() == [] and BTC in rig.trader.book.positions
    await rig.cycles(1)
    assert [o.symbol for o in rig.stops()] == [BTC]


async def test_a_partial_sell_sells_the_share_and_resizes_the_stop_of_the_rest(api, office):
    rig = office.rig
    held = rig.trader.book.positions[BTC].amount
    async with polling(api, office):
        reply = await say(api, "/sell btc 50%", "sold")
    left = rig.trader.book.positions[BTC].amount
    assert left == pytest.approx(held / 2, rel=0.01) and "left, its stop resized" in reply.text
    assert [(o.symbol, o.amount) for o in rig.stops()] == [(BTC, pytest.approx(left))]
    assert rig.held(BTC) == pytest.approx(left)


@pytest.mark.parametrize(
    ("line", "answer"),
    [("/sell btc 150%", "at most 100, not 150%"),
     ("/sell btc 0%", "above 0 and at most 100"),
     ("/sell btc 1000", "more than the position holds"),
     ("/sell btc 0.00000001", "below what the market accepts"),
     ("/sell btc lots", "Malformed amount lots")],
)  # fmt: skip
async def test_a_bad_partial_sell_is_answered_and_changes_nothing(api, office, line, answer):
    before = _book(office)
    async with polling(api, office):
        reply = await say(api, line, answer)
    assert "sold" not in reply.text
    assert _book(office) == before


async def test_a_limit_buy_above_the_market_is_the_wrong_side_and_sends_nothing(api, office):
    before = _book(office)
    ask = office.rig.paper.price("ETH/USDT") * 2
    async with polling(api, office):
        await say(api, f"/buy ETH/USDT 50 limit={ask:.2f}", "wrong side")
    assert _book(office) == before and not office.rig.trader.book.pending_entries()


async def test_a_limit_buy_rests_below_the_market_then_expires_like_an_entry(api, office):
    rig = office.rig
    limit = rig.paper.price("ETH/USDT") * 0.5
    async with polling(api, office):
        reply = await say(api, f"/buy ETH/USDT 50 limit={limit:.2f}", "resting")
        listed = await say(api, "/orders", "working order")
    assert "cancelled if not filled within 15m" in reply.text and "stop" in reply.text
    assert "manual · buy" in listed.text
    assert [o.symbol for o in rig.open_orders()] == ["ETH/USDT"]
    timeout = rig.trader.settings.entry_order_timeout_seconds
    await rig.cycles(int(timeout // 60) + 2)
    assert rig.open_orders() == [] and "ETH/USDT" not in rig.trader.book.positions


async def test_debug_symbol_shows_market_ticker_position_orders_reading_and_versions(api, office):
    async with polling(api, office):
        reply = await say(api, "/debug btc", "<b>Debug BTC/USDT</b>")
    text = reply.text
    for part in ("market: min amount", "price step", "ticker: last", "spread", "volume",
                 "position: ", "the strategy's", "orders: 1", "guard · sell", "ban: none",
                 "cooldown: ", "scripted: ", "versions: ccxt"):  # fmt: skip
        assert part in text, part
    # Held already: the gate's reading says why the strategy would not enter again.
    assert "refuses an entry" in text


async def test_a_command_answers_once_its_own_events_are_not_notified_but_others_are():
    clock = FakeClock()
    out = io.StringIO()
    notifier = Notifier([ConsoleSender(out)], clock=clock)
    o = make_office(clock, notifier=notifier)
    await o.start()
    try:
        for line in ("/buy SOL/USDT 50", "/ban ETH/USDT", "/pause", "/unpause", "/sell sol"):
            assert (await o.run(line)).ok, line
        await notifier.drain()
        assert {TradeOpened, TradeClosed, SymbolBanned, StateChanged} <= {
            type(e) for e in o.events
        }  # the events happened; only their second telling is gone
        assert out.getvalue() == ""
        await o.enter(o.rig, ["BTC/USDT"])  # the strategy's entry: no reply tells it
        with replying(Emergency):  # and an emergency is never the reply's to tell
            notifier.notify(Emergency(account="x", at=0.0, key="k", message="siren"))
        await notifier.drain()
        assert "BTC/USDT" in out.getvalue() and "siren" in out.getvalue()
    finally:
        await o.close()


async def test_cancelling_a_stops_oco_exit_asks_first_it_holds_the_positions_stop(api, office):
    """After /stop the position's stop-loss rests as the stop leg of its OCO exit: cancelling
    that order by hand bares the position exactly as cancelling a guard does."""
    rig = office.rig
    await rig.trader.stop()
    [oco] = [w for w in rig.trader.order_commands.orders().orders if w.type == "oco"]
    async with polling(api, office):
        ask = await say(api, f"/cancelorder {oco.short_id}", "Confirm /cancelorder")
    assert "protective stop of BTC/USDT" in ask.text
    assert [o.type for o in rig.open_orders()] == [OrderType.OCO]  # nothing done yet
