/*
 * stats_page.h - GET /stats: one self-contained HTML page (no scripts, no
 * external assets) with frontends, backends and servers, state colours,
 * connections, rates and health, reloading itself every few seconds.
 */
#ifndef LB_STATS_PAGE_H
#define LB_STATS_PAGE_H

#include <stdint.h>

struct metrics_buf;

/* Seconds between the page's own reloads. */
#define STATS_PAGE_REFRESH_S 2

/*
 * Renders the page into <b>, with the connection rates the admin thread
 * last sampled. Admin thread, between two QSBR quiescent points (it reads
 * the table).
 */
void stats_page_render(struct metrics_buf *b);

#endif
