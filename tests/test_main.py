"""`python -m chatbot` as a newcomer runs it: configuration errors, the console session."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = [sys.executable, "-m", "sim.fakes.offline", "chatbot"]


def bot_env(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "EXCHANGES", "DRY_RUN", "PAPER_", "HEALTH_", "PORT"))
    }
    full.update({"DATA_DIR": str(tmp_path / "data"), "HEALTH_PORT": "off", "PYTHONPATH": str(ROOT)})
    full.update(env)
    return full


def run_bot(tmp_path: Path, env: dict[str, str], stdin: str | None = "", timeout: float = 60):
    """The bot as a process with no network beyond loopback; stdin None is /dev/null, as on a
    server."""
    return subprocess.run(
        BOT,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no stray .env from the developer's checkout
        env=bot_env(tmp_path, env),
        timeout=timeout,
        check=False,
    )


def test_unknown_exchange_exits_2_naming_variable_and_value_without_traceback(tmp_path):
    done = run_bot(tmp_path, {"EXCHANGES": "nosuch"})
    assert done.returncode == 2
    assert "EXCHANGES" in done.stderr and "nosuch" in done.stderr
    assert "Traceback" not in done.stderr


def test_several_bad_variables_are_all_reported_in_one_run(tmp_path):
    done = run_bot(tmp_path, {"EXCHANGES": "nosuch", "MAX_POSITIONS": "lots", "DRY_RUN": "perhaps"})
    assert done.returncode == 2
    for name in ("EXCHANGES", "MAX_POSITIONS", "DRY_RUN"):
        assert name in done.stderr


def test_dotenv_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("MAX_EXPOSURE=7\n")
    done = run_bot(tmp_path, {})
    assert done.returncode == 2 and "MAX_EXPOSURE" in done.stderr


def test_console_session_answers_ping_info_and_help_then_ends_on_eof(tmp_path):
    done = run_bot(tmp_path, {}, stdin="/ping\n/info\n/help\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "pong" in out
    assert "paper:main" in out
    assert "USDT" in out  # /info shows the paper balance
    assert "/kill" in out or "/ping" in out  # /help lists the commands
    assert "Traceback" not in done.stderr


def test_console_answers_every_results_and_order_command_without_unknown_command(tmp_path):
    lines = ["/trades", "/profit", "/daily", "/performance", "/balance", "/orders", "/roll",
             "/debug BTC/USDT", "/version"]  # fmt: skip
    done = run_bot(tmp_path, {}, stdin="".join(f"{line}\n" for line in lines))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Unknown command" not in out and "Traceback" not in done.stderr
    for answer in ("Profit", "Daily profit", "No closed trades", "working order", "Debug BTC/USDT",
                   "market: min amount", "versions: "):  # fmt: skip
        assert answer in out, answer


def test_unknown_command_gets_an_answer_not_a_crash(tmp_path):
    done = run_bot(tmp_path, {}, stdin="/frobnicate\n/ping\n")
    assert done.returncode == 0
    assert "Unknown command /frobnicate" in done.stdout and "pong" in done.stdout


LIVE_BINANCE = {
    "EXCHANGES": "binance",
    "DRY_RUN": "false",
    "BINANCE_MASTER_API_KEY": "fake-key-abcdefghijklmnop",
    "BINANCE_MASTER_API_SECRET": "fake-secret-abcdefghijklmnop",
}


def test_live_keys_without_telegram_or_terminal_refuse_to_start_before_touching_anything(
    tmp_path,
):
    # TELEGRAM_TOKEN is the misnamed variable of the report: the token is not set at all.
    env = LIVE_BINANCE | {"TELEGRAM_TOKEN": "123456789:AAHfakefakefakefakefakefakefake12"}
    done = run_bot(tmp_path, env, stdin=None, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "TELEGRAM_BOT_TOKEN" in done.stderr and "binance:master" in done.stderr
    assert (
        "WARNING chatbot.config: TELEGRAM_TOKEN is not a setting: did you mean TELEGRAM_BOT_TOKEN?"
        in done.stderr
    )
    assert "offline: refused" not in done.stderr  # no exchange (or anything else) was called
    assert not (tmp_path / "data").exists()  # nothing was built: no store, no trader
    assert "fake-key" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def run_until_running(tmp_path: Path, env: dict[str, str], stdin) -> tuple[int, list[str]]:
    """Start the bot, stop it (SIGTERM) once it says it is running; its status and log."""
    proc = subprocess.Popen(
        BOT,
        stdin=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=bot_env(tmp_path, env),
    )
    deadline = threading.Timer(30, proc.kill)  # bounds the loop below if the bot hangs
    deadline.start()
    seen: list[str] = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if "running " in line:
                proc.terminate()
                break
        seen.append(proc.communicate(timeout=30)[1])
    finally:
        deadline.cancel()
    return proc.returncode, seen


def test_the_paper_default_runs_on_a_server_without_any_channel(tmp_path):
    """The offline demo and Railway's paper mode need no Telegram and no terminal."""
    status, log = run_until_running(tmp_path, {}, subprocess.DEVNULL)
    assert any("running 1 account(s): paper:main" in line for line in log), "".join(log)
    assert status == 0, "".join(log)


def test_real_orders_start_from_a_terminal_whose_console_can_stop_them(tmp_path):
    primary, terminal = pty.openpty()
    try:
        status, log = run_until_running(tmp_path, LIVE_BINANCE, terminal)
    finally:
        os.close(primary)
        os.close(terminal)
    assert any("running 1 account(s): binance:master" in line for line in log), "".join(log)
    assert status == 0, "".join(log)
