/*
 * fault_json.c - POST /api/faults bodies: JSON (parsed by jansson) into a
 * validated struct fault_spec, or a one-line reason. Strict on purpose: an
 * unknown key or attribute is refused, not ignored, so a typo ("latnecy")
 * is an error instead of a fault that silently does nothing.
 *
 *   {"name":"slow-db", "type":"latency", "stream":"downstream",
 *    "toxicity":1.0, "attributes":{"latency":100, "jitter":10},
 *    "server":"app/a", "ttl":"60s", "seed":7}
 *
 * name and type are required, and one scope: "frontend":"NAME" or
 * "server":"BACKEND/SERVER". stream defaults to downstream (Toxiproxy's
 * default), toxicity to 1, ttl to 10 minutes, seed to a hash of the name.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../config/values.h"
#include "fault.h"

struct attr {
    const char *name;
    size_t off; /* in struct fault_params */
    bool wide;  /* uint64_t, else uint32_t */
    uint64_t min, max;
    bool required;
};

#define A32(n, f, lo, hi, req)                                                                     \
    {                                                                                              \
        n, offsetof(struct fault_params, f), false, lo, hi, req                                    \
    }
#define A64(n, f, lo, hi, req)                                                                     \
    {                                                                                              \
        n, offsetof(struct fault_params, f), true, lo, hi, req                                     \
    }
#define MS_MAX (24u * 60 * 60 * 1000)

static const struct {
    const char *name;
    struct attr attrs[4];
    bool probes; /* whether probes = true is allowed, and its default */
} types[FT_COUNT] = {
#define TYPE(n, probes, ...)                                                                       \
    {                                                                                              \
        n, {__VA_ARGS__}, probes                                                                   \
    }
    [FT_LATENCY] = TYPE("latency", false, A32("latency", latency_ms, 0, MS_MAX, true),
                        A32("jitter", jitter_ms, 0, MS_MAX, false)),
    [FT_BANDWIDTH] = TYPE("bandwidth", false, A32("rate", rate_kbs, 1, 10000000, true)),
    [FT_SLOW_CLOSE] = TYPE("slow_close", false, A32("delay", delay_ms, 0, MS_MAX, true)),
    [FT_TIMEOUT] = TYPE("timeout", true, A32("timeout", timeout_ms, 0, MS_MAX, false)),
    [FT_RESET_PEER] = TYPE("reset_peer", true, A32("timeout", timeout_ms, 0, MS_MAX, false)),
    [FT_SLICER] = TYPE("slicer", false, A32("average_size", average_size, 1, 1u << 20, true),
                       A32("size_variation", size_variation, 0, 1u << 20, false),
                       A32("delay", delay_us, 0, 10000000, false)),
    [FT_LIMIT_DATA] = TYPE("limit_data", false, A64("bytes", bytes, 0, 1ull << 53, true)),
    [FT_REFUSE] = TYPE("refuse", true, {0}),
    [FT_CONNECT_DELAY] = TYPE("connect_delay", false, A32("delay", delay_ms, 1, MS_MAX, true)),
#undef TYPE
};

const char *fault_type_name(enum fault_type t)
{
    return (unsigned)t < FT_COUNT ? types[t].name : "?";
}

const char *fault_stream_name(enum fault_stream s)
{
    return s == FS_UPSTREAM ? "upstream" : "downstream";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* <s>, cut to 40 bytes, with anything but printable ASCII as '?': what a
 * reason quotes of the body stays one line. */
static const char *shown(const char *s, char out[44])
{
    size_t i;

    for (i = 0; s[i] && i < 40; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/* Names go into logs, metrics labels and URLs: keep them plain. */
static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static int get_string(json_t *v, const char *key, const char **out, char *err, size_t errlen)
{
    if (!json_is_string(v))
        return fail(err, errlen, "\"%s\" must be a string", key);
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v))
        return fail(err, errlen, "\"%s\" holds a NUL byte", key);
    return 0;
}

static int get_uint(json_t *v, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                    char *err, size_t errlen)
{
    json_int_t i;

    if (!json_is_integer(v))
        return fail(err, errlen, "\"%s\" must be a whole number", key);
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return fail(err, errlen, "\"%s\" must be from %llu to %llu", key, (unsigned long long)min,
                    (unsigned long long)max);
    *out = (uint64_t)i;
    return 0;
}

static int parse_attrs(json_t *obj, struct fault_spec *s, bool *probes_set, char *err,
                       size_t errlen)
{
    const struct attr *attrs = types[s->type].attrs;
    char buf[44];
    const char *key;
    json_t *v;
    bool seen[4] = {false};

    if (obj && !json_is_object(obj))
        return fail(err, errlen, "\"attributes\" must be an object");
    json_object_foreach(obj, key, v)
    {
        size_t i;
        uint64_t u;

        if (strcmp(key, "probes") == 0) {
            if (!json_is_boolean(v))
                return fail(err, errlen, "attribute \"probes\" must be true or false");
            s->probes = json_is_true(v);
            *probes_set = true;
            continue;
        }
        for (i = 0; i < 4 && attrs[i].name; i++)
            if (strcmp(attrs[i].name, key) == 0)
                break;
        if (i == 4 || !attrs[i].name)
            return fail(err, errlen, "%s has no attribute \"%s\"", types[s->type].name,
                        shown(key, buf));
        if (get_uint(v, key, attrs[i].min, attrs[i].max, &u, err, errlen) < 0)
            return -1;
        if (attrs[i].wide)
            memcpy((char *)&s->p + attrs[i].off, &u, sizeof(u));
        else {
            uint32_t u32 = (uint32_t)u;

            memcpy((char *)&s->p + attrs[i].off, &u32, sizeof(u32));
        }
        seen[i] = true;
    }
    for (size_t i = 0; i < 4 && attrs[i].name; i++)
        if (attrs[i].required && !seen[i])
            return fail(err, errlen, "%s needs attribute \"%s\"", types[s->type].name,
                        attrs[i].name);
    if (s->type == FT_SLICER && s->p.size_variation >= s->p.average_size)
        return fail(err, errlen, "slicer: size_variation must be below average_size");
    return 0;
}

static int parse_scope(json_t *fe, json_t *srv, struct fault_spec *s, char *err, size_t errlen)
{
    const char *v, *slash;

    if (!fe == !srv)
        return fail(err, errlen,
                    "name one scope: \"frontend\":\"NAME\" or "
                    "\"server\":\"BACKEND/SERVER\"");
    if (fe) {
        if (get_string(fe, "frontend", &v, err, errlen) < 0)
            return -1;
        if (!name_ok(v, FAULT_SCOPE_MAX))
            return fail(err, errlen, "\"frontend\" is not a frontend name");
        strcpy(s->frontend, v);
        return 0;
    }
    if (get_string(srv, "server", &v, err, errlen) < 0)
        return -1;
    slash = strchr(v, '/');
    if (!slash || (size_t)(slash - v) > FAULT_SCOPE_MAX)
        return fail(err, errlen, "\"server\" must be BACKEND/SERVER");
    memcpy(s->backend, v, (size_t)(slash - v));
    s->backend[slash - v] = '\0';
    if (!name_ok(s->backend, FAULT_SCOPE_MAX) || !name_ok(slash + 1, FAULT_SCOPE_MAX))
        return fail(err, errlen, "\"server\" must be BACKEND/SERVER");
    strcpy(s->server, slash + 1);
    return 0;
}

static int parse_ttl(json_t *v, uint64_t *ms, char *err, size_t errlen)
{
    const char *str;
    uint32_t d;

    if (!v) {
        *ms = FAULT_TTL_DEFAULT_MS;
        return 0;
    }
    if (json_is_integer(v))
        return get_uint(v, "ttl", 1, FAULT_TTL_MAX_MS, ms, err, errlen);
    if (get_string(v, "ttl", &str, err, errlen) < 0)
        return -1;
    if (cfg_parse_duration(str, &d) < 0 || d == 0 || d > FAULT_TTL_MAX_MS)
        return fail(err, errlen, "\"ttl\" must be a duration from 1ms to 24h (e.g. \"60s\")");
    *ms = d;
    return 0;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int spec_from(json_t *root, struct fault_spec *s, char *err, size_t errlen)
{
    static const char *const known[] = {"name",     "type",   "stream", "toxicity", "attributes",
                                        "frontend", "server", "ttl",    "seed"};
    const char *key, *str;
    char buf[44];
    json_t *v;
    bool probes_set = false;
    uint64_t u;
    size_t t;

    if (!json_is_object(root))
        return fail(err, errlen, "the body must be a JSON object");
    json_object_foreach(root, key, v)
    {
        size_t i;

        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == sizeof(known) / sizeof(known[0]))
            return fail(err, errlen, "unknown key \"%s\"", shown(key, buf));
    }
    if (!(v = json_object_get(root, "name")))
        return fail(err, errlen, "\"name\" is required");
    if (get_string(v, "name", &str, err, errlen) < 0)
        return -1;
    if (!name_ok(str, FAULT_NAME_MAX))
        return fail(err, errlen, "\"name\" must be 1 to %d of A-Z a-z 0-9 - _ .", FAULT_NAME_MAX);
    strcpy(s->name, str);
    if (!(v = json_object_get(root, "type")))
        return fail(err, errlen, "\"type\" is required");
    if (get_string(v, "type", &str, err, errlen) < 0)
        return -1;
    for (t = 0; t < FT_COUNT; t++)
        if (strcmp(str, types[t].name) == 0)
            break;
    if (t == FT_COUNT)
        return fail(err, errlen,
                    "unknown type \"%s\" (latency, bandwidth, slow_close, timeout, reset_peer, "
                    "slicer, limit_data, refuse, connect_delay)",
                    shown(str, buf));
    s->type = (enum fault_type)t;
    s->stream = FS_DOWNSTREAM;
    if ((v = json_object_get(root, "stream"))) {
        if (get_string(v, "stream", &str, err, errlen) < 0)
            return -1;
        if (strcmp(str, "upstream") == 0)
            s->stream = FS_UPSTREAM;
        else if (strcmp(str, "downstream") != 0)
            return fail(err, errlen, "\"stream\" must be upstream or downstream");
    }
    s->toxicity = 1.0;
    if ((v = json_object_get(root, "toxicity"))) {
        if (!json_is_number(v))
            return fail(err, errlen, "\"toxicity\" must be a number from 0 to 1");
        s->toxicity = json_number_value(v);
        if (!(s->toxicity >= 0.0 && s->toxicity <= 1.0))
            return fail(err, errlen, "\"toxicity\" must be a number from 0 to 1");
    }
    s->probes = types[s->type].probes;
    if (parse_attrs(json_object_get(root, "attributes"), s, &probes_set, err, errlen) < 0)
        return -1;
    if (parse_scope(json_object_get(root, "frontend"), json_object_get(root, "server"), s, err,
                    errlen) < 0)
        return -1;
    if (probes_set && s->probes && (!types[s->type].probes || s->frontend[0]))
        return fail(err, errlen,
                    "\"probes\" applies to server faults of type refuse, timeout "
                    "and reset_peer");
    if (s->frontend[0])
        s->probes = false;
    if (parse_ttl(json_object_get(root, "ttl"), &s->ttl_ms, err, errlen) < 0)
        return -1;
    s->seed = name_hash(s->name);
    if ((v = json_object_get(root, "seed"))) {
        if (get_uint(v, "seed", 0, (1ull << 53), &u, err, errlen) < 0)
            return -1;
        s->seed = u;
    }
    return 0;
}

int fault_spec_parse(const char *body, size_t len, struct fault_spec *out, char *err, size_t errlen)
{
    json_error_t jerr;
    char buf[44];
    json_t *root;
    int ret;

    memset(out, 0, sizeof(*out));
    /* JSON_REJECT_DUPLICATES: {"ttl":"1s","ttl":"1h"} is ambiguous.
     * Depth is bounded by jansson itself (JSON_PARSER_MAX_DEPTH). */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                    shown(jerr.text, buf));
    ret = spec_from(root, out, err, errlen);
    json_decref(root);
    return ret;
}
