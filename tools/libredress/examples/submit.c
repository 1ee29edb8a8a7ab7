/* Submitting an incident from C with libredress (docs/CLIENTS.md). Run by tests/e2e.sh as:
 *   build/submit-example HOST PORT CA_FILE TOKEN
 * and prints the incident id, then "accepted" or "replayed". */
#include <stdio.h>

#include "redress.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s HOST PORT CA_FILE TOKEN\n", argv[0]);
    return 64;
  }
  redress_options options = {.host = argv[1], .port = argv[2], .ca_file = argv[3], .token = argv[4]};
  redress_status status;
  redress_conn *conn;
  if (redress_connect(&options, &conn, &status) != REDRESS_OK) {
    fprintf(stderr, "error: %s\n", status.message);
    return redress_exit_code(status.code);
  }

  Redress__V1__Customer customer = REDRESS__V1__CUSTOMER__INIT;
  customer.id = "c-1042";
  customer.name = "Harbor Bikes";
  customer.tier = REDRESS__V1__ACCOUNT_TIER__ACCOUNT_TIER_PREMIUM;
  Google__Protobuf__Timestamp occurred = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  occurred.seconds = 1796029200; /* 2026-11-30T09:00:00Z: fixed, so that a retry sends the same report */
  Redress__V1__IncidentReport report = REDRESS__V1__INCIDENT_REPORT__INIT;
  report.customer = &customer;
  report.title = "Shipped blue helmets instead of red";
  report.category = REDRESS__V1__CATEGORY__CATEGORY_WRONG_ITEM;
  report.channel = REDRESS__V1__CHANNEL__CHANNEL_EMAIL;
  report.occurred_at = &occurred;
  Redress__V1__SubmitIncidentRequest request = REDRESS__V1__SUBMIT_INCIDENT_REQUEST__INIT;
  request.idempotency_key = "c-example-1"; /* the same key again returns the same incident */
  request.report = &report;

  Redress__V1__SubmitIncidentResponse *response;
  if (redress_submit_incident(conn, &request, &response, 10000, &status) != REDRESS_OK) {
    fprintf(stderr, "error: %s\n", status.message);
    for (size_t i = 0; i < status.violation_count; i++)
      fprintf(stderr, "  - %s: %s\n", status.violations[i].field, status.violations[i].description);
    redress_close(conn);
    return redress_exit_code(status.code);
  }
  printf("%s %s\n", response->incident->id, response->replayed ? "replayed" : "accepted");
  protobuf_c_message_free_unpacked(&response->base, NULL);
  redress_close(conn);
  return 0;
}
