/*
 * mhd_admin.c - a stand-in admin server on libmicrohttpd, for http_probe to
 * compare with ringlb's own (core/admin.c): MHD's internal-thread epoll mode
 * (MHD_USE_EPOLL_INTERNAL_THREAD, one thread, as ringlb's admin thread),
 * with ringlb's limits where MHD has a knob for them: 64 connections
 * (ADMIN_MAX_CLIENTS), a 5 s timeout (ADMIN_REQ_TIMEOUT_MS) and 12 KiB of
 * memory per connection (ADMIN_HEAD_MAX + ADMIN_BODY_MAX), strict parsing
 * (MHD_OPTION_STRICT_FOR_CLIENT 1). GET /metrics answers a fixed
 * 16 KiB body; anything else 404 (what http_probe's requests/s measure:
 * the server, not a renderer), after MHD
 * has read the body, so that http_probe sees how MHD framed it.
 *
 *   mhd_admin PORT    serves on 127.0.0.1:PORT until stdin closes
 */
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char body[16384];

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    static int first_call;
    struct MHD_Response *r;
    enum MHD_Result ret;
    int status = 404;

    (void)cls;
    (void)version;
    (void)upload;
    if (!*con_cls) {
        *con_cls = &first_call; /* headers seen; the body (if any) follows */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* consumed */
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0)
        r = MHD_create_response_from_buffer(sizeof(body), body, MHD_RESPMEM_PERSISTENT),
        status = 200;
    else
        r = MHD_create_response_from_buffer(10, "not found\n", MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d;
    char c;

    if (argc != 2) {
        fprintf(stderr, "usage: mhd_admin PORT\n");
        return 2;
    }
    sin.sin_port = htons((uint16_t)atoi(argv[1]));

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = i % 64 == 63 ? '\n' : 'x';
    d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                         NULL, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_CONNECTION_LIMIT, 64u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)12288, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_admin: MHD_start_daemon failed\n");
        return 1;
    }
    while (read(0, &c, 1) > 0)
        ;
    MHD_stop_daemon(d);
    return 0;
}
