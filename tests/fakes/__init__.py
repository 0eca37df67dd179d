"""Runnable fakes of the outside world (exchanges) for tests, the chaos soak and benchmarks."""

from tests.fakes.binance import FakeBinance, FakeMarket, loopback_urls

__all__ = ["FakeBinance", "FakeMarket", "loopback_urls"]
