#!/usr/bin/env bash
# Reference check of the transformer engine (BERT, DistilBERT, RoBERTa with their heads; Longformer
# with two window sizes and global tokens; GPT-2 with its greedy generation through the key/value cache):
# mlaas writes models + outputs, the Python reference (python3-torch, the Hugging Face
# definitions) loads them strictly and compares; then the reference writes models (F32, F16,
# BF16, sharded) + outputs and mlaas loads and compares. Max |diff| <= 1e-4 both ways.
#   reference_check.sh TOOL
set -euo pipefail
tool="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$tool" export "$work"
/usr/bin/python3 "$here/hf_reference.py" check "$work"
/usr/bin/python3 "$here/hf_reference.py" write "$work"
"$tool" verify "$work"
