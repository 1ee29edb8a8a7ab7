/* libredress: a C client of the Redress wire (docs/PROTOCOL.md) over TLS, with messages from libprotobuf-c.
 *
 * A connection carries one call at a time, calls one after another. Every call takes a deadline in milliseconds
 * (0: none) and fills a redress_status: the gRPC status code, its message and any field violations the service
 * sent (google.rpc.BadRequest). Functions return the status code: 0 is OK.
 *
 * Threads: a redress_conn belongs to one thread at a time; different connections may be used from different
 * threads at once. The library has no global state (OpenSSL 1.1+ initialises itself).
 *
 * Generated message types (redress/v1/NAME.pb-c.h) come from Protos/ with protoc-c at build time. */
#ifndef REDRESS_H
#define REDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "redress/v1/intake.pb-c.h"
#include "redress/v1/remediation.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes (docs/PROTOCOL.md §7.3). */
enum redress_code {
  REDRESS_OK = 0,
  REDRESS_CANCELLED = 1,
  REDRESS_UNKNOWN = 2,
  REDRESS_INVALID_ARGUMENT = 3,
  REDRESS_DEADLINE_EXCEEDED = 4,
  REDRESS_NOT_FOUND = 5,
  REDRESS_ALREADY_EXISTS = 6,
  REDRESS_PERMISSION_DENIED = 7,
  REDRESS_RESOURCE_EXHAUSTED = 8,
  REDRESS_FAILED_PRECONDITION = 9,
  REDRESS_ABORTED = 10,
  REDRESS_OUT_OF_RANGE = 11,
  REDRESS_UNIMPLEMENTED = 12,
  REDRESS_INTERNAL = 13,
  REDRESS_UNAVAILABLE = 14,
  REDRESS_DATA_LOSS = 15,
  REDRESS_UNAUTHENTICATED = 16,
};

enum { REDRESS_MAX_VIOLATIONS = 32 };

/* A call's outcome. Problems on this side (connection lost, bad server input, out of memory) are reported as
 * UNAVAILABLE or INTERNAL with a message saying what happened. */
typedef struct {
  int code;
  char message[1024];
  size_t violation_count; /* at most REDRESS_MAX_VIOLATIONS are kept */
  struct {
    char field[256];
    char description[512];
  } violations[REDRESS_MAX_VIOLATIONS];
  long retry_after_ms; /* -1 unless the service sent retry-after-ms */
} redress_status;

typedef struct {
  const char *host;        /* e.g. "127.0.0.1" */
  const char *port;        /* e.g. "7443" */
  const char *ca_file;     /* PEM trust roots for the server's certificate; required with TLS */
  const char *server_name; /* name to verify the certificate against; default: host */
  const char *cert_file;   /* optional client certificate chain (mutual TLS), PEM */
  const char *key_file;    /* its private key, PEM */
  const char *token;       /* optional bearer token sent with every call */
  int connect_timeout_ms;  /* TCP + TLS + preface + SETTINGS; 0: 10,000 */
  int plaintext_for_testing_only; /* no TLS: only for tests against a server started the same way */
} redress_options;

typedef struct redress_conn redress_conn;

/* Opens a connection; on failure returns non-zero with *out NULL and the reason in *status. */
int redress_connect(const redress_options *options, redress_conn **out, redress_status *status);
/* Says GOAWAY and closes; NULL is fine. */
void redress_close(redress_conn *conn);
/* For tests: a connection over an already connected socket (plaintext only); the connection owns `fd`. */
int redress_connect_fd(int fd, const char *token, int timeout_ms, redress_conn **out, redress_status *status);

/* One unary call: `request` is packed, the answer unpacked with `response_descriptor` into *response (free it
 * with protobuf_c_message_free_unpacked). */
int redress_unary(redress_conn *conn, const char *path, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *response_descriptor, ProtobufCMessage **response, int timeout_ms,
                  redress_status *status);

/* Called with each message of a server stream; the message is freed after the call returns. Return 0 to go on,
 * non-zero to end the call (it is cancelled and the call returns CANCELLED with the message "stopped"). */
typedef int (*redress_message_callback)(const ProtobufCMessage *message, void *context);

/* One server-streaming call. */
int redress_server_stream(redress_conn *conn, const char *path, const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_descriptor, redress_message_callback callback,
                          void *context, int timeout_ms, redress_status *status);

/* Intake (docs/INTAKE.md). A retry with the same idempotency key and report returns the same incident
 * (replayed = true). */
int redress_submit_incident(redress_conn *conn, const Redress__V1__SubmitIncidentRequest *request,
                            Redress__V1__SubmitIncidentResponse **response, int timeout_ms, redress_status *status);
int redress_get_incident(redress_conn *conn, const char *incident_id, Redress__V1__Incident **incident, int timeout_ms,
                         redress_status *status);
int redress_list_incidents(redress_conn *conn, const Redress__V1__ListIncidentsRequest *request,
                           Redress__V1__ListIncidentsResponse **response, int timeout_ms, redress_status *status);

/* Remediation (docs/REMEDIATION.md): a remedy by its id, or by its incident's id (remedy_id NULL). */
int redress_get_remedy(redress_conn *conn, const char *remedy_id, const char *incident_id, Redress__V1__Remedy **remedy,
                       int timeout_ms, redress_status *status);

/* Watches a remedy: a snapshot, then every change in order (after `after_version` when non-zero). */
typedef int (*redress_remedy_callback)(const Redress__V1__RemedyUpdate *update, void *context);
int redress_watch_remedy(redress_conn *conn, const char *remedy_id, int64_t after_version,
                         redress_remedy_callback callback, void *context, int timeout_ms, redress_status *status);

/* "invalidArgument", "notFound", ...: the names the Swift CLI prints. */
const char *redress_code_name(int code);
/* The exit code the redress CLIs use for a status code (0 OK, 2 invalid, 3 not found, 4 conflict, 5 auth,
 * 6 unavailable or retryable, 1 otherwise). */
int redress_exit_code(int code);

#ifdef __cplusplus
}
#endif
#endif
