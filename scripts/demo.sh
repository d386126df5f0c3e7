#!/usr/bin/env bash
# The demo: a local Secrets Manager and SQS (moto) with a seeded secret and a FIFO queue, a local
# Attio stand-in, the function under `cargo lambda watch`, and every sample in events/ signed now
# and sent in; then an Attio outage: events answered 202 queued, and the queue worker invoked
# with what the queue holds once Attio is back.
# Offline; no AWS account. To write to a real Attio workspace instead of the stand-in:
#   ATTIO_API_URL=https://api.attio.com ATTIO_ACCESS_TOKEN=<token> ./scripts/demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

CLERK_SECRET="whsec_YXR0aW8tdXNlci1zeW5jIGRlbW86IGNsZXJrISEhIQ=="
STANDARD_SECRET="whsec_YXR0aW8tdXNlci1zeW5jIGRlbW86IHN0YW5kYXJkIQ=="
WORKOS_SECRET="demo_workos_secret"
STYTCH_SECRET="whsec_ZGVtbyBzdHl0Y2ggc2lnbmluZyBzZWNyZXQhIQ=="
OKTA_SECRET="demo-okta-shared-secret"
AUTH0_SECRET="Bearer demo-auth0-log-stream-token"
SUPABASE_DB_SECRET="Bearer demo-supabase-db-secret"
WRONG_SECRET="whsec_Zm9yZ2VkIGtleSBub3QgaW4gdGhlIHNlY3JldA=="
SECRET_ID="attio-user-sync/demo"
WORK="$ROOT/.demo"
mkdir -p "$WORK"
export MOTO_LOG="$WORK/moto.log"

ensure_pip cargo-lambda cargo-lambda
start_moto

if [ -n "${ATTIO_API_URL:-}" ]; then
  : "${ATTIO_ACCESS_TOKEN:?set ATTIO_ACCESS_TOKEN to the Attio token to use with $ATTIO_API_URL}"
  say "using Attio at $ATTIO_API_URL"
else
  ATTIO_ACCESS_TOKEN="demo-attio-token"
  say "building the local Attio stand-in"
  cargo build --quiet --example attio_stand_in
  attio_port="$(free_port)"
  "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/attio_stand_in" "$attio_port" "$ATTIO_ACCESS_TOKEN" 2>"$WORK/attio.log" &
  PIDS+=($!)
  wait_for_port "$attio_port" "Attio stand-in"
  export ATTIO_API_URL="http://127.0.0.1:$attio_port"
  say "Attio stand-in on $ATTIO_API_URL"
fi

say "seeding the secret $SECRET_ID in moto"
python3 - "$SECRET_ID" "$ATTIO_ACCESS_TOKEN" "$CLERK_SECRET" "$STANDARD_SECRET" "$WORKOS_SECRET" \
  "$STYTCH_SECRET" "$OKTA_SECRET" "$AUTH0_SECRET" "$SUPABASE_DB_SECRET" <<'PY'
import json, sys, boto3
name, token, clerk, standard, workos, stytch, okta, auth0, supabase_db = sys.argv[1:]
sm = boto3.client("secretsmanager")
value = json.dumps({"attio_access_token": token, "webhook_secrets": {
    "clerk": clerk, "standard": standard, "workos": workos, "stytch": stytch,
    "okta": okta, "auth0": auth0, "supabase-db": supabase_db}})
try:
    sm.create_secret(Name=name, SecretString=value)
except sm.exceptions.ResourceExistsException:
    sm.put_secret_value(SecretId=name, SecretString=value)
PY

# The durable queue: an SQS FIFO queue and its dead-letter queue in moto, as template.yaml makes
# them. The function queues what Attio cannot take; the worker applies it.
read -r QUEUE_URL DLQ_URL < <(python3 - <<'PY'
import json, boto3
sqs = boto3.client("sqs")
dlq = sqs.create_queue(QueueName="attio-user-sync-demo-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue = sqs.create_queue(QueueName="attio-user-sync-demo.fifo", Attributes={
    "FifoQueue": "true", "VisibilityTimeout": "360",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 10})})["QueueUrl"]
print(queue, dlq)
PY
)
say "SQS FIFO queue in moto: $QUEUE_URL"

# Kinde publishes its signing keys as a JWKS; the demo's are served from events/kinde/.
jwks_port="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory events/kinde "$jwks_port" >"$WORK/jwks.log" 2>&1 &
PIDS+=($!)
wait_for_port "$jwks_port" "the Kinde JWKS server"
KINDE_ISSUER_URL="http://127.0.0.1:$jwks_port"

# The attribute mapping: Clerk's public_metadata.plan to the users' `plan` select (the stand-in,
# like a real workspace an admin prepared, has one), the route and the sign-up time to two more.
# An env file, as --env-var would split the JSON at its commas.
ATTRIBUTE_MAP='{"users": {"plan": "/public_metadata/plan", "signed_up_with": "provider", "signed_up_at": "created_at"}}'
printf "ATTIO_ATTRIBUTE_MAP='%s'\n" "$ATTRIBUTE_MAP" >"$WORK/function.env"

say "attio-user-sync-doctor: the preflight the README asks for before a first deploy"
ATTIO_SYNC_SECRET_ID="$SECRET_ID" ATTIO_API_URL="$ATTIO_API_URL" KINDE_ISSUER_URL="$KINDE_ISSUER_URL" \
  ATTIO_ATTRIBUTE_MAP="$ATTRIBUTE_MAP" cargo run --quiet --bin attio-user-sync-doctor \
  || echo "(the doctor found something to fix; the demo goes on)"

lambda_port="$(free_port)"
say "starting the function under cargo lambda watch (the first build takes a few minutes)"
cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$lambda_port" \
  --env-file "$WORK/function.env" \
  --env-var "ATTIO_SYNC_SECRET_ID=$SECRET_ID" \
  --env-var "ATTIO_API_URL=$ATTIO_API_URL" \
  --env-var "KINDE_ISSUER_URL=$KINDE_ISSUER_URL" \
  --env-var "AWS_ENDPOINT_URL_SECRETS_MANAGER=$AWS_ENDPOINT_URL_SECRETS_MANAGER" \
  --env-var "AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS" \
  --env-var "SYNC_QUEUE_URL=$QUEUE_URL" \
  --env-var "SYNC_DEAD_LETTER_QUEUE_URL=$DLQ_URL" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
  --env-var "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env-var "AWS_REGION=$AWS_REGION" \
  >"$WORK/lambda.log" 2>&1 &
PIDS+=($!)
wait_for_port "$lambda_port" "cargo lambda watch"

# invoke_webhook EVENT_FILE NAME SECRET: signs the event now, sends it, prints the answer.
invoke_webhook() {
  local event="$1" name="$2" secret="$3" response
  python3 scripts/sign-event.py "$event" --secret "$secret" -o "$WORK/$name" 2>/dev/null
  if ! response="$(cargo lambda invoke attio-user-sync -A 127.0.0.1 -P "$lambda_port" --data-file "$WORK/$name" 2>"$WORK/invoke.log")"; then
    echo "error: invoking with $name failed; see $WORK/invoke.log and $WORK/lambda.log" >&2
    cat "$WORK/invoke.log" >&2
    exit 1
  fi
  python3 - "$name" "$response" <<'PY'
import json, sys
name, response = sys.argv[1], json.loads(sys.argv[2])
body = json.loads(response.get("body") or "{}")
detail = "  ".join(f"{k}={body[k]}" for k in ("status", "event_type", "record_id", "person_record_id", "queued") if k in body)
if "records" in body:
    detail += "  record_ids=" + ",".join(str(r["record_id"]) for r in body["records"] if r.get("record_id"))
if "verification" in body:
    detail = f"verification challenge answered: {body['verification']}"
if "error" in body:
    detail = f"{body['error']['code']}: {body['error']['message']}"
for w in body.get("warnings", []):
    detail += f"  warning: {w['object']}.{w['attribute']} left out ({w['reason']})"
print(f"{name:36} {response.get('statusCode')}  {detail}")
PY
}

for event in events/*.json; do
  name="$(basename "$event")"
  case "$name" in
    *bad-signature*) secret="$WRONG_SECRET" ;;
    clerk-*) secret="$CLERK_SECRET" ;;
    workos-*) secret="$WORKOS_SECRET" ;;
    stytch-*) secret="$STYTCH_SECRET" ;;
    okta-*) secret="$OKTA_SECRET" ;;
    auth0-*) secret="$AUTH0_SECRET" ;;
    supabase-db-*) secret="$SUPABASE_DB_SECRET" ;;
    kinde-*) secret="events/kinde/demo-key.pem" ;;
    *) secret="$STANDARD_SECRET" ;;
  esac
  invoke_webhook "$event" "$name" "$secret"
done

# Cognito invokes its Post Confirmation trigger directly, not over HTTP.
for event in events/cognito/*.json; do
  name="cognito/$(basename "$event")"
  if ! response="$(cargo lambda invoke cognito-post-confirmation -A 127.0.0.1 -P "$lambda_port" --data-file "$event" 2>"$WORK/invoke.log")"; then
    echo "error: invoking the Cognito trigger with $name failed; see $WORK/invoke.log" >&2
    cat "$WORK/invoke.log" >&2
    exit 1
  fi
  if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.loads(sys.argv[2]))' "$event" "$response")" = True ]; then
    printf '%-36s %s\n' "$name" "event returned unchanged; user synced (see below)"
  else
    printf '%-36s %s\n' "$name" "unexpected answer: $response"
  fi
done

if [[ "$ATTIO_API_URL" == http://127.0.0.1:* ]]; then
  say "Attio goes down: the function queues what it cannot write, and answers 202"
  stand_in_outage() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/__stand-in/outage", method=sys.argv[2]))' "$ATTIO_API_URL" "$1"; }
  stand_in_outage POST
  for event in events/outage/*.json; do
    invoke_webhook "$event" "outage-$(basename "$event")" "$CLERK_SECRET"
  done
  stand_in_outage DELETE
  say "Attio is back: the worker is invoked with what the queue holds, as Lambda's SQS event source does"
  # Receive a batch, hand it to attio-user-sync-worker as an SQS event, delete what it applied.
  python3 - "$QUEUE_URL" "$WORK/sqs-event.json" <<'PY' >"$WORK/sqs-receipts.json"
import json, sys, boto3
queue, out = sys.argv[1:]
messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
    MessageSystemAttributeNames=["All"]).get("Messages", [])
records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:attio-user-sync-demo.fifo",
            "awsRegion": "us-east-1"} for m in messages]
json.dump({"Records": records}, open(out, "w"))
json.dump({m["MessageId"]: m["ReceiptHandle"] for m in messages}, sys.stdout)
PY
  if ! answer="$(cargo lambda invoke attio-user-sync-worker -A 127.0.0.1 -P "$lambda_port" --data-file "$WORK/sqs-event.json" 2>"$WORK/invoke.log")"; then
    echo "error: invoking the worker failed; see $WORK/invoke.log and $WORK/lambda.log" >&2
    cat "$WORK/invoke.log" >&2
    exit 1
  fi
  python3 - "$QUEUE_URL" "$WORK/sqs-receipts.json" "$answer" <<'PY'
import json, sys, boto3
queue, receipts, answer = sys.argv[1], json.load(open(sys.argv[2])), json.loads(sys.argv[3])
failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
sqs = boto3.client("sqs")
for message_id, receipt in receipts.items():
    if message_id not in failed:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)
print(f"  worker: {len(receipts)} queued events handed over, {len(failed)} left for a later attempt; answer {json.dumps(answer)}")
PY
  python3 - "$DLQ_URL" <<'PY'
import sys, boto3
letters = boto3.client("sqs").receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10,
    MessageAttributeNames=["All"], VisibilityTimeout=0).get("Messages", [])
for m in letters:
    print(f"  dead-lettered: {m['MessageAttributes']['reason']['StringValue']}: {m['MessageAttributes']['detail']['StringValue']}")
print(f"  dead-letter queue: {len(letters)} message(s)")
PY
  say "backfill: the users Clerk already had (a local stand-in of its list API), paced under Attio's 25 writes/s"
  cargo build --quiet --example clerk_api_stand_in
  clerk_port="$(free_port)"
  "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/clerk_api_stand_in" "$clerk_port" 150 2>"$WORK/clerk-api.log" &
  PIDS+=($!)
  wait_for_port "$clerk_port" "the Clerk list stand-in"
  rm -f "$WORK/backfill.checkpoint.json"
  ATTIO_SYNC_SECRET_ID="$SECRET_ID" ATTIO_API_URL="$ATTIO_API_URL" ATTIO_ATTRIBUTE_MAP="$ATTRIBUTE_MAP" \
    CLERK_API_URL="http://127.0.0.1:$clerk_port" CLERK_SECRET_KEY=sk_test_backfill \
    cargo run --quiet --bin attio-user-sync-backfill -- clerk --page-size 15 \
      --checkpoint "$WORK/backfill.checkpoint.json" --report "$WORK/backfill-report.jsonl"
  python3 - "$WORK/backfill-report.jsonl" <<'PY'
import collections, json, sys
by_reason, by_class = collections.defaultdict(list), collections.Counter()
for line in open(sys.argv[1]):
    entry = json.loads(line)
    if "reason" in entry:
        by_reason[entry["reason"]].append(entry["user_id"])
    else:
        by_class[entry["class"]] += 1
for reason, ids in by_reason.items():
    print(f"  --report: {len(ids)} not written ({reason}): {', '.join(ids)}")
classes = ", ".join(f"{name} {n}" for name, n in sorted(by_class.items()))
print(f"  --report: {classes} (a line for each user that was not already the same in Attio)")
PY
  backfill() {
    ATTIO_SYNC_SECRET_ID="$SECRET_ID" ATTIO_API_URL="$ATTIO_API_URL" ATTIO_ATTRIBUTE_MAP="$ATTRIBUTE_MAP" \
      CLERK_API_URL="http://127.0.0.1:$clerk_port" CLERK_SECRET_KEY=sk_test_backfill \
      cargo run --quiet --bin attio-user-sync-backfill -- clerk --page-size 15 \
        --checkpoint "$WORK/backfill.checkpoint.json" "$@"
  }
  say "reconcile: --check compares Attio with Clerk's list and writes nothing. The 135 backfilled users are the same; the 2 Clerk users that came by webhook are not in this list stand-in, so they are orphans: reported (exit 3), never deleted without --delete-orphans"
  set +e
  backfill --check; echo "  exit $?"
  say "drift: someone deletes a user and renames a person in Attio by hand (through Attio's API)"
  python3 - "$ATTIO_API_URL" "$ATTIO_ACCESS_TOKEN" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))
users = sorted((u for u in json.load(urllib.request.urlopen(url + "/__stand-in/records/users"))["data"]
    if u["values"]["user_id"][0].startswith("user_backfill_")), key=lambda u: u["values"]["user_id"][0])
call("DELETE", f"/v2/objects/users/records/{users[3]['id']}")
person = users[5]["values"]["person"][0]
call("PATCH", f"/v2/objects/people/records/{person}",
     {"data": {"values": {"name": [{"first_name": "Renamed", "last_name": "By Hand", "full_name": "Renamed By Hand"}]}}})
print(f"  deleted the users record of {users[3]['values']['user_id'][0]}; renamed the person of {users[5]['values']['user_id'][0]}")
PY
  say "reconcile: --check finds the drift (exit 3), and says which attributes, never their values"
  backfill --check --report "$WORK/check-report.jsonl"; echo "  exit $?"
  grep '"class"' "$WORK/check-report.jsonl" | sed 's/^/  --report: /'
  say "reconcile: a run writes only the difference (3 writes: the missing user's person and user, the renamed person), then --check finds only the 2 orphans"
  backfill; echo "  exit $?"
  backfill --check; echo "  exit $?"
  set -e
  say "users now in the Attio stand-in"
  python3 - "$ATTIO_API_URL" <<'PY'
import json, sys, urllib.request
users = json.load(urllib.request.urlopen(sys.argv[1] + "/__stand-in/records/users"))["data"]
backfilled = [u for u in users if u["values"]["user_id"][0].startswith("user_backfill_")]
users = [u for u in users if u not in backfilled]
ids = sorted(u["values"]["user_id"][0] for u in backfilled)
if ids:
    print(f"  ({len(ids)} backfilled users, {ids[0]} to {ids[-1]}, not listed)")
for u in users:
    v = u["values"]
    mapped = "".join(f"  {k}={v[k][0]}" for k in ("signed_up_with", "plan", "signed_up_at") if v.get(k))
    print(f"  {u['id']}  user_id={v['user_id'][0]}  person={v['person'][0] if v.get('person') else '-'}{mapped}")
PY
fi
