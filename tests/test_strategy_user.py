"""Strategies users write: loaded by path from STRATEGY_DIR, checked against the contract, their
parameters validated at start with every problem named (exit 2); docs/STRATEGIES.md's template
trades through the real engine."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from chatbot.config import ConfigError, load_settings
from sim.clock import FakeClock
from tests.engine_support import make_rig
from tests.test_main import run_bot
from trading.events import TradeClosed, TradeOpened
from trading.settings import TradingSettings
from trading.strategies import StrategyError, UnknownStrategy, available_strategies, load_strategy

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = re.search(
    r"<!-- template:[^>]*-->\n```python\n(.*?)```", (ROOT / "docs/STRATEGIES.md").read_text(), re.S
)[1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's strategy folder holding the documented template as `channel.py`."""
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "channel.py").write_text(TEMPLATE)
    return tmp_path / "strategies"


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return caught.value.problems


def test_the_documented_template_loads_from_the_user_folder_with_its_parameters(folder):
    strategy = load_strategy("channel", directory=folder, params={"channel": 36})
    assert strategy.name == "channel"
    assert strategy.params.channel == 36 and strategy.candle_limit == 37
    assert "channel" in available_strategies(folder) and "trend" in available_strategies(folder)


async def test_the_documented_template_trades_through_the_engine(folder):
    strategy = load_strategy("channel", directory=folder, params={"channel": 12})
    settings = TradingSettings(min_quote_volume=0.0, max_positions=5, stake_amount=200.0)
    rig = make_rig(FakeClock(), strategy=strategy, settings=settings, markets=30)
    await rig.trader.start()

    await rig.cycles(2 * 24 * 4, step=900)  # two simulated days, a cycle every 15 minutes

    assert len(rig.of(TradeOpened)) >= 2 and len(rig.of(TradeClosed)) >= 1
    assert rig.trader.last_error is None


def test_loading_a_user_module_adds_nothing_to_sys_path(folder):
    before = list(sys.path)
    load_strategy("channel", directory=folder)
    assert sys.path == before
    assert str(folder) not in sys.path


def test_a_package_strategy_imports_its_own_helpers_relatively(tmp_path):
    package = tmp_path / "bundle"
    package.mkdir()
    (package / "levels.py").write_text("WINDOW = 30\n")
    body = TEMPLATE.replace("class Channel:", "from . import levels\n\n\nclass Channel:")
    body = body.replace("params.channel + 1", "params.channel + levels.WINDOW")
    (package / "__init__.py").write_text(body)
    assert load_strategy("bundle", directory=tmp_path).candle_limit == 24 + 30


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def create(:\n", r"failed to import: SyntaxError"),
        ("import no_such_library_here\n", r"failed to import: ModuleNotFoundError"),
        ("raise RuntimeError('boom')\n", r"failed to import: RuntimeError: boom"),
        ("X = 1\n", r"no Params dataclass.*no create\(params\) function"),
    ],
)
def test_a_broken_module_is_a_start_up_error_naming_the_file(tmp_path, source, expected):
    (tmp_path / "broken.py").write_text(source)
    with pytest.raises(StrategyError) as caught:
        load_strategy("broken", directory=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "broken.py") in message
    assert re.search(expected, message), message
    assert "strategy_dir_broken" not in sys.modules  # a failed import leaves nothing behind


def test_a_strategy_missing_part_of_the_interface_is_named_with_each_missing_part(folder):
    body = TEMPLATE.replace('timeframes = ("1h",)', 'timeframes = ("1 hour",)')
    body = body.replace("    def exit(self", "    def leave(self")
    (folder / "partial.py").write_text(body)
    with pytest.raises(StrategyError) as caught:
        load_strategy("partial", directory=folder)
    found = caught.value.problems
    assert len(found) == 2
    assert all(p.startswith(str(folder / "partial.py")) for p in found)
    assert "not a timeframe: '1 hour'" in found[0] and "no exit() method" in found[1]


def test_a_user_module_named_like_a_built_in_is_refused(folder):
    (folder / "trend.py").write_text(TEMPLATE)
    with pytest.raises(StrategyError, match=r"trend\.py: named like the built-in.*rename"):
        load_strategy("trend", directory=folder)


def test_an_unknown_name_lists_the_built_ins_and_the_users(folder):
    with pytest.raises(UnknownStrategy, match=r"available: channel, meanrev, trend"):
        load_strategy("nope", directory=folder)


def test_bad_and_unknown_parameters_are_all_named_at_once_with_other_bad_variables(folder):
    found = problems(
        {
            "STRATEGY_DIR": str(folder),
            "STRATEGY": "channel",
            "STRATEGY_PARAMS": json.dumps(
                {"chanel": 36, "target_risk": -1, "volume_factor": "lots", "channel": 2.5}
            ),
            "MAX_POSITIONS": "eight",
        }
    )
    where = f"STRATEGY_PARAMS: {folder / 'channel.py'}: "
    assert sorted(found) == sorted(
        [
            "MAX_POSITIONS='eight': expected a whole number",
            where + "chanel: unknown parameter (did you mean channel?)",
            where + "target_risk=-1: must be between 0.5 and 20",
            where + "volume_factor='lots': expected a number",
            where + "channel=2.5: expected a whole number",
        ]
    )


def test_parameters_that_contradict_each_other_are_named(folder):
    found = problems(
        {
            "STRATEGY_DIR": str(folder),
            "STRATEGY": "channel",
            "STRATEGY_PARAMS": '{"channel": 6, "exit_channel": 9}',
        }
    )
    assert found == [
        f"STRATEGY_PARAMS: {folder / 'channel.py'}: exit_channel must not exceed channel"
    ]


def test_parameters_come_from_a_json_file_and_reach_the_settings(folder, tmp_path):
    (tmp_path / "params.json").write_text('{"channel": 48, "volume_factor": 2}')
    settings = load_settings(
        {
            "STRATEGY_DIR": str(folder),
            "STRATEGY": "channel",
            "STRATEGY_PARAMS": str(tmp_path / "params.json"),
        }
    )
    t = settings.trading
    assert (t.strategy, t.strategy_dir) == ("channel", folder.resolve())
    assert dict(t.strategy_params) == {"channel": 48, "volume_factor": 2}
    strategy = load_strategy(t.strategy, directory=t.strategy_dir, params=dict(t.strategy_params))
    assert strategy.params.volume_factor == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{not json", "STRATEGY_PARAMS: JSON text is not valid JSON"),
        ("[1, 2]", "no such file"),
        ('{"a": 1', "is not valid JSON"),
        ("/nowhere/params.json", "STRATEGY_PARAMS='/nowhere/params.json': no such file"),
    ],
)
def test_unreadable_parameters_are_named(value, expected):
    (problem,) = problems({"STRATEGY_PARAMS": value})
    assert expected in problem


def test_a_strategy_folder_that_does_not_exist_is_named(tmp_path):
    (problem,) = problems({"STRATEGY_DIR": str(tmp_path / "missing"), "STRATEGY": "channel"})
    assert problem.startswith("STRATEGY_DIR=") and "not a folder" in problem
    missing, bad = problems(
        {"STRATEGY_DIR": str(tmp_path / "missing"), "STRATEGY_PARAMS": '{"fast": 0}'}
    )
    assert "not a folder" in missing and bad.endswith("fast=0: must be between 2 and 200")


def test_built_in_parameters_are_validated_too():
    (problem,) = problems({"STRATEGY": "meanrev", "STRATEGY_PARAMS": '{"rsi_oversold": 80}'})
    assert problem.endswith("rsi_oversold=80: must be between 1 and 50")


def test_the_bot_exits_2_naming_every_bad_parameter_without_a_traceback(folder, tmp_path):
    done = run_bot(
        tmp_path,
        {
            "STRATEGY_DIR": str(folder),
            "STRATEGY": "channel",
            "STRATEGY_PARAMS": '{"chanel": 36, "target_risk": -1}',
        },
    )
    assert done.returncode == 2
    assert "chanel: unknown parameter (did you mean channel?)" in done.stderr
    assert "target_risk=-1: must be between 0.5 and 20" in done.stderr
    assert "Traceback" not in done.stderr
