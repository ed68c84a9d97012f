/*
 * values.h - the value syntaxes that lb.ini, ringbench and the admin API
 * share: numbers, numbers with units (durations, sizes), booleans, socket
 * addresses, escaped bytes and hook commands.
 *
 * Everything here is a pure function of its arguments (cfg_parse_addr()
 * with CFG_ADDR_RESOLVE aside, which asks the resolver): no state, no
 * logging, safe on any thread, from unit tests and from fuzzers. A parser
 * returns 0 or -errno and leaves its output untouched on failure; where a
 * reason helps the user, it is a static string stored in <why>.
 */
#ifndef LB_VALUES_H
#define LB_VALUES_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A socket address as parsed: IPv4, IPv6 or a unix socket path. */
struct cfg_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/*
 * A command for on_down / on_up, split into words the way a shell would
 * (blanks separate, quotes group, backslash escapes) but never run by one.
 * %b %s %a %% are kept as written: the checker substitutes them per server.
 */
struct cfg_command {
    char *text;  /* as written, for logs; NULL when not set */
    char **argv; /* argc words and a NULL */
    size_t argc;
};

/* ---- numbers ---- */

/*
 * A plain unsigned decimal ("0", "42", "0080"): no sign, no blanks, no
 * unit. Returns 0, -EINVAL for anything else, or -ERANGE above 32 bits.
 */
int cfg_parse_uint(const char *s, uint32_t *out);

/* yes/no, true/false, on/off, 1/0 (lower case). Returns 0 or -EINVAL. */
int cfg_parse_bool(const char *s, bool *out);

/* A unit of cfg_parse_scaled(): its suffix ("" for a bare number) and
 * what one of it is worth in the caller's base unit. */
struct cfg_unit {
    const char *name;
    uint64_t scale;
};

/* Flags of cfg_parse_scaled(). */
#define CFG_NUM_FRACTION (1u << 0) /* "1.5", ".5", "5.", "1e3", "25e-2" */
#define CFG_NUM_ROUND    (1u << 1) /* a result between two integers is rounded, halves up */

/*
 * A number followed by one of the units of <units> (an array ended by a
 * NULL name), matched exactly: "500ms" with {"ms", 1}. Without
 * CFG_NUM_FRACTION the number is plain decimal digits; with it, a decimal
 * fraction and an exponent are allowed, and the value in base units must
 * be whole unless CFG_NUM_ROUND is given. Arithmetic is exact (no floating
 * point) for numbers of up to 19 significant digits. Stores the value in base units
 * in <*out>. Returns 0, -EINVAL (not a number, unknown unit, a fraction of
 * a base unit) or -ERANGE (above 64 bits).
 */
int cfg_parse_scaled(const char *s, const struct cfg_unit *units, unsigned flags, uint64_t *out);

/*
 * lb.ini durations: an unsigned integer followed by ms, s, m or h ("500ms",
 * "2s"); "0" alone is zero. The result must fit in 32 bits of milliseconds.
 * Returns 0, or -EINVAL / -ERANGE.
 */
int cfg_parse_duration(const char *s, uint32_t *ms);

/* ---- addresses ---- */

/* Address forms accepted by cfg_parse_addr(). */
#define CFG_ADDR_UNIX    (1u << 0) /* "unix:/path" */
#define CFG_ADDR_RESOLVE (1u << 1) /* host names through getaddrinfo */
#define CFG_ADDR_PASSIVE (1u << 2) /* for bind: "*" or empty host = any */

/*
 * Parses "a.b.c.d:port", "[v6]:port", "name:port" (with CFG_ADDR_RESOLVE) or
 * "unix:/path" (with CFG_ADDR_UNIX). Returns 0, or -EINVAL with a short
 * reason in <why> (static string; <why> may be NULL).
 */
int cfg_parse_addr(const char *s, unsigned flags, struct cfg_addr *out, const char **why);

/* Stores the IPv4 address <a> (network order) and <port> in <out>. */
void cfg_addr_in4(struct cfg_addr *out, const struct in_addr *a, uint16_t port);

/* Stores the IPv6 address <a> and <port> in <out>. */
void cfg_addr_in6(struct cfg_addr *out, const struct in6_addr *a, uint16_t port);

/* Formats <a> as text ("1.2.3.4:80", "[::1]:80", "unix:/p") into <buf>. */
const char *cfg_addr_str(const struct cfg_addr *a, char *buf, size_t len);

/* Whether <sa> is a loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
bool cfg_sockaddr_loopback(const struct sockaddr *sa);

/* Whether only this host can reach <a>: a loopback address or a unix socket. */
bool cfg_addr_is_loopback(const struct cfg_addr *a);

/*
 * An address prefix of allow = / deny = ("10.0.0.0/8", "2001:db8::/32", a
 * bare address meaning /32 or /128). <addr> holds 4 bytes (AF_INET) or 16
 * (AF_INET6) in network order, with every bit past <len> zero.
 */
struct cfg_cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t len;    /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16];
};

/*
 * Parses one prefix into <out>. Host bits set past the length
 * ("10.0.0.1/8") are an error rather than silently cleared: they usually
 * mean a typo in the length. Returns 0 or -EINVAL with a reason in <why>.
 */
int cfg_parse_cidr(const char *s, struct cfg_cidr *out, const char **why);

/* Formats <c> as "ADDR/LEN" into <buf> (INET6_ADDRSTRLEN + 4 bytes suffice). */
const char *cfg_cidr_str(const struct cfg_cidr *c, char *buf, size_t len);

/* ---- bytes and commands ---- */

/*
 * Decodes the escapes of health_send / health_expect in place: \r \n \t
 * \\ \xHH (any byte, NUL included). Returns the decoded length, or -EINVAL
 * with a short reason in <why> (static string).
 */
int cfg_unescape(char *s, const char **why);

/*
 * Splits <s> into <out> (see struct cfg_command) and checks its %
 * sequences. Returns 0, -EINVAL with a reason in <why>, or -ENOMEM.
 */
int cfg_parse_command(const char *s, struct cfg_command *out, const char **why);
void cfg_command_free(struct cfg_command *c);

#endif
