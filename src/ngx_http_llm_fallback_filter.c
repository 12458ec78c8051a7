
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * The capture filter: the header and body of an attempt subrequest are
 * kept in the attempt's own buffer and never reach the client, whatever
 * their size (no subrequest_output_buffer_size limit).
 */


#define NGX_HTTP_LLM_FALLBACK_CAPTURE_MIN  4096

/*
 * the most allocated for an answer before its bytes arrive, whatever
 * its Content-Length claims: the buffer grows with the data
 */
#define NGX_HTTP_LLM_FALLBACK_CAPTURE_FIRST  65536

/* the 413's message for a body over client_max_body_size, with the limit */
#define NGX_HTTP_LLM_FALLBACK_TOO_LARGE                                       \
    "The request body is larger than this endpoint accepts "                  \
    "(client_max_body_size %O bytes)."

/* seconds: about 68 years, still an int32 */
#define NGX_HTTP_LLM_FALLBACK_RETRY_AFTER_MAX  0x7fffffff


static ngx_int_t ngx_http_llm_fallback_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_llm_fallback_append(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc, u_char *data, size_t size);
static time_t ngx_http_llm_fallback_retry_after(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_is_event_stream(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_is_too_large(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_too_large_header(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_too_large_body(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_llm_fallback_too_large_text(ngx_http_request_t *r,
    ngx_str_t *text);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_llm_fallback_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_llm_fallback_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_llm_fallback_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_header_filter(ngx_http_request_t *r)
{
    off_t                            len;
    size_t                           size;
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    sc = ngx_http_llm_fallback_attempt_ctx(r);

    if (sc == NULL) {
        if (ngx_http_llm_fallback_is_too_large(r)) {
            return ngx_http_llm_fallback_too_large_header(r);
        }

        return ngx_http_next_header_filter(r);
    }

    sc->header_seen = 1;
    sc->status = r->headers_out.status;

    if (sc->status == NGX_HTTP_TOO_MANY_REQUESTS
        || sc->status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        sc->retry_after = ngx_http_llm_fallback_retry_after(r);
    }

    r->filter_need_in_memory = 1;
    r->header_sent = 1;

    if (sc->ctx->stream
        && sc->status >= NGX_HTTP_OK
        && sc->status < NGX_HTTP_SPECIAL_RESPONSE
        && ngx_http_llm_fallback_is_event_stream(r))
    {
        return ngx_http_llm_fallback_stream_start(r, sc,
                                                  ngx_http_next_body_filter);
    }

    len = r->headers_out.content_length_n;
    size = sc->ctx->conf->max_response_size;

    if (len > (off_t) size) {
        /* nothing of it is kept: the attempt ends without reading it */

        sc->too_large = 1;
        sc->eof = 1;

        return NGX_ERROR;
    }

    if (len > 0) {
        size = (size_t) ngx_min(len, NGX_HTTP_LLM_FALLBACK_CAPTURE_FIRST);

        sc->start = ngx_pnalloc(r->pool, size);
        if (sc->start == NULL) {
            return NGX_ERROR;
        }

        sc->last = sc->start;
        sc->end = sc->start + size;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                       *b;
    ngx_chain_t                     *cl;
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    sc = ngx_http_llm_fallback_attempt_ctx(r);

    if (sc == NULL) {
        if (ngx_http_llm_fallback_is_too_large(r)) {
            return ngx_http_llm_fallback_too_large_body(r, in);
        }

        return ngx_http_next_body_filter(r, in);
    }

    if (sc->stream) {
        return ngx_http_llm_fallback_stream_body(r, sc, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b) && b->last > b->pos && !sc->too_large) {
            ngx_http_llm_fallback_append(r, sc, b->pos, b->last - b->pos);
        }

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }

        if (b->last_buf || b->last_in_chain) {
            sc->eof = 1;
        }
    }

    if (sc->too_large && !sc->eof) {
        sc->eof = 1;
        ngx_http_llm_fallback_stop_upstream(r);
    }

    return NGX_OK;
}


static void
ngx_http_llm_fallback_append(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc, u_char *data, size_t size)
{
    off_t    len;
    u_char  *p;
    size_t   used, need, cap, max;

    used = sc->last - sc->start;
    need = used + size;
    max = sc->ctx->conf->max_response_size;

    if (need > max) {
        sc->too_large = 1;
        return;
    }

    if (need > (size_t) (sc->end - sc->start)) {
        cap = ngx_max((size_t) (sc->end - sc->start) * 2,
                      NGX_HTTP_LLM_FALLBACK_CAPTURE_MIN);
        cap = ngx_max(cap, need);

        /* doubling stops at the announced length, once it is near */

        len = r->headers_out.content_length_n;

        if (len > 0 && (off_t) need <= len && (off_t) cap > len) {
            cap = (size_t) len;
        }

        cap = ngx_min(cap, max);

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            sc->too_large = 1;
            return;
        }

        if (used) {
            ngx_memcpy(p, sc->start, used);
        }

        if (sc->start) {
            ngx_pfree(r->pool, sc->start);
        }

        sc->start = p;
        sc->last = p + used;
        sc->end = p + cap;
    }

    sc->last = ngx_cpymem(sc->last, data, size);
}


static ngx_int_t
ngx_http_llm_fallback_is_event_stream(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    type = &r->headers_out.content_type;

    return type->len >= sizeof("text/event-stream") - 1
           && ngx_strncasecmp(type->data, (u_char *) "text/event-stream",
                              sizeof("text/event-stream") - 1)
              == 0;
}


/*
 * Retry-After in seconds or as an HTTP date; -1 when absent or invalid.
 * Seconds saturate at NGX_HTTP_LLM_FALLBACK_RETRY_AFTER_MAX: a value too
 * large for any clock is as long as can be, not a wrapped short one.
 */

static time_t
ngx_http_llm_fallback_retry_after(ngx_http_request_t *r)
{
    u_char           *p, *last;
    time_t            t;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
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

        if (h[i].hash == 0
            || h[i].key.len != sizeof("Retry-After") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Retry-After",
                               h[i].key.len)
               != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        for (t = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (t > (NGX_HTTP_LLM_FALLBACK_RETRY_AFTER_MAX - (*p - '0')) / 10)
            {
                t = NGX_HTTP_LLM_FALLBACK_RETRY_AFTER_MAX;

            } else {
                t = t * 10 + (*p - '0');
            }
        }

        if (p == last && h[i].value.len) {
            return t;
        }

        t = ngx_parse_http_time(h[i].value.data, h[i].value.len);

        if (t == NGX_ERROR) {
            return -1;
        }

        return (t > ngx_time()) ? t - ngx_time() : 0;
    }

    return -1;
}


/*
 * nginx's own 413 (a body over client_max_body_size, found before or
 * while the module reads it) on an llm_fallback_chain location is sent
 * in the error shape of the location's front door, not as nginx's HTML
 * page: SDK clients show an HTML body as their error message.
 * r->err_status is set by nginx's special response only, so a 413 the
 * module sends itself, or an error_page of the operator (another
 * location), is left alone.
 */

static ngx_int_t
ngx_http_llm_fallback_is_too_large(ngx_http_request_t *r)
{
    ngx_http_llm_fallback_loc_conf_t  *lcf;

    if (r != r->main || r->err_status != NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return 0;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);

    return lcf->chain != NULL || lcf->chain_var != NULL;
}


static ngx_int_t
ngx_http_llm_fallback_too_large_header(ngx_http_request_t *r)
{
    ngx_str_t  text;

    if (ngx_http_llm_fallback_too_large_text(r, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = text.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


/* the HTML page is dropped; the JSON goes in its place, at its end */

static ngx_int_t
ngx_http_llm_fallback_too_large_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t    *b;
    ngx_str_t     text;
    ngx_uint_t    last;
    ngx_chain_t  *cl, out;

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;

        if (cl->buf->in_file) {
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    if (ngx_http_llm_fallback_too_large_text(r, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = text.data;
    b->last = text.data + text.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_llm_fallback_too_large_text(ngx_http_request_t *r, ngx_str_t *text)
{
    u_char                            *p;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_llm_fallback_error_t      err;
    ngx_http_llm_fallback_loc_conf_t  *lcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);

    p = ngx_pnalloc(r->pool,
                    sizeof(NGX_HTTP_LLM_FALLBACK_TOO_LARGE) + NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&err, sizeof(ngx_http_llm_fallback_error_t));

    err.status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    err.type = "invalid_request_error";
    err.code = "request_too_large";
    err.message.data = p;
    err.message.len = ngx_sprintf(p, NGX_HTTP_LLM_FALLBACK_TOO_LARGE,
                                  clcf->client_max_body_size)
                      - p;

    return lcf->api->error(r, NULL, &err, text);
}
