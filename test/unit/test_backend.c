/*
 * test_backend.c - unit tests for the backend table (core/backend.c): the
 * first snapshot built from a config, a reload that keeps frontend and
 * backend slots by name and servers by identity, retiring the old
 * snapshot through QSBR, and how health and the admin API add up to a
 * server's state. One thread plays main, checker and admin in turn.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../balancers/lb.h"
#include "../../config/config.h"
#include "../../core/backend.h"
#include "../../core/metrics.h"
#include "../../core/qsbr.h"

/* Frontends web (slot 0) and db (1); backends app (0) and pg (1). */
static const char *ini_v1 = "[frontend web]\n"
                            "bind = 127.0.0.1:18080\n"
                            "backend = app\n"
                            "[frontend db]\n"
                            "bind = 127.0.0.1:18081\n"
                            "bind = 127.0.0.1:18082\n"
                            "backend = pg\n"
                            "[backend app]\n"
                            "health = none\n"
                            "server = a 127.0.0.1:9001 weight=2\n"
                            "server = b 127.0.0.1:9002\n"
                            "server = c 127.0.0.1:9003 backup\n"
                            "[backend pg]\n"
                            "health = tcp\n"
                            "server = p 127.0.0.1:5432\n";

/*
 * The reload: names in another order, db and pg dropped, api and extra
 * added; in app, a changes weight, b changes address (so it is another
 * server), c stays as it was, d is new.
 */
static const char *ini_v2 = "[backend extra]\n"
                            "health = tcp\n"
                            "server = x 127.0.0.1:9100\n"
                            "[frontend api]\n"
                            "bind = 127.0.0.1:18090\n"
                            "backend = extra\n"
                            "[backend app]\n"
                            "health = none\n"
                            "server = d 127.0.0.1:9004\n"
                            "server = c 127.0.0.1:9003 backup\n"
                            "server = b 127.0.0.1:9012\n"
                            "server = a 127.0.0.1:9001 weight=5\n"
                            "[frontend web]\n"
                            "bind = 127.0.0.1:18080\n"
                            "backend = app\n";

static struct config *load(const char *text)
{
    struct config *cfg = NULL;
    char err[512];
    int r = config_load_string(text, NULL, &cfg, err, sizeof(err));

    if (r != 0)
        print_error("config: %s\n", err);
    assert_int_equal(r, 0);
    assert_non_null(cfg);
    return cfg;
}

static int find_pool(const struct lb_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->npools; i++) {
        if (strcmp(t->pools[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int find_fe(const struct lb_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        if (strcmp(t->frontends[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static struct server *find_srv(const struct pool *p, const char *name)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (strcmp(p->servers[i]->name, name) == 0)
            return p->servers[i];
    }
    return NULL;
}

static struct config *cfg1;

static int setup(void **state)
{
    (void)state;
    cfg1 = load(ini_v1);
    assert_int_equal(backend_table_init(cfg1), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    backend_table_destroy();
    assert_null(backend_table_get());
    config_free(cfg1);
    cfg1 = NULL;
    return 0;
}

static void test_first_snapshot(void **state)
{
    const struct lb_table *t = backend_table_get();
    const struct pool *app, *pg;
    struct server *a, *c, *p;

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->generation, 1);
    assert_int_equal(t->npools, 2);
    assert_int_equal(t->nfrontends, 2);
    /* Slots are handed out in the order of the file. */
    assert_int_equal(find_pool(t, "app"), 0);
    assert_int_equal(find_pool(t, "pg"), 1);
    assert_int_equal(find_fe(t, "web"), 0);
    assert_int_equal(find_fe(t, "db"), 1);
    assert_int_equal(t->frontends[0].pool, 0);
    assert_int_equal(t->frontends[1].pool, 1);
    assert_int_equal(t->frontends[1].nbinds, 2);
    assert_string_equal(t->frontends[1].binds[1], "127.0.0.1:18082");
    assert_false(t->frontends[0].gone);
    assert_non_null(t->frontends[0].stats);

    app = &t->pools[0];
    pg = &t->pools[1];
    assert_false(app->gone);
    assert_non_null(app->stats);
    assert_non_null(app->ops);
    assert_int_equal(app->nservers, 3);
    assert_int_equal(app->fall, 0); /* health none: no passive health either */
    assert_true(pg->fall > 0);
    a = find_srv(app, "a");
    c = find_srv(app, "c");
    p = find_srv(pg, "p");
    assert_non_null(a);
    assert_non_null(c);
    assert_non_null(p);
    assert_string_equal(a->addr_text, "127.0.0.1:9001");
    assert_int_equal(atomic_load(&a->cfg_weight), 2);
    assert_int_equal(atomic_load(&a->weight), 2 * SRV_WEIGHT_SCALE);
    assert_int_equal(atomic_load(&a->user_weight), 2 * SRV_WEIGHT_SCALE);
    assert_false(a->backup);
    assert_true(c->backup);
    /* At start-up a server without checks is up; one whose backend has
     * checks is checking, and takes no client before its first verdict. */
    assert_int_equal(atomic_load(&a->state), SRV_UP);
    assert_int_equal(atomic_load(&p->state), SRV_CHECKING);
    assert_true(server_usable(a));
    assert_false(server_usable(p));
}

static void test_reload_keeps_slots_and_servers(void **state)
{
    const struct lb_table *t1 = backend_table_get(), *t2;
    struct config *cfg2 = load(ini_v2), *cfg3;
    struct backend_diff d;
    struct server *a1 = find_srv(&t1->pools[0], "a"), *b1 = find_srv(&t1->pools[0], "b");
    struct server *c1 = find_srv(&t1->pools[0], "c");
    struct metrics_be *app_stats = t1->pools[0].stats, *pg_stats = t1->pools[1].stats;
    struct metrics_fe *web_stats = t1->frontends[0].stats, *db_stats = t1->frontends[1].stats;
    const struct pool *app, *pg, *extra;
    struct server *a2, *b2, *x;
    int reader = qsbr_register();

    (void)state;
    assert_true(reader >= 0);
    atomic_store(&a1->conns_total, 7);
    atomic_store(&app_stats->retries, 3);
    atomic_store(&db_stats->accepted, 11);

    assert_int_equal(backend_table_reload(cfg2, &d), 0);
    t2 = backend_table_get();
    assert_ptr_not_equal(t2, t1);
    assert_int_equal(t2->generation, 2);
    /* Servers: a and c kept (a's weight changed), b (new address), d and x
     * added, old b and p removed. */
    assert_int_equal(d.kept, 2);
    assert_int_equal(d.changed, 1);
    assert_int_equal(d.added, 3);
    assert_int_equal(d.removed, 2);

    /* Every name keeps its slot; new names get the next ones; dropped
     * names stay as gone entries. */
    assert_int_equal(t2->npools, 3);
    assert_int_equal(t2->nfrontends, 3);
    assert_int_equal(find_pool(t2, "app"), 0);
    assert_int_equal(find_pool(t2, "pg"), 1);
    assert_int_equal(find_pool(t2, "extra"), 2);
    assert_int_equal(find_fe(t2, "web"), 0);
    assert_int_equal(find_fe(t2, "db"), 1);
    assert_int_equal(find_fe(t2, "api"), 2);
    app = &t2->pools[0];
    pg = &t2->pools[1];
    extra = &t2->pools[2];
    assert_false(app->gone);
    assert_true(pg->gone);
    assert_int_equal(pg->nservers, 0);
    assert_null(pg->ops->pick((struct pool *)pg, NULL)); /* a gone pool picks nothing */
    assert_false(extra->gone);
    assert_true(t2->frontends[1].gone);
    assert_int_equal(t2->frontends[1].pool, 1); /* where it sent clients */
    assert_int_equal(t2->frontends[0].pool, 0);
    assert_int_equal(t2->frontends[2].pool, 2);
    assert_int_equal(backend_frontend_slot("api"), 2);
    assert_int_equal(backend_frontend_slot("db"), 1);

    /* Counters belong to the name and survive. */
    assert_ptr_equal(app->stats, app_stats);
    assert_ptr_equal(pg->stats, pg_stats);
    assert_ptr_equal(t2->frontends[0].stats, web_stats);
    assert_ptr_equal(t2->frontends[1].stats, db_stats);
    assert_int_equal(atomic_load(&app->stats->retries), 3);

    /* Servers that stay are the same struct, with their counters. */
    assert_int_equal(app->nservers, 4);
    a2 = find_srv(app, "a");
    b2 = find_srv(app, "b");
    assert_ptr_equal(a2, a1);
    assert_ptr_equal(find_srv(app, "c"), c1);
    assert_int_equal(atomic_load(&a2->conns_total), 7);
    assert_int_equal(atomic_load(&a2->cfg_weight), 5);
    assert_int_equal(atomic_load(&a2->weight), 5 * SRV_WEIGHT_SCALE);
    /* Another address is another server. */
    assert_ptr_not_equal(b2, b1);
    assert_string_equal(b2->addr_text, "127.0.0.1:9012");
    assert_int_equal(atomic_load(&b2->conns_total), 0);
    /* Added without health checks: up at once; with them: checking. */
    assert_int_equal(atomic_load(&find_srv(app, "d")->state), SRV_UP);
    x = find_srv(extra, "x");
    assert_non_null(x);
    assert_int_equal(atomic_load(&x->state), SRV_CHECKING);
    assert_false(server_usable(x));

    /* The old snapshot waits for the reader that may still hold it. */
    assert_int_equal(qsbr_poll(), 1);
    qsbr_quiescent(reader);
    assert_int_equal(qsbr_poll(), 0);
    qsbr_unregister(reader);

    /* Back to the first file: pg and db come back in their old slots,
     * with their old counters; api and extra are now the gone ones. */
    cfg3 = load(ini_v1);
    assert_int_equal(backend_table_reload(cfg3, &d), 0);
    t2 = backend_table_get();
    assert_int_equal(t2->generation, 3);
    assert_int_equal(find_pool(t2, "pg"), 1);
    assert_false(t2->pools[1].gone);
    assert_ptr_equal(t2->pools[1].stats, pg_stats);
    assert_false(t2->frontends[1].gone);
    assert_int_equal(atomic_load(&t2->frontends[1].stats->accepted), 11);
    assert_true(t2->pools[2].gone);
    assert_true(t2->frontends[2].gone);
    /* p was removed once: it comes back as a new server, checked first. */
    assert_int_equal(atomic_load(&find_srv(&t2->pools[1], "p")->state), SRV_CHECKING);
    assert_int_equal(d.added, 2);   /* b at its old address, p */
    assert_int_equal(d.kept, 2);    /* a, c */
    assert_int_equal(d.removed, 3); /* d, b at 9012, x */
    assert_int_equal(qsbr_poll(), 0);
    config_free(cfg2);
    config_free(cfg3);
}

static void test_state_from_health_and_admin(void **state)
{
    const struct lb_table *t = backend_table_get();
    struct server *a = find_srv(&t->pools[0], "a");
    uint64_t changes = atomic_load(&a->state_changes);

    (void)state;
    server_set_state(0, a, SRV_DOWN);
    assert_int_equal(atomic_load(&a->state), SRV_DOWN);
    assert_false(server_usable(a));
    /* Disabled by the operator: maintenance whatever health says... */
    server_set_admin(0, a, SRV_ADMIN_MAINT);
    assert_int_equal(atomic_load(&a->state), SRV_MAINT);
    server_set_state(0, a, SRV_UP);
    assert_int_equal(atomic_load(&a->state), SRV_MAINT);
    /* ...and drained: draining while health says up, down when it fails. */
    server_set_admin(0, a, SRV_ADMIN_DRAIN);
    assert_int_equal(atomic_load(&a->state), SRV_DRAIN);
    assert_false(server_usable(a));
    server_set_state(0, a, SRV_DOWN);
    assert_int_equal(atomic_load(&a->state), SRV_DOWN);
    server_set_state(0, a, SRV_UP);
    assert_int_equal(atomic_load(&a->state), SRV_DRAIN);
    server_set_admin(0, a, SRV_ADMIN_NONE);
    assert_int_equal(atomic_load(&a->state), SRV_UP);
    assert_true(server_usable(a));
    /* DOWN, MAINT, DRAIN, DOWN, DRAIN, UP; repeated verdicts do not count. */
    server_set_state(0, a, SRV_UP);
    assert_int_equal(atomic_load(&a->state_changes) - changes, 6);
}

static void test_weights_and_limits(void **state)
{
    const struct lb_table *t = backend_table_get();
    struct server *b = find_srv(&t->pools[0], "b");

    (void)state;
    /* The admin API's weight sets both; slow start ramps the effective one. */
    server_set_user_weight(0, b, 3 * SRV_WEIGHT_SCALE);
    assert_int_equal(atomic_load(&b->user_weight), 3 * SRV_WEIGHT_SCALE);
    assert_int_equal(atomic_load(&b->weight), 3 * SRV_WEIGHT_SCALE);
    server_set_weight(0, b, 1);
    assert_int_equal(atomic_load(&b->weight), 1);
    assert_int_equal(atomic_load(&b->user_weight), 3 * SRV_WEIGHT_SCALE);
    assert_true(server_usable(b));
    server_set_weight(0, b, 0);
    assert_false(server_usable(b)); /* weight 0 takes no new connections */
    server_set_weight(0, b, SRV_WEIGHT_SCALE);

    /* max_conns is honoured exactly by take/put. */
    atomic_store(&b->max_conns, 2);
    assert_true(server_take(b));
    assert_true(server_take(b));
    assert_false(server_take(b));
    assert_false(server_usable(b));
    assert_int_equal(atomic_load(&b->conns_total), 2);
    server_put(b);
    assert_true(server_usable(b));
    assert_true(server_take(b));
    server_put(b);
    server_put(b);
    assert_int_equal(atomic_load(&b->active), 0);
}

static void test_passive_health(void **state)
{
    const struct lb_table *t = backend_table_get();
    const struct pool *app = &t->pools[0], *pg = &t->pools[1];
    struct server *a = find_srv(app, "a"), *p = find_srv(pg, "p");
    uint32_t hits = 0;

    (void)state;
    /* health = none: failed connects never wake the checker. */
    for (int i = 0; i < 10; i++)
        assert_false(server_note_fail(app, a));
    /* Otherwise exactly once per run of <fall> failures. */
    for (uint32_t i = 0; i < 3 * pg->fall; i++)
        hits += server_note_fail(pg, p);
    assert_int_equal(hits, 1);
    server_note_ok(p);
    assert_int_equal(atomic_load(&p->fails), 0);
    for (uint32_t i = 0; i < pg->fall; i++)
        hits += server_note_fail(pg, p);
    assert_int_equal(hits, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_slots_and_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_from_health_and_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passive_health, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
