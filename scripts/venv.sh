#!/usr/bin/env bash
# Sourced by scripts/ipledger and scripts/test: make sure ./.venv exists and has this
# checkout installed (editable, with test extras). Reinstalls when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "ipledger needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

stamp="$VENV/.ipledger-installed-$( (cat "$ROOT/pyproject.toml"; echo) | cksum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  echo "installing ipledger into $VENV ..." >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]" >&2
  rm -f "$VENV"/.ipledger-installed-*
  touch "$stamp"
fi
