"""Runnable fakes of the outside world (exchanges, Telegram, pagers) on 127.0.0.1, for tests,
the chaos soak and benchmarks. Import the module you need: sim.fakes.binance, ...telegram_api."""
