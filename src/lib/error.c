/*
 * error.c - the one error table of libvse, and the helpers that fill a
 * caller's struct vse_error.  vsectl's exit statuses and vsed's HTTP
 * statuses come from the same VSE_ERROR_MAP, so they cannot disagree.
 */
#include <stdio.h>
#include <string.h>

#include "vse-int.h"

const char *vse_strerror(int code)
{
    switch (code) {
    case VSE_OK: return "ok";
    case VSE_REPEATED: return "already done";
#define XX(name, c, exit_, http, msg)                                        \
    case c: return msg;
        VSE_ERROR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *vse_err_name(int code)
{
    switch (code) {
    case VSE_OK: return "VSE_OK";
    case VSE_REPEATED: return "VSE_REPEATED";
#define XX(name, c, exit_, http, msg)                                        \
    case c: return "VSE_" #name;
        VSE_ERROR_MAP(XX)
#undef XX
    }
    return "VSE_UNKNOWN";
}

int vse_err_exit_status(int code)
{
    if (code >= 0)
        return 0;
    switch (code) {
#define XX(name, c, exit_, http, msg)                                        \
    case c: return exit_;
        VSE_ERROR_MAP(XX)
#undef XX
    }
    return 1;
}

int vse_err_http_status(int code)
{
    if (code >= 0)
        return 200;
    switch (code) {
#define XX(name, c, exit_, http, msg)                                        \
    case c: return http;
        VSE_ERROR_MAP(XX)
#undef XX
    }
    return 500;
}

void vse_error_clear(struct vse_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
    err->detail[0] = '\0';
    err->hint[0] = '\0';
}

int vse__err(struct vse_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    vse_error_clear(err);
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void vse__err_detail(struct vse_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void vse__err_hint(struct vse_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}
