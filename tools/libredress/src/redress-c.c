/* redress-c: the Redress CLI's submit, incident, remedy and watch, in C over libredress, for shell scripts on
 * machines without Swift. Reads the same profile as `redress` (redress-data/client.json, written by `redress dev`),
 * prints JSON (protobuf JSON, one object per line) and exits with the same codes. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "redress.h"

enum { EXIT_USAGE = 64 };

static const char *usage_text =
    "usage: redress-c [--profile PATH] [--as IDENTITY] [--timeout-ms N] COMMAND ...\n"
    "  submit --customer-id ID --customer-name NAME [--tier standard|premium|enterprise|strategic]\n"
    "         --title TEXT [--description TEXT] --category wrong-item|late-delivery|... --channel email|phone|...\n"
    "         [--demand TEXT] [--demand-amount '120.00 USD'] [--idempotency-key KEY] [--occurred-at 2026-11-30T09:00:00Z]\n"
    "  incident INCIDENT_ID\n"
    "  remedy REMEDY_ID | remedy --incident INCIDENT_ID\n"
    "  watch REMEDY_ID [--after-version N] [--count N]   (one JSON line per update; --count stops after N)\n"
    "Exit codes: 0 ok, 2 invalid argument, 3 not found, 4 conflict, 5 not authenticated or not allowed,\n"
    "6 unavailable or retryable, 64 usage, 1 anything else.\n";

static int usage(const char *problem) {
  if (problem) fprintf(stderr, "error: %s\n", problem);
  fputs(usage_text, stderr);
  return EXIT_USAGE;
}

/* Writes one line to stdout; a closed pipe ends the program quietly, as Unix tools do. */
static void emit(json_object *object) {
  const char *text = json_object_to_json_string_ext(object, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
    if (errno == EPIPE) exit(0);
    exit(1);
  }
}

/* Control characters from the service are shown escaped on the terminal, never interpreted. */
static void print_safe(FILE *to, const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) fprintf(to, "\\x%02x", *p);
    else fputc(*p, to);
  }
}

static int report_failure(const redress_status *st) {
  fputs("error: ", stderr);
  print_safe(stderr, st->message);
  fprintf(stderr, " (%s)\n", redress_code_name(st->code));
  for (size_t i = 0; i < st->violation_count; i++) {
    fputs("  - ", stderr);
    print_safe(stderr, st->violations[i].field);
    fputs(": ", stderr);
    print_safe(stderr, st->violations[i].description);
    fputc('\n', stderr);
  }
  if (st->retry_after_ms >= 0) fprintf(stderr, "  retry after %ld ms\n", st->retry_after_ms);
  return redress_exit_code(st->code);
}

typedef struct {
  json_object *root;
  const char *intake;
  const char *remediation;
  const char *ca;
  const char *cert;
  const char *key;
  const char *token;
} profile;

static const char *string_at(json_object *object, const char *key) {
  json_object *value;
  return object && json_object_object_get_ex(object, key, &value) && json_object_is_type(value, json_type_string)
             ? json_object_get_string(value)
             : NULL;
}

static int load_profile(const char *path, const char *identity, profile *p, char *problem, size_t cap) {
  memset(p, 0, sizeof *p);
  p->root = json_object_from_file(path);
  if (!p->root) {
    snprintf(problem, cap, "cannot read the profile %s (run `redress dev`, or pass --profile)", path);
    return -1;
  }
  p->intake = string_at(p->root, "intake");
  p->remediation = string_at(p->root, "remediation");
  p->ca = string_at(p->root, "ca");
  p->cert = string_at(p->root, "cert");
  p->key = string_at(p->root, "key");
  if (!identity) identity = string_at(p->root, "default_identity");
  json_object *tokens = NULL;
  json_object_object_get_ex(p->root, "tokens", &tokens);
  if (identity) {
    p->token = string_at(tokens, identity);
    if (!p->token) {
      snprintf(problem, cap, "the profile %s has no token for '%s'", path, identity);
      return -1;
    }
  }
  if (!p->intake || !p->remediation) {
    snprintf(problem, cap, "the profile %s has no intake or remediation address", path);
    return -1;
  }
  return 0;
}

static int connect_to(const profile *p, const char *address, redress_conn **conn, redress_status *st) {
  char host[256];
  const char *colon = strrchr(address, ':');
  if (!colon || (size_t)(colon - address) >= sizeof host) {
    snprintf(st->message, sizeof st->message, "bad address '%s' in the profile", address);
    st->code = REDRESS_INVALID_ARGUMENT;
    st->violation_count = 0;
    st->retry_after_ms = -1;
    return st->code;
  }
  memcpy(host, address, (size_t)(colon - address));
  host[colon - address] = 0;
  redress_options options = {.host = host, .port = colon + 1, .ca_file = p->ca, .cert_file = p->cert, .key_file = p->key,
                             .token = p->token};
  return redress_connect(&options, conn, st);
}

/* "120.00 USD" → minor units of the currency (ISO 4217 exponents; most currencies have 2). Hand-written: a table of
 * the exceptions, as no C library here carries ISO 4217. */
static int parse_money(const char *text, Redress__V1__Money *money, char *currency) {
  static const char *zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
  static const char *three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
  char number[64];
  if (sscanf(text, "%63s %3s", number, currency) != 2 || strlen(currency) != 3) return -1;
  int exponent = 2;
  for (size_t i = 0; i < sizeof zero / sizeof *zero; i++) if (strcmp(currency, zero[i]) == 0) exponent = 0;
  for (size_t i = 0; i < sizeof three / sizeof *three; i++) if (strcmp(currency, three[i]) == 0) exponent = 3;
  int64_t whole = 0, fraction = 0;
  int fraction_digits = 0, in_fraction = 0, digits = 0;
  for (const char *c = number; *c; c++) {
    if (*c == '.' && !in_fraction) {
      in_fraction = 1;
      continue;
    }
    if (*c < '0' || *c > '9' || ++digits > 15) return -1;
    if (in_fraction) {
      if (++fraction_digits > exponent) return -1;
      fraction = fraction * 10 + (*c - '0');
    } else {
      whole = whole * 10 + (*c - '0');
    }
  }
  if (digits == 0) return -1;
  for (int i = fraction_digits; i < exponent; i++) fraction *= 10;
  for (int i = 0; i < exponent; i++) whole *= 10;
  money->currency = currency;
  money->amount_minor = whole + fraction;
  return 0;
}

/* "wrong-item" → CATEGORY_WRONG_ITEM through the generated enum descriptor. */
static int parse_enum(const ProtobufCEnumDescriptor *d, const char *prefix, const char *text, int *value) {
  char name[128];
  int n = snprintf(name, sizeof name, "%s", prefix);
  for (const char *c = text; *c && n + 1 < (int)sizeof name; c++) name[n++] = *c == '-' ? '_' : (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
  name[n] = 0;
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(d, name);
  if (!v || v->value == 0) return -1;
  *value = v->value;
  return 0;
}

static int parse_time(const char *text, Google__Protobuf__Timestamp *ts) {
  struct tm tm = {0};
  int y, mo, d, h, mi, s;
  char z;
  if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z') return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  ts->seconds = (int64_t)timegm(&tm);
  return 0;
}

/* Prints a message as one JSON line. */
static void emit_message(const ProtobufCMessage *message) {
  json_object *object = redress_message_to_json(message);
  if (object) {
    emit(object);
    json_object_put(object);
  }
}

static int watch_line(const Redress__V1__RemedyUpdate *update, void *context) {
  long *left = context;
  emit_message(&update->base);
  return *left > 0 && --*left == 0; /* stop after --count updates */
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *profile_path = "redress-data/client.json", *identity = NULL, *command = NULL;
  long timeout_ms = 10000;
  const char *positional = NULL;
  const char *opt[32] = {0}; /* named options by index below */
  enum { O_KEY, O_CID, O_CNAME, O_TIER, O_TITLE, O_DESC, O_CAT, O_CHAN, O_DEMAND, O_AMOUNT, O_OCC, O_INCIDENT, O_AFTER, O_COUNT, O_N };
  static const char *names[O_N] = {"--idempotency-key", "--customer-id", "--customer-name", "--tier", "--title", "--description",
                                   "--category", "--channel", "--demand", "--demand-amount", "--occurred-at", "--incident",
                                   "--after-version", "--count"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (a[0] == '-' && a[1] == '-') {
      if (i + 1 >= argc) return usage("an option needs a value");
      const char *value = argv[++i];
      if (strcmp(a, "--profile") == 0) profile_path = value;
      else if (strcmp(a, "--as") == 0) identity = value;
      else if (strcmp(a, "--timeout-ms") == 0) timeout_ms = strtol(value, NULL, 10);
      else {
        int known = 0;
        for (int k = 0; k < O_N; k++) {
          if (strcmp(a, names[k]) == 0) {
            opt[k] = value;
            known = 1;
          }
        }
        if (!known) {
          fprintf(stderr, "error: unknown option %s\n", a);
          return usage(NULL);
        }
      }
    } else if (!command) {
      command = a;
    } else if (!positional) {
      positional = a;
    } else {
      return usage("too many arguments");
    }
  }
  if (!command) return usage("no command");
  if (timeout_ms < 0) return usage("--timeout-ms cannot be negative");

  char problem[512];
  profile p;
  if (load_profile(profile_path, identity, &p, problem, sizeof problem)) {
    json_object_put(p.root);
    return usage(problem);
  }
  redress_status st = {0};
  redress_conn *conn = NULL;
  int exit_code = 0;

  if (strcmp(command, "submit") == 0) {
    Redress__V1__SubmitIncidentRequest request = REDRESS__V1__SUBMIT_INCIDENT_REQUEST__INIT;
    Redress__V1__IncidentReport report = REDRESS__V1__INCIDENT_REPORT__INIT;
    Redress__V1__Customer customer = REDRESS__V1__CUSTOMER__INIT;
    Redress__V1__Demand demand = REDRESS__V1__DEMAND__INIT;
    Redress__V1__Money amount = REDRESS__V1__MONEY__INIT;
    Google__Protobuf__Timestamp occurred = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char key[40], currency[4];
    request.report = &report;
    report.customer = &customer;
    customer.id = (char *)(opt[O_CID] ? opt[O_CID] : "");
    customer.name = (char *)(opt[O_CNAME] ? opt[O_CNAME] : "");
    report.title = (char *)(opt[O_TITLE] ? opt[O_TITLE] : "");
    report.description = (char *)(opt[O_DESC] ? opt[O_DESC] : "");
    int value;
    if (opt[O_TIER]) {
      if (parse_enum(&redress__v1__account_tier__descriptor, "ACCOUNT_TIER_", opt[O_TIER], &value)) return usage("--tier: standard, premium, enterprise or strategic");
      customer.tier = (Redress__V1__AccountTier)value;
    }
    if (opt[O_CAT]) {
      if (parse_enum(&redress__v1__category__descriptor, "CATEGORY_", opt[O_CAT], &value)) return usage("--category: wrong-item, late-delivery, billing-error, defective-product, service-failure, content-rights, communication or other");
      report.category = (Redress__V1__Category)value;
    }
    if (opt[O_CHAN]) {
      if (parse_enum(&redress__v1__channel__descriptor, "CHANNEL_", opt[O_CHAN], &value)) return usage("--channel: email, phone, chat, public-social, in-person or legal-notice");
      report.channel = (Redress__V1__Channel)value;
    }
    if (opt[O_DEMAND] || opt[O_AMOUNT]) {
      report.demand = &demand;
      demand.text = (char *)(opt[O_DEMAND] ? opt[O_DEMAND] : "");
      if (opt[O_AMOUNT]) {
        if (parse_money(opt[O_AMOUNT], &amount, currency)) return usage("--demand-amount: an amount and an ISO 4217 code, e.g. '120.00 USD'");
        demand.amount = &amount;
      }
    }
    if (opt[O_KEY]) {
      request.idempotency_key = (char *)opt[O_KEY];
    } else {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      snprintf(key, sizeof key, "c-%lx-%lx", (unsigned long)now.tv_sec, (unsigned long)now.tv_nsec);
      request.idempotency_key = key;
    }
    /* Without --occurred-at the field is left out: intake records when it received the report, and a retry
       with the same key sends the same bytes and replays. */
    if (opt[O_OCC]) {
      if (parse_time(opt[O_OCC], &occurred)) return usage("--occurred-at: UTC time as 2026-11-30T09:00:00Z");
      report.occurred_at = &occurred;
    }
    Redress__V1__SubmitIncidentResponse *response = NULL;
    if (connect_to(&p, p.intake, &conn, &st) == 0 && redress_submit_incident(conn, &request, &response, (int)timeout_ms, &st) == 0) {
      emit_message(&response->base);
      protobuf_c_message_free_unpacked(&response->base, NULL);
    } else {
      exit_code = report_failure(&st);
    }
  } else if (strcmp(command, "incident") == 0) {
    if (!positional) return usage("incident needs an INCIDENT_ID");
    Redress__V1__Incident *incident = NULL;
    if (connect_to(&p, p.intake, &conn, &st) == 0 && redress_get_incident(conn, positional, &incident, (int)timeout_ms, &st) == 0) {
      emit_message(&incident->base);
      protobuf_c_message_free_unpacked(&incident->base, NULL);
    } else {
      exit_code = report_failure(&st);
    }
  } else if (strcmp(command, "remedy") == 0) {
    if (!positional == !opt[O_INCIDENT]) return usage("remedy needs a REMEDY_ID or --incident INCIDENT_ID");
    Redress__V1__Remedy *remedy = NULL;
    if (connect_to(&p, p.remediation, &conn, &st) == 0 &&
        redress_get_remedy(conn, positional, opt[O_INCIDENT], &remedy, (int)timeout_ms, &st) == 0) {
      emit_message(&remedy->base);
      protobuf_c_message_free_unpacked(&remedy->base, NULL);
    } else {
      exit_code = report_failure(&st);
    }
  } else if (strcmp(command, "watch") == 0) {
    if (!positional) return usage("watch needs a REMEDY_ID");
    long count = opt[O_COUNT] ? strtol(opt[O_COUNT], NULL, 10) : 0;
    long long after = opt[O_AFTER] ? strtoll(opt[O_AFTER], NULL, 10) : 0;
    if (count < 0 || after < 0) return usage("--count and --after-version cannot be negative");
    /* A watch runs until --count updates, the deadline (only if --timeout-ms is given), or the server ends it. */
    int watch_timeout = 0;
    for (int i = 1; i < argc; i++) if (strcmp(argv[i], "--timeout-ms") == 0) watch_timeout = (int)timeout_ms;
    if (connect_to(&p, p.remediation, &conn, &st) == 0) {
      redress_watch_remedy(conn, positional, after, watch_line, &count, watch_timeout, &st);
      if (!(st.code == REDRESS_CANCELLED && strcmp(st.message, "stopped") == 0) && st.code != REDRESS_OK) exit_code = report_failure(&st);
    } else {
      exit_code = report_failure(&st);
    }
  } else {
    json_object_put(p.root);
    return usage("unknown command");
  }
  redress_close(conn);
  json_object_put(p.root);
  return exit_code;
}
