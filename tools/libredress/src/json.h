/* Protobuf messages as protobuf JSON (lowerCamel names, enum names, 64-bit integers as strings, Timestamps as
 * RFC 3339, default values omitted), as the Swift CLI prints them with --json. */
#ifndef REDRESS_JSON_H
#define REDRESS_JSON_H

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

/* A new json-c object for `message` (json_object_put it), or NULL when out of memory. */
json_object *redress_message_to_json(const ProtobufCMessage *message);

#endif
