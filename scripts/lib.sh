# Shared by scripts/demo.sh and scripts/test.sh: install what is missing, start local services.
# Everything listens on 127.0.0.1 and is stopped when the calling script exits.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# pip installs scripts next to the interpreter; make sure that folder is on PATH.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$PY_SCRIPTS:$HOME/.local/bin:$HOME/.cargo/bin:$PATH"

# ensure_pip COMMAND PACKAGE...: installs PACKAGE(s) from PyPI when COMMAND is not found.
ensure_pip() {
  local cmd="$1"; shift
  if ! command -v "$cmd" >/dev/null 2>&1; then
    say "installing $* (pip)"
    python3 -m pip install --quiet --disable-pip-version-check "$@"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  fi
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: $cmd still not found after installing $*" >&2; exit 1; }
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_port PORT NAME: waits up to 60 s for something to listen on 127.0.0.1:PORT.
wait_for_port() {
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $2 did not start listening on 127.0.0.1:$1" >&2; exit 1
}

# Local AWS: fake credentials, one region, Secrets Manager pointed at moto.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export SAM_CLI_TELEMETRY=0

# start_moto: starts moto's server on a free loopback port and exports its endpoints (Secrets
# Manager, SQS, Cognito user pools).
start_moto() {
  ensure_pip moto_server 'moto[server]'
  local port; port="$(free_port)"
  moto_server -H 127.0.0.1 -p "$port" >"${MOTO_LOG:-/dev/null}" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "moto_server"
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="http://127.0.0.1:$port"
  say "moto Secrets Manager, SQS and Cognito on $AWS_ENDPOINT_URL_SECRETS_MANAGER"
}
