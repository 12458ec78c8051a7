
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/sha.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_redis.h"


/*
 * The response cache (README "Response cache").
 *
 * Key: prefix "v1:" hex(SHA-256(canonical request, chain, scope)), where
 * the canonical request is the client's JSON without "stream" and
 * "stream_options", keys sorted, compact; the chain is the providers'
 * names and the scope is the llm_cache_key value.  The parts are length
 * prefixed, so that no two different inputs hash the same bytes.
 *
 * Value: {"provider":"p","model":"m","stored":MS,"completion":{...}},
 * "stored" in milliseconds since the epoch, "completion" the answer's
 * bytes as they were sent; Redis keeps it ttl + stale.  An entry younger
 * than ttl is a HIT; between ttl and ttl + stale it is kept aside and
 * served (STALE) only when every attempt failed.
 *
 * A HIT is on the hot path: the entry is not parsed into jansson objects
 * (that would cost more than the whole proxy_pass it replaces).  Its
 * top-level fields are scanned in place, bounds-checked, and the
 * completion's bytes are sent as they are; only a "stream" request has
 * them parsed, for the replay.
 */


#define NGX_HTTP_LLM_FALLBACK_CACHE_NONE    0
#define NGX_HTTP_LLM_FALLBACK_CACHE_HIT     1
#define NGX_HTTP_LLM_FALLBACK_CACHE_MISS    2
#define NGX_HTTP_LLM_FALLBACK_CACHE_STALE   3
#define NGX_HTTP_LLM_FALLBACK_CACHE_BYPASS  4
#define NGX_HTTP_LLM_FALLBACK_CACHE_ERROR   5

#define NGX_HTTP_LLM_FALLBACK_CACHE_VERSION  "v1:"

#define NGX_HTTP_LLM_FALLBACK_CACHE_KEY_FLAGS  (JSON_COMPACT|JSON_SORT_KEYS)

#define NGX_HTTP_LLM_FALLBACK_CACHE_WS(c)                                     \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

/*
 * an entry is at most llm_max_response_size and this much more (the
 * provider, the model, the time stored): a larger one is neither stored
 * nor read
 */
#define NGX_HTTP_LLM_FALLBACK_CACHE_META    4096

/* the longest provider name and model an entry may carry */
#define NGX_HTTP_LLM_FALLBACK_CACHE_NAME    256
#define NGX_HTTP_LLM_FALLBACK_CACHE_MODEL   1024


struct ngx_http_llm_fallback_cache_conf_s {
    ngx_http_llm_fallback_redis_server_t  *server;
    ngx_msec_t                             ttl;
    ngx_msec_t                             stale;
    ngx_msec_t                             timeout;
    ngx_str_t                              prefix;
};


typedef struct {
    ngx_str_t                              completion;
    ngx_str_t                              provider;
    ngx_str_t                              model;
    int64_t                                stored;
} ngx_http_llm_fallback_cache_entry_t;


struct ngx_http_llm_fallback_cache_ctx_s {
    ngx_http_llm_fallback_cache_conf_t    *conf;
    ngx_http_llm_fallback_ctx_t           *ctx;
    ngx_str_t                              key;
    ngx_uint_t                             status;

    /* an entry past ttl, kept for stale-if-error */
    ngx_http_llm_fallback_cache_entry_t    stale;

    ngx_http_llm_fallback_redis_op_t       op;

    /* the driver's, for the verdict of a lookup that waited for Redis */
    ngx_http_llm_fallback_done_pt          done;

    unsigned                               has_stale:1;
    unsigned                               no_store:1;
};


static ngx_int_t ngx_http_llm_fallback_cache_key(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_cache_ctx_t *cc);
static void ngx_http_llm_fallback_cache_control(ngx_http_request_t *r,
    ngx_uint_t *no_cache, ngx_uint_t *no_store);
static void ngx_http_llm_fallback_cache_resume(
    ngx_http_llm_fallback_redis_op_t *op);
static ngx_int_t ngx_http_llm_fallback_cache_parse(ngx_http_request_t *r,
    ngx_http_llm_fallback_cache_ctx_t *cc, ngx_str_t *value,
    ngx_http_llm_fallback_cache_entry_t *entry);
static u_char *ngx_http_llm_fallback_cache_skip(u_char *p, u_char *last);
static u_char *ngx_http_llm_fallback_cache_skip_string(u_char *p,
    u_char *last);
static ngx_int_t ngx_http_llm_fallback_cache_string(ngx_http_request_t *r,
    u_char *start, u_char *end, ngx_str_t *out);
static ngx_int_t ngx_http_llm_fallback_cache_valid_names(ngx_http_request_t *r,
    ngx_http_llm_fallback_cache_entry_t *entry);
static ngx_int_t ngx_http_llm_fallback_cache_prepare(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_cache_entry_t *entry, ngx_uint_t status);
static void ngx_http_llm_fallback_cache_set_status(
    ngx_http_llm_fallback_cache_ctx_t *cc, ngx_uint_t status);
static void ngx_http_llm_fallback_cache_count(void *data);
static int64_t ngx_http_llm_fallback_cache_now(void);


static ngx_str_t  ngx_http_llm_fallback_cache_statuses[] = {
    ngx_null_string,
    ngx_string("HIT"),
    ngx_string("MISS"),
    ngx_string("STALE"),
    ngx_string("BYPASS"),
    ngx_string("ERROR")
};


/* a status's counter in llm_status */

static ngx_uint_t  ngx_http_llm_fallback_cache_stats[] = {
    NGX_HTTP_LLM_FALLBACK_STAT_NCACHE,
    NGX_HTTP_LLM_FALLBACK_STAT_CACHE_HIT,
    NGX_HTTP_LLM_FALLBACK_STAT_CACHE_MISS,
    NGX_HTTP_LLM_FALLBACK_STAT_CACHE_STALE,
    NGX_HTTP_LLM_FALLBACK_STAT_CACHE_BYPASS,
    NGX_HTTP_LLM_FALLBACK_STAT_CACHE_ERROR
};


/* the characters of an HTTP token besides letters and digits */

static u_char  ngx_http_llm_fallback_cache_tchar[] = "!#$%&'*+-.^_`|~";


static ngx_str_t  ngx_http_llm_fallback_cache_default_key =
    ngx_string("$http_authorization");


char *
ngx_http_llm_fallback_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_int_t                            n;
    ngx_str_t                           *value, s, addr, password;
    ngx_uint_t                           i, db;
    ngx_http_llm_fallback_cache_conf_t  *cache;

    if (lcf->cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            i = 2;
            goto invalid;
        }

        lcf->cache = NULL;
        return NGX_CONF_OK;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_cache_conf_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->ttl = 3600 * 1000;
    cache->stale = 0;
    cache->timeout = 100;
    ngx_str_set(&cache->prefix, "llm:");

    ngx_str_null(&addr);
    ngx_str_null(&password);
    db = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "redis=", 6) == 0) {
            addr.len = value[i].len - 6;
            addr.data = value[i].data + 6;

            if (addr.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }

            db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            password.len = value[i].len - 9;
            password.data = value[i].data + 9;

            if (password.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.len = value[i].len - 4;
            s.data = value[i].data + 4;

            cache->ttl = ngx_parse_time(&s, 0);
            if (cache->ttl == (ngx_msec_t) NGX_ERROR || cache->ttl == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "stale=", 6) == 0) {
            s.len = value[i].len - 6;
            s.data = value[i].data + 6;

            cache->stale = ngx_parse_time(&s, 0);
            if (cache->stale == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.len = value[i].len - 8;
            s.data = value[i].data + 8;

            cache->timeout = ngx_parse_time(&s, 0);
            if (cache->timeout == (ngx_msec_t) NGX_ERROR
                || cache->timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            cache->prefix.len = value[i].len - 7;
            cache->prefix.data = value[i].data + 7;
            continue;
        }

        goto invalid;
    }

    if (addr.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"llm_cache\" must have \"redis=\" parameter");
        return NGX_CONF_ERROR;
    }

    cache->server = ngx_http_llm_fallback_redis_add(cf, &addr, db, &password,
                                                    cache->timeout);
    if (cache->server == NULL) {
        return NGX_CONF_ERROR;
    }

    lcf->cache = cache;

    return NGX_CONF_OK;

invalid:

    /* the value of password= (or of a misspelt one) is not printed */

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"llm_cache\"",
                       ngx_http_llm_fallback_conf_param(cf, &value[i]));
    return NGX_CONF_ERROR;
}


char *
ngx_http_llm_fallback_cache_merge(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *prev,
    ngx_http_llm_fallback_loc_conf_t *conf)
{
    ngx_http_compile_complex_value_t  ccv;

    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_ptr_value(conf->cache_bypass, prev->cache_bypass, NULL);

    if (conf->cache_key == NULL) {

        if (prev->cache_key == NULL) {
            prev->cache_key = ngx_palloc(cf->pool,
                                         sizeof(ngx_http_complex_value_t));
            if (prev->cache_key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &ngx_http_llm_fallback_cache_default_key;
            ccv.complex_value = prev->cache_key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
        }

        conf->cache_key = prev->cache_key;
    }

    return NGX_CONF_OK;
}


/*
 * The verdict: NGX_DECLINED, go on with the providers (no cache, a
 * bypass, Redis down); NGX_AGAIN, Redis was asked and the verdict goes to
 * done() with its reply: NGX_OK, a HIT is the request's result, ready to
 * be sent; NGX_DECLINED, a MISS; NGX_ERROR.
 */

ngx_int_t
ngx_http_llm_fallback_cache_lookup(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_done_pt done)
{
    ngx_int_t                            rc;
    ngx_uint_t                           no_cache, no_store;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_llm_fallback_cache_ctx_t   *cc;
    ngx_http_llm_fallback_cache_conf_t  *conf;
    ngx_http_llm_fallback_redis_op_t    *op;

    conf = ctx->conf->cache;

    if (conf == NULL) {
        return NGX_DECLINED;
    }

    cc = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_fallback_cache_ctx_t));
    if (cc == NULL) {
        return NGX_ERROR;
    }

    cc->conf = conf;
    cc->ctx = ctx;
    cc->done = done;
    ctx->cache = cc;

    /* counted once, with the final status (a MISS may become STALE) */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_cache_count;
    cln->data = cc;

    ngx_http_llm_fallback_cache_control(r, &no_cache, &no_store);

    if (no_store) {
        cc->no_store = 1;
        ngx_http_llm_fallback_cache_set_status(cc,
                                        NGX_HTTP_LLM_FALLBACK_CACHE_BYPASS);
        return NGX_DECLINED;
    }

    if (ngx_http_llm_fallback_cache_key(r, ctx, cc) != NGX_OK) {
        return NGX_ERROR;
    }

    if (no_cache) {
        ngx_http_llm_fallback_cache_set_status(cc,
                                        NGX_HTTP_LLM_FALLBACK_CACHE_BYPASS);
        return NGX_DECLINED;
    }

    if (ctx->conf->cache_bypass) {
        switch (ngx_http_test_predicates(r, ctx->conf->cache_bypass)) {

        case NGX_ERROR:
            return NGX_ERROR;

        case NGX_DECLINED:
            ngx_http_llm_fallback_cache_set_status(cc,
                                        NGX_HTTP_LLM_FALLBACK_CACHE_BYPASS);
            return NGX_DECLINED;

        default: /* NGX_OK */
            break;
        }
    }

    op = &cc->op;

    op->request = r;
    op->server = conf->server;
    op->handler = ngx_http_llm_fallback_cache_resume;
    op->data = cc;
    op->max = ctx->conf->max_response_size + NGX_HTTP_LLM_FALLBACK_CACHE_META;

    rc = ngx_http_llm_fallback_redis_get(op, &cc->key, conf->timeout);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm cache: redis %V is not available",
                   &conf->server->name);

    ngx_http_llm_fallback_cache_set_status(cc,
                                           NGX_HTTP_LLM_FALLBACK_CACHE_ERROR);

    return NGX_DECLINED;
}


static void
ngx_http_llm_fallback_cache_resume(ngx_http_llm_fallback_redis_op_t *op)
{
    int64_t                               age;
    ngx_int_t                             rc;
    ngx_http_request_t                   *r;
    ngx_http_llm_fallback_ctx_t          *ctx;
    ngx_http_llm_fallback_cache_ctx_t    *cc;
    ngx_http_llm_fallback_cache_entry_t   entry;

    cc = op->data;
    ctx = cc->ctx;
    r = op->request;

    switch (op->rc) {

    case NGX_OK:
        ngx_http_llm_fallback_cache_set_status(cc,
                                            NGX_HTTP_LLM_FALLBACK_CACHE_MISS);

        rc = ngx_http_llm_fallback_cache_parse(r, cc, &op->value, &entry);

        if (rc == NGX_ERROR) {
            cc->done(r, ctx, NGX_ERROR);
            return;
        }

        if (rc != NGX_OK) {
            break;
        }

        age = ngx_http_llm_fallback_cache_now() - entry.stored;

        if (age < (int64_t) cc->conf->ttl) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "llm cache: HIT \"%V\", age %L ms", &cc->key, age);

            rc = ngx_http_llm_fallback_cache_prepare(r, ctx, &entry,
                                              NGX_HTTP_LLM_FALLBACK_CACHE_HIT);

            if (rc == NGX_DECLINED) {
                break;
            }

            cc->done(r, ctx, rc);
            return;
        }

        if (age < (int64_t) (cc->conf->ttl + cc->conf->stale)) {
            cc->stale = entry;
            cc->has_stale = 1;
        }

        break;

    case NGX_DECLINED:
        ngx_http_llm_fallback_cache_set_status(cc,
                                            NGX_HTTP_LLM_FALLBACK_CACHE_MISS);

        if (op->too_large) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "llm cache: ignored an entry of %uz bytes, more "
                          "than llm_max_response_size %uz and %d bytes of "
                          "metadata, \"%V\"",
                          op->value.len, ctx->conf->max_response_size,
                          NGX_HTTP_LLM_FALLBACK_CACHE_META, &cc->key);
        }

        break;

    default: /* NGX_ERROR */
        ngx_http_llm_fallback_cache_set_status(cc,
                                           NGX_HTTP_LLM_FALLBACK_CACHE_ERROR);
        break;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm cache: %V \"%V\"",
                   &ngx_http_llm_fallback_cache_statuses[cc->status],
                   &cc->key);

    cc->done(r, ctx, NGX_DECLINED);
}


/*
 * Stores a complete, successful answer: called before it is sent.
 * Fire and forget: a failure is logged and costs the client nothing.
 */

void
ngx_http_llm_fallback_cache_store(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    u_char                             *p;
    size_t                              size;
    json_t                             *meta;
    ngx_str_t                           value, *name, *model, *body;
    ngx_http_llm_fallback_cache_ctx_t  *cc;

    cc = ctx->cache;

    if (cc == NULL
        || cc->no_store
        || cc->key.len == 0
        || cc->status == NGX_HTTP_LLM_FALLBACK_CACHE_HIT
        || cc->status == NGX_HTTP_LLM_FALLBACK_CACHE_STALE
        || !ctx->has_result
        || ctx->served == NULL
        || ctx->result.body.len == 0)
    {
        return;
    }

    name = &ctx->served->name;
    model = &ctx->result.model;
    body = &ctx->result.body;

    /* {"provider":..,"model":..,"stored":..} without its "}" */

    meta = json_pack("{s:s%,s:s%,s:I}",
                     "provider", name->data, name->len,
                     "model", model->len ? (char *) model->data : "",
                     model->len,
                     "stored",
                     (json_int_t) ngx_http_llm_fallback_cache_now());
    if (meta == NULL) {
        return;
    }

    size = json_dumpb(meta, NULL, 0, JSON_COMPACT);

    value.len = size + sizeof(",\"completion\":}") - 1 + body->len;
    value.data = ngx_pnalloc(r->pool, value.len);

    if (size < 2 || value.data == NULL
        || json_dumpb(meta, (char *) value.data, size, JSON_COMPACT) != size)
    {
        json_decref(meta);
        return;
    }

    json_decref(meta);

    /* the completion's bytes, as the client got them */

    p = value.data + size - 1;
    p = ngx_cpymem(p, ",\"completion\":", sizeof(",\"completion\":") - 1);
    p = ngx_cpymem(p, body->data, body->len);
    *p++ = '}';

    value.len = p - value.data;

    if (value.len > ctx->conf->max_response_size
                    + NGX_HTTP_LLM_FALLBACK_CACHE_META)
    {
        /* it would never be read */

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llm cache: not stored, %uz bytes is too large",
                       value.len);
        return;
    }

    if (ngx_http_llm_fallback_redis_set(cc->conf->server, &cc->key, &value,
                                        cc->conf->ttl + cc->conf->stale,
                                        r->connection->log)
        != NGX_OK)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llm cache: not stored, redis %V is not available",
                       &cc->conf->server->name);
    }
}


/*
 * Stale-if-error: every attempt failed (or every provider is open).
 * NGX_OK: a stale entry is the request's result, ready to be sent;
 * NGX_DECLINED: there is none, the error is sent.
 */

ngx_int_t
ngx_http_llm_fallback_cache_stale(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    int64_t                             age;
    ngx_int_t                           rc;
    ngx_http_llm_fallback_cache_ctx_t  *cc;

    cc = ctx->cache;

    if (cc == NULL || !cc->has_stale) {
        return NGX_DECLINED;
    }

    age = ngx_http_llm_fallback_cache_now() - cc->stale.stored;

    if (age >= (int64_t) (cc->conf->ttl + cc->conf->stale)) {
        return NGX_DECLINED;
    }

    cc->has_stale = 0;

    rc = ngx_http_llm_fallback_cache_prepare(r, ctx, &cc->stale,
                                           NGX_HTTP_LLM_FALLBACK_CACHE_STALE);

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm cache: every provider failed (%V), serving a stale "
                  "answer stored %L ms ago",
                  ngx_http_llm_fallback_reasons(ctx), age);

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_cache_key(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_cache_ctx_t *cc)
{
    u_char      *buf, *p, md[SHA256_DIGEST_LENGTH];
    size_t       size, len, extra;
    json_t      *canon;
    ngx_str_t    scope, *name;
    ngx_uint_t   i;

    if (ngx_http_complex_value(r, ctx->conf->cache_key, &scope) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a shallow copy: the request itself is left as it is */

    /* the door's own request: what the canonical one lacks counts too */

    canon = ctx->native_json ? ctx->native_json
                             : ngx_http_llm_fallback_request_json(ctx);

    if (canon) {
        canon = json_copy(canon);
    }

    if (canon == NULL) {
        return NGX_ERROR;
    }

    (void) json_object_del(canon, "stream");
    (void) json_object_del(canon, "stream_options");

    /*
     * the compact form is rarely longer than the client's body: dump once
     * into a buffer of that size, twice only when it did not fit
     */

    extra = sizeof("\ns:") - 1 + NGX_SIZE_T_LEN + scope.len
            + sizeof("\na:") - 1 + NGX_SIZE_T_LEN + ctx->api->tag.len;

    for (i = 0; i < ctx->nchain; i++) {
        extra += sizeof("\np:") - 1 + NGX_SIZE_T_LEN
                 + ctx->chain[i]->name.len;
    }

    len = ctx->body.len + 256;

    buf = ngx_pnalloc(r->pool, len + extra);
    if (buf == NULL) {
        json_decref(canon);
        return NGX_ERROR;
    }

    size = ngx_http_llm_fallback_json_dumpb(canon, buf, len,
                                     NGX_HTTP_LLM_FALLBACK_CACHE_KEY_FLAGS);

    if (size > len) {
        len = size;

        buf = ngx_pnalloc(r->pool, len + extra);
        if (buf == NULL) {
            json_decref(canon);
            return NGX_ERROR;
        }

        size = ngx_http_llm_fallback_json_dumpb(canon, buf, len,
                                     NGX_HTTP_LLM_FALLBACK_CACHE_KEY_FLAGS);
    }

    json_decref(canon);

    if (size == 0 || size > len) {
        return NGX_ERROR;
    }

    p = buf + size;

    for (i = 0; i < ctx->nchain; i++) {
        name = &ctx->chain[i]->name;
        p = ngx_sprintf(p, "\np%uz:%V", name->len, name);
    }

    p = ngx_sprintf(p, "\ns%uz:%V", scope.len, &scope);

    /* the front door's tag: none for chat, whose keys are older */

    if (ctx->api->tag.len) {
        p = ngx_sprintf(p, "\na%uz:%V", ctx->api->tag.len, &ctx->api->tag);
    }

    SHA256(buf, p - buf, md);

    cc->key.len = cc->conf->prefix.len
                  + sizeof(NGX_HTTP_LLM_FALLBACK_CACHE_VERSION) - 1
                  + 2 * SHA256_DIGEST_LENGTH;

    cc->key.data = ngx_pnalloc(r->pool, cc->key.len);
    if (cc->key.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(cc->key.data, cc->conf->prefix.data, cc->conf->prefix.len);
    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_CACHE_VERSION,
                   sizeof(NGX_HTTP_LLM_FALLBACK_CACHE_VERSION) - 1);
    ngx_hex_dump(p, md, SHA256_DIGEST_LENGTH);

    return NGX_OK;
}


/* the request's Cache-Control: no-cache and no-store */

static void
ngx_http_llm_fallback_cache_control(ngx_http_request_t *r,
    ngx_uint_t *no_cache, ngx_uint_t *no_store)
{
    u_char           *p, *last, *start, *end;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    *no_cache = 0;
    *no_store = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Cache-Control") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Cache-Control",
                               sizeof("Cache-Control") - 1)
               != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            end = p;

            while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }

            if (end - start == sizeof("no-cache") - 1
                && ngx_strncasecmp(start, (u_char *) "no-cache",
                                   sizeof("no-cache") - 1)
                   == 0)
            {
                *no_cache = 1;

            } else if (end - start == sizeof("no-store") - 1
                       && ngx_strncasecmp(start, (u_char *) "no-store",
                                          sizeof("no-store") - 1)
                          == 0)
            {
                *no_store = 1;
            }
        }
    }
}


/*
 * The stored entry's top-level fields, scanned in place; the strings and
 * the completion point into the value (r->pool).  NGX_DECLINED: the entry
 * is not one of ours, it is logged and counts as a MISS.
 */

static ngx_int_t
ngx_http_llm_fallback_cache_parse(ngx_http_request_t *r,
    ngx_http_llm_fallback_cache_ctx_t *cc, ngx_str_t *value,
    ngx_http_llm_fallback_cache_entry_t *entry)
{
    u_char      *p, *last, *key, *end;
    size_t       len;
    ngx_int_t    rc;
    ngx_uint_t   stored;

    ngx_memzero(entry, sizeof(ngx_http_llm_fallback_cache_entry_t));

    p = value->data;
    last = p + value->len;
    stored = 0;

    while (p < last && NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p)) {
        p++;
    }

    if (p == last || *p++ != '{') {
        goto invalid;
    }

    for ( ;; ) {

        while (p < last && NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p)) {
            p++;
        }

        /* a key: ours have no escapes */

        key = p;

        p = ngx_http_llm_fallback_cache_skip_string(p, last);
        if (p == NULL) {
            goto invalid;
        }

        len = p - key;

        while (p < last && NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p)) {
            p++;
        }

        if (p == last || *p++ != ':') {
            goto invalid;
        }

        while (p < last && NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p)) {
            p++;
        }

        end = ngx_http_llm_fallback_cache_skip(p, last);
        if (end == NULL) {
            goto invalid;
        }

        if (len == sizeof("\"completion\"") - 1
            && ngx_strncmp(key, "\"completion\"", len) == 0)
        {
            if (*p != '{') {
                goto invalid;
            }

            entry->completion.data = p;
            entry->completion.len = end - p;

        } else if (len == sizeof("\"provider\"") - 1
                   && ngx_strncmp(key, "\"provider\"", len) == 0)
        {
            rc = ngx_http_llm_fallback_cache_string(r, p, end,
                                                    &entry->provider);
            if (rc != NGX_OK) {
                return rc == NGX_ERROR ? NGX_ERROR : NGX_DECLINED;
            }

        } else if (len == sizeof("\"model\"") - 1
                   && ngx_strncmp(key, "\"model\"", len) == 0)
        {
            rc = ngx_http_llm_fallback_cache_string(r, p, end,
                                                    &entry->model);
            if (rc != NGX_OK) {
                return rc == NGX_ERROR ? NGX_ERROR : NGX_DECLINED;
            }

        } else if (len == sizeof("\"stored\"") - 1
                   && ngx_strncmp(key, "\"stored\"", len) == 0)
        {
            if (end - p > 18 || end == p) {
                goto invalid;
            }

            for ( /* void */ ; p < end; p++) {
                if (*p < '0' || *p > '9') {
                    goto invalid;
                }

                stored = stored * 10 + (*p - '0');
            }

            entry->stored = (int64_t) stored;
        }

        /* other fields are skipped: later versions may add some */

        p = end;

        while (p < last && NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p)) {
            p++;
        }

        if (p == last) {
            goto invalid;
        }

        if (*p == ',') {
            p++;
            continue;
        }

        if (*p == '}') {
            break;
        }

        goto invalid;
    }

    if (entry->completion.len == 0 || entry->provider.len == 0
        || entry->stored == 0)
    {
        goto invalid;
    }

    if (ngx_http_llm_fallback_cache_valid_names(r, entry) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm cache: ignored an entry with an invalid provider "
                      "or model name \"%V\"", &cc->key);
        return NGX_DECLINED;
    }

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm cache: ignored an invalid entry \"%V\"", &cc->key);

    return NGX_DECLINED;
}


/*
 * The end of the JSON value at p, or NULL if it does not end before last:
 * strings by their quotes and escapes, objects and arrays by their
 * brackets, other values up to a delimiter.  The contents are not
 * validated here.
 */

static u_char *
ngx_http_llm_fallback_cache_skip(u_char *p, u_char *last)
{
    ngx_uint_t  depth;

    if (p == last) {
        return NULL;
    }

    switch (*p) {

    case '"':
        return ngx_http_llm_fallback_cache_skip_string(p, last);

    case '{':
    case '[':
        depth = 0;

        while (p < last) {

            switch (*p) {

            case '"':
                p = ngx_http_llm_fallback_cache_skip_string(p, last);
                if (p == NULL) {
                    return NULL;
                }

                continue;

            case '{':
            case '[':
                depth++;
                break;

            case '}':
            case ']':
                if (--depth == 0) {
                    return p + 1;
                }

                break;
            }

            p++;
        }

        return NULL;

    default:
        while (p < last && *p != ',' && *p != '}' && *p != ']'
               && !NGX_HTTP_LLM_FALLBACK_CACHE_WS(*p))
        {
            p++;
        }

        return p;
    }
}


static u_char *
ngx_http_llm_fallback_cache_skip_string(u_char *p, u_char *last)
{
    if (p == last || *p != '"') {
        return NULL;
    }

    p++;

    while (p < last) {

        if (*p == '\\') {
            if (last - p < 2) {
                return NULL;
            }

            p += 2;
            continue;
        }

        if (*p == '"') {
            return p + 1;
        }

        p++;
    }

    return NULL;
}


/* a JSON string token [start, end) to its value */

static ngx_int_t
ngx_http_llm_fallback_cache_string(ngx_http_request_t *r, u_char *start,
    u_char *end, ngx_str_t *out)
{
    json_t        *s;
    json_error_t   jerr;

    if (end - start < 2 || *start != '"') {
        return NGX_DECLINED;
    }

    if (ngx_strlchr(start + 1, end - 1, '\\') == NULL) {
        out->data = start + 1;
        out->len = end - start - 2;
        return NGX_OK;
    }

    s = json_loadb((char *) start, end - start, JSON_DECODE_ANY, &jerr);

    if (!json_is_string(s)) {
        json_decref(s);
        return NGX_DECLINED;
    }

    out->len = json_string_length(s);
    out->data = ngx_pnalloc(r->pool, out->len);

    if (out->data == NULL) {
        json_decref(s);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, json_string_value(s), out->len);

    json_decref(s);

    return NGX_OK;
}


/*
 * The provider and model of an entry go into X-LLM-Provider, $llm_provider
 * and $llm_model, so a tampered entry must not carry a header into the
 * response: the provider is one configured here or, for an entry another
 * node stored, an HTTP token (RFC 9110 tchar); the model has no control
 * characters.
 */

static ngx_int_t
ngx_http_llm_fallback_cache_valid_names(ngx_http_request_t *r,
    ngx_http_llm_fallback_cache_entry_t *entry)
{
    u_char                             *p, *last;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    if (entry->provider.len > NGX_HTTP_LLM_FALLBACK_CACHE_NAME
        || entry->model.len > NGX_HTTP_LLM_FALLBACK_CACHE_MODEL)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_fallback_find_provider(lmcf, entry->provider.data,
                                            entry->provider.len)
        == NULL)
    {
        p = entry->provider.data;
        last = p + entry->provider.len;

        for ( /* void */ ; p < last; p++) {

            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                || (*p >= '0' && *p <= '9')
                || ngx_strlchr(ngx_http_llm_fallback_cache_tchar,
                               ngx_http_llm_fallback_cache_tchar
                               + sizeof(ngx_http_llm_fallback_cache_tchar) - 1,
                               *p))
            {
                continue;
            }

            return NGX_DECLINED;
        }
    }

    p = entry->model.data;
    last = p + entry->model.len;

    for ( /* void */ ; p < last; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * Makes an entry the request's result (without any attempt); the caller
 * sends it.  NGX_DECLINED: the completion is not valid JSON (a stream
 * replay needs it parsed), nothing was changed.
 */

static ngx_int_t
ngx_http_llm_fallback_cache_prepare(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_cache_entry_t *entry, ngx_uint_t status)
{
    json_t                             *completion;
    json_error_t                        jerr;
    ngx_http_llm_fallback_provider_t   *p;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    completion = NULL;

    if (ctx->stream) {
        completion = json_loadb((char *) entry->completion.data,
                                entry->completion.len, 0, &jerr);

        if (!json_is_object(completion)) {
            json_decref(completion);

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "llm cache: ignored an invalid entry \"%V\"",
                          &ctx->cache->key);
            return NGX_DECLINED;
        }

        if (ngx_http_llm_fallback_json_keep(r->pool, completion) != NGX_OK) {
            json_decref(completion);
            return NGX_ERROR;
        }
    }

    /*
     * the provider that produced the entry; one that is not configured
     * here (another node, a changed configuration) is reported by name
     */

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    p = ngx_http_llm_fallback_find_provider(lmcf, entry->provider.data,
                                            entry->provider.len);

    if (p == NULL) {
        p = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_fallback_provider_t));
        if (p == NULL) {
            return NGX_ERROR;
        }

        p->name = entry->provider;
    }

    ctx->result.body = entry->completion;
    ctx->result.json = completion;
    ctx->result.model = entry->model;

    ctx->served = p;
    ctx->has_result = 1;
    ctx->ttft = ngx_current_msec - ctx->start;

    ngx_http_llm_fallback_cache_set_status(ctx->cache, status);

    return NGX_OK;
}


/* the lookup's status, and the request's ctx->cache_status for readers */

static void
ngx_http_llm_fallback_cache_set_status(ngx_http_llm_fallback_cache_ctx_t *cc,
    ngx_uint_t status)
{
    cc->status = status;
    cc->ctx->cache_status = ngx_http_llm_fallback_cache_statuses[status];
}


static void
ngx_http_llm_fallback_cache_count(void *data)
{
    ngx_http_llm_fallback_cache_ctx_t *cc = data;

    if (cc->status != NGX_HTTP_LLM_FALLBACK_CACHE_NONE) {
        ngx_http_llm_fallback_status_cache(cc->ctx->request,
                               ngx_http_llm_fallback_cache_stats[cc->status]);
    }
}


static int64_t
ngx_http_llm_fallback_cache_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
