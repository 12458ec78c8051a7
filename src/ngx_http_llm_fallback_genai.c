
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * The OpenTelemetry GenAI semantic-convention metrics (semconv v1.41.0):
 * gen_ai.client.token.usage, gen_ai.server.request.duration and
 * gen_ai.server.time_to_first_token, histograms of the attempts that
 * answered, by provider, request model and response model, written as
 * OpenTelemetry's Prometheus exporter names them.
 *
 * Every provider has a node of its own in the breaker's zone, next to
 * its breaker node, made when the configuration is loaded (after all
 * breaker nodes, so that a small zone keeps the breakers). A node has
 * NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS rows: the first (request model,
 * response model) pairs seen take the rows but the last, which counts
 * every other pair and models longer than a row holds, labelled "other".
 */


#define NGX_HTTP_LLM_FALLBACK_GENAI_HEAD       1024
#define NGX_HTTP_LLM_FALLBACK_GENAI_LINES      72
#define NGX_HTTP_LLM_FALLBACK_GENAI_LINE       256

#define NGX_HTTP_LLM_FALLBACK_GENAI_INPUT      0
#define NGX_HTTP_LLM_FALLBACK_GENAI_OUTPUT     1

#define NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TOKENS                               \
    "# HELP gen_ai_client_token_usage Number of input and output tokens "    \
    "used.\n"                                                                 \
    "# TYPE gen_ai_client_token_usage histogram\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_GENAI_DURATION                             \
    "# HELP gen_ai_server_request_duration_seconds Generative AI server "    \
    "request duration such as time-to-last byte or last output token.\n"      \
    "# TYPE gen_ai_server_request_duration_seconds histogram\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TTFT                                 \
    "# HELP gen_ai_server_time_to_first_token_seconds Time to generate "     \
    "first token for successful responses.\n"                                 \
    "# TYPE gen_ai_server_time_to_first_token_seconds histogram\n"


typedef struct {
    ngx_str_t                           *provider;
    ngx_http_llm_fallback_genai_row_t   *row;
} ngx_http_llm_fallback_genai_line_t;


static ngx_http_llm_fallback_genai_node_t *ngx_http_llm_fallback_genai_lookup(
    ngx_http_llm_fallback_shctx_t *sh, ngx_str_t *name, uint32_t hash);
static ngx_http_llm_fallback_genai_row_t *ngx_http_llm_fallback_genai_row(
    ngx_http_llm_fallback_genai_node_t *node, ngx_str_t *request,
    ngx_str_t *response);
static void ngx_http_llm_fallback_genai_observe(ngx_atomic_uint_t *buckets,
    ngx_uint_t *bounds, ngx_uint_t n, ngx_uint_t value);
static u_char *ngx_http_llm_fallback_genai_labels(u_char *p,
    ngx_http_llm_fallback_genai_line_t *l);
static u_char *ngx_http_llm_fallback_genai_histogram(u_char *p,
    ngx_http_llm_fallback_genai_line_t *l, const char *name,
    const char *type, ngx_atomic_uint_t *buckets, char **le, ngx_uint_t n,
    ngx_atomic_uint_t sum, ngx_uint_t msec);
static u_char *ngx_http_llm_fallback_genai_escape(u_char *p, u_char *s,
    size_t len);


/* the semconv's advised bucket boundaries: tokens, milliseconds */

static ngx_uint_t  ngx_http_llm_fallback_genai_tokens_bounds[] = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
    16777216, 67108864
};

static char  *ngx_http_llm_fallback_genai_tokens_le[] = {
    "1", "4", "16", "64", "256", "1024", "4096", "16384", "65536", "262144",
    "1048576", "4194304", "16777216", "67108864", "+Inf"
};

static ngx_uint_t  ngx_http_llm_fallback_genai_duration_bounds[] = {
    10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960,
    81920
};

static char  *ngx_http_llm_fallback_genai_duration_le[] = {
    "0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56",
    "5.12", "10.24", "20.48", "40.96", "81.92", "+Inf"
};

static ngx_uint_t  ngx_http_llm_fallback_genai_ttft_bounds[] = {
    1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500,
    10000
};

static char  *ngx_http_llm_fallback_genai_ttft_le[] = {
    "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25",
    "0.5", "0.75", "1", "2.5", "5", "7.5", "10", "+Inf"
};

static char  *ngx_http_llm_fallback_genai_token_types[] = {
    "input", "output"
};


/*
 * in the master, at start and on every reload, after the breaker nodes:
 * forget the providers no longer configured, add the new ones; returns
 * the number of providers left without a node
 */

ngx_uint_t
ngx_http_llm_fallback_genai_sync(ngx_http_llm_fallback_breaker_t *cb)
{
    size_t                               size;
    uint32_t                             hash;
    ngx_uint_t                           i, n, missing;
    ngx_queue_t                         *q, *next;
    ngx_http_llm_fallback_shctx_t       *sh;
    ngx_http_llm_fallback_provider_t    *p;
    ngx_http_llm_fallback_genai_node_t  *node;

    sh = cb->sh;
    p = cb->providers->elts;
    n = cb->providers->nelts;
    missing = 0;

    ngx_shmtx_lock(&cb->shpool->mutex);

    if (sh->genai_rbtree.root == NULL) {
        ngx_rbtree_init(&sh->genai_rbtree, &sh->genai_sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_queue_init(&sh->genai_queue);
    }

    for (q = ngx_queue_head(&sh->genai_queue);
         q != ngx_queue_sentinel(&sh->genai_queue);
         q = next)
    {
        next = ngx_queue_next(q);

        node = ngx_queue_data(q, ngx_http_llm_fallback_genai_node_t, queue);

        for (i = 0; i < n; i++) {
            if (p[i].name.len == node->sn.str.len
                && ngx_memcmp(p[i].name.data, node->sn.str.data,
                              p[i].name.len)
                   == 0)
            {
                break;
            }
        }

        if (i < n) {
            continue;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&sh->genai_rbtree, &node->sn.node);
        ngx_slab_free_locked(cb->shpool, node);
    }

    for (i = 0; i < n; i++) {

        hash = ngx_crc32_short(p[i].name.data, p[i].name.len);

        if (ngx_http_llm_fallback_genai_lookup(sh, &p[i].name, hash)) {
            continue;
        }

        size = offsetof(ngx_http_llm_fallback_genai_node_t, name)
               + p[i].name.len;

        node = ngx_slab_alloc_locked(cb->shpool, size);
        if (node == NULL) {
            missing++;
            continue;
        }

        ngx_memzero(node, size);
        ngx_memcpy(node->name, p[i].name.data, p[i].name.len);

        node->sn.node.key = hash;
        node->sn.str.len = p[i].name.len;
        node->sn.str.data = node->name;

        ngx_rbtree_insert(&sh->genai_rbtree, &node->sn.node);
        ngx_queue_insert_tail(&sh->genai_queue, &node->queue);
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    return missing;
}


static ngx_http_llm_fallback_genai_node_t *
ngx_http_llm_fallback_genai_lookup(ngx_http_llm_fallback_shctx_t *sh,
    ngx_str_t *name, uint32_t hash)
{
    if (sh->genai_rbtree.root == NULL) {
        return NULL;
    }

    return (ngx_http_llm_fallback_genai_node_t *)
               ngx_str_rbtree_lookup(&sh->genai_rbtree, name, hash);
}


/*
 * after an attempt that answered: its duration, its time to the first
 * content (to the whole answer when not streaming) and its tokens
 */

void
ngx_http_llm_fallback_genai_count(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc)
{
    uint32_t                             hash;
    ngx_str_t                           *request, *response;
    ngx_int_t                            tokens[2];
    ngx_uint_t                           i;
    ngx_msec_t                           now, duration;
    ngx_msec_int_t                       ttft;
    ngx_http_llm_fallback_breaker_t     *cb;
    ngx_http_llm_fallback_provider_t    *p;
    ngx_http_llm_fallback_genai_row_t   *row;
    ngx_http_llm_fallback_main_conf_t   *lmcf;
    ngx_http_llm_fallback_genai_node_t  *node;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);
    cb = lmcf->breaker;

    if (cb == NULL || cb->sh == NULL) {
        return;
    }

    p = sc->provider;

    request = p->model.len ? &p->model : &ctx->client_model;
    response = &ctx->result.model;

    now = ngx_current_msec;
    duration = now - ctx->attempt_start;

    /* ctx->ttft is from the start of the request, fallbacks included */

    ttft = (ngx_msec_int_t) (ctx->start + ctx->ttft - ctx->attempt_start);

    if (ttft < 0 || ttft > (ngx_msec_int_t) duration) {
        ttft = (ngx_msec_int_t) duration;
    }

    tokens[NGX_HTTP_LLM_FALLBACK_GENAI_INPUT] = ctx->result.prompt_tokens;
    tokens[NGX_HTTP_LLM_FALLBACK_GENAI_OUTPUT] = ctx->result.completion_tokens;

    hash = ngx_crc32_short(p->name.data, p->name.len);

    ngx_shmtx_lock(&cb->shpool->mutex);

    node = ngx_http_llm_fallback_genai_lookup(cb->sh, &p->name, hash);

    if (node) {
        row = ngx_http_llm_fallback_genai_row(node, request, response);

        row->count++;

        ngx_http_llm_fallback_genai_observe(row->duration,
                                  ngx_http_llm_fallback_genai_duration_bounds,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NDURATION,
                                  duration);
        row->duration_sum += duration;

        ngx_http_llm_fallback_genai_observe(row->ttft,
                                  ngx_http_llm_fallback_genai_ttft_bounds,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NTTFT,
                                  (ngx_uint_t) ttft);
        row->ttft_sum += (ngx_atomic_uint_t) ttft;

        for (i = 0; i < 2; i++) {

            /* a provider that did not tell is not counted */

            if (tokens[i] < 0) {
                continue;
            }

            ngx_http_llm_fallback_genai_observe(row->tokens[i],
                                  ngx_http_llm_fallback_genai_tokens_bounds,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NTOKENS,
                                  (ngx_uint_t) tokens[i]);
            row->tokens_sum[i] += (ngx_atomic_uint_t) tokens[i];
            row->tokens_count[i]++;
        }
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);
}


/* under the mutex: the pair's row, a free one, or the last one */

static ngx_http_llm_fallback_genai_row_t *
ngx_http_llm_fallback_genai_row(ngx_http_llm_fallback_genai_node_t *node,
    ngx_str_t *request, ngx_str_t *response)
{
    ngx_uint_t                          i;
    ngx_http_llm_fallback_genai_row_t  *row;

    if (request->len > NGX_HTTP_LLM_FALLBACK_GENAI_MODEL_LEN
        || response->len > NGX_HTTP_LLM_FALLBACK_GENAI_MODEL_LEN)
    {
        return &node->rows[NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS - 1];
    }

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS - 1; i++) {
        row = &node->rows[i];

        if (!row->used) {
            ngx_memcpy(row->request_model, request->data, request->len);
            ngx_memcpy(row->response_model, response->data, response->len);
            row->request_len = request->len;
            row->response_len = response->len;
            row->used = 1;

            return row;
        }

        if (row->request_len == request->len
            && row->response_len == response->len
            && ngx_memcmp(row->request_model, request->data, request->len)
               == 0
            && ngx_memcmp(row->response_model, response->data,
                          response->len)
               == 0)
        {
            return row;
        }
    }

    return &node->rows[NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS - 1];
}


static void
ngx_http_llm_fallback_genai_observe(ngx_atomic_uint_t *buckets,
    ngx_uint_t *bounds, ngx_uint_t n, ngx_uint_t value)
{
    ngx_uint_t  i;

    for (i = 0; i < n - 1; i++) {
        if (value <= bounds[i]) {
            break;
        }
    }

    buckets[i]++;
}


/* the Prometheus text of the three histograms, for llm_status */

ngx_buf_t *
ngx_http_llm_fallback_genai_prometheus(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf)
{
    u_char                              *p;
    size_t                               size;
    uint32_t                            *hash;
    ngx_buf_t                           *b;
    ngx_uint_t                           i, j, k, n, nlines;
    ngx_http_llm_fallback_breaker_t     *cb;
    ngx_http_llm_fallback_provider_t    *pr;
    ngx_http_llm_fallback_genai_row_t   *rows, *row;
    ngx_http_llm_fallback_genai_line_t  *lines, *l;
    ngx_http_llm_fallback_genai_node_t  *node;

    cb = lmcf->breaker;
    pr = lmcf->providers.elts;
    n = lmcf->providers.nelts;

    /* everything is allocated before the lock */

    rows = ngx_palloc(r->pool, (n + 1) * NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS
                               * sizeof(ngx_http_llm_fallback_genai_row_t));
    if (rows == NULL) {
        return NULL;
    }

    lines = ngx_palloc(r->pool, (n + 1) * NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS
                                * sizeof(ngx_http_llm_fallback_genai_line_t));
    if (lines == NULL) {
        return NULL;
    }

    hash = ngx_palloc(r->pool, (n + 1) * sizeof(uint32_t));
    if (hash == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        hash[i] = ngx_crc32_short(pr[i].name.data, pr[i].name.len);
    }

    nlines = 0;

    ngx_shmtx_lock(&cb->shpool->mutex);

    for (i = 0; i < n; i++) {
        node = ngx_http_llm_fallback_genai_lookup(cb->sh, &pr[i].name,
                                                  hash[i]);
        if (node == NULL) {
            continue;
        }

        for (j = 0; j < NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS; j++) {
            if (node->rows[j].count == 0) {
                continue;
            }

            /* the last row is never "used": it is "other" */

            row = &rows[nlines];
            ngx_memcpy(row, &node->rows[j],
                       sizeof(ngx_http_llm_fallback_genai_row_t));

            lines[nlines].provider = &pr[i].name;
            lines[nlines].row = row;
            nlines++;
        }
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    size = NGX_HTTP_LLM_FALLBACK_GENAI_HEAD;

    for (k = 0; k < nlines; k++) {
        l = &lines[k];
        size += NGX_HTTP_LLM_FALLBACK_GENAI_LINES
                * (NGX_HTTP_LLM_FALLBACK_GENAI_LINE
                   + 2 * (l->provider->len + l->row->request_len
                          + l->row->response_len));
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_cpymem(b->last, NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TOKENS,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TOKENS) - 1);

    for (k = 0; k < nlines; k++) {
        row = lines[k].row;

        for (i = 0; i < 2; i++) {
            if (row->tokens_count[i] == 0) {
                continue;
            }

            p = ngx_http_llm_fallback_genai_histogram(p, &lines[k],
                                  "gen_ai_client_token_usage",
                                  ngx_http_llm_fallback_genai_token_types[i],
                                  row->tokens[i],
                                  ngx_http_llm_fallback_genai_tokens_le,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NTOKENS,
                                  row->tokens_sum[i], 0);
        }
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_GENAI_DURATION,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_GENAI_DURATION) - 1);

    for (k = 0; k < nlines; k++) {
        row = lines[k].row;

        p = ngx_http_llm_fallback_genai_histogram(p, &lines[k],
                                  "gen_ai_server_request_duration_seconds",
                                  NULL, row->duration,
                                  ngx_http_llm_fallback_genai_duration_le,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NDURATION,
                                  row->duration_sum, 1);
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TTFT,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_GENAI_TTFT) - 1);

    for (k = 0; k < nlines; k++) {
        row = lines[k].row;

        p = ngx_http_llm_fallback_genai_histogram(p, &lines[k],
                                  "gen_ai_server_time_to_first_token_seconds",
                                  NULL, row->ttft,
                                  ngx_http_llm_fallback_genai_ttft_le,
                                  NGX_HTTP_LLM_FALLBACK_GENAI_NTTFT,
                                  row->ttft_sum, 1);
    }

    b->last = p;

    return b;
}


/* the _bucket, _sum and _count lines of one series */

static u_char *
ngx_http_llm_fallback_genai_histogram(u_char *p,
    ngx_http_llm_fallback_genai_line_t *l, const char *name,
    const char *type, ngx_atomic_uint_t *buckets, char **le, ngx_uint_t n,
    ngx_atomic_uint_t sum, ngx_uint_t msec)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  count;

    count = 0;

    for (i = 0; i < n; i++) {
        count += buckets[i];

        p = ngx_sprintf(p, "%s_bucket{", name);
        p = ngx_http_llm_fallback_genai_labels(p, l);

        if (type) {
            p = ngx_sprintf(p, ",gen_ai_token_type=\"%s\"", type);
        }

        p = ngx_sprintf(p, ",le=\"%s\"} %uA\n", le[i], count);
    }

    p = ngx_sprintf(p, "%s_sum{", name);
    p = ngx_http_llm_fallback_genai_labels(p, l);

    if (type) {
        p = ngx_sprintf(p, ",gen_ai_token_type=\"%s\"", type);
    }

    if (msec) {
        p = ngx_sprintf(p, "} %uA.%03uA\n", sum / 1000, sum % 1000);

    } else {
        p = ngx_sprintf(p, "} %uA\n", sum);
    }

    p = ngx_sprintf(p, "%s_count{", name);
    p = ngx_http_llm_fallback_genai_labels(p, l);

    if (type) {
        p = ngx_sprintf(p, ",gen_ai_token_type=\"%s\"", type);
    }

    return ngx_sprintf(p, "} %uA\n", count);
}


static u_char *
ngx_http_llm_fallback_genai_labels(u_char *p,
    ngx_http_llm_fallback_genai_line_t *l)
{
    ngx_http_llm_fallback_genai_row_t  *row;

    row = l->row;

    p = ngx_cpymem(p, "gen_ai_operation_name=\"chat\","
                   "gen_ai_provider_name=\"",
                   sizeof("gen_ai_operation_name=\"chat\","
                          "gen_ai_provider_name=\"") - 1);
    p = ngx_http_llm_fallback_genai_escape(p, l->provider->data,
                                           l->provider->len);

    p = ngx_cpymem(p, "\",gen_ai_request_model=\"",
                   sizeof("\",gen_ai_request_model=\"") - 1);

    if (row->used) {
        p = ngx_http_llm_fallback_genai_escape(p, row->request_model,
                                               row->request_len);

    } else {
        p = ngx_cpymem(p, "other", sizeof("other") - 1);
    }

    p = ngx_cpymem(p, "\",gen_ai_response_model=\"",
                   sizeof("\",gen_ai_response_model=\"") - 1);

    if (row->used) {
        p = ngx_http_llm_fallback_genai_escape(p, row->response_model,
                                               row->response_len);

    } else {
        p = ngx_cpymem(p, "other", sizeof("other") - 1);
    }

    *p++ = '"';

    return p;
}


/* a Prometheus label value: backslash, double quote and line feed */

static u_char *
ngx_http_llm_fallback_genai_escape(u_char *p, u_char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {

        if (s[i] == '\\' || s[i] == '"') {
            *p++ = '\\';
            *p++ = s[i];

        } else if (s[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = s[i];
        }
    }

    return p;
}
