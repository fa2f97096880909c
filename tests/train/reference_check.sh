#!/usr/bin/env bash
# Models saved by the trainer load strictly in the Hugging Face reference definitions
# (tests/nn/reference/hf_reference.py, python3-torch) and give our outputs to 1e-4.
#   reference_check.sh TOOL
set -euo pipefail
tool="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$tool" "$work"
/usr/bin/python3 "$here/../nn/reference/hf_reference.py" check "$work"
