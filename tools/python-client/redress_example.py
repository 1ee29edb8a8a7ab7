"""Calling Redress from Python with grpcio over standard gRPC on HTTP/2 (docs/CLIENTS.md).

Stubs are generated from Protos/ (see run.sh). Reads the profile `redress dev` writes (redress-data/client.json):
the HTTP/2 addresses, the CA and the bearer tokens.
"""
import json
import os
import sys

import grpc
from google.protobuf import timestamp_pb2

from redress.v1 import common_pb2, intake_pb2, intake_pb2_grpc


def channel(profile, service):
    """A TLS channel to `service` ("intake" or "remediation") over gRPC on HTTP/2, trusting the profile's CA."""
    with open(profile["ca"], "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel(profile[service + "_grpc"], credentials)


def bearer(profile, identity="operator"):
    """Call metadata that authenticates as `identity` (a dev token from the profile)."""
    return (("authorization", "Bearer " + profile["tokens"][identity]),)


def main():
    profile = json.load(open(os.environ.get("REDRESS_PROFILE", "redress-data/client.json")))
    intake = intake_pb2_grpc.IntakeStub(channel(profile, "intake"))
    # When the mistake happened: part of the report, so a retry with the same idempotency key must send the same
    # time (not "now" again) to be recognised as the same submission.
    occurred = timestamp_pb2.Timestamp()
    occurred.FromJsonString("2026-11-30T09:00:00Z")
    report = common_pb2.IncidentReport(
        customer=common_pb2.Customer(id="c-1042", name="Harbor Bikes", tier=common_pb2.ACCOUNT_TIER_PREMIUM),
        title="Shipped blue helmets instead of red",
        category=common_pb2.CATEGORY_WRONG_ITEM,
        channel=common_pb2.CHANNEL_EMAIL,
        demand=common_pb2.Demand(text="Swap them this week", amount=common_pb2.Money(currency="USD", amount_minor=12000)),
        occurred_at=occurred,
    )
    key = sys.argv[1] if len(sys.argv) > 1 else "python-example-1"
    answer = intake.SubmitIncident(
        intake_pb2.SubmitIncidentRequest(idempotency_key=key, report=report), metadata=bearer(profile), timeout=10
    )
    print(answer.incident.id, "replayed" if answer.replayed else "accepted")


if __name__ == "__main__":
    main()
