#!/usr/bin/env bash
# The long chaos run: CHAOS_EVENTS signed events (default 2000) from CHAOS_USERS users (default
# 300) through four webhook containers with a queue, while the Attio stand-in is down for the
# first CHAOS_OUTAGE_SECONDS (default 20) and limited to 25 writes/s throughout; two workers
# drain moto's FIFO queue as Lambda's SQS event source would. Prints the counts and the time the
# queue took to drain; fails if anything is lost, duplicated, stale or dead-lettered.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
start_moto
CHAOS_EVENTS="${CHAOS_EVENTS:-2000}" CHAOS_USERS="${CHAOS_USERS:-300}" \
  CHAOS_OUTAGE_SECONDS="${CHAOS_OUTAGE_SECONDS:-20}" \
  cargo test --locked --test it long_chaos_run -- --ignored --nocapture 2>&1 | grep -v '"_aws"'
exit "${PIPESTATUS[0]}"
