
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_translate.h"


/*
 * Streaming an attempt to the client, the way SSI streams includes.
 *
 * The attempt is a subrequest; its event stream is parsed here as it
 * arrives and translated into OpenAI chat.completion.chunk events.
 * Those are held until the attempt yields its first content (text, a
 * refusal or a tool call delta): before that point a failure is
 * invisible and the chain goes on.  At the commit point the main
 * request's header is sent, then every event is passed on, flushed,
 * as the main request's body through the postpone filter.  The front
 * door writes the events in its own shape.  When the subrequest is done
 * the driver has the stream end: the last events, or an error event when
 * it broke after the commit point.
 */


#define NGX_HTTP_LLM_FALLBACK_STREAM_BUF         4096
#define NGX_HTTP_LLM_FALLBACK_STREAM_LINE        1024
#define NGX_HTTP_LLM_FALLBACK_EVNAME             32
/* output not yet taken by the client past which the input waits */
#define NGX_HTTP_LLM_FALLBACK_STREAM_BUSY        65536

/*
 * the attempt's r->buffered bit while input waits: its subrequest does
 * not end before the rest is parsed (nginx's SSI, sub and copy filters
 * use 0x01, 0x02 and 0x04 of the four bits)
 */
#define NGX_HTTP_LLM_FALLBACK_BUFFERED           0x08

/* why a stream is not usable */
#define NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED   1
#define NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE   2
#define NGX_HTTP_LLM_FALLBACK_STREAM_ERROR       3


struct ngx_http_llm_fallback_stream_s {
    ngx_http_llm_fallback_xlat_stream_t   x;
    ngx_http_llm_fallback_ctx_t          *ctx;
    ngx_http_llm_fallback_xlat_acc_t     *acc;
    ngx_uint_t                            type;

    /* the event stream parser: a partial line, the event's data */
    u_char                               *line;
    size_t                                line_len;
    size_t                                line_size;
    u_char                               *data;
    size_t                                data_len;
    size_t                                data_size;
    size_t                                max;
    u_char                                name[NGX_HTTP_LLM_FALLBACK_EVNAME];

    /* the upstream's buffers not parsed yet */
    ngx_chain_t                          *in;

    /* events for the client, held until the commit point */
    ngx_http_llm_fallback_sse_t           sse;
    /* the body filter after the capture filter, towards the client */
    ngx_http_output_body_filter_pt        output;

    ngx_uint_t                            failure;
    u_char                                id[sizeof("chatcmpl-") - 1 + 24];

    unsigned                              cr:1;
    /* the door speaks the provider's API: see api->stream_event */
    unsigned                              native:1;
    unsigned                              has_data:1;
    unsigned                              aborted:1;
};


static ngx_int_t ngx_http_llm_fallback_stream_next(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc);
static ngx_int_t ngx_http_llm_fallback_stream_parse(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st, u_char *p, u_char *last);
static ngx_int_t ngx_http_llm_fallback_stream_line(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st, u_char *line, size_t len);
static ngx_int_t ngx_http_llm_fallback_stream_append(ngx_pool_t *pool,
    ngx_http_llm_fallback_stream_t *st, u_char **buf, size_t *len,
    size_t *size, u_char *data, size_t n);
static ngx_int_t ngx_http_llm_fallback_stream_event(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st);
static ngx_int_t ngx_http_llm_fallback_stream_chunks(ngx_http_request_t *r,
    ngx_http_llm_fallback_stream_t *st, json_t *chunks);
static ngx_int_t ngx_http_llm_fallback_stream_chunk(
    ngx_http_llm_fallback_stream_t *st, json_t *chunk, ngx_str_t *raw);
static ngx_int_t ngx_http_llm_fallback_stream_native(
    ngx_http_llm_fallback_stream_t *st, ngx_str_t *name, ngx_str_t *data,
    json_t *json);
static ngx_int_t ngx_http_llm_fallback_stream_flush(ngx_http_request_t *r,
    ngx_http_llm_fallback_stream_t *st);
static json_t *ngx_http_llm_fallback_stream_error_event(
    ngx_http_request_t *r, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason);
static void ngx_http_llm_fallback_stream_cleanup(void *data);


/*
 * an attempt answers with an event stream; its events go to the client
 * through output, the body filter after the capture filter
 */

ngx_int_t
ngx_http_llm_fallback_stream_start(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_http_output_body_filter_pt output)
{
    ngx_str_t                       *m;
    ngx_pool_cleanup_t              *cln;
    ngx_http_llm_fallback_ctx_t     *ctx;
    ngx_http_llm_fallback_stream_t  *st;

    ctx = sc->ctx;

    st = ngx_pcalloc(sr->pool, sizeof(ngx_http_llm_fallback_stream_t));
    if (st == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(sr->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_stream_cleanup;
    cln->data = st;

    st->ctx = ctx;
    st->type = sc->provider->format->type;
    st->max = ctx->conf->max_response_size;
    st->output = output;
    st->sse.pool = sr->pool;

    st->native = (ctx->api->stream_event
                  && ctx->api->native == (ngx_int_t) st->type
                  && st->type != NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI);

    ngx_sprintf(st->id, "chatcmpl-%08xD%08xD%08xD", (uint32_t) ngx_random(),
                (uint32_t) ngx_random(), (uint32_t) ngx_random());

    m = sc->provider->model.len ? &sc->provider->model : &ctx->client_model;

    st->x.model = (const char *) m->data;
    st->x.model_len = m->len;
    st->x.id = (const char *) st->id;
    st->x.id_len = sizeof(st->id);
    st->x.created = ngx_time();
    st->x.include_usage = ctx->include_usage ? 1 : 0;
    st->x.prompt_tokens = -1;
    st->x.completion_tokens = -1;

    if (ctx->cache) {
        /* a completed stream is cached as the completion it adds up to */

        st->acc = ngx_http_llm_fallback_xlat_acc_create(st->max);
        if (st->acc == NULL) {
            return NGX_ERROR;
        }
    }

    sc->stream = st;

    if (ctx->api->stream_start(ctx, &st->sse) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * events must not wait for the proxy buffers to fill: the upstream
     * looks at this flag after the header is sent, as it does after an
     * "X-Accel-Buffering: no" from the provider
     */

    if (sr->upstream) {
        sr->upstream->buffering = 0;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "llm fallback: \"%V\" answers with an event stream",
                   &sc->provider->name);

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_fallback_stream_body(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_chain_t *in)
{
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_http_llm_fallback_ctx_t     *ctx;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;
    ctx = sc->ctx;

    if (in) {
        /* links of our own: what is not parsed yet stays the upstream's */

        if (ngx_chain_add_copy(sr->pool, &st->in, in) != NGX_OK) {
            return NGX_ERROR;
        }

        /* for llm_stream_idle_timeout, the driver's */
        sc->active = ngx_current_msec;
    }

    if (!ctx->committed) {

        /* before the commit point all is read: the output is held */

        while (st->in) {
            if (ngx_http_llm_fallback_stream_next(sr, sc) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (!st->x.content || st->failure) {
            return NGX_OK;
        }

        /* the commit point: the driver sends the header */

        if (ctx->commit(ctx, sc) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /*
     * after it, no faster than the client takes it: past the busy limit
     * the rest waits in the upstream's buffer, which then stops reading
     * from the provider, as nginx's own unbuffered proxying does
     */

    for ( ;; ) {
        rc = ngx_http_llm_fallback_stream_flush(sr, st);

        if (rc == NGX_ERROR || st->in == NULL) {
            break;
        }

        /*
         * a buffer without data, the end of the stream above all, is
         * taken at once: it adds nothing for the client to wait for
         */

        b = st->in->buf;

        if (st->sse.busy_size > NGX_HTTP_LLM_FALLBACK_STREAM_BUSY
            && !st->failure
            && ngx_buf_in_memory(b) && b->last > b->pos)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                           "llm fallback: stream waits for the client, "
                           "%uz bytes unsent", st->sse.busy_size);
            break;
        }

        if (ngx_http_llm_fallback_stream_next(sr, sc) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /*
     * the input that waits is still to be parsed when the provider has
     * ended: the attempt is over when it is, as the client takes the
     * output, the writer calling this filter again
     */

    if (st->in) {
        sr->buffered |= NGX_HTTP_LLM_FALLBACK_BUFFERED;

    } else {
        sr->buffered &= ~NGX_HTTP_LLM_FALLBACK_BUFFERED;
    }

    return rc;
}


ngx_uint_t
ngx_http_llm_fallback_stream_held(ngx_http_llm_fallback_sr_ctx_t *sc)
{
    return sc->stream && sc->stream->in;
}


/* parses the first buffer of the input */

static ngx_int_t
ngx_http_llm_fallback_stream_next(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_buf_t                       *b;
    ngx_chain_t                     *cl;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;
    cl = st->in;
    b = cl->buf;

    if (ngx_buf_in_memory(b) && b->last > b->pos && !st->failure
        && ngx_http_llm_fallback_stream_parse(sr, st, b->pos, b->last)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    b->pos = b->last;

    if (b->in_file) {
        b->file_pos = b->file_last;
    }

    if (b->last_buf || b->last_in_chain) {
        sc->eof = 1;
    }

    st->in = cl->next;
    ngx_free_chain(sr->pool, cl);

    if (sc->eof && st->has_data && !st->failure) {
        /* the last event, when the stream ends without an empty line */

        st->has_data = 0;

        if (ngx_http_llm_fallback_stream_event(sr, st) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (st->failure && !st->aborted) {
        st->aborted = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "llm fallback: \"%V\" stream failed, closing it",
                       &sc->provider->name);

        /* the rest is of no use */

        if (!sc->eof) {
            ngx_http_llm_fallback_stop_upstream(sr);
        }
    }

    return NGX_OK;
}


/*
 * the event stream format: lines end with CR LF, LF or CR, an empty
 * line ends an event, "data:" lines add to it, ":" starts a comment
 */

static ngx_int_t
ngx_http_llm_fallback_stream_parse(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st, u_char *p, u_char *last)
{
    u_char     *q, *line;
    size_t      len;
    ngx_int_t   rc;

    while (p < last && !st->failure) {

        if (st->cr) {
            st->cr = 0;

            if (*p == LF) {
                p++;
                continue;
            }
        }

        for (q = p; q < last && *q != LF && *q != CR; q++) { /* void */ }

        rc = NGX_OK;

        if (q == last || st->line_len) {
            rc = ngx_http_llm_fallback_stream_append(sr->pool, st, &st->line,
                                                     &st->line_len,
                                                     &st->line_size, p,
                                                     q - p);
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (q == last || rc == NGX_DECLINED) {
            break;
        }

        if (st->line_len) {
            line = st->line;
            len = st->line_len;
            st->line_len = 0;

        } else {
            line = p;
            len = q - p;
        }

        st->cr = (*q == CR);
        p = q + 1;

        if (ngx_http_llm_fallback_stream_line(sr, st, line, len) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_stream_line(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st, u_char *line, size_t len)
{
    u_char     *colon, *value;
    size_t      n, vlen;
    ngx_int_t   rc;

    if (len == 0) {
        rc = NGX_OK;

        if (st->has_data) {
            st->has_data = 0;
            rc = ngx_http_llm_fallback_stream_event(sr, st);
        }

        st->data_len = 0;
        st->name[0] = '\0';

        return rc;
    }

    if (line[0] == ':') {
        return NGX_OK;
    }

    colon = ngx_strlchr(line, line + len, ':');

    if (colon) {
        n = colon - line;
        value = colon + 1;
        vlen = line + len - value;

        if (vlen && *value == ' ') {
            value++;
            vlen--;
        }

    } else {
        n = len;
        value = line + len;
        vlen = 0;
    }

    if (n == 4 && ngx_strncmp(line, "data", 4) == 0) {

        if (st->has_data) {
            rc = ngx_http_llm_fallback_stream_append(sr->pool, st, &st->data,
                                                     &st->data_len,
                                                     &st->data_size,
                                                     (u_char *) "\n", 1);
            if (rc != NGX_OK) {
                return (rc == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
            }
        }

        st->has_data = 1;

        rc = ngx_http_llm_fallback_stream_append(sr->pool, st, &st->data,
                                                 &st->data_len,
                                                 &st->data_size, value, vlen);

        return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
    }

    if (n == 5 && ngx_strncmp(line, "event", 5) == 0) {
        n = ngx_min(vlen, NGX_HTTP_LLM_FALLBACK_EVNAME - 1);
        ngx_memcpy(st->name, value, n);
        st->name[n] = '\0';
    }

    /* "id", "retry" and unknown fields are of no use here */

    return NGX_OK;
}


/*
 * NGX_DECLINED: past the limit on an event's size, the stream has
 * failed; the buffers grow to the largest event and are reused
 */

static ngx_int_t
ngx_http_llm_fallback_stream_append(ngx_pool_t *pool,
    ngx_http_llm_fallback_stream_t *st, u_char **buf, size_t *len,
    size_t *size, u_char *data, size_t n)
{
    u_char  *p;
    size_t   need;

    need = *len + n;

    if (need > st->max) {
        st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE;
        return NGX_DECLINED;
    }

    if (need > *size) {
        need = ngx_max(need, ngx_max(*size * 2,
                                     NGX_HTTP_LLM_FALLBACK_STREAM_LINE));
        need = ngx_min(need, st->max);

        p = ngx_pnalloc(pool, need);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (*len) {
            ngx_memcpy(p, *buf, *len);
        }

        if (*buf) {
            ngx_pfree(pool, *buf);
        }

        *buf = p;
        *size = need;
    }

    if (n) {
        ngx_memcpy(*buf + *len, data, n);
        *len += n;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_stream_event(ngx_http_request_t *sr,
    ngx_http_llm_fallback_stream_t *st)
{
    int           rc;
    json_t       *root, *chunks;
    ngx_int_t     n;
    ngx_str_t     raw, name;
    json_error_t  jerr;

    if (st->type == NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI) {

        if (st->data_len == sizeof("[DONE]") - 1
            && ngx_strncmp(st->data, "[DONE]", sizeof("[DONE]") - 1) == 0)
        {
            st->x.done = 1;
            return NGX_OK;
        }

        if (st->x.done) {
            return NGX_OK;
        }
    }

    root = json_loadb((char *) st->data, st->data_len, 0, &jerr);

    if (root == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "llm fallback: stream event is not JSON: %s",
                       jerr.text);

        st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED;
        return NGX_OK;
    }

    chunks = NULL;
    n = NGX_OK;

    switch (st->type) {

    case NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC:
    case NGX_HTTP_LLM_FALLBACK_FORMAT_GEMINI:

        chunks = json_array();
        if (chunks == NULL) {
            n = NGX_ERROR;
            break;
        }

        if (st->type == NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC) {
            rc = ngx_http_llm_fallback_anthropic_stream(&st->x,
                                  st->name[0] ? (char *) st->name : NULL,
                                  root, chunks);

        } else {
            rc = ngx_http_llm_fallback_gemini_stream(&st->x, root, chunks);
        }

        if (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID) {
            st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED;
            break;
        }

        n = ngx_http_llm_fallback_stream_chunks(sr, st, chunks);

        if (n != NGX_OK || !st->native || st->x.error) {
            break;
        }

        /* the door speaks the provider's API: the event goes as it came */

        name.data = st->name;
        name.len = ngx_strlen(st->name);

        raw.data = st->data;
        raw.len = st->data_len;

        if (name.len == 0) {
            n = ngx_http_llm_fallback_stream_native(st, NULL, &raw, root);

        } else {
            n = ngx_http_llm_fallback_stream_native(st, &name, &raw, root);
        }

        break;

    default: /* NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI */

        rc = ngx_http_llm_fallback_openai_stream(&st->x, root);

        if (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID) {
            st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED;
            break;
        }

        if (st->x.error) {
            break;
        }

        if (st->acc) {
            (void) ngx_http_llm_fallback_xlat_acc_add(st->acc, root);
        }

        /* the provider's own bytes, unless they changed or span lines */

        if (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_CHANGED
            || ngx_strlchr(st->data, st->data + st->data_len, LF))
        {
            n = ngx_http_llm_fallback_stream_chunk(st, root, NULL);

        } else {
            raw.data = st->data;
            raw.len = st->data_len;

            n = ngx_http_llm_fallback_stream_chunk(st, root, &raw);
        }

        break;
    }

    json_decref(chunks);
    json_decref(root);

    if (st->x.error && !st->failure) {
        st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_ERROR;
    }

    if (st->failure == NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "llm fallback: stream event not usable: %s",
                       st->x.reason ? st->x.reason : "-");
    }

    return n;
}


static ngx_int_t
ngx_http_llm_fallback_stream_chunks(ngx_http_request_t *r,
    ngx_http_llm_fallback_stream_t *st, json_t *chunks)
{
    size_t   i;
    json_t  *chunk;

    json_array_foreach(chunks, i, chunk) {

        if (st->acc) {
            (void) ngx_http_llm_fallback_xlat_acc_add(st->acc, chunk);
        }

        if (st->native) {
            /* counted and added up only, its event goes as it came */
            continue;
        }

        if (ngx_http_llm_fallback_stream_chunk(st, chunk, NULL) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_stream_native(ngx_http_llm_fallback_stream_t *st,
    ngx_str_t *name, ngx_str_t *data, json_t *json)
{
    if (st->ctx->api->stream_event(st->ctx, &st->sse, name, data, json)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (st->sse.held > st->max && st->failure == 0) {
        st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE;
    }

    return NGX_OK;
}


/* a canonical chunk, written by the front door */

static ngx_int_t
ngx_http_llm_fallback_stream_chunk(ngx_http_llm_fallback_stream_t *st,
    json_t *chunk, ngx_str_t *raw)
{
    if (st->ctx->api->stream_chunk(st->ctx, &st->sse, chunk, raw) != NGX_OK) {
        return NGX_ERROR;
    }

    if (st->sse.held > st->max && st->failure == 0) {
        /* before the commit point: not a single content delta in all that */
        st->failure = NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE;
    }

    return NGX_OK;
}


/* what is in the output chain goes to the client, flushed */

static ngx_int_t
ngx_http_llm_fallback_stream_flush(ngx_http_request_t *r,
    ngx_http_llm_fallback_stream_t *st)
{
    ngx_int_t                     rc;
    ngx_chain_t                  *out, *cl;
    ngx_http_llm_fallback_sse_t  *sse;

    sse = &st->sse;
    out = sse->out;

    sse->out = NULL;
    sse->last = NULL;
    sse->held = 0;

    if (out == NULL && sse->busy == NULL) {
        return NGX_OK;
    }

    if (out) {
        for (cl = out; cl->next; cl = cl->next) { /* void */ }

        cl->buf->flush = 1;
    }

    rc = st->output(r, out);

    ngx_chain_update_chains(r->pool, &sse->free, &sse->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_llm_fallback_module);

    sse->busy_size = 0;

    for (cl = sse->busy; cl; cl = cl->next) {
        sse->busy_size += ngx_buf_size(cl->buf);
    }

    return rc;
}


ngx_uint_t
ngx_http_llm_fallback_stream_failure(ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;

    switch (st->failure) {

    case NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED:
    case NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE:
        return NGX_HTTP_LLM_FALLBACK_INVALID;

    case NGX_HTTP_LLM_FALLBACK_STREAM_ERROR:
        return NGX_HTTP_LLM_FALLBACK_ERROR;
    }

    if (!sc->eof) {
        return NGX_HTTP_LLM_FALLBACK_ERROR;
    }

    if (!st->x.content) {
        /* ended without a single content delta */
        return NGX_HTTP_LLM_FALLBACK_INVALID;
    }

    if (!st->x.done && !st->x.finish_sent) {
        /* ended before the provider said it was done: cut */
        return NGX_HTTP_LLM_FALLBACK_ERROR;
    }

    return NGX_HTTP_LLM_FALLBACK_OK;
}


/*
 * The committed stream's end, written after what is held: for a complete
 * stream the translator's last chunks and the door's end, for a broken
 * one its error event and the end; the driver sends it.
 */

ngx_int_t
ngx_http_llm_fallback_stream_end(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_uint_t reason)
{
    json_t                          *tail, *error;
    ngx_int_t                        rc;
    ngx_http_llm_fallback_ctx_t     *ctx;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;
    ctx = st->ctx;

    if (reason != NGX_HTTP_LLM_FALLBACK_OK) {
        error = ngx_http_llm_fallback_stream_error_event(r, sc, reason);
        if (error == NULL) {
            return NGX_ERROR;
        }

        rc = ctx->api->stream_error(ctx, &st->sse, error);

        json_decref(error);

    } else if (st->type != NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI) {
        tail = json_array();

        rc = (tail != NULL
              && ngx_http_llm_fallback_xlat_stream_end(&st->x, tail) == 0)
             ? ngx_http_llm_fallback_stream_chunks(r, st, tail) : NGX_ERROR;

        json_decref(tail);

    } else {
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ctx->api->stream_end(ctx, &st->sse);
}


/* what stream_end() wrote, and the end of the client's response */

ngx_int_t
ngx_http_llm_fallback_stream_send(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc)
{
    ngx_buf_t                       *b;
    ngx_chain_t                     *out;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;

    if (st->sse.last == NULL) {
        /* the door wrote no end event */
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    b = st->sse.last->buf;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out = st->sse.out;

    st->sse.out = NULL;
    st->sse.last = NULL;

    return ngx_http_output_filter(r, out);
}


/*
 * The stream as a result, for the variables, the log and the cache: the
 * tokens it reported and, for a complete one, the model and the
 * completion it adds up to (NGX_DECLINED: none to store)
 */

ngx_int_t
ngx_http_llm_fallback_stream_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason)
{
    json_t                          *completion, *model, *usage;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;

    ctx->result.prompt_tokens = st->x.prompt_tokens;
    ctx->result.completion_tokens = st->x.completion_tokens;

    if (reason != NGX_HTTP_LLM_FALLBACK_OK) {
        return NGX_DECLINED;
    }

    ctx->has_result = 1;

    model = st->x.provider_model;

    if (json_is_string(model)) {
        ctx->result.model.len = json_string_length(model);
        ctx->result.model.data = ngx_pnalloc(r->pool,
                                             ctx->result.model.len + 1);
        if (ctx->result.model.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->result.model.data, json_string_value(model),
                   ctx->result.model.len);

    } else {
        ctx->result.model.data = (u_char *) st->x.model;
        ctx->result.model.len = st->x.model_len;
    }

    if (st->acc == NULL) {
        return NGX_DECLINED;
    }

    completion = ngx_http_llm_fallback_xlat_acc_completion(st->acc);
    if (completion == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_fallback_json_keep(r->pool, completion) != NGX_OK) {
        json_decref(completion);
        return NGX_ERROR;
    }

    if (json_object_get(completion, "usage") == NULL
        && st->x.prompt_tokens >= 0 && st->x.completion_tokens >= 0)
    {
        /* the client did not ask for the usage chunk: the cache keeps it */

        usage = ngx_http_llm_fallback_xlat_usage(st->x.prompt_tokens,
                                        st->x.completion_tokens,
                                        st->x.prompt_tokens
                                        + st->x.completion_tokens, -1, -1);

        if (usage == NULL
            || json_object_set_new(completion, "usage", usage) != 0)
        {
            return NGX_ERROR;
        }
    }

    model = json_object_get(completion, "model");

    if (json_is_string(model)) {
        ctx->result.model.data = (u_char *) json_string_value(model);
        ctx->result.model.len = json_string_length(model);
    }

    ctx->result.json = completion;

    return ngx_http_llm_fallback_dump(r->pool, completion, &ctx->result.body);
}


static json_t *
ngx_http_llm_fallback_stream_error_event(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_uint_t reason)
{
    json_t                          *error;
    const char                      *code;
    ngx_http_llm_fallback_stream_t  *st;

    st = sc->stream;

    if (st->x.error) {

        /*
         * the provider's own, as it said it in the stream, without the
         * credential it may quote, as its HTTP errors are relayed
         */

        if (ngx_http_llm_fallback_redact(r, sc->ctx, st->x.error) != NGX_OK) {
            return NULL;
        }

        return json_incref(st->x.error);
    }

    switch (reason) {

    case NGX_HTTP_LLM_FALLBACK_TIMEOUT:
        code = "llm_stream_idle_timeout";
        break;

    case NGX_HTTP_LLM_FALLBACK_INVALID:
        code = "llm_stream_invalid";
        break;

    default:
        code = "llm_stream_interrupted";
    }

    error = json_pack("{s:s++,s:s,s:n,s:s}",
                      "message", "The provider's stream failed after it "
                                 "started: ",
                      ngx_http_llm_fallback_stream_failure_name(sc, reason),
                      ".",
                      "type", "provider_error",
                      "param",
                      "code", code);

    return error;
}


const char *
ngx_http_llm_fallback_stream_failure_name(ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason)
{
    if (sc->idle) {
        return "no event within llm_stream_idle_timeout";
    }

    switch (sc->stream->failure) {

    case NGX_HTTP_LLM_FALLBACK_STREAM_MALFORMED:
        return "a malformed event";

    case NGX_HTTP_LLM_FALLBACK_STREAM_TOO_LARGE:
        return "an event larger than llm_max_response_size";

    case NGX_HTTP_LLM_FALLBACK_STREAM_ERROR:
        return "an error event";
    }

    if (reason == NGX_HTTP_LLM_FALLBACK_TIMEOUT) {
        return "timed out";
    }

    return "the connection was cut before the end of the stream";
}


static void
ngx_http_llm_fallback_stream_cleanup(void *data)
{
    ngx_http_llm_fallback_stream_t  *st = data;

    ngx_http_llm_fallback_xlat_stream_free(&st->x);

    if (st->x.error) {
        json_decref(st->x.error);
        st->x.error = NULL;
    }

    if (st->acc) {
        ngx_http_llm_fallback_xlat_acc_free(st->acc);
        st->acc = NULL;
    }
}
