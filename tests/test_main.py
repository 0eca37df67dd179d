"""`python -m chatbot` as a newcomer runs it: configuration errors, the console session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bot(tmp_path: Path, env: dict[str, str], stdin: str = "", timeout: float = 60):
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "EXCHANGES", "DRY_RUN", "PAPER_", "HEALTH_", "PORT"))
    }
    full.update({"DATA_DIR": str(tmp_path / "data"), "HEALTH_PORT": "off", "PYTHONPATH": str(ROOT)})
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "chatbot"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no stray .env from the developer's checkout
        env=full,
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


def test_unknown_command_gets_an_answer_not_a_crash(tmp_path):
    done = run_bot(tmp_path, {}, stdin="/frobnicate\n/ping\n")
    assert done.returncode == 0
    assert "Unknown command /frobnicate" in done.stdout and "pong" in done.stdout
