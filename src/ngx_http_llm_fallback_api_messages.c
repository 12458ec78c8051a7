
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_messages.h"


/*
 * The Anthropic Messages front door (llm_api messages) and its
 * count_tokens (README "Front doors").  A request is checked and
 * translated into the canonical one for the providers of other formats;
 * to an anthropic provider the client's own bytes go, with only "model"
 * changed when the provider names one, and its answer and events come
 * back as they came.  The translators are ngx_http_llm_fallback_
 * xlat_messages.c.
 */


#define NGX_HTTP_LLM_FALLBACK_MSG_HEADERS  4


typedef struct {
    /* the client's body: where its "model" string is, between quotes */
    u_char                               *model;
    size_t                                model_len;
    /* the body for a provider's model=, made once */
    ngx_str_t                             provider_body;
    ngx_str_t                             provider_model;

    json_t                               *stop_sequences;
    u_char                                id[24];

    /* a translated stream's state, for the current attempt */
    ngx_http_llm_fallback_msg_stream_t    stream;

    unsigned                              count_tokens:1;
    /* the current attempt's provider speaks the door's API */
    unsigned                              native:1;
} ngx_http_llm_fallback_msg_ctx_t;


static ngx_int_t ngx_http_llm_fallback_msg_parse(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err);
static ngx_int_t ngx_http_llm_fallback_msg_invalid(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    const char *message, size_t len);
static ngx_int_t ngx_http_llm_fallback_msg_headers(
    ngx_http_llm_fallback_ctx_t *ctx);
static ngx_int_t ngx_http_llm_fallback_msg_native_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_msg_native_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static ngx_int_t ngx_http_llm_fallback_msg_check(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res);
static ngx_int_t ngx_http_llm_fallback_count_native_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static ngx_int_t ngx_http_llm_fallback_msg_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *type, ngx_str_t *body);
static json_t *ngx_http_llm_fallback_msg_completion(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static ngx_int_t ngx_http_llm_fallback_msg_replay_body(ngx_http_request_t *r,
    json_t *events, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_msg_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    ngx_str_t *body);
static json_t *ngx_http_llm_fallback_msg_error_object(const char *type,
    json_t *message);
static ngx_int_t ngx_http_llm_fallback_messages_stream_start(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse);
static ngx_int_t ngx_http_llm_fallback_messages_stream_chunk(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse,
    json_t *chunk, ngx_str_t *raw);
static ngx_int_t ngx_http_llm_fallback_messages_stream_end(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse);
static ngx_int_t ngx_http_llm_fallback_messages_stream_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse,
    json_t *error);
static ngx_int_t ngx_http_llm_fallback_messages_stream_event(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse,
    ngx_str_t *name, ngx_str_t *data, json_t *json);
static ngx_int_t ngx_http_llm_fallback_msg_events(
    ngx_http_llm_fallback_sse_t *sse, json_t *events);
static void ngx_http_llm_fallback_msg_cleanup(void *data);


ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_messages = {
    ngx_string("messages"),
    ngx_string("messages"),
    ngx_null_string,
    NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC,
    0,
    ngx_http_llm_fallback_msg_native_request,
    ngx_http_llm_fallback_msg_native_response,
    ngx_http_llm_fallback_msg_parse,
    ngx_http_llm_fallback_msg_result,
    ngx_http_llm_fallback_msg_error,
    ngx_http_llm_fallback_messages_stream_start,
    ngx_http_llm_fallback_messages_stream_chunk,
    ngx_http_llm_fallback_messages_stream_end,
    ngx_http_llm_fallback_messages_stream_error,
    ngx_http_llm_fallback_messages_stream_event
};


/*
 * POST /v1/messages/count_tokens: only an anthropic provider can count,
 * at its uri + "/count_tokens"; the answer goes as it came
 */

ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_count_tokens = {
    ngx_string("count_tokens"),
    ngx_string("count_tokens"),
    ngx_string("/count_tokens"),
    NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC,
    1,
    ngx_http_llm_fallback_msg_native_request,
    ngx_http_llm_fallback_count_native_response,
    ngx_http_llm_fallback_msg_parse,
    ngx_http_llm_fallback_msg_result,
    ngx_http_llm_fallback_msg_error,
    ngx_http_llm_fallback_messages_stream_start,
    ngx_http_llm_fallback_messages_stream_chunk,
    ngx_http_llm_fallback_messages_stream_end,
    ngx_http_llm_fallback_messages_stream_error,
    NULL
};


static ngx_str_t  ngx_http_llm_fallback_msg_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_msg_sse =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_llm_fallback_msg_no_cache =
    ngx_string("no-cache");
static ngx_str_t  ngx_http_llm_fallback_msg_error_name =
    ngx_string("error");

/* the client's headers an anthropic provider gets */
static ngx_str_t  ngx_http_llm_fallback_msg_pass[] = {
    ngx_string("anthropic-version"),
    ngx_string("anthropic-beta"),
    ngx_null_string
};


/*
 * The client's body: scanned, its tree checked and translated into the
 * canonical request (ctx->json); ctx->body stays the client's bytes.
 */

static ngx_int_t
ngx_http_llm_fallback_msg_parse(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err)
{
    int                                   rc;
    json_t                               *tree, *canon, *model;
    uint32_t                              m;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_llm_fallback_json_t          scan;
    ngx_http_llm_fallback_msg_ctx_t      *mc;
    ngx_http_llm_fallback_json_tok_t     *tok;
    ngx_http_llm_fallback_msg_request_t   x;

    if (ctx->body.len == 0) {
        return ngx_http_llm_fallback_msg_invalid(ctx, err,
                   "The request body is empty: expected a JSON object "
                   "with 'model' and 'messages'.", 0);
    }

    mc = ngx_pcalloc(ctx->request->pool,
                     sizeof(ngx_http_llm_fallback_msg_ctx_t));
    if (mc == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(ctx->request->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_msg_cleanup;
    cln->data = mc;

    ctx->door = mc;
    mc->count_tokens = (ctx->api == &ngx_http_llm_fallback_api_count_tokens);

    ngx_sprintf(mc->id, "%08xD%08xD%08xD", (uint32_t) ngx_random(),
                (uint32_t) ngx_random(), (uint32_t) ngx_random());

    rc = ngx_http_llm_fallback_json_parse(&scan, ctx->body.data,
                                          ctx->body.len,
                                          ngx_http_llm_fallback_json_palloc,
                                          ctx->request->pool);

    if (rc == NGX_HTTP_LLM_FALLBACK_JSON_NOMEM) {
        return NGX_ERROR;
    }

    if (rc != NGX_HTTP_LLM_FALLBACK_JSON_OK
        || scan.toks[0].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT)
    {
        return ngx_http_llm_fallback_msg_invalid(ctx, err,
                   "There was an error parsing the body of your request. "
                   "Please check it is a valid JSON object.", 0);
    }

    /* where the model is, for a provider's model= */

    m = ngx_http_llm_fallback_json_get(&scan, 0, "model", sizeof("model") - 1);

    if (m != NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
        tok = &scan.toks[m];

        if (tok->type == NGX_HTTP_LLM_FALLBACK_JSON_STRING) {
            mc->model = (u_char *) tok->start;
            mc->model_len = tok->len;
        }
    }

    tree = ngx_http_llm_fallback_json_tree(&scan);
    if (tree == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, tree) != NGX_OK) {
        json_decref(tree);
        return NGX_ERROR;
    }

    ngx_memzero(&x, sizeof(ngx_http_llm_fallback_msg_request_t));

    x.count_tokens = mc->count_tokens;

    canon = ngx_http_llm_fallback_msg_request(tree, &x);

    if (canon == NULL) {
        if (x.error[0] == '\0') {
            return NGX_ERROR;
        }

        return ngx_http_llm_fallback_msg_invalid(ctx, err, x.error,
                                                 ngx_strlen(x.error));
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, canon) != NGX_OK)
    {
        json_decref(canon);
        return NGX_ERROR;
    }

    ctx->native_json = tree;
    ctx->json = canon;

    model = json_object_get(tree, "model");

    ctx->client_model.data = (u_char *) json_string_value(model);
    ctx->client_model.len = json_string_length(model);

    /* the translated streams always end with the usage */

    ctx->stream = x.stream;
    ctx->include_usage = 1;

    mc->stop_sequences = json_object_get(tree, "stop_sequences");

    return ngx_http_llm_fallback_msg_headers(ctx);
}


/* Anthropic's 400: {"type":"error","error":{"type":"invalid_request_error"} */

static ngx_int_t
ngx_http_llm_fallback_msg_invalid(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err, const char *message, size_t len)
{
    err->status = NGX_HTTP_BAD_REQUEST;
    err->type = "invalid_request_error";

    if (len == 0) {
        err->message.data = (u_char *) message;
        err->message.len = ngx_strlen(message);
        return NGX_DECLINED;
    }

    err->message.data = ngx_pnalloc(ctx->request->pool, len);
    if (err->message.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(err->message.data, message, len);
    err->message.len = len;

    return NGX_DECLINED;
}


/* anthropic-version and anthropic-beta, as the client sent them */

static ngx_int_t
ngx_http_llm_fallback_msg_headers(ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_str_t        *name;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    part = &ctx->request->headers_in.headers.part;
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

        if (h[i].hash == 0) {
            continue;
        }

        for (name = ngx_http_llm_fallback_msg_pass; name->len; name++) {
            if (h[i].key.len == name->len
                && ngx_strncmp(h[i].lowcase_key, name->data, name->len) == 0)
            {
                break;
            }
        }

        if (name->len == 0) {
            continue;
        }

        if (ctx->native_headers == NULL) {
            ctx->native_headers = ngx_array_create(ctx->request->pool, 2,
                                                   sizeof(ngx_table_elt_t));
            if (ctx->native_headers == NULL) {
                return NGX_ERROR;
            }
        }

        if (ctx->native_headers->nelts == NGX_HTTP_LLM_FALLBACK_MSG_HEADERS) {
            /* more anthropic-beta lines than anyone sends: the first ones */
            continue;
        }

        nh = ngx_array_push(ctx->native_headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];

#if (nginx_version >= 1023000)
        nh->next = NULL;
#endif
    }

    return NGX_OK;
}


/* the client's bytes, with the provider's model= in place of its own */

static ngx_int_t
ngx_http_llm_fallback_msg_native_request(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body)
{
    u_char                           *d, *end;
    size_t                            len;
    ngx_http_llm_fallback_msg_ctx_t  *mc;

    mc = ctx->door;

    if (p->model.len == 0
        || mc->model == NULL
        || (p->model.len == ctx->client_model.len
            && ngx_strncmp(p->model.data, ctx->client_model.data,
                           p->model.len) == 0))
    {
        *body = ctx->body;
        return NGX_OK;
    }

    if (mc->provider_model.len == p->model.len
        && ngx_strncmp(mc->provider_model.data, p->model.data,
                       p->model.len) == 0)
    {
        *body = mc->provider_body;
        return NGX_OK;
    }

    len = p->model.len + ngx_escape_json(NULL, p->model.data, p->model.len);

    body->len = ctx->body.len - mc->model_len + len;
    body->data = ngx_pnalloc(ctx->request->pool, body->len);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    end = ctx->body.data + ctx->body.len;

    d = ngx_cpymem(body->data, ctx->body.data, mc->model - ctx->body.data);
    d = (u_char *) ngx_escape_json(d, p->model.data, p->model.len);
    d = ngx_cpymem(d, mc->model + mc->model_len,
                   end - (mc->model + mc->model_len));

    body->len = d - body->data;

    mc->provider_body = *body;
    mc->provider_model = p->model;

    return NGX_OK;
}


/*
 * An anthropic provider's message: checked and counted as a translated
 * one is (the canonical result is what the cache keeps), and sent as it
 * came
 */

static ngx_int_t
ngx_http_llm_fallback_msg_native_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    ngx_int_t  rc;

    if (ctx->cache == NULL) {
        /* nothing keeps the canonical answer: the bytes are only checked */
        rc = ngx_http_llm_fallback_msg_check(ctx, body, res);

    } else {
        rc = p->format->parse_response(ctx, p, body, res);
    }

    if (rc == NGX_OK) {
        res->native = *body;
    }

    return rc;
}


/*
 * A message as the anthropic format's translation takes it, scanned
 * only: "type": "message", a text or tool_use block, the model and the
 * usage counts
 */

static ngx_int_t
ngx_http_llm_fallback_msg_check(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res)
{
    int                                rc;
    uint32_t                           i, n, e, t, found[4];
    ngx_http_llm_fallback_json_t       scan;
    ngx_http_llm_fallback_json_tok_t  *toks;

    static ngx_http_llm_fallback_json_key_t  keys[] = {
        { "type", sizeof("type") - 1 },
        { "content", sizeof("content") - 1 },
        { "model", sizeof("model") - 1 },
        { "usage", sizeof("usage") - 1 }
    };

    static ngx_http_llm_fallback_json_key_t  usage[] = {
        { "input_tokens", sizeof("input_tokens") - 1 },
        { "output_tokens", sizeof("output_tokens") - 1 }
    };

    rc = ngx_http_llm_fallback_json_parse(&scan, body->data, body->len,
                                          ngx_http_llm_fallback_json_palloc,
                                          ctx->request->pool);

    if (rc == NGX_HTTP_LLM_FALLBACK_JSON_NOMEM) {
        return NGX_ERROR;
    }

    if (rc != NGX_HTTP_LLM_FALLBACK_JSON_OK) {
        return NGX_DECLINED;
    }

    toks = scan.toks;

    ngx_http_llm_fallback_json_lookup(&scan, 0, keys, 4, found);

    if (found[0] == NGX_HTTP_LLM_FALLBACK_JSON_NONE
        || toks[found[0]].type != NGX_HTTP_LLM_FALLBACK_JSON_STRING
        || !ngx_http_llm_fallback_json_streq(&toks[found[0]], "message",
                                             sizeof("message") - 1)
        || found[1] == NGX_HTTP_LLM_FALLBACK_JSON_NONE
        || toks[found[1]].type != NGX_HTTP_LLM_FALLBACK_JSON_ARRAY)
    {
        return NGX_DECLINED;
    }

    /* the first element follows its array, each the one before */

    n = toks[found[1]].size;
    e = found[1] + 1;

    for (i = 0; i < n; i++, e = toks[e].next) {
        t = ngx_http_llm_fallback_json_get(&scan, e, "type",
                                           sizeof("type") - 1);

        if (t != NGX_HTTP_LLM_FALLBACK_JSON_NONE
            && toks[t].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
            && (ngx_http_llm_fallback_json_streq(&toks[t], "text",
                                                 sizeof("text") - 1)
                || ngx_http_llm_fallback_json_streq(&toks[t], "tool_use",
                                                    sizeof("tool_use") - 1)))
        {
            break;
        }
    }

    if (i == n) {
        /* no text and no tool call: thinking only, or nothing */
        return NGX_DECLINED;
    }

    if (found[2] != NGX_HTTP_LLM_FALLBACK_JSON_NONE
        && toks[found[2]].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
        && ngx_http_llm_fallback_json_tok_str(ctx->request->pool,
                                              &toks[found[2]], &res->model)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    res->prompt_tokens = -1;
    res->completion_tokens = -1;

    if (found[3] != NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
        ngx_http_llm_fallback_json_lookup(&scan, found[3], usage, 2, found);

        if (found[0] != NGX_HTTP_LLM_FALLBACK_JSON_NONE
            && toks[found[0]].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER)
        {
            res->prompt_tokens = (ngx_int_t)
                ngx_http_llm_fallback_json_integer(&toks[found[0]]);
        }

        if (found[1] != NGX_HTTP_LLM_FALLBACK_JSON_NONE
            && toks[found[1]].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER)
        {
            res->completion_tokens = (ngx_int_t)
                ngx_http_llm_fallback_json_integer(&toks[found[1]]);
        }
    }

    return NGX_OK;
}


/* {"input_tokens": N}, or the attempt failed */

static ngx_int_t
ngx_http_llm_fallback_count_native_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    json_t  *root, *n;

    root = ngx_http_llm_fallback_json_load(ctx->request->pool, body);
    if (root == NULL) {
        return NGX_DECLINED;
    }

    n = json_object_get(root, "input_tokens");

    if (!json_is_integer(n) || json_integer_value(n) < 0) {
        json_decref(root);
        return NGX_DECLINED;
    }

    /* no canonical body: never cached */

    res->native = *body;
    res->prompt_tokens = (ngx_int_t) json_integer_value(n);
    res->completion_tokens = -1;

    json_decref(root);

    return NGX_OK;
}


/*
 * The result as the client's body: the provider's own message, or the
 * canonical one translated; events for a "stream": true request (a
 * cache entry, or an answer that was not an event stream)
 */

static ngx_int_t
ngx_http_llm_fallback_msg_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *type, ngx_str_t *body)
{
    int                                    rc;
    json_t                                *completion, *out;
    ngx_int_t                              n;
    ngx_http_llm_fallback_msg_ctx_t       *mc;
    ngx_http_llm_fallback_msg_response_t   x;

    mc = ctx->door;

    *type = ngx_http_llm_fallback_msg_json;

    if (ctx->result.native.len && (!ctx->stream || mc->count_tokens)) {
        *body = ctx->result.native;
        return NGX_OK;
    }

    completion = ngx_http_llm_fallback_msg_completion(r, ctx);
    if (completion == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&x, sizeof(ngx_http_llm_fallback_msg_response_t));

    x.stop_sequences = mc->stop_sequences;
    x.id = (const char *) mc->id;
    x.id_len = sizeof(mc->id);
    x.model = (const char *) ctx->result.model.data;
    x.model_len = ctx->result.model.len;

    if (x.model_len == 0) {
        x.model = (const char *) ctx->client_model.data;
        x.model_len = ctx->client_model.len;
    }

    if (!ctx->stream) {
        out = ngx_http_llm_fallback_msg_response(completion, &x);
        if (out == NULL) {
            return NGX_ERROR;
        }

        n = ngx_http_llm_fallback_dump(r->pool, out, body);

        json_decref(out);

        return n;
    }

    out = json_array();
    if (out == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_msg_replay(completion, &x, out);

    n = (rc == 0) ? ngx_http_llm_fallback_msg_replay_body(r, out, body)
                  : NGX_ERROR;

    json_decref(out);

    if (n != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_add_header(r, "Cache-Control",
                                         &ngx_http_llm_fallback_msg_no_cache)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *type = ngx_http_llm_fallback_msg_sse;

    return NGX_OK;
}


static json_t *
ngx_http_llm_fallback_msg_completion(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    json_t  *completion;

    if (ctx->result.json) {
        return ctx->result.json;
    }

    completion = ngx_http_llm_fallback_json_load(r->pool, &ctx->result.body);
    if (completion == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_json_keep(r->pool, completion) != NGX_OK) {
        json_decref(completion);
        return NULL;
    }

    ctx->result.json = completion;

    return completion;
}


/* [NAME, DATA] pairs as one event stream body */

static ngx_int_t
ngx_http_llm_fallback_msg_replay_body(ngx_http_request_t *r, json_t *events,
    ngx_str_t *body)
{
    u_char                       *p;
    size_t                        len;
    ngx_chain_t                  *cl;
    ngx_http_llm_fallback_sse_t   sse;

    ngx_memzero(&sse, sizeof(ngx_http_llm_fallback_sse_t));
    sse.pool = r->pool;

    if (ngx_http_llm_fallback_msg_events(&sse, events) != NGX_OK) {
        return NGX_ERROR;
    }

    len = 0;

    for (cl = sse.out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    if (sse.out && sse.out->next == NULL) {
        body->data = sse.out->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = sse.out; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


/*
 * {"type":"error","error":{"type","message"}} with Anthropic's type for
 * the status: a provider's own message relayed; an every-circuit-open
 * 503 is Anthropic's 529 (for count_tokens, 404: no provider can count,
 * which Claude Code takes as "estimate locally")
 */

static ngx_int_t
ngx_http_llm_fallback_msg_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    ngx_str_t *body)
{
    json_t                           *root, *message;
    ngx_int_t                         rc;
    ngx_uint_t                        i, tried;
    ngx_http_llm_fallback_msg_ctx_t  *mc;
    ngx_http_llm_fallback_attempt_t  *a;

    mc = ctx ? ctx->door : NULL;

    if (mc && mc->count_tokens && err->attempts) {
        tried = 0;
        a = ctx->attempts.elts;

        for (i = 0; i < ctx->attempts.nelts; i++) {
            if (a[i].reason != NGX_HTTP_LLM_FALLBACK_OPEN) {
                tried = 1;
            }
        }

        if (!tried) {
            err->status = NGX_HTTP_NOT_FOUND;
            err->error = NULL;
            ngx_str_set(&err->message,
                        "No provider of the chain can count tokens.");
        }

    } else if (err->type
               && ngx_strcmp(err->type, "llm_circuit_open") == 0)
    {
        err->status = 529;
    }

    message = NULL;

    if (err->error) {
        message = json_object_get(err->error, "message");

        if (json_is_string(message)) {
            json_incref(message);

        } else {
            message = NULL;
        }
    }

    if (message == NULL) {
        message = json_stringn((char *) err->message.data, err->message.len);
        if (message == NULL) {
            return NGX_ERROR;
        }
    }

    root = ngx_http_llm_fallback_msg_error_object(
               ngx_http_llm_fallback_msg_error_type(err->status), message);
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_dump(r->pool, root, body);

    json_decref(root);

    return rc;
}


/* takes the message's reference */

static json_t *
ngx_http_llm_fallback_msg_error_object(const char *type, json_t *message)
{
    return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error",
                     "type", type, "message", message);
}


/* an attempt's stream begins: a translated one starts from nothing */

static ngx_int_t
ngx_http_llm_fallback_messages_stream_start(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse)
{
    ngx_http_llm_fallback_msg_ctx_t     *mc;
    ngx_http_llm_fallback_msg_stream_t  *s;

    mc = ctx->door;
    s = &mc->stream;

    ngx_http_llm_fallback_msg_stream_free(s);
    ngx_memzero(s, sizeof(ngx_http_llm_fallback_msg_stream_t));

    s->stop_sequences = mc->stop_sequences;
    s->id = (const char *) mc->id;
    s->id_len = sizeof(mc->id);
    s->model = (const char *) ctx->client_model.data;
    s->model_len = ctx->client_model.len;

    mc->native = 0;

    if (ctx->current) {
        mc->native = ((ngx_int_t) ctx->current->provider->format->type
                      == ctx->api->native);

        if (ctx->current->provider->model.len) {
            s->model = (const char *) ctx->current->provider->model.data;
            s->model_len = ctx->current->provider->model.len;
        }
    }

    return NGX_OK;
}


/* a canonical chunk, from a provider of another format */

static ngx_int_t
ngx_http_llm_fallback_messages_stream_chunk(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse, json_t *chunk, ngx_str_t *raw)
{
    json_t                           *events;
    ngx_int_t                         rc;
    ngx_http_llm_fallback_msg_ctx_t  *mc;

    mc = ctx->door;

    events = json_array();
    if (events == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_llm_fallback_msg_stream(&mc->stream, chunk, events) == 0) {
        rc = ngx_http_llm_fallback_msg_events(sse, events);
    }

    json_decref(events);

    return rc;
}


/*
 * a complete stream: a translated one gets its message_delta and
 * message_stop, a native one had its own
 */

static ngx_int_t
ngx_http_llm_fallback_messages_stream_end(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse)
{
    json_t                           *events;
    ngx_int_t                         rc;
    ngx_http_llm_fallback_msg_ctx_t  *mc;

    mc = ctx->door;

    if (mc->native) {
        return NGX_OK;
    }

    events = json_array();
    if (events == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_llm_fallback_msg_stream_end(&mc->stream, events) == 0) {
        rc = ngx_http_llm_fallback_msg_events(sse, events);
    }

    json_decref(events);

    return rc;
}


/* after the commit point: event: error, Anthropic's api_error */

static ngx_int_t
ngx_http_llm_fallback_messages_stream_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse, json_t *error)
{
    json_t     *event, *message;
    ngx_int_t   rc;

    message = json_object_get(error, "message");

    message = json_is_string(message)
              ? json_incref(message)
              : json_string("The provider's stream failed after it "
                            "started.");

    if (message == NULL) {
        return NGX_ERROR;
    }

    event = ngx_http_llm_fallback_msg_error_object("api_error", message);
    if (event == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_sse_event_json(sse,
                                      &ngx_http_llm_fallback_msg_error_name,
                                      event);

    json_decref(event);

    return rc;
}


/*
 * an anthropic provider's event, its bytes as they came when they are
 * one line
 */

static ngx_int_t
ngx_http_llm_fallback_messages_stream_event(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse, ngx_str_t *name, ngx_str_t *data,
    json_t *json)
{
    ngx_str_t  type;

    if (name == NULL) {
        /* no event: line, as Anthropic always sends: its data's type */

        type.data = (u_char *) json_string_value(json_object_get(json,
                                                                 "type"));
        if (type.data == NULL) {
            return NGX_OK;
        }

        type.len = ngx_strlen(type.data);
        name = &type;
    }

    if (ngx_strlchr(data->data, data->data + data->len, LF)) {
        return ngx_http_llm_fallback_sse_event_json(sse, name, json);
    }

    return ngx_http_llm_fallback_sse_event(sse, name, data->data, data->len);
}


static ngx_int_t
ngx_http_llm_fallback_msg_events(ngx_http_llm_fallback_sse_t *sse,
    json_t *events)
{
    size_t      i;
    json_t     *event, *name;
    ngx_str_t   s;

    json_array_foreach(events, i, event) {
        name = json_array_get(event, 0);

        s.data = (u_char *) json_string_value(name);
        if (s.data == NULL) {
            return NGX_ERROR;
        }

        s.len = json_string_length(name);

        if (ngx_http_llm_fallback_sse_event_json(sse, &s,
                                                 json_array_get(event, 1))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_llm_fallback_msg_cleanup(void *data)
{
    ngx_http_llm_fallback_msg_ctx_t  *mc = data;

    ngx_http_llm_fallback_msg_stream_free(&mc->stream);
}
