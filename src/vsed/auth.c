/*
 * auth.c - bearer tokens for vsed.  The config holds only SHA-256 hashes
 * of tokens, each with a role; a presented token is hashed and compared
 * with every hash in constant time, so neither the file nor the timing
 * gives a token away.
 */
#include <stdio.h>
#include <string.h>

#include <nettle/sha2.h>

#include "vsed.h"

static void sha256(const char *s, size_t len, uint8_t out[32])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)s);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

void vsed_hash_token(const char *token, size_t len, char *buf, size_t size)
{
    uint8_t h[32];
    size_t n;

    sha256(token, len, h);
    n = (size_t)snprintf(buf, size, "sha256:");
    for (int i = 0; i < 32 && n + 2 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%02x", h[i]);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vsed_parse_hash(const char *s, uint8_t out[32])
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
        return -1;
    s += 7;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

enum vsed_role vsed_auth(const struct vsed_config *c, const char *token,
                         const char **name, const char **project)
{
    enum vsed_role role = ROLE_NONE;
    uint8_t h[32];

    if (token == NULL || token[0] == '\0')
        return ROLE_NONE;
    sha256(token, strlen(token), h);
    /* Every entry is compared in full: the time does not tell which, or
     * how much of one, matched. */
    for (int i = 0; i < c->ntokens; i++) {
        uint8_t diff = 0;

        for (int k = 0; k < 32; k++)
            diff |= (uint8_t)(h[k] ^ c->tokens[i].hash[k]);
        if (diff == 0 && role == ROLE_NONE) {
            role = c->tokens[i].role;
            *name = c->tokens[i].name;
            *project = c->tokens[i].project;
        }
    }
    return role;
}
