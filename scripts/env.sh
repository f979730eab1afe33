#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv.
# torch==2.13.0 is installed FIRST (a local CPU wheel on our machines); any other torch spec would make
# pip download several GB of CUDA packages. The package is then installed editable with its extras.
# A stamp file skips the pip work when pyproject.toml has not changed since the last refresh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
extras="${PHYSIOSYNC_EXTRAS:-dev}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.physiosync-stamp"
want="$(cat pyproject.toml scripts/env.sh | sha256sum | cut -d' ' -f1)-$extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  echo "$want" > "$stamp"
fi
