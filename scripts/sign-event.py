#!/usr/bin/env python3
"""Re-sign a Lambda event file from events/ with the current time, so it passes verification.

Usage: scripts/sign-event.py EVENT_FILE --secret SECRET [--timestamp UNIX_SECONDS] [-o OUT]

Reads a Lambda Function URL (or API Gateway) event and signs its body the way its sender does,
chosen by the headers it carries:
- Standard Webhooks (`webhook-*`) or Svix (`svix-*`, Clerk): timestamp header = now, signature
  header = `v1,` + base64 HMAC-SHA256 over "{id}.{timestamp}.{body}", keyed with the
  base64-decoded `whsec_` secret;
- WorkOS (`workos-signature`): `t=<now ms>, v1=` + hex HMAC-SHA256 over "{t}.{body}", keyed
  with the secret's UTF-8 bytes;
- Okta, Auth0, Supabase database webhooks (`authorization`): the header is set to the secret;
- Kinde (`content-type: application/jwt`): the body, an RS256 JWT, is signed again with the
  private key whose PEM file --secret names (with `openssl`), keeping its `kid`.
An event with none of these (Okta's verification GET) is passed through unchanged.
Prints the event (or writes it to OUT). Standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time

SCHEMES = [("svix-id", "svix-timestamp", "svix-signature"),
           ("webhook-id", "webhook-timestamp", "webhook-signature")]


def decode_secret(secret: str) -> bytes:
    s = secret.strip()
    s = s[3:] if s.startswith("v1,") else s
    s = s[6:] if s.startswith("whsec_") else s
    return base64.b64decode(s)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resign_jwt(token: str, key_pem: str) -> str:
    """The same header and claims, signed RS256 with the key in the PEM file key_pem."""
    import subprocess
    header, claims = token.strip().split(".")[:2]
    signing_input = f"{header}.{claims}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=signing_input,
                               capture_output=True, check=True).stdout
    return f"{header}.{claims}.{b64url(signature)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("event")
    p.add_argument("--secret", required=True, help="the provider's signing secret, whsec_...")
    p.add_argument("--timestamp", type=int, default=None, help="Unix seconds (default: now)")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    a = p.parse_args()

    with open(a.event, encoding="utf-8") as f:
        event = json.load(f)
    headers = event.get("headers") or {}
    lower = {k.lower(): k for k in headers}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    ts = a.timestamp if a.timestamp is not None else int(time.time())
    scheme = next((s for s in SCHEMES if s[0] in lower), None)
    if headers.get(lower.get("content-type", ""), "") == "application/jwt":
        event["body"] = resign_jwt(raw.decode(), a.secret)
        event["isBase64Encoded"] = False
    elif "workos-signature" in lower:
        t = str(ts * 1000)
        digest = hmac.new(a.secret.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
        headers[lower["workos-signature"]] = f"t={t}, v1={digest}"
    elif scheme is not None:
        id_h, ts_h, sig_h = scheme
        headers[lower.get(ts_h, ts_h)] = str(ts)
        headers[lower.get(sig_h, sig_h)] = sign(a.secret, headers[lower[id_h]], ts, raw)
    elif "authorization" in lower:
        headers[lower["authorization"]] = a.secret
    else:
        print(f"note: {a.event} carries no signature or authorization header; left as it is", file=sys.stderr)
    out = json.dumps(event, indent=2) + "\n"
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
