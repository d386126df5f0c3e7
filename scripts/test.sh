#!/usr/bin/env bash
# Runs every test: the template linters, unit tests, integration tests against moto's Secrets
# Manager and the local Attio stand-in, and the end-to-end test through `cargo lambda watch`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

say "linting template.yaml"
ensure_pip cfn-lint cfn-lint
ensure_pip sam aws-sam-cli
cfn-lint template.yaml
sam validate --lint --region "$AWS_REGION" --template-file template.yaml

ensure_pip cargo-lambda cargo-lambda
start_moto

say "cargo test"
log="$(mktemp)"
status=0
cargo build --locked --examples   # the demo's Attio stand-in must keep compiling
# A test that checks a delivery's work fits in its sender's timeout runs alone, after the rest:
# on two cores, tests running beside it would decide it, not the function.
alone='cargo_lambda_watch::an_okta_batch_of_60_lands_within_oktas_two_attempts_with_attio_150_ms_away'
cargo test --locked --tests -- --skip "$alone" 2>&1 | tee "$log" || status=$?
cargo test --locked --test it -- --exact "$alone" 2>&1 | tee -a "$log" || status=$?

# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
