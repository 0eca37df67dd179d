"""The shape the code promises (docs/ARCHITECTURE.md), proved from its imports: layers point
one way, ccxt and python-telegram-bot stay in their corners, and the product never ships its
test bench."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("chatbot", "handlers", "trading")
# What each layer may import of the others: chatbot -> handlers -> trading, never back.
ALLOWED = {
    "chatbot": {"chatbot", "handlers", "trading"},
    "handlers": {"handlers", "trading"},
    "trading": {"trading"},
}
CCXT_HOMES = {
    "trading/venues/ccxt_venue.py",
    "trading/venues/ccxt_faults.py",
    "trading/venues/ccxt_exchanges.py",
    "trading/venues/ccxt_parse.py",
    # whole-market ticker reads by a twin client on a worker thread
    "trading/venues/ccxt_bulk.py",
    # a public-only venue that also pages candle history, for `python -m chatbot download`
    "trading/venues/ccxt_history.py",
    "trading/venues/feed.py",
    # the feed session's ccxt.pro client on the account's pace and connector
    "trading/venues/ccxt_feed_client.py",
}
TELEGRAM_PREFIX = "chatbot/"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("package", PRODUCT)
def test_layers_import_only_downward(package):
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PRODUCT and top not in ALLOWED[package]:
                wrong.append(f"{_rel(path)} imports {name}")
    assert wrong == []


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_never_imports_its_test_bench(package):
    wrong = [
        f"{_rel(path)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if name.split(".")[0] in ("sim", "tests", "bench")
    ]
    assert wrong == []


def test_ccxt_is_imported_only_by_the_ccxt_venue():
    wrong = [
        _rel(path)
        for package in PRODUCT
        for path in _modules(package)
        if any(n.split(".")[0] == "ccxt" for n in _imports(path)) and _rel(path) not in CCXT_HOMES
    ]
    assert wrong == []


def test_telegram_is_imported_only_by_the_chat_layer():
    wrong = [
        _rel(path)
        for package in ("handlers", "trading")
        for path in _modules(package)
        if any(n.split(".")[0] == "telegram" for n in _imports(path))
    ]
    assert wrong == []
    assert all(_rel(p).startswith(TELEGRAM_PREFIX) for p in _modules("chatbot"))


def test_no_trader_is_assembled_from_mixins():
    tree = ast.parse((ROOT / "trading" / "engine.py").read_text())
    [trader] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trader"]
    assert trader.bases == []


def test_no_simulated_clock_or_referee_in_the_product():
    names = {"FakeClock", "VirtualTimeLoop", "LoopClock", "run_simulated", "Monitor"}
    found = [
        f"{_rel(path)}: {node.name}"
        for package in PRODUCT
        for path in _modules(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name in names
    ]
    assert found == []


def test_no_fault_injection_in_the_product():
    """Scripted faults are the test bench's (sim/faults.py); the paper exchange only has a seam."""
    names = {"inject", "inject_latency", "clear_faults", "FaultPlan", "FaultSpec", "Injection"}
    found = [
        f"{_rel(path)}: {name}"
        for package in PRODUCT
        for path in _modules(package)
        for node in ast.walk(ast.parse(path.read_text()))
        for name in _defined(node)
        if name in names
    ]
    assert found == []


def _defined(node: ast.AST) -> list[str]:
    """The names a definition or an assignment binds."""
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def test_the_test_bench_stands_apart_from_tests_and_benchmarks():
    """sim/ serves tests/ and bench/ alike; neither folder imports the other."""
    wrong = [
        f"{_rel(path)} imports {name}"
        for folder, banned in (("sim", {"tests", "bench"}), ("bench", {"tests"}))
        for path in _modules(folder)
        for name in _imports(path)
        if name.split(".")[0] in banned
    ]
    wrong += [
        f"{_rel(path)} imports {name}"
        for path in _modules("tests")
        for name in _imports(path)
        if name.split(".")[0] == "bench"
    ]
    assert wrong == []
