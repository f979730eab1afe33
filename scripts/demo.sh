#!/usr/bin/env bash
# Main job: set up the environment, then run the full PhysioSync demo on synthetic DEAP-format data.
# Extra arguments are passed to `physiosync demo` (e.g. --effect 0, --protocol paper, --out DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/env.sh"
exec "$root/.venv/bin/physiosync" demo "$@"
