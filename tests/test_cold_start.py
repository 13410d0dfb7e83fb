"""What a command imports, so the cold start of `ipledger` stays short (issue 13).

A CLI command is a new process: every module it imports is paid for on every run. These
tests run real commands in fresh processes and name the heavy modules each must not
load, so an innocent top-level import cannot silently bring one back. They measure no
time (timings belong in bench/): a module set is exact on any machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PATENT, Market

#: Runs `ipledger ARGS…` in this process as the console script does, then prints the
#: modules it really loaded, from an atexit handler (`run` ends the process itself; a
#: module `ipledger.lazy` registered but nothing has read yet is not loaded; `type()`
#: tells without loading it, where any attribute access would).
CHILD = """
import atexit, json, sys
from ipledger.cli import run
def loaded():
    print(json.dumps(sorted(n for n, m in sys.modules.items() if type(m).__name__ != "_LazyModule")))
atexit.register(loaded)
sys.argv = ["ipledger", *sys.argv[1:]]
run()
"""

#: Never needed by a command of the CLI on SQLite (the web stack has its own command).
NEVER = {
    "sqlalchemy_utils",  # its one UUID type is loaded alone (ledger/uuidtype.py), not the whole package
    "cryptography",  # sqlalchemy_utils's encrypted type; checkpoints import it when they sign
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.mssql",
    "sqlalchemy.dialects.oracle",
    "sqlalchemy.dialects.mysql",
    "alembic",  # only when the schema is behind
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
}


def _loaded(db: str, *args: str) -> tuple[str, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    env |= {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "IPLEDGER_DB": db}
    out = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=True)
    *printed, modules = out.stdout.splitlines()
    return "\n".join(printed), set(json.loads(modules))


def _current(sqlite_market: Market) -> str:
    """The market's store with its read models at the log head, as after any CLI command."""
    sqlite_market.ledger.refresh_read_models()
    return sqlite_market.ledger.url


def test_a_write_loads_the_write_side_and_nothing_it_does_not_run(sqlite_market: Market) -> None:
    db = _current(sqlite_market)
    args = ("member", "add", "cold-1", "--name", "Cold", "--kind", "enterprise", "--country", "CN")
    printed, loaded = _loaded(db, *args)
    assert printed == "cold-1"
    assert {"ipledger.ledger.application", "ipledger.projections.runner", "sqlalchemy_utils.types.uuid"} <= loaded
    unneeded = {"ipledger.projections.lists", "ipledger.projections.queries", "ipledger.render"}
    # The recorder is our own (ledger/recorder.py): the library's ORM datastore is not loaded.
    unneeded |= {"sqlalchemy.orm", "eventsourcing_sqlalchemy"}
    assert sorted(loaded & (NEVER | unneeded)) == []


def test_the_first_write_on_a_new_store_makes_it_without_alembic(tmp_path: Path) -> None:
    args = ("member", "add", "cold-1", "--name", "Cold", "--kind", "enterprise", "--country", "CN")
    printed, loaded = _loaded(f"sqlite:///{tmp_path}/new.db", *args)
    assert printed == "cold-1"
    assert "ipledger.ledger.schema_sqlite" in loaded
    assert sorted(loaded & NEVER) == []


def test_a_query_on_current_read_models_loads_no_write_side(sqlite_market: Market) -> None:
    db = _current(sqlite_market)
    printed, loaded = _loaded(db, "owner", PATENT)
    assert "fudan-univ" in printed
    assert "ipledger.projections.queries" in loaded
    write_side = {
        "eventsourcing",
        "eventsourcing_sqlalchemy",
        "sqlalchemy.orm",
        "pydantic",
        "ipledger.ledger.application",
        "ipledger.ledger.commands",
        "ipledger.ledger.merkle",
        "ipledger.projections.runner",
        "ipledger.projections.lists",
        "ipledger.render",
    }
    assert sorted(loaded & (NEVER | write_side)) == []


def test_help_loads_neither_side(sqlite_url: str) -> None:
    printed, loaded = _loaded(sqlite_url, "--help")
    assert "Usage: ipledger" in printed
    store = {"sqlalchemy", "pydantic", "eventsourcing", "ipledger.service", "ipledger.ledger.commands"}
    assert sorted(loaded & (NEVER | store | {"ipledger.render"})) == []


#: Makes the API's app, then prints the lazy modules still waiting for a first access.
APP_CHILD = """
import json, sys
from ipledger.api import create_app
create_app(sys.argv[1])
print(json.dumps(sorted(n for n, m in sys.modules.items() if type(m).__name__ == "_LazyModule")))
"""


def test_the_api_loads_every_lazy_module_before_its_threads_share_them(sqlite_url: str) -> None:
    """A lazy module's first access is not thread-safe on Python 3.11 (CPython gh-114763):
    two request threads of a fresh worker could see `queries` half loaded (a 500, seen in
    bench/api.py). The server has no cold start to save: it loads them all first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run(
        [sys.executable, "-c", APP_CHILD, sqlite_url], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == []
