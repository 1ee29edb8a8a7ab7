"""End to end: a Python program with grpcio, sharing no code with the Swift side, drives Redress over standard
gRPC on HTTP/2 against the real services (`redress dev`, started by run.sh).

Submits, replays, reads and lists an incident; sees validation details; waits for the remedy remediation opens;
watches it while acting on it; and checks authentication and tenancy answers.
"""
import json
import os
import queue
import threading
import time
import unittest
import uuid

import grpc
from google.protobuf import timestamp_pb2

from google.rpc import error_details_pb2, status_pb2
from redress.v1 import common_pb2, intake_pb2, intake_pb2_grpc, remediation_pb2, remediation_pb2_grpc

PROFILE = json.load(open(os.environ["REDRESS_PROFILE"]))


def channel(service):
    with open(PROFILE["ca"], "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel(PROFILE[service + "_grpc"], credentials)


def bearer(identity="operator"):
    return (("authorization", "Bearer " + PROFILE["tokens"][identity]),)


def report(title="Shipped blue helmets instead of red", currency="USD"):
    occurred = timestamp_pb2.Timestamp()
    occurred.GetCurrentTime()
    return common_pb2.IncidentReport(
        customer=common_pb2.Customer(id="c-py-" + uuid.uuid4().hex[:8], name="Harbor Bikes", tier=common_pb2.ACCOUNT_TIER_PREMIUM),
        title=title,
        category=common_pb2.CATEGORY_WRONG_ITEM,
        channel=common_pb2.CHANNEL_EMAIL,
        demand=common_pb2.Demand(text="Swap them this week", amount=common_pb2.Money(currency=currency, amount_minor=12000)),
        occurred_at=occurred,
    )


def bad_request(error):
    """The google.rpc.BadRequest field violations carried in an error's grpc-status-details-bin."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    request = error_details_pb2.BadRequest()
                    detail.Unpack(request)
                    return {violation.field: violation.description for violation in request.field_violations}
    return {}


class GRPCOverHTTP2(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.intake = intake_pb2_grpc.IntakeStub(channel("intake"))
        cls.remediation = remediation_pb2_grpc.RemediationStub(channel("remediation"))

    def submit(self, key, body):
        return self.intake.SubmitIncident(
            intake_pb2.SubmitIncidentRequest(idempotency_key=key, report=body), metadata=bearer(), timeout=10
        )

    def test_submit_replay_read_list(self):
        key = "py-" + uuid.uuid4().hex
        body = report()
        first = self.submit(key, body)
        self.assertFalse(first.replayed)
        self.assertTrue(first.incident.id)
        again = self.submit(key, body)
        self.assertTrue(again.replayed)
        self.assertEqual(again.incident.id, first.incident.id)

        read = self.intake.GetIncident(intake_pb2.GetIncidentRequest(incident_id=first.incident.id), metadata=bearer(), timeout=10)
        self.assertEqual(read.report.title, body.title)
        listed = self.intake.ListIncidents(
            intake_pb2.ListIncidentsRequest(customer_id=body.customer.id, page_size=10), metadata=bearer(), timeout=10
        )
        self.assertEqual([incident.id for incident in listed.incidents], [first.incident.id])

    def test_validation_names_the_fields(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.submit("py-" + uuid.uuid4().hex, report(title="", currency="XXX"))
        error = raised.exception
        self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT)
        violations = bad_request(error)
        self.assertIn("report.title", violations)
        self.assertIn("report.demand.amount.currency", violations)

    def test_authentication_and_tenancy(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.intake.SubmitIncident(intake_pb2.SubmitIncidentRequest(idempotency_key="k", report=report()), timeout=10)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as raised:
            self.intake.GetIncident(
                intake_pb2.GetIncidentRequest(incident_id="inc_x"), metadata=(("authorization", "Bearer wrong"),), timeout=10
            )
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        # An approver may read but not submit.
        with self.assertRaises(grpc.RpcError) as raised:
            self.intake.SubmitIncident(
                intake_pb2.SubmitIncidentRequest(idempotency_key="k", report=report()), metadata=bearer("approver"), timeout=10
            )
        self.assertEqual(raised.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_watch_a_remedy_while_acting_on_it(self):
        incident = self.submit("py-" + uuid.uuid4().hex, report()).incident
        # Intake hands the incident to remediation in the background and nothing announces the new remedy to a
        # client, so ask again, a bounded number of times. The watch below waits on messages, not on time.
        deadline = time.monotonic() + 30
        while True:
            try:
                remedy = self.remediation.GetRemedy(
                    remediation_pb2.GetRemedyRequest(incident_id=incident.id), metadata=bearer(), timeout=10
                )
                break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        updates = queue.Queue()
        watch = self.remediation.WatchRemedy(
            remediation_pb2.WatchRemedyRequest(remedy_id=remedy.id), metadata=bearer(), timeout=60
        )

        def read():
            try:
                for update in watch:
                    updates.put(update)
            except grpc.RpcError as error:
                updates.put(error)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        snapshot = updates.get(timeout=20)
        self.assertEqual(snapshot.WhichOneof("kind"), "snapshot")
        version = snapshot.snapshot.version

        for text in ("Called the client back", "Replacement helmets picked"):
            acted = self.remediation.Act(
                remediation_pb2.ActRequest(remedy_id=remedy.id, expected_version=version, note=remediation_pb2.AddNote(text=text, internal=True)),
                metadata=bearer(),
                timeout=10,
            )
            self.assertEqual(acted.version, version + 1)
            version = acted.version
            change = updates.get(timeout=20)
            self.assertEqual(change.WhichOneof("kind"), "change")
            self.assertEqual(change.change.remedy.version, version)

        # A stale version is refused, and the remedy is unchanged.
        with self.assertRaises(grpc.RpcError) as raised:
            self.remediation.Act(
                remediation_pb2.ActRequest(remedy_id=remedy.id, expected_version=version - 1, note=remediation_pb2.AddNote(text="late", internal=True)),
                metadata=bearer(),
                timeout=10,
            )
        self.assertIn(raised.exception.code(), (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION))
        watch.cancel()
        reader.join(timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
