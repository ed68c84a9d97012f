/*
 * test_upgrade.c - the hot upgrade's messages and state machines
 * (core/upgrade_msg.c): every transition of both sides, each message
 * through encode and parse, and frames the parser must refuse.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include <cmocka.h>

#include "../../core/upgrade.h"

static void test_old_transitions(void **state)
{
    (void)state;
    assert_int_equal(upg_old_next(UPG_OLD_IDLE, UPG_OLD_EV_CONNECT), UPG_OLD_GREETING);
    assert_int_equal(upg_old_next(UPG_OLD_IDLE, UPG_OLD_EV_HELLO), UPG_OLD_FAILED);
    assert_int_equal(upg_old_next(UPG_OLD_GREETING, UPG_OLD_EV_HELLO), UPG_OLD_OFFERED);
    assert_int_equal(upg_old_next(UPG_OLD_GREETING, UPG_OLD_EV_SERVING), UPG_OLD_FAILED);
    assert_int_equal(upg_old_next(UPG_OLD_GREETING, UPG_OLD_EV_FAIL), UPG_OLD_FAILED);
    assert_int_equal(upg_old_next(UPG_OLD_OFFERED, UPG_OLD_EV_SERVING), UPG_OLD_HANDING);
    assert_int_equal(upg_old_next(UPG_OLD_OFFERED, UPG_OLD_EV_OTHER), UPG_OLD_FAILED);
    assert_int_equal(upg_old_next(UPG_OLD_OFFERED, UPG_OLD_EV_FAIL), UPG_OLD_FAILED);
    /* Once the new process serves, nothing takes the old one back. */
    assert_int_equal(upg_old_next(UPG_OLD_HANDING, UPG_OLD_EV_FAIL), UPG_OLD_HANDING);
    assert_int_equal(upg_old_next(UPG_OLD_HANDING, UPG_OLD_EV_RELEASED), UPG_OLD_HANDED_OVER);
    assert_int_equal(upg_old_next(UPG_OLD_HANDED_OVER, UPG_OLD_EV_FAIL), UPG_OLD_HANDED_OVER);
    assert_int_equal(upg_old_next(UPG_OLD_FAILED, UPG_OLD_EV_CONNECT), UPG_OLD_FAILED);
}

static void test_new_transitions(void **state)
{
    (void)state;
    assert_int_equal(upg_new_next(UPG_NEW_GREETING, UPG_NEW_EV_WELCOME), UPG_NEW_RECEIVING);
    assert_int_equal(upg_new_next(UPG_NEW_GREETING, UPG_NEW_EV_OTHER), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_GREETING, UPG_NEW_EV_SOCKET), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_RECEIVING, UPG_NEW_EV_SOCKET), UPG_NEW_RECEIVING);
    assert_int_equal(upg_new_next(UPG_NEW_RECEIVING, UPG_NEW_EV_SERVER), UPG_NEW_RECEIVING);
    assert_int_equal(upg_new_next(UPG_NEW_RECEIVING, UPG_NEW_EV_END), UPG_NEW_STARTING);
    assert_int_equal(upg_new_next(UPG_NEW_RECEIVING, UPG_NEW_EV_WELCOME), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_RECEIVING, UPG_NEW_EV_FAIL), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_STARTING, UPG_NEW_EV_STARTED), UPG_NEW_COMMITTING);
    assert_int_equal(upg_new_next(UPG_NEW_STARTING, UPG_NEW_EV_SOCKET), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_COMMITTING, UPG_NEW_EV_RELEASED), UPG_NEW_DONE);
    assert_int_equal(upg_new_next(UPG_NEW_COMMITTING, UPG_NEW_EV_FAIL), UPG_NEW_FAILED);
    assert_int_equal(upg_new_next(UPG_NEW_DONE, UPG_NEW_EV_FAIL), UPG_NEW_DONE);
    assert_int_equal(upg_new_next(UPG_NEW_FAILED, UPG_NEW_EV_WELCOME), UPG_NEW_FAILED);
}

/* Encodes <m>, parses it back whole and byte by byte: the same message. */
static void round_trip(const struct upg_msg *m)
{
    uint8_t frame[UPG_HDR + UPG_PAYLOAD_MAX];
    struct upg_parser p = {0};
    struct upg_msg back;
    size_t len = upg_encode(m, frame, sizeof(frame)), used;

    assert_true(len >= UPG_HDR);
    assert_int_equal(upg_parse(&p, frame, len, &used, &back), 1);
    assert_int_equal(used, len);
    assert_memory_equal(&back, m, sizeof(back));
    for (size_t i = 0; i < len; i++) {
        int r = upg_parse(&p, frame + i, 1, &used, &back);

        assert_int_equal(used, 1);
        assert_int_equal(r, i + 1 == len ? 1 : 0);
    }
    assert_memory_equal(&back, m, sizeof(back));
}

static void test_messages(void **state)
{
    struct upg_msg m;
    struct sockaddr_in *in = NULL;
    struct sockaddr_un *un = NULL;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = UPG_HELLO, m.proto = UPG_PROTO, m.pid = 4242;
    strcpy(m.text, "0.1.0");
    round_trip(&m);
    m.type = UPG_WELCOME, m.workers = 8;
    round_trip(&m);

    memset(&m, 0, sizeof(m));
    m.type = UPG_SOCKET, m.kind = UPG_SOCK_FRONTEND, m.index = 3, m.group = 4;
    m.flags = CFG_BIND_FREEBIND;
    in = (struct sockaddr_in *)&m.addr.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(8080);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m.addr.len = sizeof(*in);
    strcpy(m.name, "web");
    round_trip(&m);

    memset(&m, 0, sizeof(m));
    m.type = UPG_SOCKET, m.kind = UPG_SOCK_CONTROL, m.group = 1;
    un = (struct sockaddr_un *)&m.addr.ss;
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, "/run/ringlb/upgrade.sock");
    m.addr.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un->sun_path) + 1);
    round_trip(&m);

    memset(&m, 0, sizeof(m));
    m.type = UPG_SERVER, m.health = UPG_HEALTH_DOWN, m.admin = 2;
    strcpy(m.name, "app");
    strcpy(m.server, "b");
    round_trip(&m);

    memset(&m, 0, sizeof(m));
    m.type = UPG_ERROR;
    strcpy(m.text, "protocol version mismatch");
    round_trip(&m);
    for (uint8_t t = UPG_END; t <= UPG_RELEASED; t++) {
        memset(&m, 0, sizeof(m));
        m.type = t;
        round_trip(&m);
    }
}

static int parse_all(const uint8_t *b, size_t len)
{
    struct upg_parser p = {0};
    struct upg_msg m;
    size_t used;

    return upg_parse(&p, b, len, &used, &m);
}

static void test_refused(void **state)
{
    /* unknown type, non-zero reserved byte, a payload over the bound */
    static const uint8_t t0[] = {0, 0, 0, 0}, t9[] = {9, 0, 0, 0}, rsv[] = {6, 1, 0, 0},
                         big[] = {1, 0, 0x02, 0x01};
    /* END with a payload; HELLO one byte short; a name with a blank */
    static const uint8_t end1[] = {6, 0, 0, 1, 'x'}, hello[] = {1, 0, 0, 6, 0, 1, 0, 0, 0, 1},
                         blank[] = {5, 0, 0, 7, 1, 0, 2, 'a', 'b', 1, ' '};
    struct upg_msg m = {.type = UPG_SOCKET, .kind = UPG_SOCK_FRONTEND, .index = 2, .group = 2};
    uint8_t frame[UPG_HDR + UPG_PAYLOAD_MAX];

    (void)state;
    assert_int_equal(parse_all(t0, sizeof(t0)), -EBADMSG);
    assert_int_equal(parse_all(t9, sizeof(t9)), -EBADMSG);
    assert_int_equal(parse_all(rsv, sizeof(rsv)), -EBADMSG);
    assert_int_equal(parse_all(big, sizeof(big)), -EBADMSG);
    assert_int_equal(parse_all(end1, sizeof(end1)), -EBADMSG);
    assert_int_equal(parse_all(hello, sizeof(hello)), -EBADMSG);
    assert_int_equal(parse_all(blank, sizeof(blank)), -EBADMSG);
    /* index past its group, and an address of no family: encodes, refused */
    m.addr.len = sizeof(struct sockaddr_in);
    m.addr.ss.ss_family = AF_INET;
    strcpy(m.name, "web");
    assert_int_equal(parse_all(frame, upg_encode(&m, frame, sizeof(frame))), -EBADMSG);
    m.index = 0;
    m.addr.ss.ss_family = AF_UNSPEC;
    assert_int_equal(parse_all(frame, upg_encode(&m, frame, sizeof(frame))), -EBADMSG);
    /* a frame that does not fit is not encoded */
    assert_int_equal(upg_encode(&m, frame, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_transitions),
        cmocka_unit_test(test_new_transitions),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
