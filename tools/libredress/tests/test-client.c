/* libredress against a scripted server on a socketpair: well-formed answers, error details, refusals, a truncated
 * or fuzzed frame stream, a silent server (deadline), and PING answers. Bad server input must give an error, never
 * a crash (this runs under AddressSanitizer and UndefinedBehaviorSanitizer). */
#define _DEFAULT_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "redress.h"
#include "wire.h"
#include "check.h"


/* What the scripted server does after the client connects. */
typedef struct {
  rw_buf script;       /* octets written once the client's first bytes arrive */
  int expect_ping_ack; /* the child exits 0 only if the client answered PING 1..8 */
  int close_after;     /* the server ends its side once the script is written */
} scenario;

static void handshake_bytes(rw_buf *b) {
  const uint16_t ids[] = {1, 2, 3, 4};
  const uint32_t values[] = {16384, 256, 1048576, 8192};
  rw_encode_preface(b, 1, 1);
  rw_encode_settings(b, ids, values, 4);
  rw_encode_window_update(b, 0, 4128769);
  rw_encode_settings_ack(b);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(hay + i, needle, m) == 0) return 1;
  return 0;
}

static int serve(int fd, const scenario *s) {
  uint8_t in[65536];
  size_t got = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 5000) <= 0) return 2;
  ssize_t n = read(fd, in, sizeof in);
  if (n > 0) got = (size_t)n;
  size_t sent = 0;
  while (sent < s->script.len) {
    ssize_t w = write(fd, s->script.data + sent, s->script.len - sent);
    if (w <= 0) break;
    sent += (size_t)w;
  }
  if (s->close_after) shutdown(fd, SHUT_WR);
  /* Read until the client closes; keep what it sent for the PING check. */
  while (poll(&p, 1, 5000) > 0) {
    n = read(fd, in + got, sizeof in - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof in) got = 0;
  }
  if (s->expect_ping_ack) {
    uint8_t ack[17];
    rw_write_header(ack, 8, RW_PING, RW_FLAG_ACK, 0);
    for (int i = 0; i < 8; i++) ack[9 + i] = (uint8_t)(i + 1);
    return contains(in, got, ack, sizeof ack) ? 0 : 1;
  }
  return 0;
}

/* Runs the scenario: forks the server, connects, calls GetIncident; returns the status code and the child's exit. */
static int run(const scenario *s, int timeout_ms, redress_status *st, Redress__V1__Incident **incident, int *child_exit) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pair[0]);
    _exit(serve(pair[1], s));
  }
  close(pair[1]);
  redress_conn *conn = NULL;
  int code = redress_connect_fd(pair[0], "token", 2000, &conn, st);
  if (code == 0) {
    code = redress_get_incident(conn, "inc_1", incident, timeout_ms, st);
    redress_close(conn);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (child_exit) *child_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 99;
  return code;
}

static void encode_incident(rw_buf *b, uint32_t stream) {
  Redress__V1__Incident incident = REDRESS__V1__INCIDENT__INIT;
  incident.id = "inc_1";
  uint8_t packed[64];
  size_t n = redress__v1__incident__pack(&incident, packed);
  rw_encode_headers(b, stream, "", NULL, 0, 0);
  rw_encode_message(b, stream, packed, n, RW_FLAG_END_MESSAGE);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  redress_status st;
  Redress__V1__Incident *incident = NULL;
  int child;

  /* 1. A well-formed answer. */
  scenario ok = {0};
  handshake_bytes(&ok.script);
  encode_incident(&ok.script, 1);
  rw_encode_trailers(&ok.script, 1, 0, "", NULL, 0);
  CHECK(run(&ok, 2000, &st, &incident, NULL) == 0, "a well-formed answer failed: %d %s", st.code, st.message);
  CHECK(incident && strcmp(incident->id, "inc_1") == 0, "the incident was not decoded");
  if (incident) protobuf_c_message_free_unpacked(&incident->base, NULL);
  incident = NULL;

  /* 2. INVALID_ARGUMENT with a google.rpc.BadRequest in grpc-status-details-bin. */
  Google__Rpc__BadRequest__FieldViolation violation = GOOGLE__RPC__BAD_REQUEST__FIELD_VIOLATION__INIT;
  violation.field = "report.title";
  violation.description = "is required";
  Google__Rpc__BadRequest__FieldViolation *violations[] = {&violation};
  Google__Rpc__BadRequest bad = GOOGLE__RPC__BAD_REQUEST__INIT;
  bad.n_field_violations = 1;
  bad.field_violations = violations;
  uint8_t bad_bytes[128];
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = "type.googleapis.com/google.rpc.BadRequest";
  any.value.len = google__rpc__bad_request__pack(&bad, bad_bytes);
  any.value.data = bad_bytes;
  Google__Protobuf__Any *details[] = {&any};
  Google__Rpc__Status rich = GOOGLE__RPC__STATUS__INIT;
  rich.code = 3;
  rich.n_details = 1;
  rich.details = details;
  uint8_t rich_bytes[256];
  size_t rich_len = google__rpc__status__pack(&rich, rich_bytes);
  rw_metadata_entry trailer = {1, "grpc-status-details-bin", 23, rich_bytes, rich_len};
  scenario invalid = {0};
  handshake_bytes(&invalid.script);
  rw_encode_trailers(&invalid.script, 1, 3, "The request has 1 problem", &trailer, 1);
  CHECK(run(&invalid, 2000, &st, &incident, NULL) == REDRESS_INVALID_ARGUMENT, "expected INVALID_ARGUMENT, got %d", st.code);
  CHECK(st.violation_count == 1 && strcmp(st.violations[0].field, "report.title") == 0, "the field violation was not read");

  /* 3. A server refusing the version answers GOAWAY instead of its preface. */
  scenario refused = {0};
  rw_encode_goaway(&refused.script, 0, 0xa, "server speaks versions 1...1");
  CHECK(run(&refused, 2000, &st, &incident, NULL) == REDRESS_UNAVAILABLE && strstr(st.message, "server speaks versions 1...1"),
        "a refused version: %d %s", st.code, st.message);

  /* 4. A truncated frame, then the connection closes. */
  scenario truncated = {.close_after = 1};
  handshake_bytes(&truncated.script);
  rw_buf_append(&truncated.script, "\x00\x00\x10\x01", 4);
  CHECK(run(&truncated, 2000, &st, &incident, NULL) == REDRESS_UNAVAILABLE, "truncated: %d %s", st.code, st.message);

  /* 5. A silent server: the deadline ends the call. */
  scenario silent = {0};
  handshake_bytes(&silent.script);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(run(&silent, 300, &st, &incident, NULL) == REDRESS_DEADLINE_EXCEEDED, "silent: %d %s", st.code, st.message);
  clock_gettime(CLOCK_MONOTONIC, &t1);

  /* 6. PING is answered with the same data, while the call waits. */
  scenario ping = {.expect_ping_ack = 1};
  handshake_bytes(&ping.script);
  rw_encode_ping(&ping.script, 0x0102030405060708ull, 0);
  rw_encode_trailers(&ping.script, 1, 5, "no such incident", NULL, 0);
  CHECK(run(&ping, 2000, &st, &incident, &child) == REDRESS_NOT_FOUND && child == 0, "ping: %d, child %d", st.code, child);

  /* 7. Arbitrary octets after a valid handshake, or in place of it: an error, never a crash. */
  unsigned seed = 12345;
  int errors = 0;
  for (int i = 0; i < 300; i++) {
    scenario fuzz = {.close_after = i % 2};
    if (i % 3) handshake_bytes(&fuzz.script);
    if (i % 5 == 0) encode_incident(&fuzz.script, 1);
    int n = (int)(rand_r(&seed) % 200);
    for (int k = 0; k < n; k++) {
      uint8_t octet = (uint8_t)rand_r(&seed);
      rw_buf_append(&fuzz.script, &octet, 1);
    }
    if (run(&fuzz, 500, &st, &incident, NULL) != 0) errors++;
    if (incident) protobuf_c_message_free_unpacked(&incident->base, NULL);
    incident = NULL;
    rw_buf_free(&fuzz.script);
  }
  CHECK(errors == 300, "%d of 300 garbage streams were taken as an answer", 300 - errors);

  rw_buf_free(&ok.script);
  rw_buf_free(&invalid.script);
  rw_buf_free(&refused.script);
  rw_buf_free(&truncated.script);
  rw_buf_free(&silent.script);
  rw_buf_free(&ping.script);
  if (failures) {
    fprintf(stderr, "test-client: %d failures\n", failures);
    return 1;
  }
  printf("test-client: answers, errors, refusals, truncation, deadline, PING and 300 garbage streams handled\n");
  return 0;
}
