
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


#define NGX_HTTP_LLM_FALLBACK_REDACTED     "[redacted]"

/* shorter keys are no real credentials, and too likely in any text */
#define NGX_HTTP_LLM_FALLBACK_REDACT_MIN   8


static ngx_int_t ngx_http_llm_fallback_redact_json(ngx_pool_t *pool,
    ngx_array_t *keys, json_t *json);
static ngx_int_t ngx_http_llm_fallback_redact_str(ngx_pool_t *pool,
    ngx_array_t *keys, const char *s, size_t len, ngx_str_t *out);
static u_char *ngx_http_llm_fallback_find_key(ngx_array_t *keys, u_char *p,
    u_char *last, ngx_str_t **found);


/*
 * Every string (and object key) of a provider's error that contains the
 * credential of a provider of the chain (8 bytes or more) gets
 * "[redacted]" in its place: some APIs answer a refused key with the
 * whole key in the message, and that error is relayed to the client, as
 * an HTTP error or as a stream's error event.
 */

ngx_int_t
ngx_http_llm_fallback_redact(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, json_t *json)
{
    ngx_str_t                         *k, v;
    ngx_uint_t                         i;
    ngx_array_t                        keys;
    ngx_http_llm_fallback_provider_t  *p;

    if (ngx_array_init(&keys, r->pool, ctx->nchain, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->nchain; i++) {
        p = ctx->chain[i];

        if (p->key) {
            if (ngx_http_complex_value(r, p->key, &v) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            v = p->static_key;
        }

        if (v.len < NGX_HTTP_LLM_FALLBACK_REDACT_MIN) {
            continue;
        }

        k = ngx_array_push(&keys);
        if (k == NULL) {
            return NGX_ERROR;
        }

        /* NUL-terminated, for ngx_strnstr() */

        k->len = v.len;
        k->data = ngx_pnalloc(r->pool, v.len + 1);
        if (k->data == NULL) {
            return NGX_ERROR;
        }

        *ngx_cpymem(k->data, v.data, v.len) = '\0';
    }

    if (keys.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_llm_fallback_redact_json(r->pool, &keys, json);
}


static ngx_int_t
ngx_http_llm_fallback_redact_json(ngx_pool_t *pool, ngx_array_t *keys,
    json_t *json)
{
    size_t         i;
    json_t        *v;
    ngx_int_t      rc;
    ngx_str_t      s;
    ngx_array_t    renamed;
    const char    *key;
    ngx_keyval_t  *kv;

    switch (json_typeof(json)) {

    case JSON_STRING:
        rc = ngx_http_llm_fallback_redact_str(pool, keys,
                                              json_string_value(json),
                                              json_string_length(json), &s);
        if (rc != NGX_OK) {
            return (rc == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
        }

        return (json_string_setn(json, (char *) s.data, s.len) == 0)
               ? NGX_OK : NGX_ERROR;

    case JSON_ARRAY:
        json_array_foreach(json, i, v) {
            if (ngx_http_llm_fallback_redact_json(pool, keys, v) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        return NGX_OK;

    case JSON_OBJECT:
        break;

    default:
        return NGX_OK;
    }

    if (ngx_array_init(&renamed, pool, 1, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    json_object_foreach(json, key, v) {
        if (ngx_http_llm_fallback_redact_json(pool, keys, v) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_llm_fallback_redact_str(pool, keys, key,
                                              ngx_strlen(key), &s);
        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        kv = ngx_array_push(&renamed);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.len = ngx_strlen(key);
        kv->key.data = ngx_pnalloc(pool, kv->key.len + 1);
        if (kv->key.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kv->key.data, key, kv->key.len + 1);
        kv->value = s;
    }

    /* keys are renamed once the object is no longer iterated */

    kv = renamed.elts;

    for (i = 0; i < renamed.nelts; i++) {
        v = json_incref(json_object_get(json, (char *) kv[i].key.data));

        if (json_object_del(json, (char *) kv[i].key.data) != 0
            || json_object_set_new(json, (char *) kv[i].value.data, v) != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK and the string with every key replaced in "out" (NUL-terminated),
 * or NGX_DECLINED when no key occurs in it
 */

static ngx_int_t
ngx_http_llm_fallback_redact_str(ngx_pool_t *pool, ngx_array_t *keys,
    const char *s, size_t len, ngx_str_t *out)
{
    u_char      *p, *last, *hit, *d;
    ngx_str_t   *key;
    ngx_uint_t   pass, hits;

    /* the first pass measures the result, the second one writes it */

    d = NULL;
    key = NULL;
    hits = 0;
    out->len = 0;

    for (pass = 0; pass < 2; pass++) {

        for (p = (u_char *) s, last = p + len; p < last; /* void */) {

            hit = ngx_http_llm_fallback_find_key(keys, p, last, &key);

            if (hit == NULL) {
                hit = last;
            }

            if (pass == 0) {
                out->len += hit - p;

            } else {
                d = ngx_cpymem(d, p, hit - p);
            }

            if (hit == last) {
                break;
            }

            if (pass == 0) {
                out->len += sizeof(NGX_HTTP_LLM_FALLBACK_REDACTED) - 1;
                hits++;

            } else {
                d = ngx_cpymem(d, NGX_HTTP_LLM_FALLBACK_REDACTED,
                               sizeof(NGX_HTTP_LLM_FALLBACK_REDACTED) - 1);
            }

            p = hit + key->len;
        }

        if (pass == 0) {
            if (hits == 0) {
                return NGX_DECLINED;
            }

            out->data = ngx_pnalloc(pool, out->len + 1);
            if (out->data == NULL) {
                return NGX_ERROR;
            }

            d = out->data;
        }
    }

    *d = '\0';

    return NGX_OK;
}


/* the first occurrence of any of the keys in [p, last), or NULL */

static u_char *
ngx_http_llm_fallback_find_key(ngx_array_t *keys, u_char *p, u_char *last,
    ngx_str_t **found)
{
    u_char      *hit, *first;
    ngx_str_t   *k;
    ngx_uint_t   i;

    k = keys->elts;
    first = NULL;

    for (i = 0; i < keys->nelts; i++) {
        hit = ngx_strnstr(p, (char *) k[i].data, last - p);

        if (hit && (first == NULL || hit < first)) {
            first = hit;
            *found = &k[i];
        }
    }

    return first;
}
