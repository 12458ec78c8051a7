
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * The driver: the one place that moves a request along and ends it.
 *
 *   body -> cache verdict -> attempt loop -> result or stream -> finish
 *
 * handler() reads the body and body_handler() has the front door parse
 * it into the canonical request.  The cache's verdict comes back through
 * cache_done(): a HIT is sent, anything else starts the chain.  next() is
 * the attempt loop: the breaker admits the provider or it is skipped, the
 * attempt's subrequest is started, and the attempt timer (timer_handler())
 * bounds it and backs off before a retry.  When the subrequest is done
 * nginx wakes the parent (wev_handler()) and attempt_done() decides: a
 * result is sent; a failure is retried, falls back to the next provider
 * or ends the chain (provider_error(), exhausted(), timed_out(),
 * circuit_open(), the last three after stale-if-error).  A stream reports
 * its commit point through ctx->commit (commit()); once committed, the
 * attempt ends in stream_done(), in the same branch.  finish() ends every
 * request.
 *
 * The services below it only report: the cache through the done handler
 * it is given, the stream through ctx->commit, the attempt through the
 * subrequest's end, which wakes the parent.  None of them sends the
 * response, moves the chain on or finalises the request.
 */


static void ngx_http_llm_fallback_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_is_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_native_chain(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_cache_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_int_t rc);
static void ngx_http_llm_fallback_next(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_timer_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_llm_fallback_commit(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);
static ngx_int_t ngx_http_llm_fallback_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_runtime_chain(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_bad_credential(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p);
static void ngx_http_llm_fallback_wev_handler(ngx_http_request_t *r);
static void ngx_http_llm_fallback_attempt_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);
static void ngx_http_llm_fallback_stream_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);
static ngx_uint_t ngx_http_llm_fallback_classify(
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_uint_t *status);
static ngx_uint_t ngx_http_llm_fallback_allowed(
    ngx_http_llm_fallback_loc_conf_t *conf, ngx_uint_t reason,
    ngx_uint_t status);
static ngx_msec_t ngx_http_llm_fallback_retry_delay(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);
static void ngx_http_llm_fallback_provider_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t status);
static void ngx_http_llm_fallback_exhausted(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_timed_out(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_circuit_open(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static ngx_int_t ngx_http_llm_fallback_stale(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static void ngx_http_llm_fallback_exhausted_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, const char *type,
    const char *message);
static void ngx_http_llm_fallback_finish(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_int_t rc);
static void ngx_http_llm_fallback_cleanup(void *data);


ngx_int_t
ngx_http_llm_fallback_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_pool_cleanup_t                *cln;
    ngx_http_llm_fallback_ctx_t       *ctx;
    ngx_http_llm_fallback_error_t      err;
    ngx_http_llm_fallback_loc_conf_t  *conf;

    if (r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llm_fallback_chain cannot be used in a subrequest");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    conf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    err.type = "invalid_request_error";

    if (!(r->method & NGX_HTTP_POST)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        err.status = NGX_HTTP_NOT_ALLOWED;
        ngx_str_set(&err.message, "Only POST is allowed on this endpoint.");

        return ngx_http_llm_fallback_send_error(r, NULL, &err);
    }

    if (!ngx_http_llm_fallback_is_json(r)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        err.status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
        ngx_str_set(&err.message,
                    "Unsupported Content-Type: the request body must be "
                    "JSON (application/json).");

        return ngx_http_llm_fallback_send_error(r, NULL, &err);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_fallback_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = conf;
    ctx->api = conf->api;
    ctx->commit = ngx_http_llm_fallback_commit;
    ctx->result.prompt_tokens = -1;
    ctx->result.completion_tokens = -1;

    ctx->timer.handler = ngx_http_llm_fallback_timer_handler;
    ctx->timer.data = r->connection;
    ctx->timer.log = r->connection->log;

    if (ngx_array_init(&ctx->attempts, r->pool, 4,
                       sizeof(ngx_http_llm_fallback_attempt_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_llm_fallback_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                        ngx_http_llm_fallback_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_llm_fallback_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_llm_fallback_ctx_t    *ctx;
    ngx_http_llm_fallback_error_t   err;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_fallback_module);

    if (r->request_body == NULL
        || ngx_http_llm_fallback_read_body(r, &ctx->body) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    rc = ctx->api->parse(ctx, &err);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
                                  ngx_http_llm_fallback_send_error(r, ctx,
                                                                   &err));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->conf->chain_var) {
        if (ngx_http_llm_fallback_runtime_chain(r, ctx) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

    } else {
        ctx->chain = ctx->conf->chain;
        ctx->nchain = ctx->conf->nchain;
    }

    if (ctx->api->native_only
        && ngx_http_llm_fallback_native_chain(r, ctx) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->start = ngx_current_msec;

    if (ctx->conf->fallback_timeout) {
        ctx->deadline = ctx->start + ctx->conf->fallback_timeout;
    }

    r->write_event_handler = ngx_http_llm_fallback_wev_handler;

    rc = ngx_http_llm_fallback_cache_lookup(r, ctx,
                                            ngx_http_llm_fallback_cache_done);

    if (rc == NGX_AGAIN) {
        /* the verdict comes with Redis's reply */
        return;
    }

    ngx_http_llm_fallback_cache_done(r, ctx, rc);
}


/*
 * the cache's verdict: NGX_OK, a HIT made the result; NGX_DECLINED, no
 * usable entry (a MISS, a bypass, Redis unavailable): the chain runs
 */

/* a door that only its own API's providers can answer (count_tokens) */

static ngx_int_t
ngx_http_llm_fallback_native_chain(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_uint_t                          i, n;
    ngx_http_llm_fallback_provider_t  **chain;

    chain = ngx_palloc(r->pool, ngx_max(ctx->nchain, 1)
                                * sizeof(ngx_http_llm_fallback_provider_t *));
    if (chain == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < ctx->nchain; i++) {
        if ((ngx_int_t) ctx->chain[i]->format->type == ctx->api->native) {
            chain[n++] = ctx->chain[i];
        }
    }

    ctx->chain = chain;
    ctx->nchain = n;

    return NGX_OK;
}


static void
ngx_http_llm_fallback_cache_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_int_t rc)
{
    if (rc == NGX_OK) {
        ngx_http_llm_fallback_finish(r, ctx,
                                   ngx_http_llm_fallback_send_result(r, ctx));
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_llm_fallback_next(r, ctx);
}


static ngx_int_t
ngx_http_llm_fallback_is_json(ngx_http_request_t *r)
{
    u_char  *p, *last;
    size_t   len;

    if (r->headers_in.content_type == NULL) {
        return 1;
    }

    p = r->headers_in.content_type->value.data;
    len = r->headers_in.content_type->value.len;
    last = ngx_strlchr(p, p + len, ';');

    if (last) {
        len = last - p;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json", len) == 0)
    {
        return 1;
    }

    /* application/<anything>+json */

    if (len > sizeof("application/+json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/", 12) == 0
        && ngx_strncasecmp(p + len - 5, (u_char *) "+json", 5) == 0)
    {
        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_llm_fallback_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = r->request_body->bufs;

    if (cl == NULL) {
        ngx_str_null(body);
        return NGX_OK;
    }

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = (size_t) len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        len = b->file_last - b->file_pos;

        n = ngx_read_file(b->file, p, (size_t) len, b->file_pos);

        if (n != len) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "llm fallback: could not read the request body "
                          "from \"%V\"", &b->file->name);
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_runtime_chain(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    u_char                             *p, *last, *start;
    ngx_str_t                           value;
    ngx_http_llm_fallback_provider_t   *provider;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    if (ngx_http_complex_value(r, ctx->conf->chain_var, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->chain = ngx_palloc(r->pool,
                            NGX_HTTP_LLM_FALLBACK_MAX_CHAIN
                            * sizeof(ngx_http_llm_fallback_provider_t *));
    if (ctx->chain == NULL) {
        return NGX_ERROR;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    p = value.data;
    last = p + value.len;

    for ( ;; ) {
        while (p < last && (*p == ' ' || *p == ',')) {
            p++;
        }

        if (p == last) {
            break;
        }

        start = p;

        while (p < last && *p != ' ' && *p != ',') {
            p++;
        }

        provider = ngx_http_llm_fallback_find_provider(lmcf, start,
                                                       p - start);
        if (provider == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "unknown llm provider \"%*s\" in "
                          "\"llm_fallback_chain\" value \"%V\"",
                          p - start, start, &value);
            return NGX_ERROR;
        }

        if (ctx->nchain == NGX_HTTP_LLM_FALLBACK_MAX_CHAIN) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "too many providers in \"llm_fallback_chain\" "
                          "value \"%V\"", &value);
            return NGX_ERROR;
        }

        ctx->chain[ctx->nchain++] = provider;
    }

    if (ctx->nchain == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "empty \"llm_fallback_chain\" value");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_llm_fallback_next(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_msec_t                         timeout;
    ngx_http_llm_fallback_attempt_t   *a;
    ngx_http_llm_fallback_provider_t  *p;

    for ( ;; ) {

        if (ctx->index >= ctx->nchain
            || (ctx->conf->tries && ctx->tries >= ctx->conf->tries))
        {
            ngx_http_llm_fallback_exhausted(r, ctx);
            return;
        }

        if (ctx->deadline && ngx_current_msec >= ctx->deadline) {
            ngx_http_llm_fallback_timed_out(r, ctx);
            return;
        }

        p = ctx->chain[ctx->index];

        rc = ngx_http_llm_fallback_breaker_acquire(r, ctx, p);

        if (rc == NGX_OK) {
            break;
        }

        if (rc == NGX_DECLINED) {
            /* the circuit is open: skipped without a subrequest */

            a = ngx_array_push(&ctx->attempts);
            if (a != NULL) {
                a->provider = p;
                a->status = 0;
                a->reason = NGX_HTTP_LLM_FALLBACK_OPEN;

                ctx->index++;
                ctx->retries = 0;
                continue;
            }
        }

        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_llm_fallback_start_attempt(r, ctx, p);

    if (rc == NGX_DECLINED) {
        ngx_http_llm_fallback_bad_credential(r, ctx, p);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* llm_attempt_timeout, to the first content of a stream */

    timeout = (p->timeout != NGX_CONF_UNSET_MSEC) ? p->timeout
                                                  : ctx->conf->attempt_timeout;

    if (ctx->deadline) {
        timeout = ngx_min(timeout,
                          ctx->deadline - ngx_min(ctx->deadline,
                                                  ngx_current_msec));
    }

    ngx_add_timer(&ctx->timer, timeout);

    ctx->waiting = 1;
    ctx->tries++;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm fallback: attempt %ui to \"%V\" via \"%V\"",
                   ctx->tries, &p->name, &p->uri);
}


/*
 * The attempt timer: the end of a backoff before a retry, an attempt's
 * timeout or the request's deadline, or a committed stream gone silent
 * for llm_stream_idle_timeout.
 */

static void
ngx_http_llm_fallback_timer_handler(ngx_event_t *ev)
{
    ngx_msec_int_t                   idle;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_llm_fallback_ctx_t     *ctx;
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    ctx = (ngx_http_llm_fallback_ctx_t *)
              ((u_char *) ev - offsetof(ngx_http_llm_fallback_ctx_t, timer));

    r = ctx->request;
    c = r->connection;

    if (ctx->sleeping) {
        ctx->sleeping = 0;

        ngx_http_llm_fallback_next(r, ctx);
        ngx_http_run_posted_requests(c);
        return;
    }

    sc = ctx->current;

    if (sc == NULL || sc->done) {
        return;
    }

    if (ctx->committed) {

        if (ngx_http_llm_fallback_stream_held(sc)) {
            /* not silent: the client is slow, send_timeout is for that */
            ngx_add_timer(&ctx->timer, ctx->conf->stream_idle_timeout);
            return;
        }

        idle = (ngx_msec_int_t) (ngx_current_msec - sc->active);

        if (idle >= 0 && idle < (ngx_msec_int_t) ctx->conf->stream_idle_timeout)
        {
            /* events came since the timer was set: the rest of the wait */
            ngx_add_timer(&ctx->timer,
                          ctx->conf->stream_idle_timeout - (ngx_msec_t) idle);
            return;
        }

        sc->idle = 1;

    } else {
        sc->timed_out = 1;

        if (ctx->deadline && ngx_current_msec >= ctx->deadline) {
            ctx->deadline_hit = 1;
        }
    }

    if (ngx_http_llm_fallback_cancel_attempt(sc) != NGX_OK) {
        /* not started yet, or already ending: look again shortly */
        ngx_add_timer(&ctx->timer, 50);
        return;
    }

    /* the subrequest ends as failed: that wakes the driver */

    ngx_http_finalize_request(sc->sr, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/*
 * a stream's first content is ready: the chain is committed to this
 * attempt, the response header is sent and the idle timeout replaces
 * the attempt's
 */

static ngx_int_t
ngx_http_llm_fallback_commit(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_int_t  rc;

    ctx->committed = 1;
    ctx->served = sc->provider;
    ctx->ttft = ngx_current_msec - ctx->start;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    if (ctx->conf->stream_idle_timeout) {
        ngx_add_timer(&ctx->timer, ctx->conf->stream_idle_timeout);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "llm fallback: stream from \"%V\" committed after %M ms",
                   &sc->provider->name, ctx->ttft);

    rc = ngx_http_llm_fallback_send_stream_header(ctx->request, ctx);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the provider's credential could not be sent (logged by the attempt) */

static void
ngx_http_llm_fallback_bad_credential(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p)
{
    u_char                         *d;
    ngx_http_llm_fallback_error_t   err;

    ngx_http_llm_fallback_breaker_release(ctx);

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    err.status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    err.type = "server_error";

    d = ngx_pnalloc(r->pool, p->name.len + 96);
    if (d == NULL) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    err.message.data = d;
    err.message.len = ngx_sprintf(d, "The credential of provider \"%V\" "
                                  "cannot be sent: it contains CR, LF or "
                                  "NUL.", &p->name)
                      - d;

    ngx_http_llm_fallback_finish(r, ctx,
                                 ngx_http_llm_fallback_send_error(r, ctx,
                                                                  &err));
}


static void
ngx_http_llm_fallback_wev_handler(ngx_http_request_t *r)
{
    ngx_http_llm_fallback_ctx_t     *ctx;
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    ctx = ngx_http_get_module_ctx(r, ngx_http_llm_fallback_module);

    if (ctx == NULL || ctx->finished || ctx->sleeping) {
        return;
    }

    sc = ctx->current;

    if (sc == NULL || !sc->done || !sc->sr->done) {
        return;
    }

    ctx->current = NULL;
    ctx->waiting = 0;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    ngx_http_llm_fallback_attempt_done(r, ctx, sc);
}


static void
ngx_http_llm_fallback_attempt_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_int_t                          rc;
    ngx_str_t                          body;
    ngx_msec_t                         delay;
    ngx_uint_t                         reason, status, allowed;
    ngx_http_llm_fallback_attempt_t   *a;
    ngx_http_llm_fallback_provider_t  *p;

    p = sc->provider;

    if (r->connection->error) {
        ngx_http_llm_fallback_breaker_release(ctx);
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    if (ctx->committed) {
        ngx_http_llm_fallback_stream_done(r, ctx, sc);
        return;
    }

    reason = ngx_http_llm_fallback_classify(sc, &status);

    if (reason == NGX_HTTP_LLM_FALLBACK_OK) {
        body.data = sc->start;
        body.len = sc->last - sc->start;

        if (ctx->api->native_response
            && ctx->api->native == (ngx_int_t) p->format->type)
        {
            rc = ctx->api->native_response(ctx, p, &body, &ctx->result);

        } else {
            rc = p->format->parse_response(ctx, p, &body, &ctx->result);
        }

        if (rc == NGX_OK) {
            ctx->served = p;
            ctx->has_result = 1;
            ctx->ttft = ngx_current_msec - ctx->start;

            ngx_http_llm_fallback_breaker_report(r, ctx, sc, reason, status,
                                                 0);

            ngx_http_llm_fallback_cache_store(r, ctx);

            ngx_http_llm_fallback_finish(r, ctx,
                                   ngx_http_llm_fallback_send_result(r, ctx));
            return;
        }

        if (rc == NGX_ERROR) {
            ngx_http_llm_fallback_breaker_release(ctx);
            ngx_http_llm_fallback_finish(r, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        reason = NGX_HTTP_LLM_FALLBACK_INVALID;
    }

    allowed = ngx_http_llm_fallback_allowed(ctx->conf, reason, status);

    ngx_http_llm_fallback_breaker_report(r, ctx, sc, reason, status, allowed);

    a = ngx_array_push(&ctx->attempts);
    if (a == NULL) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    a->provider = p;
    a->status = status;
    a->reason = reason;

    if (sc->too_large) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "llm provider \"%V\" response is larger than "
                      "llm_max_response_size %uz",
                      &p->name, ctx->conf->max_response_size);

    } else if (reason == NGX_HTTP_LLM_FALLBACK_HTTP) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" attempt failed: http_%ui",
                      &p->name, status);

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" attempt failed: %s, status %ui",
                      &p->name, ngx_http_llm_fallback_reason_name(reason),
                      status);
    }

    if (ctx->deadline_hit) {
        ngx_http_llm_fallback_timed_out(r, ctx);
        return;
    }

    if (!allowed) {

        if (reason == NGX_HTTP_LLM_FALLBACK_HTTP) {
            ngx_http_llm_fallback_provider_error(r, ctx, sc, status);
            return;
        }

        ngx_http_llm_fallback_exhausted(r, ctx);
        return;
    }

    if (ctx->retries < ctx->conf->retries
        && (ctx->conf->tries == 0 || ctx->tries < ctx->conf->tries))
    {
        delay = ngx_http_llm_fallback_retry_delay(ctx, sc);

        if (delay != NGX_CONF_UNSET_MSEC) {
            ctx->retries++;

            if (ctx->deadline && ngx_current_msec + delay > ctx->deadline) {
                delay = ctx->deadline - ngx_min(ctx->deadline,
                                                ngx_current_msec);
            }

            ctx->sleeping = 1;
            ngx_add_timer(&ctx->timer, delay);
            return;
        }
    }

    ctx->index++;
    ctx->retries = 0;

    ngx_http_llm_fallback_next(r, ctx);
}


/*
 * The committed attempt is over: the stream writes its end (the last
 * events and "[DONE]", or an error event when it broke) and the driver
 * reports the attempt as attempt_done() does an answer, then sends it.
 */

static void
ngx_http_llm_fallback_stream_done(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_int_t                         rc, stored;
    ngx_uint_t                        reason, status;
    ngx_http_llm_fallback_attempt_t  *a;

    status = sc->status;

    if (sc->idle) {
        reason = NGX_HTTP_LLM_FALLBACK_TIMEOUT;
        status = NGX_HTTP_GATEWAY_TIME_OUT;

    } else {
        reason = ngx_http_llm_fallback_stream_failure(sc);
    }

    if (reason == NGX_HTTP_LLM_FALLBACK_OK) {
        rc = ngx_http_llm_fallback_stream_end(r, sc, reason);

        /* the tokens first: the report counts them */

        stored = ngx_http_llm_fallback_stream_result(r, ctx, sc, reason);

        ngx_http_llm_fallback_breaker_report(r, ctx, sc, reason, status, 0);

        if (stored == NGX_OK) {
            ngx_http_llm_fallback_cache_store(r, ctx);
        }

    } else {
        a = ngx_array_push(&ctx->attempts);
        if (a) {
            a->provider = sc->provider;
            a->status = status;
            a->reason = reason;
        }

        ngx_http_llm_fallback_breaker_report(r, ctx, sc, reason, status, 1);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" stream failed after its first "
                      "content: %s", &sc->provider->name,
                      ngx_http_llm_fallback_stream_failure_name(sc, reason));

        rc = ngx_http_llm_fallback_stream_end(r, sc, reason);

        (void) ngx_http_llm_fallback_stream_result(r, ctx, sc, reason);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_llm_fallback_stream_send(r, sc);
    }

    ngx_http_llm_fallback_finish(r, ctx, rc);
}


static ngx_uint_t
ngx_http_llm_fallback_classify(ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t *status)
{
    if (sc->timed_out) {
        *status = NGX_HTTP_GATEWAY_TIME_OUT;
        return NGX_HTTP_LLM_FALLBACK_TIMEOUT;
    }

    if (!sc->header_seen) {

        if (sc->sr->upstream) {
            /* nginx made this status: the provider did not answer */

            if (sc->rc == NGX_HTTP_GATEWAY_TIME_OUT) {
                *status = NGX_HTTP_GATEWAY_TIME_OUT;
                return NGX_HTTP_LLM_FALLBACK_TIMEOUT;
            }

            *status = (sc->rc >= NGX_HTTP_SPECIAL_RESPONSE)
                      ? (ngx_uint_t) sc->rc : NGX_HTTP_BAD_GATEWAY;
            return NGX_HTTP_LLM_FALLBACK_ERROR;
        }

        if (sc->rc >= NGX_HTTP_BAD_REQUEST) {
            *status = sc->rc;
            return NGX_HTTP_LLM_FALLBACK_HTTP;
        }

        *status = NGX_HTTP_BAD_GATEWAY;
        return NGX_HTTP_LLM_FALLBACK_ERROR;
    }

    *status = sc->status;

    if (sc->stream) {
        return ngx_http_llm_fallback_stream_failure(sc);
    }

    if (!sc->eof) {
        return NGX_HTTP_LLM_FALLBACK_ERROR;
    }

    if (sc->too_large) {
        return NGX_HTTP_LLM_FALLBACK_INVALID;
    }

    if (sc->status >= NGX_HTTP_OK && sc->status < NGX_HTTP_SPECIAL_RESPONSE) {
        return NGX_HTTP_LLM_FALLBACK_OK;
    }

    if (sc->status >= NGX_HTTP_BAD_REQUEST) {
        return NGX_HTTP_LLM_FALLBACK_HTTP;
    }

    return NGX_HTTP_LLM_FALLBACK_INVALID;
}


static ngx_uint_t
ngx_http_llm_fallback_allowed(ngx_http_llm_fallback_loc_conf_t *conf,
    ngx_uint_t reason, ngx_uint_t status)
{
    ngx_uint_t  code;

    switch (reason) {

    case NGX_HTTP_LLM_FALLBACK_ERROR:
        return conf->fallback_on & NGX_HTTP_LLM_FALLBACK_ON_ERROR;

    case NGX_HTTP_LLM_FALLBACK_TIMEOUT:
        return conf->fallback_on & NGX_HTTP_LLM_FALLBACK_ON_TIMEOUT;

    case NGX_HTTP_LLM_FALLBACK_INVALID:
        return conf->fallback_on & NGX_HTTP_LLM_FALLBACK_ON_INVALID;

    case NGX_HTTP_LLM_FALLBACK_HTTP:

        if (status >= 500 && status <= 599
            && (conf->fallback_on & NGX_HTTP_LLM_FALLBACK_ON_HTTP_5XX))
        {
            return 1;
        }

        if (status < NGX_HTTP_LLM_FALLBACK_CODE_MIN
            || status > NGX_HTTP_LLM_FALLBACK_CODE_MAX)
        {
            return 0;
        }

        code = status - NGX_HTTP_LLM_FALLBACK_CODE_MIN;

        return conf->fallback_codes[code / 8] & (1 << (code % 8));

    default:
        return 0;
    }
}


/*
 * the delay before retrying the same provider, or NGX_CONF_UNSET_MSEC
 * to move on at once (a Retry-After longer than max_backoff)
 */

static ngx_msec_t
ngx_http_llm_fallback_retry_delay(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_msec_t  delay, jitter;
    ngx_uint_t  i;

    if (sc->retry_after >= 0) {

        /* in seconds: a huge Retry-After must not wrap in milliseconds */

        if (sc->retry_after > (time_t) (ctx->conf->max_backoff / 1000)) {
            return NGX_CONF_UNSET_MSEC;
        }

        return (ngx_msec_t) sc->retry_after * 1000;
    }

    delay = ctx->conf->backoff;

    for (i = 0; i < ctx->retries && delay < ctx->conf->max_backoff; i++) {
        delay *= 2;
    }

    /* +-20% jitter */

    jitter = delay / 5;

    if (jitter) {
        delay = delay - jitter + (ngx_msec_t) ngx_random() % (2 * jitter + 1);
    }

    return ngx_min(delay, ctx->conf->max_backoff);
}


static void
ngx_http_llm_fallback_provider_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t status)
{
    u_char                         *p;
    ngx_str_t                       body;
    ngx_http_llm_fallback_error_t   err;

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    err.status = status;
    err.type = "provider_error";

    if (sc->header_seen && sc->eof && sc->last > sc->start) {
        body.data = sc->start;
        body.len = sc->last - sc->start;

        err.error = sc->provider->format->parse_error(ctx, &body);
    }

    if (err.error == NULL) {
        p = ngx_pnalloc(r->pool, sc->provider->name.len + 64);
        if (p == NULL) {
            ngx_http_llm_fallback_finish(r, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        err.message.data = p;
        err.message.len = ngx_sprintf(p, "Provider \"%V\" returned HTTP %ui.",
                                      &sc->provider->name, status)
                          - p;
    }

    ngx_http_llm_fallback_finish(r, ctx,
                                 ngx_http_llm_fallback_send_error(r, ctx,
                                                                  &err));
}


static void
ngx_http_llm_fallback_exhausted(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_uint_t                        i, n, status;
    ngx_http_llm_fallback_attempt_t  *a;

    /*
     * stale-if-error: every attempt failed or every provider is open;
     * an entry past its ttl but within stale= is served instead
     */

    if (ngx_http_llm_fallback_stale(r, ctx) == NGX_OK) {
        return;
    }

    /*
     * 502; 429 when every attempt was a 429, so that clients back off;
     * 504 when the chain ended on a timeout that is not a fallback
     * condition
     */

    a = ctx->attempts.elts;
    n = ctx->attempts.nelts;

    if (ctx->tries == 0 && n) {
        ngx_http_llm_fallback_circuit_open(r, ctx);
        return;
    }

    status = n ? NGX_HTTP_TOO_MANY_REQUESTS : NGX_HTTP_BAD_GATEWAY;

    for (i = 0; i < n; i++) {
        if (a[i].reason != NGX_HTTP_LLM_FALLBACK_HTTP
            || a[i].status != NGX_HTTP_TOO_MANY_REQUESTS)
        {
            status = NGX_HTTP_BAD_GATEWAY;
            break;
        }
    }

    if (n && a[n - 1].reason == NGX_HTTP_LLM_FALLBACK_TIMEOUT
        && !(ctx->conf->fallback_on & NGX_HTTP_LLM_FALLBACK_ON_TIMEOUT))
    {
        status = NGX_HTTP_GATEWAY_TIME_OUT;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "llm fallback: every attempt failed: %V",
                  ngx_http_llm_fallback_reasons(ctx));

    ngx_http_llm_fallback_exhausted_error(r, ctx, status,
                                        "llm_providers_exhausted",
                                        "Every provider of the fallback "
                                        "chain failed.");
}


static void
ngx_http_llm_fallback_timed_out(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    /* stale-if-error: the deadline passed before any provider answered */

    if (ngx_http_llm_fallback_stale(r, ctx) == NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "llm fallback: llm_fallback_timeout passed after: %V",
                  ngx_http_llm_fallback_reasons(ctx));

    ngx_http_llm_fallback_exhausted_error(r, ctx, NGX_HTTP_GATEWAY_TIME_OUT,
                                        "llm_timeout",
                                        "The llm_fallback_timeout deadline "
                                        "passed before any provider "
                                        "answered.");
}


/*
 * every provider of the chain was skipped, its circuit open: 503 with
 * the time until the first one admits a trial
 */

static void
ngx_http_llm_fallback_circuit_open(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    u_char      *p;
    ngx_str_t    v;
    ngx_msec_t   wait;

    wait = ngx_max(ctx->open_wait, 1);

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%M", (wait + 999) / 1000) - p;

    if (ngx_http_llm_fallback_add_header(r, "Retry-After", &v) != NGX_OK) {
        ngx_http_llm_fallback_finish(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "llm fallback: every provider is open: %V",
                  ngx_http_llm_fallback_reasons(ctx));

    ngx_http_llm_fallback_exhausted_error(r, ctx,
                                        NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "llm_circuit_open",
                                        "Every provider of the fallback "
                                        "chain is unavailable: their "
                                        "circuit breakers are open.");
}


/*
 * stale-if-error: NGX_OK, an entry past its ttl but within stale= was
 * sent instead of the error; NGX_DECLINED, there is none
 */

static ngx_int_t
ngx_http_llm_fallback_stale(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_llm_fallback_cache_stale(r, ctx);

    if (rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    ngx_http_llm_fallback_finish(r, ctx,
                                 rc == NGX_OK
                                 ? ngx_http_llm_fallback_send_result(r, ctx)
                                 : NGX_HTTP_INTERNAL_SERVER_ERROR);
    return NGX_OK;
}


/* the chain ended without an answer: the error lists the attempts */

static void
ngx_http_llm_fallback_exhausted_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, const char *type,
    const char *message)
{
    ngx_http_llm_fallback_error_t  err;

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    err.status = status;
    err.type = type;
    err.message.data = (u_char *) message;
    err.message.len = ngx_strlen(message);
    err.attempts = 1;

    ngx_http_llm_fallback_finish(r, ctx,
                                 ngx_http_llm_fallback_send_error(r, ctx,
                                                                  &err));
}


static void
ngx_http_llm_fallback_finish(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_int_t rc)
{
    ctx->finished = 1;
    ctx->sleeping = 0;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_llm_fallback_cleanup(void *data)
{
    ngx_http_llm_fallback_ctx_t  *ctx = data;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    if (ctx->timer.posted) {
        ngx_delete_posted_event(&ctx->timer);
    }
}
