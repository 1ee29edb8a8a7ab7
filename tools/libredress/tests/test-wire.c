/* The frame codec against the hex examples in docs/PROTOCOL.md: each named block must be exactly what the encoder
 * produces for the frames it describes, and decode back (header checks, metadata blocks). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "check.h"

static char *doc;


/* The octets of the block `<!-- hex: name -->` in the document; exits if it is missing. */
static rw_buf block(const char *name) {
  char marker[128];
  snprintf(marker, sizeof marker, "<!-- hex: %s -->", name);
  const char *at = strstr(doc, marker);
  if (!at) {
    fprintf(stderr, "FAIL: no block %s in PROTOCOL.md\n", name);
    exit(1);
  }
  at = strstr(at, "```hex");
  const char *end = at ? strstr(at + 6, "```") : NULL;
  if (!at || !end) {
    fprintf(stderr, "FAIL: block %s is not a ```hex fence\n", name);
    exit(1);
  }
  rw_buf out = {0};
  for (const char *p = at + 6; p < end; p++) {
    if (*p == '#') {
      while (p < end && *p != '\n') p++;
      continue;
    }
    if (p + 1 < end && strchr("0123456789abcdef", p[0]) && p[0] && strchr("0123456789abcdef", p[1]) && p[1]) {
      unsigned value;
      sscanf(p, "%2x", &value);
      uint8_t octet = (uint8_t)value;
      rw_buf_append(&out, &octet, 1);
      p++;
    }
  }
  return out;
}

static void expect_block(const char *name, rw_buf *encoded) {
  rw_buf expected = block(name);
  CHECK(expected.len == encoded->len && memcmp(expected.data, encoded->data, expected.len) == 0,
        "%s: encoded %zu octets, PROTOCOL.md has %zu (or they differ)", name, encoded->len, expected.len);
  /* Every frame in it passes the header checks and ends exactly at the block's end (a metadata block is no frame). */
  if (strcmp(name, "metadata-block") == 0) {
    rw_buf_free(&expected);
    encoded->len = 0;
    return;
  }
  size_t at = 0;
  if (expected.len >= 6 && memcmp(expected.data, "RDRS\r\n", 6) == 0) at = RW_PREFACE_LENGTH;
  while (at + RW_HEADER_LENGTH <= expected.len) {
    rw_header h = rw_read_header(expected.data + at);
    CHECK(rw_check_header(&h, RW_DEFAULT_MAX_FRAME) == 0, "%s: a frame fails the header checks", name);
    at += RW_HEADER_LENGTH + h.length;
  }
  CHECK(at == expected.len, "%s: frames do not end at the block's end", name);
  rw_buf_free(&expected);
  encoded->len = 0;
}

static const uint8_t deadbeef[] = {0xde, 0xad, 0xbe, 0xef};

static int count_entries(const rw_metadata_entry *e, void *ctx) {
  (void)e;
  (*(int *)ctx)++;
  return 0;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "../../docs/PROTOCOL.md";
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  doc = calloc(1, (size_t)size + 1);
  if (!doc || fread(doc, 1, (size_t)size, f) != (size_t)size) return 1;
  fclose(f);

  rw_buf b = {0};
  const uint16_t ids[] = {1, 2, 3, 4};
  const uint32_t values[] = {16384, 256, 1048576, 8192};
  const rw_metadata_entry request_metadata[] = {
      {0, "grpc-timeout", 12, (const uint8_t *)"1S", 2},
      {1, "x-trace-bin", 11, deadbeef, 4},
  };
  const char *unary = "/grpc.testing.TestService/UnaryCall";

  rw_encode_preface(&b, 1, 1);
  expect_block("preface", &b);
  rw_encode_preface(&b, 1, 3);
  expect_block("preface-offering-1-to-3", &b);
  rw_encode_goaway(&b, 0, 0xa, "server speaks versions 1...1");
  expect_block("goaway-version-unsupported", &b);
  rw_encode_settings(&b, ids, values, 4);
  expect_block("settings-frame", &b);
  rw_encode_settings_ack(&b);
  expect_block("settings-ack-frame", &b);
  rw_encode_headers(&b, 1, unary, request_metadata, 2, 0);
  expect_block("headers-request-frame", &b);
  rw_encode_headers(&b, 7, "/grpc.testing.TestService/EmptyCall", NULL, 0, 1);
  expect_block("headers-end-stream-frame", &b);
  const rw_metadata_entry served_by = {0, "x-served-by", 11, (const uint8_t *)"a1", 2};
  rw_encode_headers(&b, 1, "", &served_by, 1, 0);
  expect_block("headers-response-frame", &b);
  rw_encode_message(&b, 5, (const uint8_t *)"hello, ", 7, 0);
  expect_block("message-fragment-frame", &b);
  rw_encode_message(&b, 5, (const uint8_t *)"world", 5, RW_FLAG_END_MESSAGE);
  expect_block("message-end-frame", &b);
  rw_encode_message(&b, 5, NULL, 0, RW_FLAG_END_MESSAGE);
  expect_block("message-empty-frame", &b);
  rw_encode_message(&b, 5, NULL, 0, RW_FLAG_END_STREAM);
  expect_block("message-half-close-frame", &b);
  rw_encode_trailers(&b, 1, 0, "", NULL, 0);
  expect_block("trailers-ok-frame", &b);
  const uint8_t details[] = {0x08, 0x05};
  const rw_metadata_entry status_details = {1, "grpc-status-details-bin", 23, details, 2};
  rw_encode_trailers(&b, 3, 5, "no such incident", &status_details, 1);
  expect_block("trailers-frame", &b);
  rw_encode_rst_stream(&b, 3, RW_CANCEL);
  expect_block("rst-stream-frame", &b);
  rw_encode_ping(&b, 0x0102030405060708ull, 0);
  expect_block("ping-frame", &b);
  rw_encode_ping(&b, 0x0102030405060708ull, 1);
  expect_block("ping-ack-frame", &b);
  rw_encode_goaway(&b, 5, RW_NO_ERROR, "shutting down");
  expect_block("goaway-frame", &b);
  rw_encode_window_update(&b, 1, 524288);
  expect_block("window-update-frame", &b);
  rw_encode_window_update(&b, 0, 4128769);
  expect_block("window-update-connection-frame", &b);
  rw_encode_metadata(&b, request_metadata, 2);
  expect_block("metadata-block", &b);

  /* §16, octet by octet: both directions of one unary call. */
  rw_encode_preface(&b, 1, 1);
  rw_encode_settings(&b, ids, values, 4);
  rw_encode_window_update(&b, 0, 4128769);
  rw_encode_settings_ack(&b);
  rw_encode_headers(&b, 1, unary, request_metadata, 2, 0);
  rw_encode_message(&b, 1, (const uint8_t *)"\x10\x04", 2, RW_FLAG_END_MESSAGE | RW_FLAG_END_STREAM);
  expect_block("unary-call-client-to-server", &b);
  rw_encode_preface(&b, 1, 1);
  rw_encode_settings(&b, ids, values, 4);
  rw_encode_window_update(&b, 0, 4128769);
  rw_encode_settings_ack(&b);
  rw_encode_headers(&b, 1, "", NULL, 0, 0);
  rw_encode_message(&b, 1, (const uint8_t *)"\x0a\x06\x12\x04\x00\x00\x00\x00", 8, RW_FLAG_END_MESSAGE);
  rw_encode_trailers(&b, 1, 0, "", NULL, 0);
  expect_block("unary-call-server-to-client", &b);

  /* Metadata blocks: the example parses to its two entries; malformed ones are refused. */
  rw_buf meta = block("metadata-block");
  int entries = 0;
  CHECK(rw_parse_metadata(meta.data, meta.len, count_entries, &entries) == 0 && entries == 2, "metadata-block does not parse to 2 entries");
  CHECK(rw_parse_metadata(meta.data, meta.len - 1, NULL, NULL) != 0, "a truncated block is accepted");
  meta.data[1] = 3;
  CHECK(rw_parse_metadata(meta.data, meta.len, NULL, NULL) != 0, "a count past the block is accepted");
  meta.data[1] = 2;
  meta.data[2] = 1; /* grpc-timeout as binary: a -bin rule violation */
  CHECK(rw_parse_metadata(meta.data, meta.len, NULL, NULL) != 0, "a binary value under a text key is accepted");
  meta.data[2] = 0;
  meta.data[4] = 'G';
  CHECK(rw_parse_metadata(meta.data, meta.len, NULL, NULL) != 0, "an upper-case key is accepted");
  rw_buf_free(&meta);

  /* Header checks (§4.11). */
  rw_header h = {.length = 16385, .type = RW_MESSAGE, .stream_id = 1};
  CHECK(rw_check_header(&h, 16384) == RW_FRAME_SIZE_ERROR, "an oversized frame passes");
  h = (rw_header){.length = 8, .type = 9, .stream_id = 0};
  CHECK(rw_check_header(&h, 16384) == RW_PROTOCOL_ERROR, "an unknown type passes");
  h = (rw_header){.length = 8, .type = RW_PING, .stream_id = 1};
  CHECK(rw_check_header(&h, 16384) == RW_PROTOCOL_ERROR, "PING on a stream passes");
  h = (rw_header){.length = 3, .type = RW_RST_STREAM, .stream_id = 1};
  CHECK(rw_check_header(&h, 16384) == RW_FRAME_SIZE_ERROR, "a short RST_STREAM passes");

  rw_buf_free(&b);
  free(doc);
  if (failures) {
    fprintf(stderr, "test-wire: %d failures\n", failures);
    return 1;
  }
  printf("test-wire: every PROTOCOL.md example encodes and decodes\n");
  return 0;
}
