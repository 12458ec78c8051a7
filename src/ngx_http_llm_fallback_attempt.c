
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


static ngx_int_t ngx_http_llm_fallback_header_template(ngx_conf_t *cf,
    ngx_array_t *headers, ngx_table_elt_t *h, ngx_str_t *name,
    ngx_str_t *value);
static ngx_int_t ngx_http_llm_fallback_credential(ngx_http_request_t *r,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *value);
static ngx_uint_t ngx_http_llm_fallback_unsafe_value(ngx_str_t *value);
static ngx_int_t ngx_http_llm_fallback_set_headers(ngx_http_request_t *r,
    ngx_http_request_t *sr, ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, off_t length, ngx_str_t *credential);
static ngx_int_t ngx_http_llm_fallback_post_subrequest(
    ngx_http_request_t *sr, void *data, ngx_int_t rc);


static ngx_str_t  ngx_http_llm_fallback_post = ngx_string("POST");
static ngx_str_t  ngx_http_llm_fallback_content_type =
    ngx_string("Content-Type");
static ngx_str_t  ngx_http_llm_fallback_accept = ngx_string("Accept");
static ngx_str_t  ngx_http_llm_fallback_json = ngx_string("application/json");


ngx_int_t
ngx_http_llm_fallback_start_attempt(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p)
{
    ngx_buf_t                        *b;
    ngx_int_t                         rc;
    ngx_str_t                         body, credential, uri;
    ngx_chain_t                      *cl;
    ngx_http_request_t               *sr;
    ngx_http_request_body_t          *rb;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_post_subrequest_t       *ps;
    ngx_http_llm_fallback_sr_ctx_t   *sc;

    /* a credential that cannot be sent fails before any subrequest */

    rc = ngx_http_llm_fallback_credential(r, p, &credential);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the door's own API, to a provider that speaks it, goes as it is */

    if (ctx->api->native_request
        && ctx->api->native == (ngx_int_t) p->format->type)
    {
        rc = ctx->api->native_request(ctx, p, &body);

    } else {
        rc = p->format->create_request(ctx, p, &body);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    uri = p->uri;

    if (ctx->api->uri_suffix.len) {
        uri.len = p->uri.len + ctx->api->uri_suffix.len;
        uri.data = ngx_pnalloc(r->pool, uri.len);
        if (uri.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_cpymem(uri.data, p->uri.data, p->uri.len),
                   ctx->api->uri_suffix.data, ctx->api->uri_suffix.len);
    }

    sc = ngx_pcalloc(r->pool, sizeof(ngx_http_llm_fallback_sr_ctx_t));
    if (sc == NULL) {
        return NGX_ERROR;
    }

    sc->ctx = ctx;
    sc->provider = p;
    sc->retry_after = -1;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_llm_fallback_post_subrequest;
    ps->data = sc;

    /* a fresh body for every attempt: sending moves the buffer's pos */

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->start = body.data;
    b->pos = body.data;
    b->last = body.data + body.len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = cl;
    rb->buf = b;

    if (ngx_http_subrequest(r, &uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sc->sr = sr;

    ngx_http_set_ctx(sr, sc, ngx_http_llm_fallback_module);

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_http_llm_fallback_post;
    sr->request_body = rb;

    /* the subrequest gets its own variable values, not the client's */

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    sr->variables = ngx_pcalloc(r->pool, cmcf->variables.nelts
                                         * sizeof(ngx_http_variable_value_t));
    if (sr->variables == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_set_headers(r, sr, ctx, p, body.len,
                                          &credential)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->current = sc;

    return NGX_OK;
}


/*
 * The headers of a provider's attempts, made at configuration time: the
 * name as given, and the lowercase name and hash that nginx's parser
 * gives a client's header, which proxy_set_header looks up to replace a
 * header of the same name.  A static key that cannot be sent in a header
 * fails the configuration; the message does not show it.
 */

ngx_int_t
ngx_http_llm_fallback_init_headers(ngx_conf_t *cf,
    ngx_http_llm_fallback_provider_t *p)
{
    ngx_keyval_t  *kv;

    if (ngx_array_init(&p->headers, cf->pool, 3, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* Content-Type first: the subrequest's content_type points to it */

    if (ngx_http_llm_fallback_header_template(cf, &p->headers, NULL,
                                        &ngx_http_llm_fallback_content_type,
                                        &ngx_http_llm_fallback_json)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_header_template(cf, &p->headers, NULL,
                                              &ngx_http_llm_fallback_accept,
                                              &ngx_http_llm_fallback_json)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the format's own, as anthropic-version */

    for (kv = p->format->headers; kv && kv->key.len; kv++) {
        if (ngx_http_llm_fallback_header_template(cf, &p->headers, NULL,
                                                  &kv->key, &kv->value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llm_fallback_unsafe_value(&p->static_key)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key of llm provider \"%V\" contains CR, LF "
                           "or NUL, which cannot be sent in a header",
                           &p->name);
        return NGX_ERROR;
    }

    return ngx_http_llm_fallback_header_template(cf, NULL, &p->credential,
                                                 &p->key_header,
                                                 &p->static_value);
}


static ngx_int_t
ngx_http_llm_fallback_header_template(ngx_conf_t *cf, ngx_array_t *headers,
    ngx_table_elt_t *h, ngx_str_t *name, ngx_str_t *value)
{
    if (headers) {
        h = ngx_array_push(headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
    }

    h->key = *name;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(cf->pool, name->len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, name->data, name->len);

#if (nginx_version >= 1023000)
    /* header variables ($content_type) follow the links of same names */
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * The credential header's value: the static one, or the prefix and the
 * key of an api_key= with variables, evaluated per attempt (empty: no
 * header).  A key with CR, LF or NUL would end the header early and add
 * others of the key's making: it is refused, without showing it.
 */

static ngx_int_t
ngx_http_llm_fallback_credential(ngx_http_request_t *r,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *value)
{
    u_char     *d;
    ngx_str_t   key;

    if (p->key == NULL) {
        *value = p->static_value;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, p->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0) {
        ngx_str_null(value);
        return NGX_OK;
    }

    if (ngx_http_llm_fallback_unsafe_value(&key)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "the key of llm provider \"%V\" (\"api_key=\" with "
                      "variables) contains CR, LF or NUL, not sent",
                      &p->name);
        return NGX_DECLINED;
    }

    value->len = p->key_prefix.len + key.len;
    value->data = ngx_pnalloc(r->pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(value->data, p->key_prefix.data, p->key_prefix.len);
    ngx_memcpy(d, key.data, key.len);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_llm_fallback_unsafe_value(ngx_str_t *value)
{
    u_char  *p, *last;

    last = value->data + value->len;

    for (p = value->data; p < last; p++) {
        if (*p == CR || *p == LF || *p == '\0') {
            return 1;
        }
    }

    return 0;
}


/*
 * the subrequest sees only what the provider needs: the client's
 * headers (its Authorization, cookies) are never forwarded
 */

static ngx_int_t
ngx_http_llm_fallback_set_headers(ngx_http_request_t *r,
    ngx_http_request_t *sr, ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, off_t length, ngx_str_t *credential)
{
    ngx_str_t         server;
    ngx_uint_t        i, j, n, replaced;
    ngx_table_elt_t  *h, *host, *tpl, *nh;

    host = r->headers_in.host;
    server = r->headers_in.server;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    nh = NULL;
    n = 0;
    replaced = 0;

    if (ctx->native_headers
        && ctx->api->native == (ngx_int_t) p->format->type)
    {
        nh = ctx->native_headers->elts;
        n = ctx->native_headers->nelts;
    }

    if (ngx_list_init(&sr->headers_in.headers, r->pool,
                      p->headers.nelts + n + 1, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.host = host;
    sr->headers_in.server = server;
    sr->headers_in.content_length_n = length;
    sr->headers_in.keep_alive_n = -1;

    tpl = p->headers.elts;

    for (i = 0; i < p->headers.nelts; i++) {
        h = ngx_list_push(&sr->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = tpl[i];

        if (i == 0) {
            sr->headers_in.content_type = h;
        }

        /*
         * the client's value of a format header, as anthropic-version;
         * the door gives a few, at most one per bit of "replaced"
         */

        for (j = 0; j < n && j < 8 * sizeof(ngx_uint_t); j++) {
            if (nh[j].hash == h->hash
                && nh[j].key.len == h->key.len
                && ngx_strncmp(nh[j].lowcase_key, h->lowcase_key,
                               h->key.len) == 0)
            {
                h->value = nh[j].value;
                replaced |= (ngx_uint_t) 1 << j;
            }
        }
    }

    /* the rest, as anthropic-beta */

    for (j = 0; j < n && j < 8 * sizeof(ngx_uint_t); j++) {
        if (replaced & ((ngx_uint_t) 1 << j)) {
            continue;
        }

        h = ngx_list_push(&sr->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = nh[j];
    }

    if (credential->len == 0) {
        return NGX_OK;
    }

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = p->credential;
    h->value = *credential;

    return NGX_OK;
}


/*
 * the attempt's end, as nginx finalises its subrequest: recorded for the
 * driver, which nginx then wakes through the parent's write event
 */

static ngx_int_t
ngx_http_llm_fallback_post_subrequest(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_llm_fallback_sr_ctx_t  *sc = data;

    if (sc->done) {
        return rc;
    }

    sc->done = 1;
    sc->rc = rc;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "llm fallback: attempt to \"%V\" done, rc:%i status:%ui",
                   &sc->provider->name, rc, sc->status);

    if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST || sr->connection->error) {
        return rc;
    }

    /*
     * a failed attempt must not end the client's request: its status
     * is recorded, and the subrequest ends quietly so that the parent
     * can try the next provider
     */

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return NGX_OK;
    }

    return rc;
}


/*
 * nginx has no call that cancels a running subrequest.  The attempt's
 * upstream is ended through the cleanup it registered, as nginx ends it
 * when the client goes away: the connection is closed, no next server of
 * the upstream is tried and none is counted as failed.  The driver then
 * finalises the subrequest as failed, which records the attempt and wakes
 * it.  The deadlines therefore hold whatever nginx's upstream was doing
 * (resolving, connecting, TLS, waiting for the header or the body).
 * NGX_AGAIN: the upstream has not started yet, or is already ending.
 */

ngx_int_t
ngx_http_llm_fallback_cancel_attempt(ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_http_request_t   *sr;
    ngx_http_upstream_t  *u;

    sr = sc->sr;
    u = sr->upstream;

    if (u == NULL || u->cleanup == NULL) {
        return NGX_AGAIN;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "llm fallback: cancel attempt to \"%V\"",
                   &sc->provider->name);

    /* the upstream's own finalisation (NGX_DONE) releases a reference */

    sr->main->count++;

    (*u->cleanup)(sr);

    return NGX_OK;
}


/* the attempt a subrequest is, or NULL: for the filters and variables */

ngx_http_llm_fallback_sr_ctx_t *
ngx_http_llm_fallback_attempt_ctx(ngx_http_request_t *r)
{
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    if (r == r->main) {
        return NULL;
    }

    sc = ngx_http_get_module_ctx(r, ngx_http_llm_fallback_module);

    if (sc == NULL
        && r->post_subrequest
        && r->post_subrequest->handler
           == ngx_http_llm_fallback_post_subrequest)
    {
        /* an internal redirect in the provider location zeroes r->ctx */

        sc = r->post_subrequest->data;
        ngx_http_set_ctx(r, sc, ngx_http_llm_fallback_module);
    }

    return sc;
}
