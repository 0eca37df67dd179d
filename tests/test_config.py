"""Configuration: every rule, and every problem reported at once by name."""

from __future__ import annotations

import pytest

from chatbot.config import ConfigError, Secret, load_settings

TOKEN = "123456789:AAHfakefakefakefakefakefakefakefake12"


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_defaults_run_offline_on_paper_in_dry_run():
    s = load_settings({})
    assert s.exchanges == ("paper",)
    assert s.dry_run is True
    assert [(a.exchange, a.account) for a in s.accounts] == [("paper", "MAIN")]
    assert not s.telegram.enabled
    assert s.trading.max_positions == 8
    assert s.trading.sync_failure_limit_seconds == 300
    assert s.notify.queue_size == 10


def test_unknown_exchange_names_the_variable_and_the_value():
    (problem,) = problems({"EXCHANGES": "nosuch"})
    assert "EXCHANGES" in problem and "nosuch" in problem


def test_every_bad_variable_is_reported_in_one_run():
    found = problems(
        {
            "EXCHANGES": "binance,nosuch",
            "DRY_RUN": "maybe",
            "MAX_POSITIONS": "eight",
            "STAKE_AMOUNT": "-5",
            "MAX_EXPOSURE": "1.5",
            "LOG_LEVEL": "loud",
            "DAILY_SUMMARY_TIME": "25:00",
            "NOTIFY_ENTRIES": "sometimes",
            "TELEGRAM_CHAT_ID": "me",
            "STRATEGY": "moon",
        }
    )
    names = [p.split("=")[0].split(":")[0] for p in found]
    assert sorted(names) == sorted(
        [
            "EXCHANGES",
            "DRY_RUN",
            "MAX_POSITIONS",
            "STAKE_AMOUNT",
            "MAX_EXPOSURE",
            "LOG_LEVEL",
            "DAILY_SUMMARY_TIME",
            "NOTIFY_ENTRIES",
            "TELEGRAM_CHAT_ID",
            "TELEGRAM_BOT_TOKEN",  # a chat id, even a bad one, needs a token
            "STRATEGY",
        ]
    )


@pytest.mark.parametrize("value", ["nan", "inf", "1e999"])
def test_non_finite_numbers_are_refused(value):
    (problem,) = problems({"STAKE_AMOUNT": value})
    assert problem.startswith("STAKE_AMOUNT")


def test_token_without_chat_id_is_a_contradiction():
    (problem,) = problems({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert problem.startswith("TELEGRAM_CHAT_ID")


def test_malformed_token_is_reported_without_echoing_it():
    (problem,) = problems(
        {"TELEGRAM_BOT_TOKEN": "not-a-token-secretvalue", "TELEGRAM_CHAT_ID": "1"}
    )
    assert problem.startswith("TELEGRAM_BOT_TOKEN")
    assert "secretvalue" not in problem


def test_telegram_settings_parse_ids():
    s = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "-100123",
            "TELEGRAM_ALLOWED_USER_IDS": "11, 22 33",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
        }
    )
    assert s.telegram.enabled
    assert s.telegram.chat_id == -100123
    assert s.telegram.allowed_user_ids == frozenset({11, 22, 33})
    assert s.telegram.api_base_url == "http://127.0.0.1:8081/bot"


def test_credentials_define_accounts_and_names_may_contain_underscores():
    s = load_settings(
        {
            "EXCHANGES": "binance",
            "BINANCE_MASTER_API_KEY": "k1",
            "BINANCE_MASTER_API_SECRET": "s1",
            "BINANCE_USER_ALICE_API_KEY": "k2",
            "BINANCE_USER_ALICE_API_SECRET": "s2",
        }
    )
    accounts = {a.account: a for a in s.accounts}
    assert set(accounts) == {"MASTER", "USER_ALICE"}
    assert accounts["USER_ALICE"].api_key == Secret("k2")
    assert all(a.has_credentials for a in s.accounts)


def test_missing_credentials_are_named_in_order_key_secret_password():
    s = load_settings({"EXCHANGES": "kraken,okx", "OKX_MASTER_API_KEY": "k"})
    missing = {a.exchange: a.missing for a in s.accounts}
    assert missing["kraken"] == ("KRAKEN_MASTER_API_KEY", "KRAKEN_MASTER_API_SECRET")
    assert missing["okx"] == ("OKX_MASTER_API_SECRET", "OKX_MASTER_API_PASSWORD")


def test_sandbox_on_an_exchange_without_testnet_is_a_config_error():
    (problem,) = problems({"EXCHANGES": "kraken", "KRAKEN_SANDBOX": "true"})
    assert problem.startswith("KRAKEN_SANDBOX")


def test_sandbox_on_binance_is_accepted():
    s = load_settings({"EXCHANGES": "binance", "BINANCE_SANDBOX": "true"})
    assert s.accounts[0].sandbox is True


def test_health_port_falls_back_to_railway_port():
    assert load_settings({"PORT": "5000"}).health_port == 5000
    assert load_settings({"PORT": "5000", "HEALTH_PORT": "6000"}).health_port == 6000
    assert load_settings({"HEALTH_PORT": "off"}).health_port is None
    assert problems({"HEALTH_PORT": "99999"})[0].startswith("HEALTH_PORT")


def test_cancel_all_after_defaults_to_three_cycles_and_must_outlast_two():
    assert load_settings({}).trading.cancel_all_after_seconds == 180
    assert load_settings({"SCAN_INTERVAL_SECONDS": "30"}).trading.cancel_all_after_seconds == 90
    assert load_settings({"CANCEL_ALL_AFTER_SECONDS": "0"}).trading.cancel_all_after_seconds == 0
    (problem,) = problems({"CANCEL_ALL_AFTER_SECONDS": "60"})
    assert "CANCEL_ALL_AFTER_SECONDS" in problem and "SCAN_INTERVAL_SECONDS" in problem


def test_two_accounts_whose_names_differ_only_in_case_are_refused():
    (problem,) = problems(
        {
            "EXCHANGES": "kraken",
            "KRAKEN_Alice_API_KEY": "a",
            "KRAKEN_Alice_API_SECRET": "b",
            "KRAKEN_ALICE_API_KEY": "c",
            "KRAKEN_ALICE_API_SECRET": "d",
        }
    )
    assert "KRAKEN_ALICE_*" in problem and "KRAKEN_Alice_*" in problem


def test_sync_failure_limit_must_span_several_syncs():
    (problem,) = problems({"SCAN_INTERVAL_SECONDS": "3600", "SYNC_INTERVAL_SECONDS": "3600"})
    assert problem.startswith("SYNC_FAILURE_LIMIT_SECONDS")
    ok = load_settings(
        {
            "SCAN_INTERVAL_SECONDS": "3600",
            "SYNC_INTERVAL_SECONDS": "600",
            "SYNC_FAILURE_LIMIT_SECONDS": "1800",
            "CANCEL_ALL_AFTER_SECONDS": "0",
        }
    )
    assert ok.trading.sync_failure_limit_seconds == 1800


def test_ntfy_topic_url_is_a_secret_and_never_echoed():
    s = load_settings({"NTFY_URL": "https://ntfy.sh/my-secret-topic"})
    assert "my-secret-topic" not in str(s.redacted())
    assert "https://ntfy.sh/my-secret-topic" in {x.get() for x in s.secrets}
    (problem,) = problems({"NTFY_URL": "ftp://my-secret-topic"})
    assert problem.startswith("NTFY_URL") and "my-secret-topic" not in problem


def test_pushover_needs_both_token_and_user():
    (problem,) = problems({"PUSHOVER_TOKEN": "t"})
    assert "PUSHOVER_USER" in problem


def test_secrets_never_show_in_repr_or_redacted_settings():
    s = load_settings(
        {
            "EXCHANGES": "binance",
            "BINANCE_MASTER_API_KEY": "key-AAAA1111",
            "BINANCE_MASTER_API_SECRET": "secret-BBBB2222",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "1",
            "NTFY_URL": "https://ntfy.sh/topic",
            "NTFY_TOKEN": "tk-CCCC3333",
        }
    )
    for text in (repr(s), str(s.redacted())):
        for secret in ("key-AAAA1111", "secret-BBBB2222", TOKEN, "tk-CCCC3333"):
            assert secret not in text
    assert {x.get() for x in s.secrets} >= {"key-AAAA1111", "secret-BBBB2222", TOKEN}


def test_settings_are_frozen():
    s = load_settings({})
    with pytest.raises(AttributeError):
        s.dry_run = False  # type: ignore[misc]


def test_chat_id_without_token_is_refused_naming_both_variables():
    (problem,) = problems({"TELEGRAM_CHAT_ID": "42"})
    assert problem == (
        "TELEGRAM_BOT_TOKEN: required when TELEGRAM_CHAT_ID is set "
        "(set both, or neither for the console)"
    )


def test_allowed_users_without_token_are_refused():
    (problem,) = problems({"TELEGRAM_ALLOWED_USER_IDS": "11"})
    assert problem.startswith("TELEGRAM_BOT_TOKEN: required when TELEGRAM_ALLOWED_USER_IDS")


def test_every_telegram_setting_left_without_a_token_is_named_in_one_problem():
    (problem,) = problems(
        {
            "TELEGRAM_CHAT_ID": "42",
            "TELEGRAM_ALLOWED_USER_IDS": "11",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
        }
    )
    assert problem.startswith(
        "TELEGRAM_BOT_TOKEN: required when TELEGRAM_CHAT_ID, TELEGRAM_ALLOWED_USER_IDS, "
        "TELEGRAM_API_BASE_URL are set"
    )


def test_one_key_under_two_account_names_is_refused_naming_the_accounts_not_the_key():
    (problem,) = problems(
        {
            "EXCHANGES": "binance",
            "BINANCE_MASTER_API_KEY": "shared-key-1234",
            "BINANCE_MASTER_API_SECRET": "s1",
            "BINANCE_ALICE_API_KEY": "shared-key-1234",
            "BINANCE_ALICE_API_SECRET": "s2",
        }
    )
    assert problem == (
        "BINANCE_ALICE_API_KEY and BINANCE_MASTER_API_KEY are the same key: one account would "
        "trade twice against one set of limits"
    )


def test_one_key_on_two_exchanges_is_refused_too():
    (problem,) = problems(
        {
            "EXCHANGES": "binance,kraken",
            "BINANCE_MASTER_API_KEY": "shared-key-1234",
            "BINANCE_MASTER_API_SECRET": "s1",
            "KRAKEN_MASTER_API_KEY": "shared-key-1234",
            "KRAKEN_MASTER_API_SECRET": "s2",
        }
    )
    assert "BINANCE_MASTER_API_KEY and KRAKEN_MASTER_API_KEY" in problem
    assert "shared-key-1234" not in problem
