"""A writer process for the race tests: waits for the start signal, runs its commands,
prints one JSON result per command (outcome, or error name and exit code)."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    url, start_at, script = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    from ipledger.domain.errors import LedgerError
    from ipledger.service import Ledger

    ledger = Ledger(url)
    time.sleep(max(0.0, start_at - time.time()))
    for step in script:
        try:
            outcome = ledger.execute(
                step["command"],
                step["args"],
                actor=step.get("actor", "operator"),
                command_id=step["command_id"],
                now=step.get("now"),
            )
            print(json.dumps({"command_id": step["command_id"], "ok": True, "outcome": outcome}), flush=True)
        except LedgerError as e:
            print(
                json.dumps(
                    {
                        "command_id": step["command_id"],
                        "ok": False,
                        "error": e.name,
                        "exit": e.exit_code,
                        "message": e.message,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
