"""Variables that look like ours but that nothing reads: one warning each, by name only."""

from __future__ import annotations

from chatbot.config import load_settings, load_watchdog_settings

TOKEN = "123456789:AAHfakefakefakefakefakefakefakefake12"
# What a server's environment holds besides ours; none of it may be warned about.
SERVER = {
    "PATH": "/usr/bin",
    "HOME": "/root",
    "HOSTNAME": "worker-1",
    "USER": "app",
    "LANG": "C.UTF-8",
    "PYTHONPATH": "/app",
    "PYTHONUNBUFFERED": "1",
    "RAILWAY_ENVIRONMENT": "production",
    "RAILWAY_SERVICE_NAME": "bot",
    "IS_SANDBOX": "1",
    "PIP_DEFAULT_TIMEOUT": "60",
}


def test_a_misnamed_bot_token_is_warned_with_the_right_name_and_never_its_value():
    s = load_settings({"TELEGRAM_TOKEN": TOKEN})
    assert s.warnings == ("TELEGRAM_TOKEN is not a setting: did you mean TELEGRAM_BOT_TOKEN?",)
    assert TOKEN not in repr(s) and TOKEN not in str(s.redacted())


def test_near_misses_of_our_names_are_warned_with_a_suggestion():
    s = load_settings({"STAKEAMOUNT": "5", "LOGLEVEL": "debug", "EXCHANGE": "kraken"})
    assert s.warnings == (
        "EXCHANGE is not a setting: did you mean EXCHANGES?",
        "LOGLEVEL is not a setting: did you mean LOG_LEVEL?",
        "STAKEAMOUNT is not a setting: did you mean STAKE_AMOUNT?",
    )


def test_a_lower_case_name_of_ours_is_warned():
    s = load_settings({"dry_run": "false"})
    assert s.warnings == ("dry_run is not a setting: did you mean DRY_RUN?",)
    assert s.dry_run is True


def test_an_unknown_name_with_our_prefix_is_warned_even_when_nothing_is_close():
    (warning,) = load_settings({"PUSHOVER_SOUND": "siren"}).warnings
    assert warning.startswith("PUSHOVER_SOUND is not a setting")
    assert "siren" not in warning


def test_credentials_without_an_account_name_point_to_the_account_variable():
    s = load_settings({"EXCHANGES": "binance", "BINANCE_API_KEY": "k"})
    assert s.warnings == ("BINANCE_API_KEY is not a setting: did you mean BINANCE_MASTER_API_KEY?",)


def test_credentials_and_sandbox_of_any_exchange_and_other_programs_variables_are_quiet():
    env = SERVER | {
        "EXCHANGES": "binance",
        "BINANCE_USER_ALICE_API_KEY": "k1",
        "BINANCE_USER_ALICE_API_SECRET": "s1",
        "BINANCE_SANDBOX": "true",
        "KRAKEN_MASTER_API_KEY": "k2",  # kept for later, while kraken is not in EXCHANGES
        "OKX_SANDBOX": "false",
        "PORT": "8080",
        "WATCHDOG_URL": "https://bot.example/healthz",  # one .env shared with the watchdog
    }
    assert load_settings(env).warnings == ()


def test_the_watchdog_warns_about_misnamed_variables_too():
    env = {"WATCHDOG_URL": "https://bot.example/healthz", "WATCHDOG_STALE": "60"}
    s = load_watchdog_settings(env | SERVER)
    assert s.warnings == (
        "WATCHDOG_STALE is not a setting: did you mean WATCHDOG_STALE_SECONDS?",
    )
