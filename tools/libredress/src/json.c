/* Hand-written: protobuf-c has no JSON support. Walks the message descriptors protoc-c generates; json-c does the
 * escaping and the printing. */
#define _POSIX_C_SOURCE 200809L
#include "json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void camel(const char *name, char *out, size_t cap) {
  size_t n = 0;
  int upper = 0;
  for (const char *p = name; *p && n + 1 < cap; p++) {
    if (*p == '_') {
      upper = 1;
      continue;
    }
    out[n++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    upper = 0;
  }
  out[n] = 0;
}

static json_object *timestamp_json(const ProtobufCMessage *m) {
  /* google.protobuf.Timestamp: seconds (int64, field 1), nanos (int32, field 2). */
  int64_t seconds = 0;
  int32_t nanos = 0;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const char *at = (const char *)m + d->fields[i].offset;
    if (d->fields[i].id == 1) memcpy(&seconds, at, sizeof seconds);
    if (d->fields[i].id == 2) memcpy(&nanos, at, sizeof nanos);
  }
  time_t t = (time_t)seconds;
  struct tm tm;
  char text[64];
  if (!gmtime_r(&t, &tm)) return json_object_new_string("");
  size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (nanos > 0) n += (size_t)snprintf(text + n, sizeof text - n, ".%03d", nanos / 1000000);
  snprintf(text + n, sizeof text - n, "Z");
  return json_object_new_string(text);
}

static json_object *value_json(const ProtobufCFieldDescriptor *f, const void *at) {
  char number[32];
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: return json_object_new_int(*(const int32_t *)at);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return json_object_new_int64(*(const uint32_t *)at);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    snprintf(number, sizeof number, "%" PRId64, *(const int64_t *)at);
    return json_object_new_string(number);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    snprintf(number, sizeof number, "%" PRIu64, *(const uint64_t *)at);
    return json_object_new_string(number);
  case PROTOBUF_C_TYPE_FLOAT: return json_object_new_double(*(const float *)at);
  case PROTOBUF_C_TYPE_DOUBLE: return json_object_new_double(*(const double *)at);
  case PROTOBUF_C_TYPE_BOOL: return json_object_new_boolean(*(const protobuf_c_boolean *)at);
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)at);
    return v ? json_object_new_string(v->name) : json_object_new_int(*(const int *)at);
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)at;
    return json_object_new_string(s ? s : "");
  }
  case PROTOBUF_C_TYPE_BYTES: {
    /* base64, as protobuf JSON has it */
    const ProtobufCBinaryData *b = at;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (b->len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < b->len; i += 3) {
      uint32_t v = (uint32_t)b->data[i] << 16 | (i + 1 < b->len ? (uint32_t)b->data[i + 1] << 8 : 0) | (i + 2 < b->len ? b->data[i + 2] : 0);
      out[o++] = alphabet[v >> 18 & 63];
      out[o++] = alphabet[v >> 12 & 63];
      out[o++] = i + 1 < b->len ? alphabet[v >> 6 & 63] : '=';
      out[o++] = i + 2 < b->len ? alphabet[v & 63] : '=';
    }
    out[o] = 0;
    json_object *s = json_object_new_string(out);
    free(out);
    return s;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *m = *(const ProtobufCMessage *const *)at;
    return m ? redress_message_to_json(m) : json_object_new_object();
  }
  }
  return NULL;
}

static size_t value_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return 8;
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  default: return 4;
  }
}

/* Whether a singular proto3 value is its default (and so omitted). */
static int is_default(const ProtobufCFieldDescriptor *f, const void *at) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)at;
    return !s || !*s;
  }
  case PROTOBUF_C_TYPE_MESSAGE: return *(const void *const *)at == NULL;
  case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)at)->len == 0;
  default: {
    static const uint8_t zero[8] = {0};
    return memcmp(at, zero, value_size(f)) == 0;
  }
  }
}

json_object *redress_message_to_json(const ProtobufCMessage *message) {
  const ProtobufCMessageDescriptor *d = message->descriptor;
  if (strcmp(d->name, "google.protobuf.Timestamp") == 0) return timestamp_json(message);
  json_object *object = json_object_new_object();
  if (!object) return NULL;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)message;
    const void *at = base + f->offset;
    char name[128];
    camel(f->name, name, sizeof name);
    json_object *value = NULL;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(base + f->quantifier_offset);
      if (count == 0) continue;
      const char *items = *(const char *const *)at;
      value = json_object_new_array();
      for (size_t k = 0; value && k < count; k++) json_object_array_add(value, value_json(f, items + k * value_size(f)));
    } else {
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
      } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
        if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue;
      } else if (is_default(f, at)) {
        continue;
      }
      value = value_json(f, at);
    }
    if (value) json_object_object_add(object, name, value);
  }
  return object;
}
