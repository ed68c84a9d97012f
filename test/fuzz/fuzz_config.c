/*
 * fuzz_config.c - libFuzzer driver for the lb.ini parser.
 *
 * Each input is copied into a NUL-terminated buffer and handed to
 * config_load_string(); whatever the result, the config is freed, so ASan
 * and LSan see every path through parsing, validation and error cleanup.
 *
 * Host names would reach the real resolver (slow, and DNS traffic from a
 * fuzzer), so this file replaces getaddrinfo(): "localhost" resolves to
 * 127.0.0.1, every other name fails. Seed corpus: test/fuzz/corpus/config/.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../config/config.h"

static struct sockaddr_in fake_sin = {.sin_family = AF_INET};
static struct addrinfo fake_ai = {
    .ai_family = AF_INET,
    .ai_socktype = SOCK_STREAM,
    .ai_addrlen = sizeof(fake_sin),
    .ai_addr = (struct sockaddr *)&fake_sin,
};

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    (void)service;
    (void)hints;
    if (!node || strcasecmp(node, "localhost") != 0)
        return EAI_NONAME;
    fake_sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *res = &fake_ai;
    return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
    (void)res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    char err[256];
    char *text = malloc(size + 1);

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (config_load_string(text, "fuzz.ini", &cfg, err, sizeof(err)) == 0) {
        /* A loaded config must be complete enough for the core to use. */
        if (!cfg || cfg->nfrontends == 0 || !cfg->backends[0].algo)
            abort();
    } else if (cfg || !memchr(err, '\0', sizeof(err)) || strchr(err, '\n')) {
        abort();
    }
    config_free(cfg);
    free(text);
    return 0;
}
