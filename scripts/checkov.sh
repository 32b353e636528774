#!/usr/bin/env bash
# Static security checks of the Terraform in Terraform/ with checkov (offline: --skip-download).
# checkov lives in its own virtual environment, .venv-checkov (git-ignored; or $CHECKOV_VENV), created once: its
# bc-python-hcl2 dependency overwrites the `hcl2` module that the tests' python-hcl2 provides, so the
# two must never share an environment. The environment is rebuilt when CHECKOV_VERSION changes.
# Exit status: checkov's (1 when any check fails). Every skipped check is skipped in the .tf file
# itself, with its reason (#checkov:skip=CKV_...:reason).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CHECKOV_VERSION=3.3.30
VENV=${CHECKOV_VENV:-.venv-checkov}   # CHECKOV_VENV=DIR shares one install between clones
STAMP="$VENV/.installed-$CHECKOV_VERSION"

if [ ! -f "$STAMP" ]; then
    echo "checkov.sh: installing checkov $CHECKOV_VERSION into $VENV (once; ~290 MB)" >&2
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    log=$(mktemp)
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "checkov==$CHECKOV_VERSION" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "checkov.sh: pip install checkov==$CHECKOV_VERSION failed (full log: $log)" >&2
        exit 1
    fi
    rm -f "$log"
    touch "$STAMP"
fi

exec "$VENV/bin/checkov" -d Terraform --framework terraform --skip-download --quiet --compact "$@"
