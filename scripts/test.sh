#!/usr/bin/env bash
# Test command: set up the environment, then run the whole test suite (CPU only, no network, no data).
# Extra arguments are passed to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/env.sh"
cd "$root"
exec .venv/bin/python -m pytest -q "$@"
