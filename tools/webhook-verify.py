#!/usr/bin/env python3
"""Checks a Redress webhook delivery's signature: the recipe docs/OPERATIONS.md ("Webhooks") shows.

    python3 tools/webhook-verify.py --secret whsec_... --header 't=...,v1=...' < body.json

Exits 0 when the body is signed by the secret within the replay window, 1 otherwise. Standard library only.
"""
import argparse
import hashlib
import hmac
import sys
import time

REPLAY_WINDOW_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """True when `header` (Redress-Signature) carries an HMAC-SHA256 of `body` by `secret`, made recently."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in parts if key == "t"]
    signatures = [value for key, value in parts if key == "v1"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamps[0])) > REPLAY_WINDOW_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the webhook's signing secret (whsec_...)")
    parser.add_argument("--header", required=True, help="the Redress-Signature header's value")
    arguments = parser.parse_args()
    return 0 if verify(arguments.secret, arguments.header, sys.stdin.buffer.read()) else 1


if __name__ == "__main__":
    sys.exit(main())
