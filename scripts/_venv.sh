# Sourced by scripts/ob and scripts/test: make ./.venv (Python 3.11) and install OpenBrain with the
# extras in $OB_EXTRAS into it, once per change of pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 ships venv separately.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV" && "$PYTHON" -m venv "$VENV"
    else
      echo "error: '$PYTHON -m venv' failed; install python3-venv (Debian) and retry" >&2
      exit 1
    fi
  fi
fi

# One stamp per set of extras installed from this pyproject.toml: `scripts/ob` (cli), `scripts/ob-tuner`
# (tuner) and `scripts/test` (dev) share the venv without reinstalling each time; an edit starts over.
CKSUM="$(cksum < "$ROOT/pyproject.toml" | cut -d' ' -f1)"
STAMP="$VENV/.openbrain-installed-$CKSUM-$OB_EXTRAS"
if [ ! -f "$STAMP" ]; then
  echo "setting up $VENV (openbrain-agents[$OB_EXTRAS]) ..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # setuptools warns on every editable install that a folder named like the package may shadow it: here that
  # folder is the package being installed, so the boxed warning is only noise on a user's first run.
  PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q -e "$ROOT[$OB_EXTRAS]" >&2
  find "$VENV" -maxdepth 1 -name '.openbrain-installed-*' ! -name ".openbrain-installed-$CKSUM-*" -delete
  touch "$STAMP"
fi
