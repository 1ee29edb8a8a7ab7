/* The connection and calls of libredress; the frame codec is in wire.c. See include/redress.h. */
#define _POSIX_C_SOURCE 200809L
#include "redress.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "wire.h"

/* What this client announces (docs/PROTOCOL.md §5): frames and metadata large enough for a status with many field
 * violations, 1 MiB stream windows, a 4 MiB connection window. */
enum {
  OUR_MAX_FRAME = 65536,
  OUR_MAX_METADATA = 32768,
  OUR_STREAM_WINDOW = 1 << 20,
  OUR_CONNECTION_WINDOW = 4 << 20,
  MAX_MESSAGE = 4 << 20, /* the largest response message accepted */
};

struct redress_conn {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
  char *token;
  rw_buf out;
  uint8_t *payload; /* one frame's payload, at most OUR_MAX_FRAME octets */
  uint32_t peer_max_frame;
  uint32_t peer_initial_window;
  uint32_t peer_max_metadata;
  int64_t send_window;   /* connection window for what we send */
  int64_t recv_window;   /* connection window for what the server sends */
  int64_t recv_credit;   /* pending connection credit */
  uint32_t next_stream_id;
  int going_away;
  uint32_t goaway_last;
  int broken;
  char broken_reason[512];
};

/* One call in progress. */
typedef struct {
  uint32_t stream_id;
  int streaming;
  const ProtobufCMessageDescriptor *descriptor;
  redress_message_callback callback;
  void *context;
  ProtobufCMessage *response;
  int64_t send_window;
  int64_t recv_window;
  int64_t recv_credit;
  int got_headers;
  int in_message;
  rw_buf message;
  int done;
} call_state;

static void set_status(redress_status *st, int code, const char *format, ...) {
  if (!st) return;
  st->code = code;
  st->violation_count = 0;
  st->retry_after_ms = -1;
  va_list args;
  va_start(args, format);
  vsnprintf(st->message, sizeof st->message, format, args);
  va_end(args);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The connection can no longer be used: every later call fails UNAVAILABLE with this reason. */
static void mark_broken(redress_conn *c, const char *reason) {
  if (!c->broken) {
    c->broken = 1;
    snprintf(c->broken_reason, sizeof c->broken_reason, "%s", reason);
  }
}

/* Waits until the socket is readable (or SSL holds data) before `deadline` (0: none). 1 ready, 0 timed out. */
static int wait_readable(redress_conn *c, int64_t deadline) {
  if (c->ssl && SSL_pending(c->ssl) > 0) return 1;
  for (;;) {
    int wait = -1;
    if (deadline) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return 0;
      wait = left > 60000 ? 60000 : (int)left;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, wait);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return 1; /* let the read report the error */
  }
}

/* Reads exactly `n` octets. 0 done, -1 failed (the connection is broken, reason in st), -2 deadline passed. */
static int read_exact(redress_conn *c, uint8_t *into, size_t n, int64_t deadline, redress_status *st) {
  size_t got = 0;
  while (got < n) {
    if (!wait_readable(c, deadline)) return -2;
    ssize_t r;
    if (c->ssl) {
      ERR_clear_error();
      int k = SSL_read(c->ssl, into + got, (int)(n - got > 1 << 30 ? 1 << 30 : n - got));
      if (k <= 0) {
        int e = SSL_get_error(c->ssl, k);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
        char reason[300];
        snprintf(reason, sizeof reason, "the connection closed (%s)",
                 e == SSL_ERROR_ZERO_RETURN ? "TLS close" : ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error()) : "socket closed");
        mark_broken(c, reason);
        set_status(st, REDRESS_UNAVAILABLE, "%s", reason);
        return -1;
      }
      r = k;
    } else {
      r = recv(c->fd, into + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        mark_broken(c, r == 0 ? "the connection closed" : strerror(errno));
        set_status(st, REDRESS_UNAVAILABLE, "%s", c->broken_reason);
        return -1;
      }
    }
    got += (size_t)r;
  }
  return 0;
}

/* Writes what is queued. 0, or -1 (broken). */
static int flush_out(redress_conn *c, redress_status *st) {
  size_t sent = 0;
  while (sent < c->out.len) {
    ssize_t w;
    if (c->ssl) {
      ERR_clear_error();
      int k = SSL_write(c->ssl, c->out.data + sent, (int)(c->out.len - sent > 1 << 30 ? 1 << 30 : c->out.len - sent));
      if (k <= 0) {
        int e = SSL_get_error(c->ssl, k);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
        w = -1;
      } else {
        w = k;
      }
    } else {
      w = send(c->fd, c->out.data + sent, c->out.len - sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
    }
    if (w <= 0) {
      c->out.len = 0;
      mark_broken(c, "the connection closed while writing");
      set_status(st, REDRESS_UNAVAILABLE, "%s", c->broken_reason);
      return -1;
    }
    sent += (size_t)w;
  }
  c->out.len = 0;
  return 0;
}

static int out_of_memory(redress_status *st) {
  set_status(st, REDRESS_INTERNAL, "out of memory");
  return REDRESS_INTERNAL;
}

/* Ends the connection on a protocol error of the server's: GOAWAY with `code`, then broken. */
static int protocol_error(redress_conn *c, uint32_t code, const char *what, redress_status *st) {
  char reason[400];
  snprintf(reason, sizeof reason, "the server broke the protocol: %s", what);
  if (!c->broken) {
    c->out.len = 0;
    if (rw_encode_goaway(&c->out, 0, code, what) == 0) (void)flush_out(c, NULL);
  }
  mark_broken(c, reason);
  set_status(st, REDRESS_INTERNAL, "%s", reason);
  return REDRESS_INTERNAL;
}

/* Reads one frame into *h and c->payload. 0, -1 (st set), -2 deadline. */
static int read_frame(redress_conn *c, rw_header *h, int64_t deadline, redress_status *st) {
  uint8_t header[RW_HEADER_LENGTH];
  int r = read_exact(c, header, sizeof header, deadline, st);
  if (r) return r;
  *h = rw_read_header(header);
  uint32_t problem = rw_check_header(h, OUR_MAX_FRAME);
  if (problem) {
    char what[128];
    snprintf(what, sizeof what, "bad frame header (type %u, length %u, stream %u)", h->type, h->length, h->stream_id);
    protocol_error(c, problem, what, st);
    return -1;
  }
  /* The payload is read whatever the deadline: stopping mid-frame would lose the framing. */
  return read_exact(c, c->payload, h->length, 0, st);
}

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int apply_settings(redress_conn *c, const rw_header *h, redress_status *st) {
  for (uint32_t at = 0; at < h->length; at += 6) {
    uint16_t id = (uint16_t)(c->payload[at] << 8 | c->payload[at + 1]);
    uint32_t value = get32(c->payload + at + 2);
    switch (id) {
    case RW_SETTING_MAX_FRAME_SIZE:
      if (value < 16384 || value > 16777215) return protocol_error(c, RW_PROTOCOL_ERROR, "MAX_FRAME_SIZE out of bounds", st);
      c->peer_max_frame = value;
      break;
    case RW_SETTING_INITIAL_WINDOW_SIZE:
      if (value > RW_MAX_WINDOW) return protocol_error(c, RW_FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE out of bounds", st);
      c->peer_initial_window = value;
      break;
    case RW_SETTING_MAX_METADATA_SIZE:
      if (value > 16777215) return protocol_error(c, RW_PROTOCOL_ERROR, "MAX_METADATA_SIZE out of bounds", st);
      c->peer_max_metadata = value;
      break;
    default:
      break; /* MAX_CONCURRENT_STREAMS: one call at a time here; unknown ids are ignored (§5.1) */
    }
  }
  return 0;
}

/* The preface, SETTINGS exchange and ACK (§3). */
static int handshake(redress_conn *c, int64_t deadline, redress_status *st) {
  const uint16_t ids[] = {RW_SETTING_MAX_FRAME_SIZE, RW_SETTING_MAX_CONCURRENT_STREAMS, RW_SETTING_INITIAL_WINDOW_SIZE,
                          RW_SETTING_MAX_METADATA_SIZE};
  const uint32_t values[] = {OUR_MAX_FRAME, 0, OUR_STREAM_WINDOW, OUR_MAX_METADATA};
  if (rw_encode_preface(&c->out, 1, 1) || rw_encode_settings(&c->out, ids, values, 4) ||
      rw_encode_window_update(&c->out, 0, OUR_CONNECTION_WINDOW - RW_INITIAL_CONNECTION_WINDOW))
    return out_of_memory(st);
  c->recv_window = OUR_CONNECTION_WINDOW;
  if (flush_out(c, st)) return REDRESS_UNAVAILABLE;

  uint8_t preface[RW_PREFACE_LENGTH];
  int r = read_exact(c, preface, sizeof preface, deadline, st);
  if (r == -2) goto timeout;
  if (r) return REDRESS_UNAVAILABLE;
  if (preface[0] == 0x00) {
    /* A GOAWAY refusing the connection stands in for the preface (§3.2). */
    uint8_t header[RW_HEADER_LENGTH];
    memcpy(header, preface, sizeof preface);
    r = read_exact(c, header + 8, 1, deadline, st);
    if (r == -2) goto timeout;
    if (r) return REDRESS_UNAVAILABLE;
    rw_header h = rw_read_header(header);
    if (h.type != RW_GOAWAY || rw_check_header(&h, OUR_MAX_FRAME)) return protocol_error(c, RW_PROTOCOL_ERROR, "bad preface", st);
    if (read_exact(c, c->payload, h.length, deadline, st)) return REDRESS_UNAVAILABLE;
    mark_broken(c, "the server refused the connection");
    set_status(st, REDRESS_UNAVAILABLE, "the server refused the connection: code %u, %.*s", get32(c->payload + 4),
               (int)(h.length - 8), (const char *)c->payload + 8);
    return REDRESS_UNAVAILABLE;
  }
  if (memcmp(preface, "RDRS\r\n", 6) != 0) return protocol_error(c, RW_PROTOCOL_ERROR, "bad preface", st);
  if (preface[6] != 1 || preface[7] != 1) return protocol_error(c, 0xa /* VERSION_UNSUPPORTED */, "server chose a version this client did not offer", st);

  rw_header h;
  r = read_frame(c, &h, deadline, st);
  if (r == -2) goto timeout;
  if (r) return st->code;
  if (h.type != RW_SETTINGS || (h.flags & RW_FLAG_ACK)) return protocol_error(c, RW_PROTOCOL_ERROR, "the first frame must be SETTINGS", st);
  if (apply_settings(c, &h, st)) return st->code;
  if (rw_encode_settings_ack(&c->out)) return out_of_memory(st);
  if (flush_out(c, st)) return REDRESS_UNAVAILABLE;
  return REDRESS_OK;
timeout:
  mark_broken(c, "handshake timed out");
  set_status(st, REDRESS_DEADLINE_EXCEEDED, "no preface and SETTINGS from the server in time");
  return REDRESS_DEADLINE_EXCEEDED;
}

static redress_conn *new_conn(int fd, const char *token) {
  redress_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->payload = malloc(OUR_MAX_FRAME);
  c->token = token ? strdup(token) : NULL;
  if (!c->payload || (token && !c->token)) {
    free(c->payload);
    free(c->token);
    free(c);
    return NULL;
  }
  c->peer_max_frame = 16384;
  c->peer_initial_window = 65535;
  c->peer_max_metadata = 16384;
  c->send_window = RW_INITIAL_CONNECTION_WINDOW;
  c->recv_window = RW_INITIAL_CONNECTION_WINDOW;
  c->next_stream_id = 1;
  return c;
}

int redress_connect_fd(int fd, const char *token, int timeout_ms, redress_conn **out, redress_status *st) {
  *out = NULL;
  redress_conn *c = new_conn(fd, token);
  if (!c) {
    close(fd);
    return out_of_memory(st);
  }
  int code = handshake(c, now_ms() + (timeout_ms > 0 ? timeout_ms : 10000), st);
  if (code) {
    redress_close(c);
    return code;
  }
  *out = c;
  set_status(st, REDRESS_OK, "");
  return REDRESS_OK;
}

static int tcp_connect(const char *host, const char *port, int timeout_ms, redress_status *st) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found = NULL;
  int e = getaddrinfo(host, port, &hints, &found);
  if (e) {
    set_status(st, REDRESS_UNAVAILABLE, "cannot resolve %s:%s: %s", host, port, gai_strerror(e));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() and the TLS handshake */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    set_status(st, REDRESS_UNAVAILABLE, "cannot connect to %s:%s: %s", host, port, strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* PROTOCOL.md §2: one write per batch, no Nagle */
  return fd;
}

static void clear_socket_timeouts(int fd) {
  struct timeval none = {0, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
}

static int tls_failed(redress_conn *c, const char *what, redress_status *st) {
  unsigned long e = ERR_get_error();
  char detail[256] = "";
  if (e) ERR_error_string_n(e, detail, sizeof detail);
  long verify = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
  set_status(st, REDRESS_UNAVAILABLE, "%s%s%s%s%s", what, *detail ? ": " : "", detail,
             verify != X509_V_OK ? "; certificate: " : "", verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
  return REDRESS_UNAVAILABLE;
}

int redress_connect(const redress_options *o, redress_conn **out, redress_status *st) {
  *out = NULL;
  if (!o || !o->host || !o->port) {
    set_status(st, REDRESS_INVALID_ARGUMENT, "host and port are required");
    return REDRESS_INVALID_ARGUMENT;
  }
  if (!o->plaintext_for_testing_only && !o->ca_file) {
    set_status(st, REDRESS_INVALID_ARGUMENT, "ca_file is required with TLS");
    return REDRESS_INVALID_ARGUMENT;
  }
  int timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
  int64_t deadline = now_ms() + timeout_ms;
  int fd = tcp_connect(o->host, o->port, timeout_ms, st);
  if (fd < 0) return REDRESS_UNAVAILABLE;
  redress_conn *c = new_conn(fd, o->token);
  if (!c) {
    close(fd);
    return out_of_memory(st);
  }
  if (!o->plaintext_for_testing_only) {
    static const unsigned char alpn[] = "\x09redress/1";
    const char *name = o->server_name ? o->server_name : o->host;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) ||
        SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1 || SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof alpn - 1) != 0) {
      int code = tls_failed(c, "cannot set up TLS (is ca_file a PEM file?)", st);
      redress_close(c);
      return code;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (o->cert_file && (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1 ||
                         SSL_CTX_use_PrivateKey_file(c->ctx, o->key_file ? o->key_file : o->cert_file, SSL_FILETYPE_PEM) != 1)) {
      int code = tls_failed(c, "cannot load the client certificate or key", st);
      redress_close(c);
      return code;
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
      int code = tls_failed(c, "cannot set up TLS", st);
      redress_close(c);
      return code;
    }
    /* Verify the certificate's name: an IP address against its IP SANs, otherwise the DNS name (and send SNI). */
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1) {
      SSL_set_tlsext_host_name(c->ssl, name);
      SSL_set1_host(c->ssl, name);
    }
    if (SSL_connect(c->ssl) != 1) {
      int code = tls_failed(c, "TLS handshake failed", st);
      redress_close(c);
      return code;
    }
    const unsigned char *chosen = NULL;
    unsigned int chosen_len = 0;
    SSL_get0_alpn_selected(c->ssl, &chosen, &chosen_len);
    if (chosen_len != 9 || memcmp(chosen, "redress/1", 9) != 0) {
      set_status(st, REDRESS_UNAVAILABLE, "the server did not select ALPN 'redress/1': is this a Redress wire port?");
      redress_close(c);
      return REDRESS_UNAVAILABLE;
    }
  }
  clear_socket_timeouts(fd);
  int code = handshake(c, deadline, st);
  if (code) {
    redress_close(c);
    return code;
  }
  *out = c;
  set_status(st, REDRESS_OK, "");
  return REDRESS_OK;
}

void redress_close(redress_conn *c) {
  if (!c) return;
  if (!c->broken) {
    c->out.len = 0;
    if (rw_encode_goaway(&c->out, 0, RW_NO_ERROR, "client done") == 0) (void)flush_out(c, NULL);
  }
  if (c->ssl) {
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  if (c->ctx) SSL_CTX_free(c->ctx);
  if (c->fd >= 0) close(c->fd);
  rw_buf_free(&c->out);
  free(c->payload);
  free(c->token);
  free(c);
}

/* ---- calls ---- */

typedef struct {
  redress_status *st;
  const char *encoding;
  size_t encoding_len;
} headers_scan;

static int scan_headers(const rw_metadata_entry *e, void *ctx) {
  headers_scan *scan = ctx;
  if (e->key_len == 13 && memcmp(e->key, "grpc-encoding", 13) == 0) {
    scan->encoding = (const char *)e->value;
    scan->encoding_len = e->value_len;
  }
  return 0;
}

static void copy_text(char *into, size_t cap, const char *text, size_t len) {
  if (len >= cap) len = cap - 1;
  memcpy(into, text, len);
  into[len] = 0;
}

static void read_details(const uint8_t *bytes, size_t len, redress_status *st) {
  Google__Rpc__Status *status = google__rpc__status__unpack(NULL, len, bytes);
  if (!status) return;
  for (size_t i = 0; i < status->n_details; i++) {
    Google__Protobuf__Any *any = status->details[i];
    const char *suffix = "google.rpc.BadRequest";
    size_t url_len = any->type_url ? strlen(any->type_url) : 0;
    if (url_len < strlen(suffix) || strcmp(any->type_url + url_len - strlen(suffix), suffix) != 0) continue;
    Google__Rpc__BadRequest *bad = google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
    if (!bad) continue;
    for (size_t v = 0; v < bad->n_field_violations && st->violation_count < REDRESS_MAX_VIOLATIONS; v++) {
      Google__Rpc__BadRequest__FieldViolation *fv = bad->field_violations[v];
      size_t k = st->violation_count++;
      copy_text(st->violations[k].field, sizeof st->violations[k].field, fv->field ? fv->field : "", fv->field ? strlen(fv->field) : 0);
      copy_text(st->violations[k].description, sizeof st->violations[k].description, fv->description ? fv->description : "",
                fv->description ? strlen(fv->description) : 0);
    }
    google__rpc__bad_request__free_unpacked(bad, NULL);
  }
  google__rpc__status__free_unpacked(status, NULL);
}

static int scan_trailers(const rw_metadata_entry *e, void *ctx) {
  redress_status *st = ctx;
  if (e->key_len == 23 && memcmp(e->key, "grpc-status-details-bin", 23) == 0) {
    read_details(e->value, e->value_len, st);
  } else if (e->key_len == 14 && memcmp(e->key, "retry-after-ms", 14) == 0 && e->value_len < 12) {
    char digits[12];
    copy_text(digits, sizeof digits, (const char *)e->value, e->value_len);
    st->retry_after_ms = strtol(digits, NULL, 10);
  }
  return 0;
}

static int code_for_reset(uint32_t code) {
  switch (code) {
  case RW_REFUSED_STREAM: return REDRESS_UNAVAILABLE;
  case RW_CANCEL: return REDRESS_CANCELLED;
  case RW_ENHANCE_YOUR_CALM:
  case 0xc: /* METADATA_TOO_LARGE */
  case 0xd: /* MESSAGE_TOO_LARGE */
    return REDRESS_RESOURCE_EXHAUSTED;
  default: return REDRESS_INTERNAL;
  }
}

/* Resets the call's stream (deadline, callback stop, a bad response) and returns `code`. */
static int reset_call(redress_conn *c, call_state *call, uint32_t wire_code, int code, redress_status *st,
                      const char *format, const char *detail) {
  if (rw_encode_rst_stream(&c->out, call->stream_id, wire_code) == 0) (void)flush_out(c, NULL);
  set_status(st, code, format, detail);
  call->done = 1;
  return code;
}

static int credit(redress_conn *c, uint32_t stream_id, int64_t *window, int64_t *pending, int64_t amount, int64_t size) {
  *pending += amount;
  if (*pending >= size / 2) {
    *window += *pending;
    if (rw_encode_window_update(&c->out, stream_id, (uint32_t)*pending)) return -1;
    *pending = 0;
  }
  return 0;
}

/* Handles one frame; sets call->done with the outcome in st. Returns 0 to go on, or a status code (done). */
static int handle_frame(redress_conn *c, call_state *call, const rw_header *h, redress_status *st) {
  const uint8_t *p = c->payload;
  int ours = call && h->stream_id == call->stream_id && !call->done;
  switch (h->type) {
  case RW_SETTINGS:
    if (h->flags & RW_FLAG_ACK) return 0;
    return protocol_error(c, RW_PROTOCOL_ERROR, "a second SETTINGS", st);
  case RW_PING:
    if (!(h->flags & RW_FLAG_ACK)) {
      uint64_t data = (uint64_t)get32(p) << 32 | get32(p + 4);
      if (rw_encode_ping(&c->out, data, 1) || flush_out(c, st)) return st->code ? st->code : out_of_memory(st);
    }
    return 0;
  case RW_GOAWAY: {
    uint32_t last = get32(p) & RW_MAX_STREAM_ID, code = get32(p + 4);
    c->going_away = 1;
    c->goaway_last = last;
    if (code != RW_NO_ERROR) {
      char reason[300];
      snprintf(reason, sizeof reason, "the server closed the connection: code %u, %.*s", code, (int)(h->length - 8 > 200 ? 200 : h->length - 8),
               (const char *)p + 8);
      mark_broken(c, reason);
    }
    if (call && !call->done && call->stream_id > last) {
      call->done = 1;
      set_status(st, REDRESS_UNAVAILABLE, "the server is going away and did not process this call; it is safe to retry");
      return REDRESS_UNAVAILABLE;
    }
    return 0;
  }
  case RW_WINDOW_UPDATE: {
    uint32_t increment = get32(p) & RW_MAX_WINDOW;
    if (h->stream_id == 0) {
      if (c->send_window + increment > RW_MAX_WINDOW) return protocol_error(c, RW_FLOW_CONTROL_ERROR, "connection window past 2^31-1", st);
      c->send_window += increment;
    } else if (ours) {
      if (call->send_window + increment > RW_MAX_WINDOW) return protocol_error(c, RW_FLOW_CONTROL_ERROR, "stream window past 2^31-1", st);
      call->send_window += increment;
    }
    return 0;
  }
  case RW_RST_STREAM:
    if (!ours) return 0;
    call->done = 1;
    set_status(st, code_for_reset(get32(p)), "the server reset the call (wire code %u)", get32(p));
    return st->code;
  case RW_TRAILERS: {
    if (!ours) return 0;
    uint8_t status = p[0];
    size_t message_len = (size_t)p[1] << 8 | p[2];
    if (status > 16 || 3 + message_len > h->length || call->in_message)
      return reset_call(c, call, RW_PROTOCOL_ERROR, REDRESS_INTERNAL, st, "malformed TRAILERS from the server%s", "");
    set_status(st, status, "%.*s", (int)message_len, (const char *)p + 3);
    if (rw_parse_metadata(p + 3 + message_len, h->length - 3 - message_len, scan_trailers, st) != 0)
      return reset_call(c, call, RW_PROTOCOL_ERROR, REDRESS_INTERNAL, st, "malformed trailing metadata from the server%s", "");
    call->done = 1;
    if (status == REDRESS_OK && !call->streaming && !call->response) {
      set_status(st, REDRESS_INTERNAL, "the server ended the call without a response message");
    }
    return st->code;
  }
  case RW_HEADERS: {
    if (!ours) return 0;
    size_t path_len = (size_t)p[0] << 8 | p[1];
    headers_scan scan = {st, NULL, 0};
    if (path_len != 0 || call->got_headers || (h->flags & RW_FLAG_END_STREAM) ||
        rw_parse_metadata(p + 2, h->length - 2, scan_headers, &scan) != 0)
      return reset_call(c, call, RW_PROTOCOL_ERROR, REDRESS_INTERNAL, st, "malformed response HEADERS from the server%s", "");
    if (scan.encoding && !(scan.encoding_len == 8 && memcmp(scan.encoding, "identity", 8) == 0))
      return reset_call(c, call, RW_INTERNAL_ERROR, REDRESS_INTERNAL, st, "the server compresses responses, which this client did not accept%s", "");
    call->got_headers = 1;
    return 0;
  }
  case RW_MESSAGE: {
    int64_t len = h->length;
    if (len > c->recv_window) return protocol_error(c, RW_FLOW_CONTROL_ERROR, "MESSAGE past the connection window", st);
    c->recv_window -= len;
    if (credit(c, 0, &c->recv_window, &c->recv_credit, len, OUR_CONNECTION_WINDOW)) return out_of_memory(st);
    if (!ours) return 0; /* a call that ended (deadline, stop): its octets are credited and dropped */
    if (len > call->recv_window) return protocol_error(c, RW_FLOW_CONTROL_ERROR, "MESSAGE past the stream window", st);
    call->recv_window -= len;
    /* Consumed as it arrives: credit the stream at once. */
    if (credit(c, call->stream_id, &call->recv_window, &call->recv_credit, len, OUR_STREAM_WINDOW)) return out_of_memory(st);
    if (!call->got_headers || (h->flags & RW_FLAG_END_STREAM))
      return reset_call(c, call, RW_PROTOCOL_ERROR, REDRESS_INTERNAL, st, "a MESSAGE the server may not send%s", "");
    if (h->flags & RW_FLAG_COMPRESSED)
      return reset_call(c, call, RW_INTERNAL_ERROR, REDRESS_INTERNAL, st, "a compressed MESSAGE, which this client did not accept%s", "");
    if (call->message.len + (size_t)len > MAX_MESSAGE)
      return reset_call(c, call, RW_CANCEL, REDRESS_RESOURCE_EXHAUSTED, st, "a response message exceeds this client's limit of 4 MiB%s", "");
    if (rw_buf_append(&call->message, p, (size_t)len)) return out_of_memory(st);
    call->in_message = !(h->flags & RW_FLAG_END_MESSAGE);
    if (call->in_message) return 0;
    ProtobufCMessage *message = protobuf_c_message_unpack(call->descriptor, NULL, call->message.len, call->message.data);
    call->message.len = 0;
    if (!message) return reset_call(c, call, RW_CANCEL, REDRESS_INTERNAL, st, "the server sent a message that is not a valid %s", call->descriptor->name);
    if (call->streaming) {
      int stop = call->callback ? call->callback(message, call->context) : 0;
      protobuf_c_message_free_unpacked(message, NULL);
      if (stop) return reset_call(c, call, RW_CANCEL, REDRESS_CANCELLED, st, "stopped%s", "");
    } else if (call->response) {
      protobuf_c_message_free_unpacked(message, NULL);
      return reset_call(c, call, RW_CANCEL, REDRESS_INTERNAL, st, "the server sent more than one response message%s", "");
    } else {
      call->response = message;
    }
    return 0;
  }
  default:
    return 0;
  }
}

/* Reads and handles frames until the call is done or the deadline passes. */
static int pump(redress_conn *c, call_state *call, int64_t deadline, int until_window, size_t want, redress_status *st) {
  while (!call->done) {
    if (until_window && c->send_window > 0 && call->send_window > 0 && (c->send_window >= (int64_t)want || call->send_window >= (int64_t)want)) return 0;
    if (c->out.len && flush_out(c, st)) return REDRESS_UNAVAILABLE;
    rw_header h;
    int r = read_frame(c, &h, deadline, st);
    if (r == -2) {
      const char *none = "";
      return reset_call(c, call, RW_CANCEL, REDRESS_DEADLINE_EXCEEDED, st, "the call's deadline passed%s", none);
    }
    if (r) {
      call->done = 1;
      return st->code;
    }
    int code = handle_frame(c, call, &h, st);
    if (code || call->done) return code;
  }
  return st->code;
}

static int call(redress_conn *c, const char *path, const ProtobufCMessage *request, const ProtobufCMessageDescriptor *descriptor,
                int streaming, redress_message_callback callback, void *context, ProtobufCMessage **response, int timeout_ms,
                redress_status *st) {
  redress_status scratch;
  if (!st) st = &scratch;
  set_status(st, REDRESS_OK, "");
  if (response) *response = NULL;
  if (!c || !path || !request || !descriptor) {
    set_status(st, REDRESS_INVALID_ARGUMENT, "connection, path, request and response type are required");
    return REDRESS_INVALID_ARGUMENT;
  }
  if (c->broken) {
    set_status(st, REDRESS_UNAVAILABLE, "the connection is closed (%s); reconnect", c->broken_reason);
    return REDRESS_UNAVAILABLE;
  }
  if (c->going_away || c->next_stream_id > RW_MAX_STREAM_ID) {
    set_status(st, REDRESS_UNAVAILABLE, "the server is going away; reconnect");
    return REDRESS_UNAVAILABLE;
  }
  int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
  call_state state = {.stream_id = c->next_stream_id, .streaming = streaming, .descriptor = descriptor,
                      .callback = callback, .context = context, .send_window = c->peer_initial_window,
                      .recv_window = OUR_STREAM_WINDOW};
  c->next_stream_id += 2;

  size_t size = protobuf_c_message_get_packed_size(request);
  uint8_t *packed = malloc(size ? size : 1);
  if (!packed) return out_of_memory(st);
  protobuf_c_message_pack(request, packed);

  char authorization[1100], timeout[16];
  rw_metadata_entry metadata[2];
  size_t count = 0;
  if (c->token) {
    int n = snprintf(authorization, sizeof authorization, "Bearer %s", c->token);
    if (n < 0 || (size_t)n >= sizeof authorization) {
      free(packed);
      set_status(st, REDRESS_INVALID_ARGUMENT, "the token is too long");
      return REDRESS_INVALID_ARGUMENT;
    }
    metadata[count++] = (rw_metadata_entry){0, "authorization", 13, (const uint8_t *)authorization, (size_t)n};
  }
  if (timeout_ms > 0) {
    int n = timeout_ms <= 99999999 ? snprintf(timeout, sizeof timeout, "%dm", timeout_ms) : snprintf(timeout, sizeof timeout, "%dS", timeout_ms / 1000);
    metadata[count++] = (rw_metadata_entry){0, "grpc-timeout", 12, (const uint8_t *)timeout, (size_t)n};
  }
  size_t mark = c->out.len;
  if (rw_encode_headers(&c->out, state.stream_id, path, metadata, count, 0)) {
    free(packed);
    return out_of_memory(st);
  }
  if (c->out.len - mark - RW_HEADER_LENGTH > c->peer_max_frame ||
      c->out.len - mark - RW_HEADER_LENGTH - 2 - strlen(path) > c->peer_max_metadata) {
    c->out.len = mark;
    free(packed);
    set_status(st, REDRESS_RESOURCE_EXHAUSTED, "the request's metadata exceeds the server's limits");
    return REDRESS_RESOURCE_EXHAUSTED;
  }

  /* The request message, in fragments the windows and the server's frame size allow (§10.4). */
  size_t sent = 0;
  int code = REDRESS_OK;
  do {
    size_t left = size - sent;
    int64_t allowance = (int64_t)left;
    if (allowance > c->peer_max_frame) allowance = c->peer_max_frame;
    if (allowance > c->send_window) allowance = c->send_window;
    if (allowance > state.send_window) allowance = state.send_window;
    if (left > 0 && allowance <= 0) {
      code = pump(c, &state, deadline, 1, 1, st);
      if (code || state.done) break;
      continue;
    }
    int last = (size_t)allowance == left;
    if (rw_encode_message(&c->out, state.stream_id, packed + sent, (size_t)allowance,
                          last ? RW_FLAG_END_MESSAGE | RW_FLAG_END_STREAM : 0)) {
      code = out_of_memory(st);
      break;
    }
    c->send_window -= allowance;
    state.send_window -= allowance;
    sent += (size_t)allowance;
    if (last) break;
  } while (1);
  free(packed);
  if (!code && !state.done) {
    if (flush_out(c, st)) code = REDRESS_UNAVAILABLE;
    else code = pump(c, &state, deadline, 0, 0, st);
  }
  rw_buf_free(&state.message);
  if (code == REDRESS_OK && st->code == REDRESS_OK && response) {
    *response = state.response;
    state.response = NULL;
  }
  if (state.response) protobuf_c_message_free_unpacked(state.response, NULL);
  return st->code;
}

int redress_unary(redress_conn *c, const char *path, const ProtobufCMessage *request, const ProtobufCMessageDescriptor *d,
                  ProtobufCMessage **response, int timeout_ms, redress_status *st) {
  return call(c, path, request, d, 0, NULL, NULL, response, timeout_ms, st);
}

int redress_server_stream(redress_conn *c, const char *path, const ProtobufCMessage *request, const ProtobufCMessageDescriptor *d,
                          redress_message_callback callback, void *context, int timeout_ms, redress_status *st) {
  return call(c, path, request, d, 1, callback, context, NULL, timeout_ms, st);
}

int redress_submit_incident(redress_conn *c, const Redress__V1__SubmitIncidentRequest *request,
                            Redress__V1__SubmitIncidentResponse **response, int timeout_ms, redress_status *st) {
  return redress_unary(c, "/redress.v1.Intake/SubmitIncident", &request->base, &redress__v1__submit_incident_response__descriptor,
                       (ProtobufCMessage **)response, timeout_ms, st);
}

int redress_get_incident(redress_conn *c, const char *incident_id, Redress__V1__Incident **incident, int timeout_ms, redress_status *st) {
  Redress__V1__GetIncidentRequest request = REDRESS__V1__GET_INCIDENT_REQUEST__INIT;
  request.incident_id = (char *)incident_id;
  return redress_unary(c, "/redress.v1.Intake/GetIncident", &request.base, &redress__v1__incident__descriptor,
                       (ProtobufCMessage **)incident, timeout_ms, st);
}

int redress_list_incidents(redress_conn *c, const Redress__V1__ListIncidentsRequest *request,
                           Redress__V1__ListIncidentsResponse **response, int timeout_ms, redress_status *st) {
  return redress_unary(c, "/redress.v1.Intake/ListIncidents", &request->base, &redress__v1__list_incidents_response__descriptor,
                       (ProtobufCMessage **)response, timeout_ms, st);
}

int redress_get_remedy(redress_conn *c, const char *remedy_id, const char *incident_id, Redress__V1__Remedy **remedy, int timeout_ms,
                       redress_status *st) {
  Redress__V1__GetRemedyRequest request = REDRESS__V1__GET_REMEDY_REQUEST__INIT;
  if (remedy_id) {
    request.key_case = REDRESS__V1__GET_REMEDY_REQUEST__KEY_REMEDY_ID;
    request.remedy_id = (char *)remedy_id;
  } else {
    request.key_case = REDRESS__V1__GET_REMEDY_REQUEST__KEY_INCIDENT_ID;
    request.incident_id = (char *)(incident_id ? incident_id : "");
  }
  return redress_unary(c, "/redress.v1.Remediation/GetRemedy", &request.base, &redress__v1__remedy__descriptor,
                       (ProtobufCMessage **)remedy, timeout_ms, st);
}

typedef struct {
  redress_remedy_callback callback;
  void *context;
} remedy_watch;

static int remedy_update(const ProtobufCMessage *message, void *context) {
  remedy_watch *watch = context;
  return watch->callback((const Redress__V1__RemedyUpdate *)message, watch->context);
}

int redress_watch_remedy(redress_conn *c, const char *remedy_id, int64_t after_version, redress_remedy_callback callback,
                         void *context, int timeout_ms, redress_status *st) {
  Redress__V1__WatchRemedyRequest request = REDRESS__V1__WATCH_REMEDY_REQUEST__INIT;
  request.remedy_id = (char *)remedy_id;
  request.after_version = after_version;
  remedy_watch watch = {callback, context};
  return redress_server_stream(c, "/redress.v1.Remediation/WatchRemedy", &request.base, &redress__v1__remedy_update__descriptor,
                               callback ? remedy_update : NULL, &watch, timeout_ms, st);
}

const char *redress_code_name(int code) {
  static const char *names[] = {"ok", "cancelled", "unknown", "invalidArgument", "deadlineExceeded", "notFound",
                                "alreadyExists", "permissionDenied", "resourceExhausted", "failedPrecondition", "aborted",
                                "outOfRange", "unimplemented", "internalError", "unavailable", "dataLoss", "unauthenticated"};
  return code >= 0 && code <= 16 ? names[code] : "unknown";
}

int redress_exit_code(int code) {
  switch (code) {
  case REDRESS_OK: return 0;
  case REDRESS_INVALID_ARGUMENT:
  case REDRESS_OUT_OF_RANGE: return 2;
  case REDRESS_NOT_FOUND: return 3;
  case REDRESS_ALREADY_EXISTS:
  case REDRESS_ABORTED:
  case REDRESS_FAILED_PRECONDITION: return 4;
  case REDRESS_UNAUTHENTICATED:
  case REDRESS_PERMISSION_DENIED: return 5;
  case REDRESS_UNAVAILABLE:
  case REDRESS_DEADLINE_EXCEEDED:
  case REDRESS_RESOURCE_EXHAUSTED:
  case REDRESS_CANCELLED: return 6;
  default: return 1;
  }
}
