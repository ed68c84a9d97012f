/*
 * mysql.c - the MySQL / MariaDB role check's state machine (see mysql.h).
 *
 * Two layers. The framer cuts the byte stream into packets (3-byte
 * little-endian length, a sequence id, the payload), one byte at a time,
 * so nothing depends on where a recv ended. Then one transition function,
 * on_packet(), takes each whole packet in the current enum my_state:
 *
 *   GREETING --handshake v10: HandshakeResponse41 sent--> AUTH
 *   AUTH --0xFE auth switch: response sent--> AUTH
 *   AUTH --0x01 0x03 (caching_sha2 fast auth)--> AUTH
 *   AUTH --0x01 0x04 (full auth): public key asked--> PUBKEY
 *   PUBKEY --0x01 PEM: encrypted password sent--> AUTH
 *   AUTH --OK: query sent--> NCOLS --2--> COLDEFS --2 defs--> COLEOF --EOF-->
 *   ROWS --row, EOF--> verdict, COM_QUIT
 *
 * An ERR packet ends the check with the server's message; once logged in,
 * the check then still says COM_QUIT. Sequence ids are checked: a packet
 * out of order is not the server we are talking to.
 */
#include "mysql.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

enum my_state {
    MYS_GREETING = 0, /* connected: the server's handshake comes */
    MYS_AUTH,         /* login sent: OK, ERR, auth switch or more auth data */
    MYS_PUBKEY,       /* caching_sha2 full auth: the RSA public key comes */
    MYS_NCOLS,        /* query sent: the column count comes */
    MYS_COLDEFS,      /* column definitions */
    MYS_COLEOF,       /* the EOF after them */
    MYS_ROWS,         /* rows until an EOF */
};

enum my_plugin { PLUGIN_NATIVE = 0, PLUGIN_SHA2 };

/* Capability flags (include/mysql_com.h). */
#define CLIENT_LONG_PASSWORD     0x00000001u
#define CLIENT_LONG_FLAG         0x00000004u
#define CLIENT_CONNECT_WITH_DB   0x00000008u
#define CLIENT_PROTOCOL_41       0x00000200u
#define CLIENT_TRANSACTIONS      0x00002000u
#define CLIENT_SECURE_CONNECTION 0x00008000u
#define CLIENT_PLUGIN_AUTH       0x00080000u

#define MY_QUERY        "SELECT @@read_only, @@innodb_read_only"
#define COM_QUIT        0x01
#define COM_QUERY       0x03
#define CHARSET_UTF8MB4 45 /* utf8mb4_general_ci */

static const char *const plugin_names[] = {"mysql_native_password", "caching_sha2_password"};

static const char *phase_name(uint8_t state)
{
    switch ((enum my_state)state) {
    case MYS_GREETING:
        return "the handshake";
    case MYS_AUTH:
    case MYS_PUBKEY:
        return "the login";
    case MYS_NCOLS:
    case MYS_COLDEFS:
    case MYS_COLEOF:
    case MYS_ROWS:
        return "SELECT @@read_only";
    }
    return "the check";
}

/* ---- sending ---- */

/* Starts a packet with the next sequence id; returns where its length
 * goes, for pkt_end(). */
static uint32_t pkt_begin(struct my_check *c)
{
    uint32_t at = c->out.len;

    dbw_put_le(&c->out, 0, 3);
    dbw_put_u8(&c->out, c->seq++);
    return at;
}

static void pkt_end(struct my_check *c, uint32_t at)
{
    dbw_set_le(&c->out, at, c->out.len - at - 4, 3);
}

/* A command starts a new sequence. */
static void command(struct my_check *c, uint8_t cmd, const char *arg)
{
    uint32_t at;

    c->seq = 0;
    at = pkt_begin(c);
    dbw_put_u8(&c->out, cmd);
    if (arg)
        dbw_put(&c->out, arg, strlen(arg));
    pkt_end(c, at);
}

/* The check is over: say goodbye when logged in. */
static void finish(struct my_check *c, bool in_session)
{
    if (!in_session)
        return;
    c->res.quit = true;
    command(c, COM_QUIT, NULL);
}

/* ---- crypto (libcrypto) ---- */

int my_scramble(bool sha2, const char *password, const uint8_t scramble[20], uint8_t out[32])
{
    const EVP_MD *md = sha2 ? EVP_sha256() : EVP_sha1();
    unsigned dlen = sha2 ? 32 : 20;
    uint8_t h1[32], h2[32], h3[32];
    EVP_MD_CTX *ctx;
    int ret = -1;

    if (!password || !*password)
        return 0;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -1;
    /* h1 = H(pw), h2 = H(h1); native: h3 = H(scramble + h2), sha2: h3 =
     * H(h2 + scramble); the answer is h1 ^ h3. */
    if (!EVP_Digest(password, strlen(password), h1, NULL, md, NULL) ||
        !EVP_Digest(h1, dlen, h2, NULL, md, NULL) || !EVP_DigestInit_ex(ctx, md, NULL))
        goto out;
    if (sha2 ? !EVP_DigestUpdate(ctx, h2, dlen) || !EVP_DigestUpdate(ctx, scramble, 20)
             : !EVP_DigestUpdate(ctx, scramble, 20) || !EVP_DigestUpdate(ctx, h2, dlen))
        goto out;
    if (!EVP_DigestFinal_ex(ctx, h3, NULL))
        goto out;
    for (unsigned i = 0; i < dlen; i++)
        out[i] = h1[i] ^ h3[i];
    ret = (int)dlen;
out:
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(h1, sizeof(h1));
    OPENSSL_cleanse(h2, sizeof(h2));
    return ret;
}

/*
 * caching_sha2_password's full authentication without TLS: the password
 * and its NUL, XORed with the scramble, encrypted to the server's RSA
 * public key <pem> with OAEP padding, appended to c->out. Returns 0, or -1
 * with the check failed.
 */
static int put_rsa_password(struct my_check *c, const uint8_t *pem, size_t n)
{
    const char *pw = c->par->password ? c->par->password : "";
    size_t pwlen = strlen(pw) + 1, outlen = 0;
    uint8_t plain[DBW_CRED_MAX + 1], cipher[1024];
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY_CTX *ctx = key ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    int ret = -1;

    if (!key) {
        dbw_fail(&c->res, "caching_sha2_password: the server's public key is not PEM");
        goto out;
    }
    for (size_t i = 0; i < pwlen; i++)
        plain[i] = (uint8_t)pw[i] ^ c->scramble[i % sizeof(c->scramble)];
    if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_encrypt(ctx, NULL, &outlen, plain, pwlen) <= 0 || outlen > sizeof(cipher) ||
        EVP_PKEY_encrypt(ctx, cipher, &outlen, plain, pwlen) <= 0) {
        dbw_fail(&c->res, "caching_sha2_password: cannot encrypt the password to the server's"
                          " key (not RSA, or the password is too long for it)");
        goto out;
    }
    uint32_t at = pkt_begin(c);

    c->rsa_at = c->out.len;
    c->rsa_len = (uint32_t)outlen;
    dbw_put(&c->out, cipher, outlen);
    pkt_end(c, at);
    ret = 0;
out:
    OPENSSL_cleanse(plain, sizeof(plain));
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ret;
}

/* Appends the auth response of the current plugin, with its length byte
 * when <len_byte>. */
static int put_auth(struct my_check *c, bool len_byte)
{
    uint8_t auth[32];
    int n = my_scramble(c->plugin == PLUGIN_SHA2, c->par->password, c->scramble, auth);

    if (n < 0) {
        dbw_fail(&c->res, "%s failed (libcrypto)", plugin_names[c->plugin]);
        return -1;
    }
    if (len_byte)
        dbw_put_u8(&c->out, (uint8_t)n);
    dbw_put(&c->out, auth, (size_t)n);
    OPENSSL_cleanse(auth, sizeof(auth));
    return 0;
}

/* ---- the start ---- */

void my_check_init(struct my_check *c, const struct my_params *par)
{
    memset(c, 0, offsetof(struct my_check, pkt));
    dbw_out_reset(&c->out);
    dbw_result_reset(&c->res);
    dbw_text_set(&c->version, "", 0);
    dbw_text_set(&c->error, "", 0);
    c->errcode = 0;
    c->sqlstate[0] = '\0';
    c->rsa_at = c->rsa_len = 0;
    c->par = par;
    c->state = MYS_GREETING;
    if (!par->user || !*par->user) {
        dbw_fail(&c->res, "health_user is not set");
        return;
    }
    if (strlen(par->user) > DBW_CRED_MAX || (par->db && strlen(par->db) > DBW_CRED_MAX) ||
        (par->password && strlen(par->password) > DBW_CRED_MAX))
        dbw_fail(&c->res, "health_user, health_db or health_password over %d bytes", DBW_CRED_MAX);
}

/* Which plugin <name> (<n> bytes, no NUL) is; -1 for one we do not speak. */
static int plugin_of(const uint8_t *name, size_t n)
{
    for (int i = 0; i < 2; i++) {
        if (strlen(plugin_names[i]) == n && memcmp(plugin_names[i], name, n) == 0)
            return i;
    }
    return -1;
}

static void fail_plugin(struct my_check *c, const uint8_t *name, size_t n)
{
    struct dbw_text t;

    dbw_text_set(&t, name, n);
    dbw_fail(&c->res,
             "auth plugin '%s%s' is not supported (mysql_native_password,"
             " caching_sha2_password are)",
             t.s, dbw_text_cut(&t));
}

/* The handshake (protocol 10): answers with HandshakeResponse41. */
static void on_greeting(struct my_check *c, const uint8_t *b, size_t n)
{
    const uint8_t *end, *plugin = NULL;
    size_t i, plugin_len = 0;
    uint32_t caps, at;

    if (b[0] != 10) {
        dbw_fail(&c->res, "not a MySQL server (protocol version %u, not 10)", b[0]);
        return;
    }
    end = memchr(b + 1, 0, n - 1);
    if (!end) {
        dbw_fail(&c->res, "malformed handshake (version string)");
        return;
    }
    dbw_text_set(&c->version, b + 1, (size_t)(end - (b + 1)));
    i = (size_t)(end - b) + 1;
    /* connection id 4, scramble part 1 8, filler 1, capabilities 2 */
    if (n - i < 15) {
        dbw_fail(&c->res, "malformed handshake (%zu bytes)", n);
        return;
    }
    memcpy(c->scramble, b + i + 4, 8);
    caps = (uint32_t)b[i + 13] | (uint32_t)b[i + 14] << 8;
    i += 15;
    if (!(caps & CLIENT_PROTOCOL_41) || !(caps & CLIENT_SECURE_CONNECTION)) {
        dbw_fail(&c->res, "server %s speaks no 4.1 protocol", c->version.s);
        return;
    }
    /* charset 1, status 2, capabilities 2, auth data length 1, reserved 10,
     * then the rest of the scramble: at least 13 bytes, the last a NUL. */
    if (n - i < 16 + 13) {
        dbw_fail(&c->res, "malformed handshake (no second scramble part)");
        return;
    }
    caps |= ((uint32_t)b[i + 3] | (uint32_t)b[i + 4] << 8) << 16;
    {
        size_t part2 = b[i + 5] > 21 ? (size_t)b[i + 5] - 8 : 13;

        i += 16;
        if (n - i < part2) {
            dbw_fail(&c->res, "malformed handshake (scramble)");
            return;
        }
        memcpy(c->scramble + 8, b + i, 12);
        i += part2;
    }
    c->caps = caps;
    if (caps & CLIENT_PLUGIN_AUTH && i < n) {
        end = memchr(b + i, 0, n - i);
        plugin = b + i;
        plugin_len = end ? (size_t)(end - plugin) : n - i;
    }
    /* A plugin we do not speak: answer as mysql_native_password, which
     * makes the server send an auth switch if the account uses another. */
    c->plugin = PLUGIN_NATIVE;
    if (plugin && plugin_of(plugin, plugin_len) == PLUGIN_SHA2)
        c->plugin = PLUGIN_SHA2;

    at = pkt_begin(c);
    dbw_put_le(&c->out,
               (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS |
                CLIENT_SECURE_CONNECTION | (caps & CLIENT_PLUGIN_AUTH) |
                (c->par->db ? CLIENT_CONNECT_WITH_DB : 0)) &
                   (caps | CLIENT_SECURE_CONNECTION | CLIENT_PROTOCOL_41),
               4);
    dbw_put_le(&c->out, 1u << 24, 4); /* max packet */
    dbw_put_u8(&c->out, CHARSET_UTF8MB4);
    for (int k = 0; k < 23; k++)
        dbw_put_u8(&c->out, 0);
    dbw_put_str0(&c->out, c->par->user);
    if (put_auth(c, true) < 0)
        return;
    /* Every server since 4.1 takes a schema here; one that did not say so
     * is not sent one (the check then connects to no schema). */
    if (c->par->db && caps & CLIENT_CONNECT_WITH_DB)
        dbw_put_str0(&c->out, c->par->db);
    if (caps & CLIENT_PLUGIN_AUTH)
        dbw_put_str0(&c->out, plugin_names[c->plugin]);
    pkt_end(c, at);
    c->state = MYS_AUTH;
}

/* An ERR packet: 0xFF, code, ['#' SQLSTATE], message. */
static void on_err(struct my_check *c, const uint8_t *b, size_t n)
{
    size_t i = 3;

    if (n < 3) {
        dbw_fail(&c->res, "malformed ERR packet during %s", phase_name(c->state));
        return;
    }
    c->errcode = (uint16_t)(b[1] | b[2] << 8);
    if (n >= 9 && b[3] == '#') {
        struct dbw_text t;

        dbw_text_set(&t, b + 4, 5);
        memcpy(c->sqlstate, t.s, 6);
        i = 9;
    }
    dbw_text_set(&c->error, b + i, n - i);
    dbw_fail(&c->res, "error %u%s%s: %s%s", c->errcode, c->sqlstate[0] ? " " : "",
             c->sqlstate[0] ? c->sqlstate : "", c->error.len ? c->error.s : "(no message)",
             dbw_text_cut(&c->error));
}

/* Logged in: ask for the role. */
static void logged_in(struct my_check *c)
{
    command(c, COM_QUERY, MY_QUERY);
    c->state = MYS_NCOLS;
}

/* A packet while logging in. */
static void on_auth(struct my_check *c, const uint8_t *b, size_t n)
{
    switch (b[0]) {
    case 0x00:
        if (c->state == MYS_AUTH) {
            logged_in(c);
            return;
        }
        break;
    case 0xfe: {
        /* Auth switch request: plugin name, NUL, the new scramble. */
        const uint8_t *end = memchr(b + 1, 0, n - 1);
        size_t len = end ? (size_t)(end - (b + 1)) : n - 1;
        int plugin;

        if (c->state != MYS_AUTH)
            break;
        if (n == 1) {
            dbw_fail(&c->res, "the server wants the pre-4.1 password hash (not supported)");
            return;
        }
        if (++c->switches > MY_SWITCH_MAX) {
            dbw_fail(&c->res, "more than %d auth switch requests", MY_SWITCH_MAX);
            return;
        }
        plugin = plugin_of(b + 1, len);
        if (plugin < 0) {
            fail_plugin(c, b + 1, len);
            return;
        }
        if (!end || n - len - 2 < sizeof(c->scramble)) {
            dbw_fail(&c->res, "auth switch to %s without a scramble", plugin_names[plugin]);
            return;
        }
        c->plugin = (uint8_t)plugin;
        memcpy(c->scramble, end + 1, sizeof(c->scramble));
        uint32_t at = pkt_begin(c);

        if (put_auth(c, false) < 0)
            return;
        pkt_end(c, at);
        return;
    }
    case 0x01:
        /* AuthMoreData of caching_sha2_password. */
        if (c->plugin != PLUGIN_SHA2 || n < 2)
            break;
        if (c->state == MYS_PUBKEY) {
            if (put_rsa_password(c, b + 1, n - 1) == 0)
                c->state = MYS_AUTH;
            return;
        }
        if (b[1] == 0x03 && n == 2) /* fast auth: the OK follows */
            return;
        if (b[1] == 0x04 && n == 2) {
            /* Full auth: no TLS here, so the password goes encrypted to the
             * server's public key, which the check asks for. */
            uint32_t at = pkt_begin(c);

            dbw_put_u8(&c->out, 0x02);
            pkt_end(c, at);
            c->state = MYS_PUBKEY;
            return;
        }
        break;
    default:
        break;
    }
    dbw_fail(&c->res, "unexpected packet 0x%02x (%zu bytes) during %s", b[0], n,
             phase_name(c->state));
}

/* A length-encoded integer at <*i> of <b> (<n> bytes); -1 when it does not
 * fit, -2 for 0xFB (NULL). */
static int64_t lenenc(const uint8_t *b, size_t n, size_t *i)
{
    uint8_t f;
    unsigned len;
    uint64_t v = 0;

    if (*i >= n)
        return -1;
    f = b[(*i)++];
    if (f < 0xfb)
        return f;
    if (f == 0xfb)
        return -2;
    len = f == 0xfc ? 2 : f == 0xfd ? 3 : f == 0xfe ? 8 : 0;
    if (!len || n - *i < len)
        return -1;
    for (unsigned k = 0; k < len; k++)
        v |= (uint64_t)b[*i + k] << (8 * k);
    *i += len;
    return v > MY_PKT_MAX ? -1 : (int64_t)v;
}

/* One column of the row: "0", "1" or NULL; -3 for anything else. */
static int8_t flag_value(const uint8_t *b, size_t n, size_t *i)
{
    int64_t len = lenenc(b, n, i);

    if (len == -2)
        return -1;
    if (len != 1 || *i >= n || (b[*i] != '0' && b[*i] != '1'))
        return -3;
    return (int8_t)(b[(*i)++] - '0');
}

/* An EOF packet: 0xFE and less than 9 bytes (a row may start with 0xFE
 * only as a long lenenc, which makes it longer). */
static bool is_eof(const uint8_t *b, size_t n)
{
    return b[0] == 0xfe && n < 9;
}

static void on_result(struct my_check *c, const uint8_t *b, size_t n)
{
    size_t i = 0;
    int64_t ncols;

    if (b[0] == 0xff) {
        on_err(c, b, n);
        finish(c, true);
        return;
    }
    switch ((enum my_state)c->state) {
    case MYS_NCOLS:
        ncols = lenenc(b, n, &i);
        if (ncols != 2 || i != n) {
            dbw_fail(&c->res, "the query returned no result of two columns");
            finish(c, true);
            return;
        }
        c->cols_left = 2;
        c->state = MYS_COLDEFS;
        return;
    case MYS_COLDEFS:
        if (--c->cols_left == 0)
            c->state = MYS_COLEOF;
        return;
    case MYS_COLEOF:
        if (!is_eof(b, n))
            break;
        c->state = MYS_ROWS;
        return;
    case MYS_ROWS:
        if (is_eof(b, n)) {
            if (c->rows != 1) {
                dbw_fail(&c->res, "the query returned %u rows", c->rows);
            } else if (c->read_only < 0 || c->innodb_read_only < 0) {
                /* A server without InnoDB has no @@innodb_read_only to say
                 * no; read_only alone decides. */
                dbw_role(&c->res, c->read_only == 1 ? DBW_ROLE_REPLICA : DBW_ROLE_PRIMARY,
                         "read_only=%s innodb_read_only=%s",
                         c->read_only < 0 ? "NULL"
                         : c->read_only   ? "1"
                                          : "0",
                         c->innodb_read_only < 0 ? "NULL"
                         : c->innodb_read_only   ? "1"
                                                 : "0");
            } else {
                dbw_role(&c->res,
                         c->read_only || c->innodb_read_only ? DBW_ROLE_REPLICA : DBW_ROLE_PRIMARY,
                         "read_only=%d innodb_read_only=%d", c->read_only, c->innodb_read_only);
            }
            finish(c, true);
            return;
        }
        c->read_only = flag_value(b, n, &i);
        c->innodb_read_only = c->read_only == -3 ? -3 : flag_value(b, n, &i);
        if (c->read_only == -3 || c->innodb_read_only == -3 || i != n || ++c->rows > 1) {
            dbw_fail(&c->res, "@@read_only, @@innodb_read_only returned something but 0 or 1");
            finish(c, true);
        }
        return;
    default:
        break;
    }
    dbw_fail(&c->res, "unexpected packet 0x%02x (%zu bytes) during %s", b[0], n,
             phase_name(c->state));
    finish(c, true);
}

/* The transition function: a whole packet of <n> bytes in c->pkt. */
static void on_packet(struct my_check *c, size_t n)
{
    const uint8_t *b = c->pkt;

    if (n == 0) {
        dbw_fail(&c->res, "empty packet during %s", phase_name(c->state));
        finish(c, c->state >= MYS_NCOLS);
        return;
    }
    switch ((enum my_state)c->state) {
    case MYS_GREETING:
        if (b[0] == 0xff)
            on_err(c, b, n);
        else
            on_greeting(c, b, n);
        return;
    case MYS_AUTH:
    case MYS_PUBKEY:
        if (b[0] == 0xff)
            on_err(c, b, n);
        else
            on_auth(c, b, n);
        return;
    default:
        on_result(c, b, n);
        return;
    }
}

/* ---- the framer ---- */

enum dbw_verdict my_feed(struct my_check *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    for (size_t i = 0; i < len && c->res.verdict == DBW_MORE; i++) {
        c->res.consumed++;
        if (++c->total > MY_TOTAL_MAX) {
            dbw_fail(&c->res, "the server sent more than %d bytes", MY_TOTAL_MAX);
            finish(c, c->state >= MYS_NCOLS);
            break;
        }
        if (c->hdr_got < sizeof(c->hdr)) {
            c->hdr[c->hdr_got++] = p[i];
            if (c->hdr_got < sizeof(c->hdr))
                continue;
            c->pkt_len = (uint32_t)c->hdr[0] | (uint32_t)c->hdr[1] << 8 | (uint32_t)c->hdr[2] << 16;
            c->pkt_got = 0;
            if (c->hdr[3] != c->seq) {
                dbw_fail(&c->res, "packet out of sequence (%u, expected %u) during %s", c->hdr[3],
                         c->seq, phase_name(c->state));
                finish(c, c->state >= MYS_NCOLS);
                break;
            }
            c->seq++;
            if (c->pkt_len > MY_PKT_MAX) {
                dbw_fail(&c->res, "a packet of %u bytes (more than %d) during %s", c->pkt_len,
                         MY_PKT_MAX, phase_name(c->state));
                finish(c, c->state >= MYS_NCOLS);
                break;
            }
        } else {
            c->pkt[c->pkt_got++] = p[i];
        }
        if (c->pkt_got == c->pkt_len) {
            c->hdr_got = 0;
            on_packet(c, c->pkt_len);
        }
    }
    if (c->out.over) {
        /* Never happens with credentials within DBW_CRED_MAX; were it to,
         * out ends in a partial packet that must not be sent. */
        c->res.verdict = DBW_FAIL;
        c->res.quit = false;
        snprintf(c->res.why, sizeof(c->res.why), "a packet to send is over %d bytes", DBW_OUT_MAX);
    }
    return c->res.verdict;
}

bool my_judge(const struct my_check *c, enum dbw_want want, char *why, size_t whylen)
{
    return dbw_judge(&c->res, want, phase_name(c->state), why, whylen);
}
