"""`python -m chatbot check` against the loopback fake Binance: what it prints and returns."""

from __future__ import annotations

import io
import logging

import pytest

from chatbot.check import run_check
from chatbot.config import load_settings
from sim.clock import FakeClock
from sim.fakes.binance import ACCOUNT, ORDER, FakeBinance


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


def env_for(fake: FakeBinance, **extra: str) -> dict[str, str]:
    return {
        "EXCHANGES": "binance",
        "DRY_RUN": "false",
        "BINANCE_MASTER_API_KEY": fake.api_key,
        "BINANCE_MASTER_API_SECRET": fake.secret,
        **extra,
    }


async def check(env: dict[str, str], fake: FakeBinance | None = None) -> tuple[int, str]:
    out = io.StringIO()
    config = fake.ccxt_config() if fake is not None else {"timeout_on_exit": 0}
    code = await run_check(load_settings(env), out, ccxt_config=config, paper_clock=FakeClock())
    return code, out.getvalue()


def assert_no_secret(fake: FakeBinance, *texts: str) -> None:
    for text in texts:
        assert fake.api_key not in text and fake.secret not in text


async def test_a_working_live_account_prints_its_block_and_returns_0(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.clock_skew_ms = 15_000
    code, out = await check(env_for(fake), fake)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "binance MASTER"
    assert "  mode:             live" in lines
    assert "  markets:          4 spot" in lines
    assert "  balance:          10000.00 USDT (free 10000.00)" in lines
    assert any(line.startswith("  clock offset:     +1") for line in lines)  # about +15000 ms
    assert "  cancel-all-after: not available (only the in-process dead switch)" in lines
    assert "  result:           OK" in lines
    assert lines[-1] == "1 of 1 accounts ready"
    assert fake.calls(ORDER) == 0  # a check never orders
    assert_no_secret(fake, out, caplog.text)


async def test_an_account_without_credentials_is_reported_and_fails_the_check(fake):
    code, out = await check(env_for(fake, EXCHANGES="binance,kraken"), fake)
    assert code == 1
    kraken = out.split("\n\n")[1].splitlines()
    assert kraken[0] == "kraken MASTER"
    assert kraken[-1] == (
        "  result:           FAILED - credentials not configured "
        "(KRAKEN_MASTER_API_KEY, KRAKEN_MASTER_API_SECRET)"
    )
    assert "binance MASTER\n  mode:             live" in out
    assert out.endswith("1 of 2 accounts ready\n")


async def test_a_failing_endpoint_is_reported_with_fault_class_and_message(fake, caplog):
    fake.fail_html(ACCOUNT, status=404, times=-1)
    code, out = await check(env_for(fake), fake)
    assert code == 1
    (result,) = [line for line in out.splitlines() if "result:" in line]
    assert "FAILED - Transient: binance:master fetch_balance: ExchangeNotAvailable" in result
    assert "404" in result
    assert "markets:          4 spot" in out  # what worked before the fault is still shown
    assert_no_secret(fake, out, caplog.text)


async def test_a_rejected_key_is_fatal_and_no_secret_is_printed(fake, caplog):
    caplog.set_level(logging.DEBUG)
    env = env_for(fake, BINANCE_MASTER_API_KEY="rejected-key-0123456789")
    code, out = await check(env, fake)
    assert code == 1
    assert "FAILED - Fatal: binance:master fetch_balance: AuthenticationError" in out
    assert "rejected-key-0123456789" not in out + caplog.text
    assert_no_secret(fake, out, caplog.text)


async def test_dry_run_shows_the_paper_balance_and_tries_the_credentials_read_only(fake, caplog):
    caplog.set_level(logging.DEBUG)
    code, out = await check(env_for(fake, DRY_RUN="true", PAPER_BALANCE="2500"), fake)
    assert code == 0, out
    assert "  mode:             dry-run (live prices, simulated orders)" in out
    assert "  balance:          2500.00 USDT (free 2500.00)" in out
    assert "  credentials:      OK, read-only (exchange balance 10000.00 USDT)" in out
    assert "  cancel-all-after: simulated (live binance: not available)" in out
    assert fake.calls(ACCOUNT) == 1 and fake.calls(ORDER) == 0
    assert_no_secret(fake, out, caplog.text)


async def test_dry_run_with_bad_credentials_fails_the_check(fake):
    code, out = await check(env_for(fake, DRY_RUN="true", BINANCE_MASTER_API_SECRET="x" * 20), fake)
    assert code == 1
    assert "  credentials:      FAILED" in out
    assert "FAILED - credentials: Fatal: binance:master fetch_balance: AuthenticationError" in out
    assert "x" * 20 not in out


async def test_sandbox_mode_is_named(fake):
    code, out = await check(env_for(fake, BINANCE_SANDBOX="true"), fake)
    assert code == 0
    assert "  mode:             sandbox (exchange testnet)" in out


async def test_the_default_paper_account_checks_out_offline():
    code, out = await check({"PAPER_MARKETS": "3"})
    assert code == 0
    assert out.startswith("paper MAIN\n  mode:             paper (simulated exchange)\n")
    assert "  markets:          3 spot" in out
    assert "  cancel-all-after: simulated" in out
    assert out.endswith("1 of 1 accounts ready\n")
