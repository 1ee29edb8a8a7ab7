#include "wire.h"

#include <stdlib.h>
#include <string.h>

int rw_buf_reserve(rw_buf *b, size_t more) {
  if (more > SIZE_MAX - b->len) return -1;
  size_t need = b->len + more;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  uint8_t *data = realloc(b->data, cap);
  if (!data) return -1;
  b->data = data;
  b->cap = cap;
  return 0;
}

int rw_buf_append(rw_buf *b, const void *bytes, size_t n) {
  if (n == 0) return 0;
  if (rw_buf_reserve(b, n) != 0) return -1;
  memcpy(b->data + b->len, bytes, n);
  b->len += n;
  return 0;
}

void rw_buf_free(rw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void rw_write_header(uint8_t out[RW_HEADER_LENGTH], uint32_t length, uint8_t type, uint8_t flags, uint32_t stream_id) {
  out[0] = (uint8_t)(length >> 16);
  out[1] = (uint8_t)(length >> 8);
  out[2] = (uint8_t)length;
  out[3] = type;
  out[4] = flags;
  put32(out + 5, stream_id & RW_MAX_STREAM_ID);
}

rw_header rw_read_header(const uint8_t in[RW_HEADER_LENGTH]) {
  rw_header h;
  h.length = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
  h.type = in[3];
  h.flags = in[4];
  h.stream_id = ((uint32_t)in[5] << 24 | (uint32_t)in[6] << 16 | (uint32_t)in[7] << 8 | in[8]) & RW_MAX_STREAM_ID;
  return h;
}

/* Appends a header for a payload of `length` octets and returns where the payload goes, or NULL. */
static uint8_t *begin(rw_buf *out, size_t length, uint8_t type, uint8_t flags, uint32_t stream_id) {
  if (length > 0xffffff) return NULL;
  if (rw_buf_reserve(out, RW_HEADER_LENGTH + length) != 0) return NULL;
  uint8_t *p = out->data + out->len;
  rw_write_header(p, (uint32_t)length, type, flags, stream_id);
  out->len += RW_HEADER_LENGTH + length;
  return p + RW_HEADER_LENGTH;
}

int rw_encode_preface(rw_buf *out, uint8_t min_version, uint8_t max_version) {
  const uint8_t preface[RW_PREFACE_LENGTH] = {'R', 'D', 'R', 'S', '\r', '\n', min_version, max_version};
  return rw_buf_append(out, preface, sizeof preface);
}

int rw_encode_settings(rw_buf *out, const uint16_t *ids, const uint32_t *values, size_t count) {
  uint8_t *p = begin(out, count * 6, RW_SETTINGS, 0, 0);
  if (!p) return -1;
  for (size_t i = 0; i < count; i++) {
    put16(p + i * 6, ids[i]);
    put32(p + i * 6 + 2, values[i]);
  }
  return 0;
}

int rw_encode_settings_ack(rw_buf *out) { return begin(out, 0, RW_SETTINGS, RW_FLAG_ACK, 0) ? 0 : -1; }

/* The encoded size of a metadata block, or SIZE_MAX if an entry cannot be encoded (key not 1-255 octets). */
static size_t metadata_size(const rw_metadata_entry *metadata, size_t count) {
  if (count > 0xffff) return SIZE_MAX;
  size_t size = 2;
  for (size_t i = 0; i < count; i++) {
    if (metadata[i].key_len == 0 || metadata[i].key_len > 255 || metadata[i].value_len > 0xffffffffu) return SIZE_MAX;
    size += 2 + metadata[i].key_len + 4 + metadata[i].value_len;
  }
  return size;
}

static void write_metadata(uint8_t *p, const rw_metadata_entry *metadata, size_t count) {
  put16(p, (uint16_t)count);
  p += 2;
  for (size_t i = 0; i < count; i++) {
    *p++ = metadata[i].binary ? 1 : 0;
    *p++ = (uint8_t)metadata[i].key_len;
    memcpy(p, metadata[i].key, metadata[i].key_len);
    p += metadata[i].key_len;
    put32(p, (uint32_t)metadata[i].value_len);
    p += 4;
    if (metadata[i].value_len) memcpy(p, metadata[i].value, metadata[i].value_len);
    p += metadata[i].value_len;
  }
}

int rw_encode_metadata(rw_buf *out, const rw_metadata_entry *metadata, size_t count) {
  size_t size = metadata_size(metadata, count);
  if (size == SIZE_MAX || rw_buf_reserve(out, size) != 0) return -1;
  write_metadata(out->data + out->len, metadata, count);
  out->len += size;
  return 0;
}

int rw_encode_headers(rw_buf *out, uint32_t stream_id, const char *path, const rw_metadata_entry *metadata,
                      size_t count, int end_stream) {
  size_t path_len = strlen(path);
  size_t block = metadata_size(metadata, count);
  if (path_len > 0xffff || block == SIZE_MAX) return -1;
  uint8_t *p = begin(out, 2 + path_len + block, RW_HEADERS, end_stream ? RW_FLAG_END_STREAM : 0, stream_id);
  if (!p) return -1;
  put16(p, (uint16_t)path_len);
  memcpy(p + 2, path, path_len);
  write_metadata(p + 2 + path_len, metadata, count);
  return 0;
}

int rw_encode_message(rw_buf *out, uint32_t stream_id, const uint8_t *fragment, size_t len, uint8_t flags) {
  uint8_t *p = begin(out, len, RW_MESSAGE, flags, stream_id);
  if (!p) return -1;
  if (len) memcpy(p, fragment, len);
  return 0;
}

int rw_encode_trailers(rw_buf *out, uint32_t stream_id, uint8_t status, const char *message,
                       const rw_metadata_entry *metadata, size_t count) {
  size_t message_len = strlen(message);
  size_t block = metadata_size(metadata, count);
  if (message_len > 0xffff || block == SIZE_MAX) return -1;
  uint8_t *p = begin(out, 3 + message_len + block, RW_TRAILERS, 0, stream_id);
  if (!p) return -1;
  p[0] = status;
  put16(p + 1, (uint16_t)message_len);
  memcpy(p + 3, message, message_len);
  write_metadata(p + 3 + message_len, metadata, count);
  return 0;
}

int rw_encode_rst_stream(rw_buf *out, uint32_t stream_id, uint32_t code) {
  uint8_t *p = begin(out, 4, RW_RST_STREAM, 0, stream_id);
  if (!p) return -1;
  put32(p, code);
  return 0;
}

int rw_encode_ping(rw_buf *out, uint64_t data, int ack) {
  uint8_t *p = begin(out, 8, RW_PING, ack ? RW_FLAG_ACK : 0, 0);
  if (!p) return -1;
  put32(p, (uint32_t)(data >> 32));
  put32(p + 4, (uint32_t)data);
  return 0;
}

int rw_encode_goaway(rw_buf *out, uint32_t last_stream_id, uint32_t code, const char *debug) {
  size_t debug_len = strlen(debug);
  uint8_t *p = begin(out, 8 + debug_len, RW_GOAWAY, 0, 0);
  if (!p) return -1;
  put32(p, last_stream_id & RW_MAX_STREAM_ID);
  put32(p + 4, code);
  memcpy(p + 8, debug, debug_len);
  return 0;
}

int rw_encode_window_update(rw_buf *out, uint32_t stream_id, uint32_t increment) {
  uint8_t *p = begin(out, 4, RW_WINDOW_UPDATE, 0, stream_id);
  if (!p) return -1;
  put32(p, increment & RW_MAX_WINDOW);
  return 0;
}

static int key_octet_ok(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.';
}

int rw_parse_metadata(const uint8_t *in, size_t len, int (*visit)(const rw_metadata_entry *entry, void *ctx),
                      void *ctx) {
  if (len < 2) return -1;
  size_t count = (size_t)in[0] << 8 | in[1];
  size_t at = 2;
  for (size_t i = 0; i < count; i++) {
    if (len - at < 2) return -1;
    rw_metadata_entry entry;
    uint8_t kind = in[at];
    if (kind > 1) return -1;
    entry.binary = kind;
    entry.key_len = in[at + 1];
    at += 2;
    if (entry.key_len == 0 || len - at < entry.key_len) return -1;
    entry.key = (const char *)in + at;
    for (size_t k = 0; k < entry.key_len; k++) {
      if (!key_octet_ok(in[at + k])) return -1;
    }
    int bin_key = entry.key_len >= 4 && memcmp(entry.key + entry.key_len - 4, "-bin", 4) == 0;
    if (bin_key != entry.binary) return -1;
    at += entry.key_len;
    if (len - at < 4) return -1;
    entry.value_len = (size_t)in[at] << 24 | (size_t)in[at + 1] << 16 | (size_t)in[at + 2] << 8 | in[at + 3];
    at += 4;
    if (len - at < entry.value_len) return -1;
    entry.value = in + at;
    at += entry.value_len;
    if (visit) {
      int stop = visit(&entry, ctx);
      if (stop) return stop;
    }
  }
  return at == len ? 0 : -1;
}

uint32_t rw_check_header(const rw_header *h, uint32_t max_frame) {
  if (h->length > max_frame) return RW_FRAME_SIZE_ERROR;
  if (h->type > RW_WINDOW_UPDATE) return RW_PROTOCOL_ERROR;
  int connection_only = h->type == RW_SETTINGS || h->type == RW_PING || h->type == RW_GOAWAY;
  int stream_only = h->type == RW_HEADERS || h->type == RW_MESSAGE || h->type == RW_TRAILERS || h->type == RW_RST_STREAM;
  if ((connection_only && h->stream_id != 0) || (stream_only && h->stream_id == 0)) return RW_PROTOCOL_ERROR;
  switch (h->type) {
  case RW_PING:
    if (h->length != 8) return RW_FRAME_SIZE_ERROR;
    break;
  case RW_RST_STREAM:
  case RW_WINDOW_UPDATE:
    if (h->length != 4) return RW_FRAME_SIZE_ERROR;
    break;
  case RW_SETTINGS:
    if (h->length % 6 != 0 || ((h->flags & RW_FLAG_ACK) && h->length != 0)) return RW_FRAME_SIZE_ERROR;
    break;
  case RW_GOAWAY:
    if (h->length < 8) return RW_FRAME_SIZE_ERROR;
    break;
  case RW_HEADERS:
    if (h->length < 4) return RW_FRAME_SIZE_ERROR;
    break;
  case RW_TRAILERS:
    if (h->length < 5) return RW_FRAME_SIZE_ERROR;
    break;
  default:
    break;
  }
  return 0;
}
