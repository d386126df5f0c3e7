#!/usr/bin/env bash
# The long load test: LOAD_EVENTS signed events (default 2000) from LOAD_USERS users (default
# 300) through the function, against the Attio stand-in enforcing 25 writes/s, with the sender
# retrying on a compressed Svix schedule. Prints the counts; fails if anything is lost,
# duplicated or stale. Takes a few minutes (the rate limit sets the pace).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
start_moto
LOAD_EVENTS="${LOAD_EVENTS:-2000}" LOAD_USERS="${LOAD_USERS:-300}" \
  cargo test --locked --test it long_load_run -- --ignored --nocapture
