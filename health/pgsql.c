/*
 * pgsql.c - the PostgreSQL role check's state machine (see pgsql.h).
 *
 * Two layers. The framer cuts the byte stream into messages (a type byte,
 * a 4-byte big-endian length that counts itself, the body), one byte at a
 * time, so nothing depends on where a recv ended; it keeps the first
 * PG_MSG_MAX bytes of a body. Then one transition function, on_message(),
 * takes each whole message in the current enum pg_state:
 *
 *   AUTH --R 0 (trust)-------------------------------------> STARTUP
 *   AUTH --R 3/5 (cleartext, md5): password sent--> AUTH --R 0--^
 *   AUTH --R 10 (SASL): client-first sent --> SASL_CONT
 *   SASL_CONT --R 11: client-final sent--> SASL_FINAL
 *   SASL_FINAL --R 12, signature verified--> AUTH_OK --R 0--> STARTUP
 *   STARTUP --S in_hot_standby, ..., Z--> verdict, Terminate
 *   STARTUP --Z without in_hot_standby: Query sent--> QUERY --D, C, Z--> verdict
 *
 * An ErrorResponse anywhere ends the check with the server's message.
 * After a FATAL one the server closes by itself; otherwise, once logged in,
 * the check ends with Terminate ('X') and waits for the server to close.
 */
#include "pgsql.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

enum pg_state {
    PGS_AUTH = 0,   /* StartupMessage sent: an authentication request or OK comes */
    PGS_SASL_CONT,  /* SASLInitialResponse sent: server-first-message comes */
    PGS_SASL_FINAL, /* SASLResponse sent: server-final-message comes */
    PGS_AUTH_OK,    /* the server's signature checked out: AuthenticationOk comes */
    PGS_STARTUP,    /* logged in: ParameterStatus..., ReadyForQuery */
    PGS_QUERY,      /* SELECT pg_is_in_recovery() sent: its rows, ReadyForQuery */
};

/* Authentication request codes (the int32 of an 'R' message). */
enum {
    AUTH_OK = 0,
    AUTH_KRB5 = 2,
    AUTH_CLEARTEXT = 3,
    AUTH_MD5 = 5,
    AUTH_SCM = 6,
    AUTH_GSS = 7,
    AUTH_GSS_CONT = 8,
    AUTH_SSPI = 9,
    AUTH_SASL = 10,
    AUTH_SASL_CONT = 11,
    AUTH_SASL_FINAL = 12,
};

/* A length field beyond this is not PostgreSQL (its own limit is 1 GiB). */
#define PG_LEN_SANE (1u << 30)
#define PG_QUERY    "SELECT pg_is_in_recovery()"
#define PG_PROTO_3  196608u /* 3.0 */

static const char *phase_name(uint8_t state)
{
    switch ((enum pg_state)state) {
    case PGS_AUTH:
        return "the login";
    case PGS_SASL_CONT:
    case PGS_SASL_FINAL:
    case PGS_AUTH_OK:
        return "SCRAM authentication";
    case PGS_STARTUP:
        return "the start of the session";
    case PGS_QUERY:
        return "SELECT pg_is_in_recovery()";
    }
    return "the check";
}

static const char *auth_name(uint32_t code)
{
    switch (code) {
    case AUTH_KRB5:
        return "Kerberos V5";
    case AUTH_CLEARTEXT:
        return "password";
    case AUTH_MD5:
        return "md5";
    case AUTH_SCM:
        return "SCM credentials";
    case AUTH_GSS:
    case AUTH_GSS_CONT:
        return "GSSAPI";
    case AUTH_SSPI:
        return "SSPI";
    case AUTH_SASL:
    case AUTH_SASL_CONT:
    case AUTH_SASL_FINAL:
        return "SCRAM-SHA-256";
    default:
        return "unknown";
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- sending ---- */

/* Starts a message of <type> (0: the StartupMessage, which has none);
 * returns where its length goes, for msg_end(). */
static uint32_t msg_begin(struct pg_check *c, char type)
{
    uint32_t at;

    if (type)
        dbw_put_u8(&c->out, (uint8_t)type);
    at = c->out.len;
    dbw_put_be32(&c->out, 0);
    return at;
}

static void msg_end(struct pg_check *c, uint32_t at)
{
    dbw_set_be32(&c->out, at, c->out.len - at);
}

/* The check is over: say goodbye when the server stays in the session. */
static void finish(struct pg_check *c, bool in_session)
{
    if (!in_session)
        return;
    c->res.quit = true;
    msg_end(c, msg_begin(c, 'X'));
}

static void role_found(struct pg_check *c, bool replica, const char *how)
{
    dbw_role(&c->res, replica ? DBW_ROLE_REPLICA : DBW_ROLE_PRIMARY, "%s", how);
    finish(c, true);
}

/* ---- crypto (libcrypto) ---- */

static int hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                       const size_t *lens, size_t n, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outlen = 0;
    int ret = -1;

    if (!ctx || !EVP_MAC_init(ctx, key, keylen, params))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!EVP_MAC_update(ctx, parts[i], lens[i]))
            goto out;
    }
    if (EVP_MAC_final(ctx, out, &outlen, 32) && outlen == 32)
        ret = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ret;
}

/* HMAC of one string. */
static int hmac_str(const uint8_t key[32], const char *s, uint8_t out[32])
{
    const void *parts[] = {s};
    size_t lens[] = {strlen(s)};

    return hmac_sha256(key, 32, parts, lens, 1, out);
}

int pg_scram_keys(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iter,
                  const void *const *parts, const size_t *part_lens, size_t nparts,
                  struct pg_scram_cache *cache, uint8_t proof[32], uint8_t server_sig[32])
{
    uint8_t salted[32], client_key[32], stored_key[32], client_sig[32], server_key[32];
    bool cached = cache && cache->iter == iter && cache->salt_len == salt_len &&
                  salt_len <= sizeof(cache->salt) && memcmp(cache->salt, salt, salt_len) == 0;
    int ret = -1;

    if (cached) {
        memcpy(salted, cache->salted, 32);
    } else {
        if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iter,
                               EVP_sha256(), 32, salted))
            return -1;
        if (cache && salt_len <= sizeof(cache->salt)) {
            cache->iter = iter;
            cache->salt_len = (uint8_t)salt_len;
            memcpy(cache->salt, salt, salt_len);
            memcpy(cache->salted, salted, 32);
        }
    }
    if (hmac_str(salted, "Client Key", client_key) < 0 ||
        !EVP_Digest(client_key, 32, stored_key, NULL, EVP_sha256(), NULL) ||
        hmac_sha256(stored_key, 32, parts, part_lens, nparts, client_sig) < 0 ||
        hmac_str(salted, "Server Key", server_key) < 0 ||
        hmac_sha256(server_key, 32, parts, part_lens, nparts, server_sig) < 0)
        goto out;
    for (int i = 0; i < 32; i++)
        proof[i] = client_key[i] ^ client_sig[i];
    ret = 0;
out:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    return ret;
}

/* md5 + hex(md5(hex(md5(password + user)) + salt)), libpq's pg_md5_encrypt. */
static int md5_password(const char *user, const char *pass, const uint8_t salt[4], char out[36])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t d[EVP_MAX_MD_SIZE];
    char inner[32 + 4];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ret = -1;

    if (!ctx)
        return -1;
    if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL) || !EVP_DigestUpdate(ctx, pass, strlen(pass)) ||
        !EVP_DigestUpdate(ctx, user, strlen(user)) || !EVP_DigestFinal_ex(ctx, d, NULL))
        goto out;
    for (int i = 0; i < 16; i++) {
        inner[2 * i] = hex[d[i] >> 4];
        inner[2 * i + 1] = hex[d[i] & 15];
    }
    memcpy(inner + 32, salt, 4);
    if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL) || !EVP_DigestUpdate(ctx, inner, sizeof(inner)) ||
        !EVP_DigestFinal_ex(ctx, d, NULL))
        goto out;
    memcpy(out, "md5", 3);
    for (int i = 0; i < 16; i++) {
        out[3 + 2 * i] = hex[d[i] >> 4];
        out[4 + 2 * i] = hex[d[i] & 15];
    }
    out[35] = '\0';
    ret = 0;
out:
    EVP_MD_CTX_free(ctx);
    return ret;
}

/* ---- start ---- */

void pg_check_init(struct pg_check *c, const struct pg_params *par)
{
    uint32_t at;

    memset(c, 0, offsetof(struct pg_check, body));
    dbw_out_reset(&c->out);
    dbw_result_reset(&c->res);
    c->error.len = 0;
    c->error.s[0] = '\0';
    c->sqlstate[0] = '\0';
    c->par = par;
    c->state = PGS_AUTH;
    if (!par->user || !*par->user) {
        dbw_fail(&c->res, "health_user is not set");
        return;
    }
    if (strlen(par->user) > DBW_CRED_MAX || (par->db && strlen(par->db) > DBW_CRED_MAX) ||
        (par->password && strlen(par->password) > DBW_CRED_MAX)) {
        dbw_fail(&c->res, "health_user, health_db or health_password over %d bytes", DBW_CRED_MAX);
        return;
    }
    if (par->nonce) {
        size_t n = strlen(par->nonce);

        memcpy(c->nonce, par->nonce, n < PG_NONCE_LEN ? n : PG_NONCE_LEN);
    } else {
        uint8_t rnd[PG_NONCE_LEN / 4 * 3];

        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            dbw_fail(&c->res, "no random bytes for the SCRAM nonce (libcrypto)");
            return;
        }
        dbw_b64_encode(rnd, sizeof(rnd), c->nonce);
    }
    at = msg_begin(c, 0);
    dbw_put_be32(&c->out, PG_PROTO_3);
    dbw_put_str0(&c->out, "user");
    dbw_put_str0(&c->out, par->user);
    dbw_put_str0(&c->out, "database");
    dbw_put_str0(&c->out, par->db ? par->db : par->user);
    /* What pg_stat_activity and log_line_prefix %a show for the check. */
    dbw_put_str0(&c->out, "application_name");
    dbw_put_str0(&c->out, "ringlb-health");
    dbw_put_u8(&c->out, 0);
    msg_end(c, at);
}

/* ---- authentication ---- */

static bool need_password(struct pg_check *c, uint32_t code)
{
    if (c->par->password)
        return true;
    dbw_fail(&c->res, "the server asks for a password (%s) and health_password is not set",
             auth_name(code));
    return false;
}

/* Appends <s> as a SCRAM saslname: ',' and '=' escaped (RFC 5802). */
static void put_saslname(struct pg_check *c, const char *s)
{
    for (; *s; s++) {
        if (*s == ',')
            dbw_put(&c->out, "=2C", 3);
        else if (*s == '=')
            dbw_put(&c->out, "=3D", 3);
        else
            dbw_put_u8(&c->out, (uint8_t)*s);
    }
}

/* AuthenticationSASL: a list of mechanism names, each NUL-terminated, and
 * an empty one last. Answers with SASLInitialResponse. */
static void sasl_start(struct pg_check *c, const uint8_t *b, size_t n)
{
    bool scram = false;
    uint32_t at, len_at;

    for (size_t i = 0; i < n && b[i];) {
        const uint8_t *end = memchr(b + i, 0, n - i);
        size_t len = end ? (size_t)(end - (b + i)) : n - i;

        if (len == 13 && memcmp(b + i, "SCRAM-SHA-256", 13) == 0)
            scram = true;
        i += len + 1;
    }
    if (!scram) {
        dbw_fail(&c->res, "the server offers no SASL mechanism but SCRAM-SHA-256-PLUS or others"
                          " (channel binding needs TLS)");
        return;
    }
    if (!need_password(c, AUTH_SASL))
        return;
    at = msg_begin(c, 'p');
    dbw_put_str0(&c->out, "SCRAM-SHA-256");
    len_at = c->out.len;
    dbw_put_be32(&c->out, 0);
    /* gs2 header "n,,": no channel binding. The user name is ignored by
     * PostgreSQL (it has the StartupMessage's) but says who asks. */
    dbw_put(&c->out, "n,,", 3);
    c->first_bare = c->out.len;
    dbw_put(&c->out, "n=", 2);
    put_saslname(c, c->par->user);
    dbw_put(&c->out, ",r=", 3);
    dbw_put(&c->out, c->nonce, strlen(c->nonce));
    c->first_bare_len = c->out.len - c->first_bare;
    dbw_set_be32(&c->out, len_at, c->out.len - len_at - 4);
    msg_end(c, at);
    c->state = PGS_SASL_CONT;
}

/* The value of attribute <name> at <*pos> of <s> ("r=...,s=...,i=..."),
 * moving <*pos> past it and its comma. */
static bool scram_attr(const char *s, size_t n, size_t *pos, char name, const char **val,
                       size_t *vlen)
{
    const char *comma;

    if (*pos + 2 > n || s[*pos] != name || s[*pos + 1] != '=')
        return false;
    *val = s + *pos + 2;
    comma = memchr(*val, ',', n - *pos - 2);
    *vlen = comma ? (size_t)(comma - *val) : n - *pos - 2;
    *pos += 2 + *vlen + (comma ? 1 : 0);
    return true;
}

/* AuthenticationSASLContinue: server-first-message "r=NONCE,s=SALT,i=N".
 * Answers with client-final-message and keeps the signature to expect. */
static void sasl_continue(struct pg_check *c, const uint8_t *b, size_t n)
{
    const char *s = (const char *)b, *r, *salt64, *it;
    size_t pos = 0, rlen, slen, ilen, nlen = strlen(c->nonce);
    uint8_t salt[64], proof[32];
    char proof64[48];
    uint32_t iter = 0;
    int salt_len;

    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 || b[i] >= 0x7f) {
            dbw_fail(&c->res, "SCRAM server-first-message is not printable");
            return;
        }
    }
    if (!scram_attr(s, n, &pos, 'r', &r, &rlen) || !scram_attr(s, n, &pos, 's', &salt64, &slen) ||
        !scram_attr(s, n, &pos, 'i', &it, &ilen)) {
        dbw_fail(&c->res, "malformed SCRAM server-first-message");
        return;
    }
    /* The server's nonce extends ours: anything else is a replay or a
     * confused server. */
    if (rlen <= nlen || memcmp(r, c->nonce, nlen) != 0) {
        dbw_fail(&c->res, "SCRAM server nonce does not start with the client's");
        return;
    }
    salt_len = dbw_b64_decode(salt64, slen, salt, sizeof(salt));
    if (salt_len <= 0) {
        dbw_fail(&c->res, "SCRAM salt is not base64 of 1 to %zu bytes", sizeof(salt));
        return;
    }
    for (size_t i = 0; i < ilen; i++) {
        if (it[i] < '0' || it[i] > '9' || iter > PG_SCRAM_ITER_MAX) {
            iter = 0;
            break;
        }
        iter = iter * 10 + (uint32_t)(it[i] - '0');
    }
    if (iter == 0 || iter > PG_SCRAM_ITER_MAX) {
        dbw_fail(&c->res, "SCRAM iteration count '%.*s' not in 1..%d", ilen > 12 ? 12 : (int)ilen,
                 it, PG_SCRAM_ITER_MAX);
        return;
    }

    uint32_t at = msg_begin(c, 'p');
    uint32_t final_at = c->out.len;

    /* "biws" is base64 of the gs2 header "n,,". */
    dbw_put(&c->out, "c=biws,r=", 9);
    dbw_put(&c->out, r, rlen);
    if (c->out.over)
        return;
    {
        const void *parts[] = {c->out.b + c->first_bare, ",", b, ",", c->out.b + final_at};
        size_t lens[] = {c->first_bare_len, 1, n, 1, c->out.len - final_at};

        if (pg_scram_keys(c->par->password, salt, (size_t)salt_len, iter, parts, lens, 5,
                          c->par->cache, proof, c->server_sig) < 0) {
            dbw_fail(&c->res, "SCRAM key derivation failed (libcrypto)");
            return;
        }
    }
    dbw_put(&c->out, ",p=", 3);
    dbw_put(&c->out, proof64, dbw_b64_encode(proof, sizeof(proof), proof64));
    msg_end(c, at);
    c->state = PGS_SASL_FINAL;
}

/* AuthenticationSASLFinal: "v=SIGNATURE" must be what the password says
 * the server must sign; a server that cannot is not the one we know. */
static void sasl_final(struct pg_check *c, const uint8_t *b, size_t n)
{
    const char *s = (const char *)b, *v;
    size_t pos = 0, vlen;
    uint8_t sig[33];

    if (n >= 2 && s[0] == 'e' && s[1] == '=') {
        struct dbw_text t;

        dbw_text_set(&t, s + 2, n - 2);
        dbw_fail(&c->res, "SCRAM error from the server: %s%s", t.s, dbw_text_cut(&t));
        return;
    }
    if (!scram_attr(s, n, &pos, 'v', &v, &vlen) ||
        dbw_b64_decode(v, vlen, sig, sizeof(sig)) != 32) {
        dbw_fail(&c->res, "malformed SCRAM server-final-message");
        return;
    }
    if (CRYPTO_memcmp(sig, c->server_sig, 32) != 0) {
        dbw_fail(&c->res, "SCRAM server signature does not match: not the server that knows"
                          " the password");
        return;
    }
    c->state = PGS_AUTH_OK;
}

static void on_auth(struct pg_check *c, const uint8_t *b, size_t n)
{
    uint32_t code;

    if (n < 4) {
        dbw_fail(&c->res, "authentication request of %zu bytes", n);
        return;
    }
    code = be32(b);
    b += 4;
    n -= 4;
    switch (c->state) {
    case PGS_AUTH:
        break;
    case PGS_SASL_CONT:
        if (code == AUTH_SASL_CONT)
            sasl_continue(c, b, n);
        else
            dbw_fail(&c->res, "authentication request %u in the middle of SCRAM", code);
        return;
    case PGS_SASL_FINAL:
        if (code == AUTH_SASL_FINAL)
            sasl_final(c, b, n);
        else
            dbw_fail(&c->res, "authentication request %u before the SCRAM server signature", code);
        return;
    case PGS_AUTH_OK:
        if (code == AUTH_OK)
            c->state = PGS_STARTUP;
        else
            dbw_fail(&c->res, "authentication request %u after SCRAM", code);
        return;
    default:
        dbw_fail(&c->res, "authentication request %u after the login", code);
        return;
    }
    /* One password per login: a server asking again is refusing it. */
    if (code != AUTH_OK && c->auth) {
        dbw_fail(&c->res, "the server asks for a password again (%s)", auth_name(code));
        return;
    }
    c->auth = (uint8_t)code;
    switch (code) {
    case AUTH_OK:
        c->state = PGS_STARTUP;
        return;
    case AUTH_CLEARTEXT: {
        uint32_t at;

        if (!need_password(c, code))
            return;
        at = msg_begin(c, 'p');
        dbw_put_str0(&c->out, c->par->password);
        msg_end(c, at);
        return;
    }
    case AUTH_MD5: {
        char hash[36];
        uint32_t at;

        if (n != 4) {
            dbw_fail(&c->res, "md5 request with a salt of %zu bytes", n);
            return;
        }
        if (!need_password(c, code))
            return;
        if (md5_password(c->par->user, c->par->password, b, hash) < 0) {
            dbw_fail(&c->res, "md5 failed (libcrypto)");
            return;
        }
        at = msg_begin(c, 'p');
        dbw_put_str0(&c->out, hash);
        msg_end(c, at);
        return;
    }
    case AUTH_SASL:
        sasl_start(c, b, n);
        return;
    default:
        dbw_fail(&c->res, "authentication method %s (%u) is not supported", auth_name(code), code);
        return;
    }
}

/* ---- messages after the login ---- */

/* ErrorResponse: fields of a type byte and a NUL-terminated string, then a
 * NUL. Keeps the message ('M') and the SQLSTATE ('C'). */
static void on_error(struct pg_check *c, const uint8_t *b, size_t n)
{
    bool fatal = false;

    for (size_t i = 0; i < n && b[i];) {
        uint8_t field = b[i++];
        const uint8_t *end = memchr(b + i, 0, n - i);
        size_t len = end ? (size_t)(end - (b + i)) : n - i;

        if (field == 'M') {
            dbw_text_set(&c->error, b + i, len);
        } else if (field == 'C' && len == 5) {
            struct dbw_text t;

            dbw_text_set(&t, b + i, len);
            memcpy(c->sqlstate, t.s, 6);
        } else if (field == 'V' || field == 'S') {
            fatal = fatal || (len == 5 && memcmp(b + i, "FATAL", 5) == 0) ||
                    (len == 5 && memcmp(b + i, "PANIC", 5) == 0);
        }
        i += len + 1;
    }
    dbw_fail(&c->res, "%s%s%s%s%s", c->sqlstate[0] ? "error " : "error", c->sqlstate,
             c->sqlstate[0] ? ": " : ": ", c->error.len ? c->error.s : "(no message)",
             dbw_text_cut(&c->error));
    /* A FATAL error ends the session on the server's side; before the
     * login every error is FATAL. */
    finish(c, c->state >= PGS_STARTUP && !fatal);
}

/* ParameterStatus "name\0value\0": only in_hot_standby matters. */
static void on_param(struct pg_check *c, const uint8_t *b, size_t n)
{
    static const char key[] = "in_hot_standby";

    if (n < sizeof(key) || memcmp(b, key, sizeof(key)) != 0)
        return;
    b += sizeof(key);
    n -= sizeof(key);
    if (n == 3 && memcmp(b, "on", 3) == 0)
        c->hot_standby = 2;
    else if (n == 4 && memcmp(b, "off", 4) == 0)
        c->hot_standby = 1;
    else
        dbw_fail(&c->res, "in_hot_standby is neither on nor off");
    finish(c, c->res.verdict != DBW_MORE);
}

/* DataRow of pg_is_in_recovery(): one column, "t" or "f". */
static void on_row(struct pg_check *c, const uint8_t *b, size_t n)
{
    if (n < 7 || b[0] != 0 || b[1] != 1 || be32(b + 2) != 1 || n != 7 ||
        (b[6] != 't' && b[6] != 'f')) {
        dbw_fail(&c->res, "pg_is_in_recovery() returned something but t or f");
        finish(c, true);
        return;
    }
    c->rows++;
    c->recovery = b[6] == 't';
}

static void on_ready(struct pg_check *c)
{
    uint32_t at;

    if (c->state == PGS_STARTUP && c->hot_standby) {
        role_found(c, c->hot_standby == 2,
                   c->hot_standby == 2 ? "in_hot_standby on" : "in_hot_standby off");
        return;
    }
    if (c->state == PGS_STARTUP) {
        /* Before PostgreSQL 14: ask. */
        at = msg_begin(c, 'Q');
        dbw_put_str0(&c->out, PG_QUERY);
        msg_end(c, at);
        c->state = PGS_QUERY;
        return;
    }
    if (c->rows != 1) {
        dbw_fail(&c->res, "pg_is_in_recovery() returned %u rows", c->rows);
        finish(c, true);
        return;
    }
    role_found(c, c->recovery,
               c->recovery ? "pg_is_in_recovery() true" : "pg_is_in_recovery() false");
}

/* The transition function: a whole message of <type>; <n> bytes of its
 * body are in c->body, <cut> when it had more. */
static void on_message(struct pg_check *c, uint8_t type, size_t n, bool cut)
{
    const uint8_t *b = c->body;
    bool logged_in = c->state >= PGS_STARTUP;

    switch (type) {
    case 'E':
        on_error(c, b, n);
        return;
    case 'N': /* NoticeResponse */
        return;
    case 'R':
        if (cut)
            dbw_fail(&c->res, "authentication request longer than %d bytes", PG_MSG_MAX);
        else
            on_auth(c, b, n);
        return;
    case 'v': /* NegotiateProtocolVersion: we ask for no option it could refuse */
        if (c->state == PGS_AUTH)
            return;
        break;
    case 'S': /* ParameterStatus; a cut one is not in_hot_standby */
        if (logged_in && !cut)
            on_param(c, b, n);
        if (logged_in)
            return;
        break;
    case 'K': /* BackendKeyData */
        if (c->state == PGS_STARTUP)
            return;
        break;
    case 'Z':
        if (logged_in) {
            on_ready(c);
            return;
        }
        break;
    case 'T': /* RowDescription */
    case 'C': /* CommandComplete */
    case 'A': /* NotificationResponse */
        if (c->state == PGS_QUERY)
            return;
        break;
    case 'D':
        if (c->state == PGS_QUERY) {
            if (cut)
                dbw_fail(&c->res, "a row longer than %d bytes", PG_MSG_MAX);
            else
                on_row(c, b, n);
            return;
        }
        break;
    default:
        break;
    }
    if (type >= 0x20 && type < 0x7f)
        dbw_fail(&c->res, "unexpected message '%c' during %s", type, phase_name(c->state));
    else
        dbw_fail(&c->res, "not a PostgreSQL server (byte 0x%02x during %s)", type,
                 phase_name(c->state));
    finish(c, logged_in);
}

/* ---- the framer ---- */

enum dbw_verdict pg_feed(struct pg_check *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    for (size_t i = 0; i < len && c->res.verdict == DBW_MORE; i++) {
        c->res.consumed++;
        if (++c->total > PG_TOTAL_MAX) {
            dbw_fail(&c->res, "the server sent more than %d bytes", PG_TOTAL_MAX);
            finish(c, c->state >= PGS_STARTUP);
            break;
        }
        if (c->hdr_got < sizeof(c->hdr)) {
            uint32_t mlen;

            c->hdr[c->hdr_got++] = p[i];
            if (c->hdr_got < sizeof(c->hdr))
                continue;
            mlen = be32(c->hdr + 1);
            if (mlen < 4 || mlen > PG_LEN_SANE) {
                dbw_fail(&c->res, "not a PostgreSQL server (message length %u)", mlen);
                finish(c, c->state >= PGS_STARTUP);
                break;
            }
            c->body_len = mlen - 4;
            c->body_got = 0;
        } else {
            if (c->body_got < PG_MSG_MAX)
                c->body[c->body_got] = p[i];
            c->body_got++;
        }
        if (c->body_got == c->body_len) {
            uint32_t kept = c->body_len < PG_MSG_MAX ? c->body_len : PG_MSG_MAX;

            c->hdr_got = 0;
            on_message(c, c->hdr[0], kept, c->body_len > PG_MSG_MAX);
        }
    }
    if (c->out.over) {
        /* Never happens with credentials within DBW_CRED_MAX; were it to,
         * out ends in a partial message that must not be sent. */
        c->res.verdict = DBW_FAIL;
        c->res.quit = false;
        snprintf(c->res.why, sizeof(c->res.why), "a message to send is over %d bytes", DBW_OUT_MAX);
    }
    return c->res.verdict;
}

bool pg_judge(const struct pg_check *c, enum dbw_want want, char *why, size_t whylen)
{
    return dbw_judge(&c->res, want, phase_name(c->state), why, whylen);
}
