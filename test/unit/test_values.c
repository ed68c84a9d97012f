/*
 * test_values.c - unit tests for config/values.c: the value syntaxes that
 * lb.ini, ringbench and the admin API share (numbers, numbers with units,
 * booleans, addresses, escapes, commands).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "../../config/values.h"

static void assert_addr(const struct cfg_addr *a, const char *text)
{
    char buf[160];

    assert_string_equal(cfg_addr_str(a, buf, sizeof(buf)), text);
}

/* ---- numbers ---- */

static void test_uint(void **state)
{
    static const struct {
        const char *s;
        int r;
        uint32_t v;
    } cases[] = {
        {"0", 0, 0},
        {"42", 0, 42},
        {"0080", 0, 80},
        {"4294967295", 0, UINT32_MAX},
        {"4294967296", -ERANGE, 0},
        {"99999999999999999999999", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"1x", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {"1.0", -EINVAL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t v = 7;
        int r = cfg_parse_uint(cases[i].s, &v);

        if (r != cases[i].r)
            print_error("'%s': got %d, want %d\n", cases[i].s, r, cases[i].r);
        assert_int_equal(r, cases[i].r);
        assert_int_equal(v, r == 0 ? cases[i].v : 7);
    }
}

static void test_bool(void **state)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    static const char *const bad[] = {"", "Yes", "TRUE", "y", "2", " yes", "yes ", "enabled"};
    bool b;

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        assert_int_equal(cfg_parse_bool(yes[i], &b), 0);
        assert_true(b);
        assert_int_equal(cfg_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = true;
        assert_int_equal(cfg_parse_bool(bad[i], &b), -EINVAL);
        assert_true(b);
    }
}

/* Nanoseconds, as ringbench counts them. */
static const struct cfg_unit ns_units[] = {
    {"", 1000000000}, {"s", 1000000000},  {"ms", 1000000},      {"us", 1000},
    {"ns", 1},        {"m", 60000000000}, {"h", 3600000000000}, {NULL, 0},
};

static const struct cfg_unit byte_units[] = {{"", 1}, {"k", 1024}, {"m", 1048576}, {NULL, 0}};

static void test_scaled(void **state)
{
    static const struct {
        const char *s;
        const struct cfg_unit *units;
        unsigned flags;
        int r;
        uint64_t v;
    } cases[] = {
        /* plain digits */
        {"10", ns_units, 0, 0, 10000000000},
        {"250us", ns_units, 0, 0, 250000},
        {"0ms", ns_units, 0, 0, 0},
        {"2h", ns_units, 0, 0, 7200000000000},
        {"1.5s", ns_units, 0, -EINVAL, 0},
        {"1e3", ns_units, 0, -EINVAL, 0},
        {"", ns_units, 0, -EINVAL, 0},
        {"s", ns_units, 0, -EINVAL, 0},
        {"-1s", ns_units, 0, -EINVAL, 0},
        {"+1s", ns_units, 0, -EINVAL, 0},
        {" 1s", ns_units, 0, -EINVAL, 0},
        {"1s ", ns_units, 0, -EINVAL, 0},
        {"1S", ns_units, 0, -EINVAL, 0},
        {"1d", ns_units, 0, -EINVAL, 0},
        {"18446744073709551615ns", ns_units, 0, 0, UINT64_MAX},
        {"18446744073709551616ns", ns_units, 0, -ERANGE, 0},
        {"18446744074s", ns_units, 0, -ERANGE, 0},
        {"99999999999999999999999999ns", ns_units, 0, -ERANGE, 0},
        {"99999999999999999999999999x", ns_units, 0, -EINVAL, 0},
        /* fractions and exponents, exact */
        {"1.5s", ns_units, CFG_NUM_FRACTION, 0, 1500000000},
        {"12.5ms", ns_units, CFG_NUM_FRACTION, 0, 12500000},
        {".5s", ns_units, CFG_NUM_FRACTION, 0, 500000000},
        {"5.s", ns_units, CFG_NUM_FRACTION, 0, 5000000000},
        {"0.1s", ns_units, CFG_NUM_FRACTION, 0, 100000000},
        {"1e3ms", ns_units, CFG_NUM_FRACTION, 0, 1000000000},
        {"1E3", ns_units, CFG_NUM_FRACTION, 0, 1000000000000},
        {"25e-2s", ns_units, CFG_NUM_FRACTION, 0, 250000000},
        {"1e+2us", ns_units, CFG_NUM_FRACTION, 0, 100000},
        {"0.000000000000000000000000000001e30s", ns_units, CFG_NUM_FRACTION, 0, 1000000000},
        {"0e99999s", ns_units, CFG_NUM_FRACTION, 0, 0},
        {"1e99999s", ns_units, CFG_NUM_FRACTION, -ERANGE, 0},
        {"1e-99999s", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {".", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1.2.3s", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1e", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1e+s", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"0x10", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"inf", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1.5ns", ns_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1.5k", byte_units, CFG_NUM_FRACTION, 0, 1536},
        {"4.0k", byte_units, CFG_NUM_FRACTION, 0, 4096},
        {"0.3k", byte_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1.5", byte_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"1.00000000000000000001k", byte_units, CFG_NUM_FRACTION, -EINVAL, 0},
        {"100000000000000000000e-5", byte_units, CFG_NUM_FRACTION, 0, 1000000000000000},
        /* rounding, halves up */
        {"1.5ns", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 2},
        {"1.49ns", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 1},
        {"0.5ns", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 1},
        {"0.05ns", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 0},
        {"1e-99999s", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 0},
        {"0.0000000015s", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0, 2},
        {"1844674407370955161.55ns", ns_units, CFG_NUM_FRACTION | CFG_NUM_ROUND, 0,
         1844674407370955162},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 7;
        int r = cfg_parse_scaled(cases[i].s, cases[i].units, cases[i].flags, &v);

        if (r != cases[i].r || (r == 0 && v != cases[i].v))
            print_error("'%s' (flags %u): got %d %llu, want %d %llu\n", cases[i].s, cases[i].flags,
                        r, (unsigned long long)v, cases[i].r, (unsigned long long)cases[i].v);
        assert_int_equal(r, cases[i].r);
        assert_true(v == (r == 0 ? cases[i].v : 7));
    }
    assert_int_equal(cfg_parse_scaled(NULL, ns_units, 0, &(uint64_t){0}), -EINVAL);
}

static void test_command_split(void **state)
{
    static const struct {
        const char *s;
        int argc;
        const char *words[4];
    } ok[] = {
        {"a", 1, {"a"}},
        {"  a\tb  ", 2, {"a", "b"}},
        {"a 'b c' d", 3, {"a", "b c", "d"}},
        {"a \"b \\\" c\"", 2, {"a", "b \" c"}},
        {"a 'x\\y'", 2, {"a", "x\\y"}},
        {"a\\ b", 1, {"a b"}},
        {"a ''", 2, {"a", ""}},
        {"x'y'\"z\"", 1, {"xyz"}},
        {"a;b|c$HOME`d`", 1, {"a;b|c$HOME`d`"}},
    };
    static const char *const bad[] = {"", "   ", "a 'b", "a \"b", "a\\", "a %x", "a 50%"};
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct cfg_command c;

        why = NULL;
        assert_int_equal(cfg_parse_command(ok[i].s, &c, &why), 0);
        assert_int_equal(c.argc, ok[i].argc);
        for (int j = 0; j < ok[i].argc; j++)
            assert_string_equal(c.argv[j], ok[i].words[j]);
        assert_null(c.argv[c.argc]);
        cfg_command_free(&c);
        assert_null(c.argv);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfg_command c;

        why = NULL;
        if (cfg_parse_command(bad[i], &c, &why) != -EINVAL)
            print_error("accepted: '%s'\n", bad[i]);
        assert_non_null(why);
        assert_null(c.argv);
    }
}

static void test_unescape(void **state)
{
    char buf[32];
    const char *why = NULL;

    (void)state;
    strcpy(buf, "a\\r\\n\\t\\\\\\x41\\x7e");
    assert_int_equal(cfg_unescape(buf, &why), 7);
    assert_memory_equal(buf, "a\r\n\t\\A~", 7);
    strcpy(buf, "\\x00z");
    assert_int_equal(cfg_unescape(buf, &why), 2);
    assert_memory_equal(buf, "\0z", 2);
    strcpy(buf, "plain");
    assert_int_equal(cfg_unescape(buf, NULL), 5);
    assert_string_equal(buf, "plain");
    strcpy(buf, "a\\");
    assert_int_equal(cfg_unescape(buf, &why), -EINVAL);
    strcpy(buf, "\\q");
    assert_int_equal(cfg_unescape(buf, &why), -EINVAL);
    assert_non_null(strstr(why, "unknown escape"));
    strcpy(buf, "\\x4");
    assert_int_equal(cfg_unescape(buf, &why), -EINVAL);
    strcpy(buf, "\\xg0");
    assert_int_equal(cfg_unescape(buf, &why), -EINVAL);
    assert_non_null(strstr(why, "hex"));
}

/* ---- durations ---- */

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        int r;
        uint32_t ms;
    } cases[] = {
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"0s", 0, 0},
        {"1ms", 0, 1},
        {"500ms", 0, 500},
        {"2s", 0, 2000},
        {"5m", 0, 300000},
        {"1h", 0, 3600000},
        {"1193h", 0, 4294800000u},
        {"4294967295ms", 0, 4294967295u},
        {"4294967s", 0, 4294967000u},
        {"007s", 0, 7000},
        {"4294967296ms", -ERANGE, 0},
        {"4294968s", -ERANGE, 0},
        {"1194h", -ERANGE, 0},
        {"99999999999999999999999h", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"5", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"-1s", -EINVAL, 0},
        {"+1s", -EINVAL, 0},
        {"10x", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"ms", -EINVAL, 0},
        {"1 s", -EINVAL, 0},
        {" 1s", -EINVAL, 0},
        {"1s ", -EINVAL, 0},
        {"1S", -EINVAL, 0},
        {"1sec", -EINVAL, 0},
        {"1d", -EINVAL, 0},
        {"1msms", -EINVAL, 0},
        {"99999999999999999999999", -EINVAL, 0},
        {"99999999999999999999999x", -EINVAL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t ms = 12345;
        int r = cfg_parse_duration(cases[i].s, &ms);

        if (r != cases[i].r)
            print_error("duration '%s': got %d, want %d\n", cases[i].s, r, cases[i].r);
        assert_int_equal(r, cases[i].r);
        if (r == 0)
            assert_int_equal(ms, cases[i].ms);
        else
            assert_int_equal(ms, 12345);
    }
}

/* ---- addresses ---- */

#define ALL (CFG_ADDR_UNIX | CFG_ADDR_RESOLVE | CFG_ADDR_PASSIVE)

static void test_addrs_good(void **state)
{
    static const struct {
        const char *s;
        unsigned flags;
        const char *text; /* cfg_addr_str() of the result */
    } cases[] = {
        {"127.0.0.1:80", 0, "127.0.0.1:80"},
        {"10.0.0.255:65535", 0, "10.0.0.255:65535"},
        {"0.0.0.0:8080", 0, "0.0.0.0:8080"},
        {"*:8080", CFG_ADDR_PASSIVE, "0.0.0.0:8080"},
        {":8080", CFG_ADDR_PASSIVE, "0.0.0.0:8080"},
        {"[::1]:443", 0, "[::1]:443"},
        {"[::]:1", 0, "[::]:1"},
        {"[2001:db8::10]:5432", 0, "[2001:db8::10]:5432"},
        {"[::ffff:1.2.3.4]:80", 0, "[::ffff:1.2.3.4]:80"},
        {"unix:/run/x.sock", CFG_ADDR_UNIX, "unix:/run/x.sock"},
        {"unix:rel.sock", CFG_ADDR_UNIX, "unix:rel.sock"},
        {"127.0.0.1:0080", 0, "127.0.0.1:80"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_addr a;
        const char *why = NULL;
        int r = cfg_parse_addr(cases[i].s, cases[i].flags, &a, &why);

        if (r != 0)
            print_error("'%s': %s\n", cases[i].s, why);
        assert_int_equal(r, 0);
        assert_addr(&a, cases[i].text);
    }
}

static void test_addr_localhost(void **state)
{
    struct cfg_addr a;
    const char *why = NULL;
    char buf[64];

    (void)state;
    assert_int_equal(cfg_parse_addr("localhost:9000", CFG_ADDR_RESOLVE, &a, &why), 0);
    cfg_addr_str(&a, buf, sizeof(buf));
    assert_true(strcmp(buf, "127.0.0.1:9000") == 0 || strcmp(buf, "[::1]:9000") == 0);
    /* Without CFG_ADDR_RESOLVE a name is refused, not looked up. */
    assert_int_equal(cfg_parse_addr("localhost:9000", 0, &a, &why), -EINVAL);
    assert_non_null(strstr(why, "host names"));
}

static void test_addrs_bad(void **state)
{
    static const struct {
        const char *s;
        unsigned flags;
        const char *why; /* a part of the reason */
    } cases[] = {
        {"127.0.0.1", ALL, "missing port"},
        {"127.0.0.1:", ALL, "missing port"},
        {"[::1]", ALL, "missing port"},
        {"[::1]:", ALL, "missing port"},
        {"[::1]80", ALL, "':'"},
        {"[::1:80", ALL, "']'"},
        {"::1:80", ALL, "brackets"},
        {"127.0.0.1:0", ALL, "range"},
        {"127.0.0.1:65536", ALL, "range"},
        {"127.0.0.1:99999999999", ALL, "range"},
        {"127.0.0.1:http", ALL, "bad port"},
        {"127.0.0.1:-1", ALL, "bad port"},
        {"127.0.0.1:8 0", ALL, "bad port"},
        {"[1.2.3.4]:80", ALL, "IPv6"},
        {"[zz::1]:80", ALL, "IPv6"},
        {"256.1.1.1:80", ALL, NULL},
        {"1.2.3:80", ALL, NULL},
        {"*:80", CFG_ADDR_UNIX | CFG_ADDR_RESOLVE, "missing host"},
        {":80", 0, "missing host"},
        {"unix:/x", CFG_ADDR_RESOLVE | CFG_ADDR_PASSIVE, "not allowed"},
        {"unix:", ALL, "missing"},
        {"garbage", ALL, "missing port"},
        {"", ALL, "missing port"},
        {"ho st:80", ALL, "bad"},
        {"h$st:80", ALL, "bad"},
        {"no-such-host.invalid:80", ALL, "does not resolve"},
    };
    char longpath[200];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_addr a;
        const char *why = NULL;
        int r = cfg_parse_addr(cases[i].s, cases[i].flags, &a, &why);

        if (r != -EINVAL)
            print_error("'%s' was accepted\n", cases[i].s);
        assert_int_equal(r, -EINVAL);
        assert_non_null(why);
        if (cases[i].why && !strstr(why, cases[i].why))
            print_error("'%s': reason '%s' lacks '%s'\n", cases[i].s, why, cases[i].why);
        if (cases[i].why)
            assert_non_null(strstr(why, cases[i].why));
    }

    /* sun_path holds 107 characters and the NUL. */
    memset(longpath, 'p', sizeof(longpath));
    memcpy(longpath, "unix:/", 6);
    longpath[5 + sizeof(((struct sockaddr_un *)0)->sun_path) - 1] = '\0';
    {
        struct cfg_addr a;
        const char *why = NULL;

        assert_int_equal(cfg_parse_addr(longpath, CFG_ADDR_UNIX, &a, &why), 0);
        assert_int_equal(a.len, sizeof(struct sockaddr_un));
        longpath[5 + sizeof(((struct sockaddr_un *)0)->sun_path) - 1] = 'p';
        longpath[5 + sizeof(((struct sockaddr_un *)0)->sun_path)] = '\0';
        assert_int_equal(cfg_parse_addr(longpath, CFG_ADDR_UNIX, &a, &why), -EINVAL);
        assert_non_null(strstr(why, "too long"));
        /* <why> may be NULL */
        assert_int_equal(cfg_parse_addr("x", 0, &a, NULL), -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint),       cmocka_unit_test(test_bool),
        cmocka_unit_test(test_scaled),     cmocka_unit_test(test_durations),
        cmocka_unit_test(test_addrs_good), cmocka_unit_test(test_addr_localhost),
        cmocka_unit_test(test_addrs_bad),  cmocka_unit_test(test_command_split),
        cmocka_unit_test(test_unescape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
