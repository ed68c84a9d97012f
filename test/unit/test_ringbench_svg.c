/*
 * test_ringbench_svg.c - the percentile plot of `ringbench compare --svg`:
 * the x axis ends where the data does (n samples reach 1 - 1/n), not at
 * 99.9999% whatever the sample size, and the rotated y label stays clear of
 * the widest y tick label.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/hist.h"
#include "../../bench/ringbench/report.h"

/* Renders one line of <count> samples spread from 100 us to 1 s. */
static char *render(uint64_t count)
{
    struct rb_hist h;
    const struct rb_hist *hists[1] = {&h};
    const char *names[1] = {"direct"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(rb_hist_init(&h), 0);
    for (uint64_t i = 0; i < count; i++)
        rb_hist_record(&h, 100000 + i * (1000000000ULL / count));
    assert_int_equal(rb_svg_percentiles(f, "t", names, hists, 1), 0);
    fclose(f);
    rb_hist_free(&h);
    return buf;
}

/* The text of the last x tick label: the axis maximum. */
static void last_x_label(const char *svg, char *out, size_t len)
{
    const char *p = svg, *hit = NULL;

    while ((p = strstr(p, "text-anchor=\"middle\">")) != NULL) {
        p += strlen("text-anchor=\"middle\">");
        if (strchr("0123456789", *p) && strchr(p, '%') < strchr(p, '<'))
            hit = p;
    }
    assert_non_null(hit);
    snprintf(out, len, "%.*s", (int)(strchr(hit, '<') - hit), hit);
}

static void test_x_axis_ends_with_the_data(void **state)
{
    static const struct {
        uint64_t count;
        const char *last;
    } cases[] = {
        {10000, "99.99%"}, {9500, "99.99%"}, {300, "99.9%"}, {50, "99%"}, {2000000, "99.9999%"}};
    char last[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *svg = render(cases[i].count);

        last_x_label(svg, last, sizeof(last));
        if (strcmp(last, cases[i].last) != 0)
            fail_msg("%llu samples: the x axis ends at %s, not %s",
                     (unsigned long long)cases[i].count, last, cases[i].last);
        free(svg);
    }
}

/* The y label is rotated about (16, y): its glyphs span x 16 +- 6 (12 px
 * font). Tick labels end at their x (text-anchor end); at 12 px sans a
 * character is at most ~7.5 px wide. */
static void test_y_label_clear_of_ticks(void **state)
{
    char *svg = render(10000);
    const char *p = svg;
    int ticks = 0;

    (void)state;
    assert_non_null(strstr(svg, "rotate(-90 16 "));
    while ((p = strstr(p, "text-anchor=\"end\">")) != NULL) {
        const char *text = p + strlen("text-anchor=\"end\">");
        const char *xs = p;
        double x, width = 7.5 * (double)(strchr(text, '<') - text);

        while (xs > svg && strncmp(xs, "<text x=\"", 9) != 0)
            xs--;
        x = atof(xs + 9);
        if (x - width <= 16 + 6 + 2)
            fail_msg("y tick '%.*s' (x %.0f, ~%.0f px wide) runs into the y label",
                     (int)(strchr(text, '<') - text), text, x, width);
        ticks++;
        p = text;
    }
    assert_true(ticks >= 2);
    free(svg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x_axis_ends_with_the_data),
        cmocka_unit_test(test_y_label_clear_of_ticks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
