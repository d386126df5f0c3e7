#!/usr/bin/env bash
# Runs every test: unit tests, integration tests against moto's Secrets Manager and the local
# Attio stand-in, the end-to-end test through `cargo lambda watch`, and the template linters.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_pip cargo-lambda cargo-lambda
start_moto

say "cargo test"
cargo test --all-targets --locked

say "linting template.yaml"
ensure_pip cfn-lint cfn-lint
ensure_pip sam aws-sam-cli
cfn-lint template.yaml
SAM_CLI_TELEMETRY=0 sam validate --lint --region "$AWS_REGION" --template-file template.yaml
