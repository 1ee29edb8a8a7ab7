/* The Redress wire's frame and metadata codec (docs/PROTOCOL.md §3-§6): pure functions over byte buffers, no I/O.
 *
 * Hand-written: the wire is Redress's own protocol, so no package implements it. */
#ifndef REDRESS_WIRE_H
#define REDRESS_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum {
  RW_HEADER_LENGTH = 9,
  RW_PREFACE_LENGTH = 8,
  RW_DEFAULT_MAX_FRAME = 16384,
  RW_INITIAL_CONNECTION_WINDOW = 65535,
  RW_MAX_WINDOW = 0x7fffffff,
  RW_MAX_STREAM_ID = 0x7fffffff,
};

enum rw_type {
  RW_SETTINGS = 0x0,
  RW_HEADERS = 0x1,
  RW_MESSAGE = 0x2,
  RW_TRAILERS = 0x3,
  RW_RST_STREAM = 0x4,
  RW_PING = 0x5,
  RW_GOAWAY = 0x6,
  RW_WINDOW_UPDATE = 0x7,
};

enum {
  RW_FLAG_ACK = 0x1,
  RW_FLAG_END_STREAM = 0x1,
  RW_FLAG_END_MESSAGE = 0x2,
  RW_FLAG_COMPRESSED = 0x4,
};

enum rw_setting {
  RW_SETTING_MAX_FRAME_SIZE = 0x1,
  RW_SETTING_MAX_CONCURRENT_STREAMS = 0x2,
  RW_SETTING_INITIAL_WINDOW_SIZE = 0x3,
  RW_SETTING_MAX_METADATA_SIZE = 0x4,
};

/* Error codes (§9.1). */
enum rw_error {
  RW_NO_ERROR = 0x0,
  RW_PROTOCOL_ERROR = 0x1,
  RW_INTERNAL_ERROR = 0x2,
  RW_FLOW_CONTROL_ERROR = 0x3,
  RW_STREAM_CLOSED = 0x5,
  RW_FRAME_SIZE_ERROR = 0x6,
  RW_REFUSED_STREAM = 0x7,
  RW_CANCEL = 0x8,
  RW_ENHANCE_YOUR_CALM = 0xb,
};

/* A growable byte buffer; `cap` bounds nothing by itself: callers check limits before appending. */
typedef struct {
  uint8_t *data;
  size_t len;
  size_t cap;
} rw_buf;

int rw_buf_reserve(rw_buf *b, size_t more); /* 0, or -1 when out of memory */
int rw_buf_append(rw_buf *b, const void *bytes, size_t n);
void rw_buf_free(rw_buf *b);

/* One metadata entry; values are not NUL-terminated. */
typedef struct {
  int binary;
  const char *key;
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
} rw_metadata_entry;

typedef struct {
  uint32_t length;
  uint8_t type;
  uint8_t flags;
  uint32_t stream_id;
} rw_header;

void rw_write_header(uint8_t out[RW_HEADER_LENGTH], uint32_t length, uint8_t type, uint8_t flags, uint32_t stream_id);
rw_header rw_read_header(const uint8_t in[RW_HEADER_LENGTH]);

/* Appends a whole frame. Each returns 0, or -1 when out of memory or a field does not fit its length field. */
int rw_encode_preface(rw_buf *out, uint8_t min_version, uint8_t max_version);
int rw_encode_settings(rw_buf *out, const uint16_t *ids, const uint32_t *values, size_t count);
int rw_encode_settings_ack(rw_buf *out);
int rw_encode_headers(rw_buf *out, uint32_t stream_id, const char *path, const rw_metadata_entry *metadata,
                      size_t count, int end_stream);
int rw_encode_message(rw_buf *out, uint32_t stream_id, const uint8_t *fragment, size_t len, uint8_t flags);
int rw_encode_trailers(rw_buf *out, uint32_t stream_id, uint8_t status, const char *message,
                       const rw_metadata_entry *metadata, size_t count);
int rw_encode_rst_stream(rw_buf *out, uint32_t stream_id, uint32_t code);
int rw_encode_ping(rw_buf *out, uint64_t data, int ack);
int rw_encode_goaway(rw_buf *out, uint32_t last_stream_id, uint32_t code, const char *debug);
int rw_encode_window_update(rw_buf *out, uint32_t stream_id, uint32_t increment);
/* Appends a metadata block (count and entries). */
int rw_encode_metadata(rw_buf *out, const rw_metadata_entry *metadata, size_t count);

/* Parses a metadata block of exactly `len` octets, calling `visit` for each entry (pointers into `in`).
 * Returns 0, or -1 if the block is malformed (§6: bad kind, key, UTF-8 is not checked here, a length past the end,
 * octets left over). `visit` returning non-zero stops with that value. */
int rw_parse_metadata(const uint8_t *in, size_t len, int (*visit)(const rw_metadata_entry *entry, void *ctx),
                      void *ctx);

/* The nine octets of a frame's validity checks that need no state (§4.11 steps 1-4): 0 if the header is fine for a
 * receiver whose MAX_FRAME_SIZE is `max_frame`, else the connection error code. */
uint32_t rw_check_header(const rw_header *h, uint32_t max_frame);

#endif
