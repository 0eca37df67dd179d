"""The desk: account selection and symbol normalization over real traders on paper exchanges."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from tests.engine_support import make_rig
from trading.desk import Desk, UnknownAccount
from trading.store import Store
from trading.venues.paper import PaperExchange


async def _desk() -> Desk:
    clock = FakeClock()
    store = Store()
    rigs = [
        make_rig(clock, store=store, paper=PaperExchange(clock=clock, name=name, account=account))
        for name, account in (("kraken", "MASTER"), ("kraken", "USER_ALICE"), ("binance", "MASTER"))
    ]
    for rig in rigs:
        await rig.trader.start()
    return Desk([r.trader for r in rigs], store=store, clock=clock)


async def test_select_by_exchange_by_account_or_all():
    desk = await _desk()
    assert [t.label for t in desk.select(None)] == desk.labels
    assert [t.label for t in desk.select("all")] == desk.labels
    assert [t.label for t in desk.select("Kraken")] == ["kraken:master", "kraken:user_alice"]
    assert [t.label for t in desk.select("binance:MASTER")] == ["binance:master"]
    assert [t.label for t in desk.select("kraken:user_alice")] == ["kraken:user_alice"]


async def test_unknown_selector_raises_with_the_known_labels():
    desk = await _desk()
    with pytest.raises(UnknownAccount) as caught:
        desk.select("coinbase")
    assert caught.value.known == ("kraken:master", "kraken:user_alice", "binance:master")
    assert "kraken:user_alice" in str(caught.value)
    with pytest.raises(UnknownAccount):
        desk.select("kraken:bob")


async def test_normalize_symbol_accepts_the_ways_people_type_a_pair():
    desk = await _desk()
    for text in ("btc/usdt", "BTC-USDT", "btc_usdt", " BTC USDT ", "btcusdt", "btc"):
        assert desk.normalize_symbol(text) == "BTC/USDT", text
    assert desk.normalize_symbol("nope/usdt") is None
    assert desk.normalize_symbol("") is None
    assert desk.normalize_symbol("btc/eur") is None


async def test_uptime():
    desk = await _desk()
    desk.clock.advance(90)
    assert desk.uptime() == 90
