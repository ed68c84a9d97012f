/*
 * stats_page.c - renders GET /stats (see stats_page.h).
 *
 * The page is rendered on the server, so it shows everything without
 * JavaScript and a headless browser's DOM dump sees the servers; a meta
 * refresh reloads it. A small inline script only adds the actions (enable,
 * drain, disable, weight), which call the admin API from the same origin
 * (with the token typed into the page, kept in the tab's sessionStorage,
 * when admin_token_file is set). Rates come from the admin thread's once-a-second
 * samples, so they mean the same whoever looks and how often. Counters say
 * "total" in their headings, as their /api/backends keys end in _total, so
 * that a column of counts is not read as a setting of the same name.
 */
#include "stats_page.h"

#include <stdatomic.h>
#include <stdio.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "backend.h"
#include "metrics.h"
#include "fault.h"
#include "version.h"
#include "runtime.h"
#include "worker.h"

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}"
    "h1{font-size:20px;margin:0 0 .3em}h2{font-size:16px;margin:1.2em 0 .3em}"
    "table{border-collapse:collapse;background:#fff;min-width:60%}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
    "th{background:#eee}td.l,th.l{text-align:left}"
    "tr.up td.st{background:#7ccf7c}tr.down td.st{background:#f07c7c}"
    "tr.drain td.st{background:#f5c46b}tr.maint td.st{background:#b0b0b0}"
    "tr.checking td.st{background:#9cc3f0}"
    "tr.down{color:#a00}tr.maint{color:#666}.meta{color:#555}"
    "td.act button{font-size:12px;margin:0 1px;padding:0 4px}#msg{color:#a00;margin-left:1em}"
    ".chaos{background:#ffe08a;border:2px solid #d08a00;padding:.4em .8em;margin:.5em 0}"
    ".chaos ul{margin:.2em 0}";

/* Bytes as text with a binary unit: "512 B", "1.5 MiB". */
static void human_bytes(struct metrics_buf *b, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = (double)v;
    unsigned u = 0;

    while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        metrics_buf_printf(b, "%llu B", (unsigned long long)v);
    else
        metrics_buf_printf(b, "%.1f %s", d, units[u]);
}

static void frontends(struct metrics_buf *b, const struct lb_table *t)
{
    metrics_buf_printf(b, "<h2>Frontends</h2><table><tr><th class=l>frontend</th>"
                          "<th class=l>binds</th><th class=l>backend</th><th>accepted total</th>"
                          "<th>active</th><th>rejected total</th></tr>\n");
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        const struct frontend *fe = &t->frontends[i];

        if (fe->gone)
            continue;
        metrics_buf_printf(b, "<tr class=fe><td class=l>");
        metrics_html(b, fe->name);
        metrics_buf_printf(b, "</td><td class=l>");
        for (uint32_t j = 0; j < fe->nbinds; j++) {
            if (j)
                metrics_buf_printf(b, ", ");
            metrics_html(b, fe->binds[j]);
        }
        metrics_buf_printf(b, "</td><td class=l>");
        metrics_html(b, frontend_backend_name(t, fe));
        metrics_buf_printf(b, "</td><td>%llu</td><td>%llu</td><td>%llu</td></tr>\n",
                           (unsigned long long)LD(fe->stats->accepted),
                           (unsigned long long)LD(fe->stats->active),
                           (unsigned long long)LD(fe->stats->rejected));
    }
    metrics_buf_printf(b, "</table>\n");
}

/* A duration as an operator reads it: "45s", "12m3s", "5h2m", "3d4h". */
static void human_secs(struct metrics_buf *b, uint64_t ms)
{
    uint64_t s = ms / 1000;

    if (s < 60)
        metrics_buf_printf(b, "%llus", (unsigned long long)s);
    else if (s < 3600)
        metrics_buf_printf(b, "%llum%llus", (unsigned long long)(s / 60),
                           (unsigned long long)(s % 60));
    else if (s < 86400)
        metrics_buf_printf(b, "%lluh%llum", (unsigned long long)(s / 3600),
                           (unsigned long long)(s / 60 % 60));
    else
        metrics_buf_printf(b, "%llud%lluh", (unsigned long long)(s / 86400),
                           (unsigned long long)(s / 3600 % 24));
}

/* The page's only script: the actions of the last column (see the top). */
static const char script[] =
    "function tok(){return sessionStorage.getItem('ringlb-token')||''}"
    "function act(b,s,a){var q='';if(a=='weight'){var w=prompt('weight of '+b+'/'+s+' "
    "(0..1000)');if(w===null)return;q='?value='+encodeURIComponent(w)}"
    "var h={'Content-Type':'application/json'};if(tok())h['Authorization']='Bearer '+tok();"
    "fetch('/api/backends/'+encodeURIComponent(b)+'/servers/'+encodeURIComponent(s)+'/'+a+q,"
    "{method:'POST',headers:h}).then(function(r){return r.text().then(function(t){"
    "document.getElementById('msg').textContent=r.ok?'':r.status+' '+t;"
    "if(r.ok)location.reload()})})}"
    "document.addEventListener('click',function(e){var t=e.target;"
    "if(t.dataset&&t.dataset.a)act(t.dataset.b,t.dataset.s,t.dataset.a)});"
    "function settok(){sessionStorage.setItem('ringlb-token',"
    "document.getElementById('tok').value)}";

static void action_buttons(struct metrics_buf *b, const struct pool *p, const struct server *s)
{
    static const char *const acts[] = {"enable", "drain", "disable", "weight"};

    metrics_buf_printf(b, "<td class=\"l act\">");
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        metrics_buf_printf(b, "<button data-a=%s data-b=\"", acts[i]);
        metrics_html(b, p->name);
        metrics_buf_printf(b, "\" data-s=\"");
        metrics_html(b, s->name);
        metrics_buf_printf(b, "\">%s</button>", acts[i]);
    }
    metrics_buf_printf(b, "</td>");
}

static void server_row(struct metrics_buf *b, const struct pool *p, const struct server *s)
{
    uint32_t mc = LD(s->max_conns), adm = LD(s->admin);
    const char *st = metrics_state_name(LD(s->state));
    struct server_view v;

    server_view(s, &v);

    metrics_buf_printf(b, "<tr class=\"%s\" id=\"srv-", st);
    metrics_html(b, p->name);
    metrics_buf_printf(b, "-");
    metrics_html(b, s->name);
    metrics_buf_printf(b, "\"><td class=l>");
    metrics_html(b, s->name);
    metrics_buf_printf(b, "%s</td><td class=l>", s->backup ? " (backup)" : "");
    metrics_html(b, s->addr_text);
    metrics_buf_printf(b, "</td><td class=\"l st\">%s ", st);
    human_secs(b, v.state_ms);
    metrics_buf_printf(b, "</td><td class=l>%s</td><td class=\"l chk\">%s",
                       adm == SRV_ADMIN_MAINT   ? "disabled"
                       : adm == SRV_ADMIN_DRAIN ? "drain"
                                                : "-",
                       metrics_health_name(LD(s->health)));
    if (v.check_status[0]) {
        metrics_buf_printf(b, ": <b>%s</b> ", v.check_status);
        metrics_html(b, v.check_reason);
        metrics_buf_printf(b, " (%.1f ms)", (double)LD(s->check_us) / 1000.0);
    }
    metrics_buf_printf(b, "</td><td>");
    human_secs(b, v.down_ms);
    metrics_buf_printf(b, "</td><td>%.4g</td>", (double)LD(s->weight) / SRV_WEIGHT_SCALE);
    if (mc)
        metrics_buf_printf(b, "<td>%u / %u</td>", LD(s->active), mc);
    else
        metrics_buf_printf(b, "<td>%u</td>", LD(s->active));
    metrics_buf_printf(b, "<td>%llu</td><td>%.1f</td><td>%llu</td><td>",
                       (unsigned long long)LD(s->conns_total), s->rate,
                       (unsigned long long)LD(s->connect_fail));
    human_bytes(b, LD(s->bytes_in));
    metrics_buf_printf(b, "</td><td>");
    human_bytes(b, LD(s->bytes_out));
    metrics_buf_printf(b, "</td><td>%llu</td>", (unsigned long long)LD(s->state_changes));
    action_buttons(b, p, s);
    metrics_buf_printf(b, "</tr>\n");
}

void stats_page_render(struct metrics_buf *b)
{
    const struct lb_table *t = backend_table_get();

    metrics_buf_printf(b,
                       "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
                       "<meta http-equiv=refresh content=%d><title>ringlb stats</title>"
                       "<style>%s</style><script>%s</script></head><body>\n<h1>ringlb %s</h1>"
                       "<p class=meta>io %s &middot; up %.0f s &middot; %u / %u connections "
                       "&middot; refreshes every %d s &middot; export "
                       "<a href=\"/api/backends.csv\">CSV</a>, "
                       "<a href=\"/api/backends\">JSON</a> &middot; admin token (for the "
                       "actions, when set): <input id=tok type=password size=12 "
                       "onchange=\"settok()\"><span id=msg></span></p>\n",
                       STATS_PAGE_REFRESH_S, css, script, RINGLB_VERSION,
                       lb_rt.backend == LOOP_URING ? "io_uring" : "epoll", metrics_uptime(),
                       LD(lb_rt.active), LD(lb_rt.max_conns), STATS_PAGE_REFRESH_S);
    fault_render_banner(b);
    frontends(b, t);
    for (uint32_t i = 0; i < t->npools; i++) {
        const struct pool *p = &t->pools[i];
        uint32_t up = 0;

        if (p->gone)
            continue;
        for (uint32_t j = 0; j < p->nservers; j++)
            up += LD(p->servers[j]->state) == SRV_UP;
        metrics_buf_printf(b, "<h2>Backend ");
        metrics_html(b, p->name);
        metrics_buf_printf(b,
                           " <span class=meta>(%s, %u/%u up, retries total %llu, without a "
                           "server total %llu)</span></h2>\n",
                           p->ops->name, up, p->nservers, (unsigned long long)LD(p->stats->retries),
                           (unsigned long long)LD(p->stats->no_server));
        metrics_buf_printf(
            b, "<table class=backend><tr><th class=l>server</th>"
               "<th class=l>address</th><th class=l>state (for)</th><th class=l>admin</th>"
               "<th class=l>health: last check</th><th>downtime total</th><th>weight</th>"
               "<th>active</th><th>connections total</th><th>conn/s</th>"
               "<th>connect failures total</th><th>bytes in total</th><th>bytes out total</th>"
               "<th>state changes total</th><th class=l>actions</th></tr>\n");
        for (uint32_t j = 0; j < p->nservers; j++)
            server_row(b, p, p->servers[j]);
        metrics_buf_printf(b, "</table>\n");
    }
    metrics_buf_printf(b,
                       "<p class=meta>Bytes are counted as they move (at most 64 KiB or 1 s behind "
                       "per connection). "
                       "Raw data: <a href=\"/metrics\">/metrics</a>, "
                       "<a href=\"/api/backends\">/api/backends</a>.</p>\n</body></html>\n");
}
