#!/usr/bin/env bash
# Runs every test: unit tests, integration tests against moto's Secrets Manager and the local
# Attio stand-in, the end-to-end test through `cargo lambda watch`, and the template linters.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_pip cargo-lambda cargo-lambda
start_moto

say "cargo test"
cargo test --all-targets --locked
