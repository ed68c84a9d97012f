/*
 * half_mode.c - the transition table of a direction's forwarding mode
 * (see half_mode.h).
 */
#include "half_mode.h"

#include <stdint.h>

#include "compiler.h"

/* next[from] has bit <to> set when <from> may move to <to>. */
static const uint8_t next[HM_COUNT] = {
    [HM_COPY] = 1u << HM_TO_SPLICE | 1u << HM_TO_STARVED | 1u << HM_SPLICE | 1u << HM_SHAPED |
                1u << HM_PREFIX,
    [HM_TO_SPLICE] = 1u << HM_SPLICE,
    [HM_SPLICE] = 1u << HM_COPY,
    [HM_TO_STARVED] = 1u << HM_STARVED,
    [HM_STARVED] = 1u << HM_COPY,
    /* A shaped direction never splices: the fault must see every byte. */
    [HM_SHAPED] = 1u << HM_COPY,
    [HM_PREFIX] = 1u << HM_COPY,
};

static const char *const names[HM_COUNT] = {
    [HM_COPY] = "copy",       [HM_TO_SPLICE] = "to-splice",
    [HM_SPLICE] = "splice",   [HM_TO_STARVED] = "to-starved",
    [HM_STARVED] = "starved", [HM_SHAPED] = "shaped",
    [HM_PREFIX] = "prefix",
};

bool half_mode_allowed(enum half_mode from, enum half_mode to)
{
    return (unsigned)from < HM_COUNT && (unsigned)to < HM_COUNT && (next[from] & (1u << to));
}

const char *half_mode_name(enum half_mode m)
{
    return (unsigned)m < ARRAY_SIZE(names) ? names[m] : "?";
}
