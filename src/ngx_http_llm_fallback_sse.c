
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * An event stream's output: events are written at the end of a chain of
 * pool buffers, which the stream passes on and reuses once they are sent.
 * A front door writes its stream events here; it never sends them.
 */


#define NGX_HTTP_LLM_FALLBACK_SSE_BUF  4096


static ngx_buf_t *ngx_http_llm_fallback_sse_buf(
    ngx_http_llm_fallback_sse_t *sse, size_t size);
static size_t ngx_http_llm_fallback_sse_prefix(ngx_str_t *name);
static void ngx_http_llm_fallback_sse_start(ngx_buf_t *b, ngx_str_t *name);
static ngx_int_t ngx_http_llm_fallback_sse_end(
    ngx_http_llm_fallback_sse_t *sse, ngx_buf_t *b, size_t len);


/*
 * a buffer with room for size bytes at the end of the output chain; an
 * empty last buffer too small for them is swapped for one, never left
 * behind in the chain: nginx's writer refuses a buffer without data
 */

static ngx_buf_t *
ngx_http_llm_fallback_sse_buf(ngx_http_llm_fallback_sse_t *sse, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl, **ll;

    if (sse->last) {
        b = sse->last->buf;

        if ((size_t) (b->end - b->last) >= size) {
            return b;
        }
    }

    for (ll = &sse->free; *ll; ll = &(*ll)->next) {
        b = (*ll)->buf;

        if ((size_t) (b->end - b->start) >= size) {
            break;
        }
    }

    if (*ll) {
        cl = *ll;
        *ll = cl->next;

    } else {
        cl = ngx_alloc_chain_link(sse->pool);
        if (cl == NULL) {
            return NULL;
        }

        size = ngx_max(size, NGX_HTTP_LLM_FALLBACK_SSE_BUF);

        b = ngx_create_temp_buf(sse->pool, size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = (ngx_buf_tag_t) &ngx_http_llm_fallback_module;
        cl->buf = b;
    }

    if (sse->last && sse->last->buf->last == sse->last->buf->pos) {

        /* the link stays last with the larger buffer, its own is free */

        b = sse->last->buf;
        sse->last->buf = cl->buf;

        cl->buf = b;
        cl->next = sse->free;
        sse->free = cl;

        return sse->last->buf;
    }

    cl->next = NULL;

    if (sse->last) {
        sse->last->next = cl;

    } else {
        sse->out = cl;
    }

    sse->last = cl;

    return cl->buf;
}


/* "data: ", the bytes as they are, and the empty line that ends an event */

ngx_int_t
ngx_http_llm_fallback_sse_data(ngx_http_llm_fallback_sse_t *sse,
    u_char *data, size_t len)
{
    return ngx_http_llm_fallback_sse_event(sse, NULL, data, len);
}


ngx_int_t
ngx_http_llm_fallback_sse_json(ngx_http_llm_fallback_sse_t *sse,
    json_t *json)
{
    return ngx_http_llm_fallback_sse_event_json(sse, NULL, json);
}


/* the same after "event: NAME" when a name is given */

ngx_int_t
ngx_http_llm_fallback_sse_event(ngx_http_llm_fallback_sse_t *sse,
    ngx_str_t *name, u_char *data, size_t len)
{
    size_t      extra;
    ngx_buf_t  *b;

    extra = ngx_http_llm_fallback_sse_prefix(name);

    b = ngx_http_llm_fallback_sse_buf(sse, extra + len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_http_llm_fallback_sse_start(b, name);

    b->last = ngx_cpymem(b->last, data, len);

    return ngx_http_llm_fallback_sse_end(sse, b, extra + len);
}


/*
 * a JSON value as an event's data, serialised in place: a second pass,
 * into a buffer of the size the first one found, only when it does not
 * fit
 */

ngx_int_t
ngx_http_llm_fallback_sse_event_json(ngx_http_llm_fallback_sse_t *sse,
    ngx_str_t *name, json_t *json)
{
    size_t      n, room, extra;
    ngx_buf_t  *b;

    extra = ngx_http_llm_fallback_sse_prefix(name);

    b = ngx_http_llm_fallback_sse_buf(sse, extra + 512);
    if (b == NULL) {
        return NGX_ERROR;
    }

    room = b->end - b->last - extra;

    n = ngx_http_llm_fallback_json_dumpb(json, b->last + extra - 2, room,
                                         NGX_HTTP_LLM_FALLBACK_JSON_FLAGS);
    if (n == 0) {
        return NGX_ERROR;
    }

    if (n > room) {
        b = ngx_http_llm_fallback_sse_buf(sse, extra + n);
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_llm_fallback_json_dumpb(json, b->last + extra - 2, n,
                                             NGX_HTTP_LLM_FALLBACK_JSON_FLAGS)
            != n)
        {
            return NGX_ERROR;
        }
    }

    ngx_http_llm_fallback_sse_start(b, name);

    b->last += n;

    return ngx_http_llm_fallback_sse_end(sse, b, extra + n);
}


/* the bytes of an event but its data: "event: NAME\n", "data: ", "\n\n" */

static size_t
ngx_http_llm_fallback_sse_prefix(ngx_str_t *name)
{
    size_t  n;

    n = sizeof("data: \n\n") - 1;

    if (name) {
        n += sizeof("event: \n") - 1 + name->len;
    }

    return n;
}


static void
ngx_http_llm_fallback_sse_start(ngx_buf_t *b, ngx_str_t *name)
{
    if (name) {
        b->last = ngx_cpymem(b->last, "event: ", sizeof("event: ") - 1);
        b->last = ngx_cpymem(b->last, name->data, name->len);
        *b->last++ = LF;
    }

    b->last = ngx_cpymem(b->last, "data: ", sizeof("data: ") - 1);
}


/* an event's data is in b: ends it, counts what is held */

static ngx_int_t
ngx_http_llm_fallback_sse_end(ngx_http_llm_fallback_sse_t *sse,
    ngx_buf_t *b, size_t len)
{
    *b->last++ = LF;
    *b->last++ = LF;

    sse->held += len;

    return NGX_OK;
}
