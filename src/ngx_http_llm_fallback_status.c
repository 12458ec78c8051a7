
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_status_page.h"


/*
 * llm_status: the breaker state and the counters of the shared zone, as
 * JSON or as Prometheus text; and the per-request counters it shows.
 */


/* upper bounds of the output, besides the provider names */
#define NGX_HTTP_LLM_FALLBACK_JSON_MAIN        1024
#define NGX_HTTP_LLM_FALLBACK_JSON_PROVIDER    2048
#define NGX_HTTP_LLM_FALLBACK_PROM_MAIN        4096
#define NGX_HTTP_LLM_FALLBACK_PROM_LINES       48
#define NGX_HTTP_LLM_FALLBACK_PROM_LINE        128

#define NGX_HTTP_LLM_FALLBACK_PROM_STATE                                      \
    "# HELP llm_breaker_state Circuit breaker state: 0 closed, 1 open, "     \
    "2 half-open.\n"                                                          \
    "# TYPE llm_breaker_state gauge\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_RETRY                                      \
    "# HELP llm_breaker_retry_seconds Seconds until an open circuit "        \
    "admits a trial request.\n"                                               \
    "# TYPE llm_breaker_retry_seconds gauge\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_CONSECUTIVE                                \
    "# HELP llm_breaker_consecutive_failures Failed attempts since the "     \
    "last success.\n"                                                         \
    "# TYPE llm_breaker_consecutive_failures gauge\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_OPENED                                     \
    "# HELP llm_breaker_opened_total Times the circuit opened.\n"            \
    "# TYPE llm_breaker_opened_total counter\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_TRIALS                                     \
    "# HELP llm_breaker_trials Half-open trial requests in flight.\n"        \
    "# TYPE llm_breaker_trials gauge\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_ATTEMPTS                                   \
    "# HELP llm_provider_attempts_total Attempts by outcome; \"open\" "      \
    "counts providers skipped while their circuit was open.\n"                \
    "# TYPE llm_provider_attempts_total counter\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_TOKENS                                     \
    "# HELP llm_tokens_total Tokens of successful attempts, as reported "    \
    "by the providers.\n"                                                     \
    "# TYPE llm_tokens_total counter\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_DURATION                                   \
    "# HELP llm_attempt_duration_seconds Duration of attempts.\n"            \
    "# TYPE llm_attempt_duration_seconds histogram\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_REQUESTS                                   \
    "# HELP llm_requests_total Requests to LLM endpoints by final status "   \
    "class.\n"                                                                \
    "# TYPE llm_requests_total counter\n"

#define NGX_HTTP_LLM_FALLBACK_PROM_CACHE                                      \
    "# HELP llm_cache_requests_total Response cache lookups by result.\n"    \
    "# TYPE llm_cache_requests_total counter\n"


typedef struct {
    ngx_str_t                         name;
    ngx_str_t                         value;
} ngx_http_llm_fallback_status_header_t;


typedef struct {
    ngx_http_llm_fallback_stats_t     stats;
    ngx_http_llm_fallback_provider_t *provider;
    ngx_msec_t                        retry;
    ngx_uint_t                        state;
    ngx_uint_t                        tracked;
} ngx_http_llm_fallback_snapshot_t;


static ngx_int_t ngx_http_llm_fallback_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_status_page(ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_status_log_handler(
    ngx_http_request_t *r);
static ngx_http_llm_fallback_snapshot_t *ngx_http_llm_fallback_snapshot(
    ngx_http_request_t *r, ngx_http_llm_fallback_main_conf_t *lmcf);
static ngx_buf_t *ngx_http_llm_fallback_status_json(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf,
    ngx_http_llm_fallback_snapshot_t *snap);
static u_char *ngx_http_llm_fallback_json_provider(u_char *p,
    ngx_http_llm_fallback_breaker_t *cb,
    ngx_http_llm_fallback_snapshot_t *s);
static ngx_buf_t *ngx_http_llm_fallback_status_prometheus(
    ngx_http_request_t *r, ngx_http_llm_fallback_main_conf_t *lmcf,
    ngx_http_llm_fallback_snapshot_t *snap);
static u_char *ngx_http_llm_fallback_prom_histogram(u_char *p,
    ngx_http_llm_fallback_snapshot_t *s);
static u_char *ngx_http_llm_fallback_prom_label(u_char *p, ngx_str_t *s);


static ngx_str_t  ngx_http_llm_fallback_status_json_type =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_status_prom_type =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");
static ngx_str_t  ngx_http_llm_fallback_status_html_type =
    ngx_string("text/html; charset=utf-8");

/* the status page's headers, besides its Content-Type */

static ngx_http_llm_fallback_status_header_t
    ngx_http_llm_fallback_page_headers[] =
{
    { ngx_string("Cache-Control"), ngx_string("no-store") },
    { ngx_string("Content-Security-Policy"),
      ngx_string(NGX_HTTP_LLM_FALLBACK_STATUS_PAGE_CSP) },
    { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
    { ngx_string("Referrer-Policy"), ngx_string("no-referrer") },
    { ngx_null_string, ngx_null_string }
};

static char  *ngx_http_llm_fallback_states[] = {
    "closed", "open", "half_open", "disabled"
};

static char  *ngx_http_llm_fallback_cache_names[] = {
    "hit", "miss", "stale", "bypass", "error"
};

/* the upper bounds of llm_attempt_duration_seconds, as breaker.c counts */

static ngx_msec_t  ngx_http_llm_fallback_bounds_ms[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};

static char  *ngx_http_llm_fallback_le[] = {
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"
};


/* snapshot states: the stored two, and two derived ones */
#define NGX_HTTP_LLM_FALLBACK_STATE_HALF_OPEN  2
#define NGX_HTTP_LLM_FALLBACK_STATE_DISABLED   3


char *
ngx_http_llm_fallback_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_str_t                          *value;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    if (lcf->status_format) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lcf->status_format = NGX_HTTP_LLM_FALLBACK_STATUS_JSON;

    if (cf->args->nelts == 2) {

        if (ngx_strcmp(value[1].data, "prometheus") == 0) {
            lcf->status_format = NGX_HTTP_LLM_FALLBACK_STATUS_PROMETHEUS;

        } else if (ngx_strcmp(value[1].data, "html") == 0) {
            lcf->status_format = NGX_HTTP_LLM_FALLBACK_STATUS_HTML;

        } else if (ngx_strcmp(value[1].data, "json") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llm_fallback_status_handler;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_llm_fallback_module);
    lmcf->status_used = 1;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_llm_fallback_status_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_llm_fallback_status_log_handler;

    return NGX_OK;
}


/* requests to llm_fallback_chain locations, by final status class */

static ngx_int_t
ngx_http_llm_fallback_status_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                          status;
    ngx_http_llm_fallback_loc_conf_t   *lcf;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);

    if (lcf->chain == NULL && lcf->chain_var == NULL) {
        return NGX_OK;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    if (lmcf->breaker == NULL || lmcf->breaker->sh == NULL) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;
    status /= 100;

    if (status < 1 || status > 5) {
        status = 0;
    }

    (void) ngx_atomic_fetch_add(&lmcf->breaker->sh->requests[status], 1);

    return NGX_OK;
}


/* for the response cache: one lookup with its result */

void
ngx_http_llm_fallback_status_cache(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    if (lmcf->breaker == NULL || lmcf->breaker->sh == NULL
        || status >= NGX_HTTP_LLM_FALLBACK_STAT_NCACHE)
    {
        return;
    }

    (void) ngx_atomic_fetch_add(&lmcf->breaker->sh->cache[status], 1);
}


static ngx_int_t
ngx_http_llm_fallback_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_str_t                           arg;
    ngx_buf_t                          *b, *genai;
    ngx_uint_t                          format;
    ngx_chain_t                         out[2];
    ngx_http_llm_fallback_loc_conf_t   *lcf;
    ngx_http_llm_fallback_snapshot_t   *snap;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);

    format = lcf->status_format;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {

        if (arg.len == 10 && ngx_strncmp(arg.data, "prometheus", 10) == 0) {
            format = NGX_HTTP_LLM_FALLBACK_STATUS_PROMETHEUS;

        } else if (arg.len == 4 && ngx_strncmp(arg.data, "json", 4) == 0) {
            format = NGX_HTTP_LLM_FALLBACK_STATUS_JSON;

        } else if (arg.len == 4 && ngx_strncmp(arg.data, "html", 4) == 0) {
            format = NGX_HTTP_LLM_FALLBACK_STATUS_HTML;
        }
    }

    if (format == NGX_HTTP_LLM_FALLBACK_STATUS_HTML) {
        return ngx_http_llm_fallback_status_page(r);
    }

    if (lmcf->breaker == NULL || lmcf->breaker->sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    snap = ngx_http_llm_fallback_snapshot(r, lmcf);
    if (snap == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    genai = NULL;

    if (format == NGX_HTTP_LLM_FALLBACK_STATUS_PROMETHEUS) {
        b = ngx_http_llm_fallback_status_prometheus(r, lmcf, snap);
        r->headers_out.content_type = ngx_http_llm_fallback_status_prom_type;

        if (b) {
            genai = ngx_http_llm_fallback_genai_prometheus(r, lmcf);
            if (genai == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

    } else {
        b = ngx_http_llm_fallback_status_json(r, lmcf, snap);
        r->headers_out.content_type = ngx_http_llm_fallback_status_json_type;
    }

    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    if (genai) {
        r->headers_out.content_length_n += genai->last - genai->pos;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out[0].buf = b;
    out[0].next = NULL;

    if (genai) {
        out[0].next = &out[1];
        out[1].buf = genai;
        out[1].next = NULL;
        b = genai;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return ngx_http_output_filter(r, &out[0]);
}


/*
 * the status page: one document with its style and script inline, which
 * fetches its own location's ?format=json; the Content-Security-Policy
 * allows those two by their SHA-256 and a connection to the same origin
 * only
 */

static ngx_int_t
ngx_http_llm_fallback_status_page(ngx_http_request_t *r)
{
    ngx_int_t                               rc;
    ngx_buf_t                              *b;
    ngx_chain_t                             out;
    ngx_http_llm_fallback_status_header_t  *h;

    for (h = ngx_http_llm_fallback_page_headers; h->name.len; h++) {
        if (ngx_http_llm_fallback_add_header(r, (const char *) h->name.data,
                                             &h->value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    r->headers_out.content_type = ngx_http_llm_fallback_status_html_type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n =
                                sizeof(NGX_HTTP_LLM_FALLBACK_STATUS_PAGE) - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) NGX_HTTP_LLM_FALLBACK_STATUS_PAGE;
    b->last = b->pos + sizeof(NGX_HTTP_LLM_FALLBACK_STATUS_PAGE) - 1;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * one copy of every provider's node, taken under the mutex; everything
 * it needs is allocated before
 */

static ngx_http_llm_fallback_snapshot_t *
ngx_http_llm_fallback_snapshot(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf)
{
    uint32_t                           *hash;
    ngx_uint_t                          i, n;
    ngx_msec_t                          now;
    ngx_msec_int_t                      left;
    ngx_str_node_t                     *sn;
    ngx_http_llm_fallback_node_t       *node;
    ngx_http_llm_fallback_breaker_t    *cb;
    ngx_http_llm_fallback_provider_t   *p;
    ngx_http_llm_fallback_snapshot_t   *snap, *s;

    cb = lmcf->breaker;
    p = lmcf->providers.elts;
    n = lmcf->providers.nelts;

    snap = ngx_pcalloc(r->pool,
                       (n + 1) * sizeof(ngx_http_llm_fallback_snapshot_t));
    if (snap == NULL) {
        return NULL;
    }

    hash = ngx_palloc(r->pool, (n + 1) * sizeof(uint32_t));
    if (hash == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        hash[i] = ngx_crc32_short(p[i].name.data, p[i].name.len);
    }

    now = ngx_current_msec;

    ngx_shmtx_lock(&cb->shpool->mutex);

    for (i = 0; i < n; i++) {
        sn = ngx_str_rbtree_lookup(&cb->sh->rbtree, &p[i].name, hash[i]);

        if (sn) {
            node = (ngx_http_llm_fallback_node_t *) sn;
            ngx_memcpy(&snap[i].stats, &node->stats,
                       sizeof(ngx_http_llm_fallback_stats_t));
            snap[i].tracked = 1;
        }
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    for (i = 0; i < n; i++) {
        s = &snap[i];
        s->provider = &p[i];

        if (cb->failures == 0 || !p[i].breaker) {
            s->state = NGX_HTTP_LLM_FALLBACK_STATE_DISABLED;
            continue;
        }

        if (s->stats.state == NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED) {
            s->state = NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED;
            continue;
        }

        left = (ngx_msec_int_t) (s->stats.open_until - now);

        if (left > 0) {
            s->state = NGX_HTTP_LLM_FALLBACK_BREAKER_OPEN;
            s->retry = (ngx_msec_t) left;

        } else {
            s->state = NGX_HTTP_LLM_FALLBACK_STATE_HALF_OPEN;
        }
    }

    return snap;
}


static ngx_buf_t *
ngx_http_llm_fallback_status_json(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf,
    ngx_http_llm_fallback_snapshot_t *snap)
{
    u_char                           *p;
    size_t                            size;
    ngx_buf_t                        *b;
    ngx_uint_t                        i, n;
    ngx_atomic_uint_t                 total;
    ngx_http_llm_fallback_shctx_t    *sh;
    ngx_http_llm_fallback_breaker_t  *cb;

    cb = lmcf->breaker;
    sh = cb->sh;
    n = lmcf->providers.nelts;

    size = NGX_HTTP_LLM_FALLBACK_JSON_MAIN + 6 * cb->shm_zone->shm.name.len;

    for (i = 0; i < n; i++) {
        size += NGX_HTTP_LLM_FALLBACK_JSON_PROVIDER
                + 6 * snap[i].provider->name.len;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_cpymem(b->last, "{\"zone\":\"", sizeof("{\"zone\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, cb->shm_zone->shm.name.data,
                                   cb->shm_zone->shm.name.len);

    if (cb->failures) {
        p = ngx_sprintf(p, "\",\"breaker\":{\"failures\":%ui,"
                        "\"window_ms\":%M,\"cooldown_ms\":%M,"
                        "\"max_cooldown_ms\":%M,\"probes\":%ui},",
                        cb->failures, cb->window, cb->cooldown,
                        cb->max_cooldown, cb->probes);

    } else {
        p = ngx_cpymem(p, "\",\"breaker\":null,",
                       sizeof("\",\"breaker\":null,") - 1);
    }

    p = ngx_cpymem(p, "\"attempt_duration_buckets_ms\":[",
                   sizeof("\"attempt_duration_buckets_ms\":[") - 1);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NBUCKETS - 1; i++) {
        p = ngx_sprintf(p, i ? ",%M" : "%M",
                        ngx_http_llm_fallback_bounds_ms[i]);
    }

    p = ngx_cpymem(p, "],\"providers\":{", sizeof("],\"providers\":{") - 1);

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_llm_fallback_json_provider(p, cb, &snap[i]);
    }

    total = 0;

    for (i = 0; i < 6; i++) {
        total += sh->requests[i];
    }

    p = ngx_sprintf(p, "},\"requests\":{\"total\":%uA,\"1xx\":%uA,"
                    "\"2xx\":%uA,\"3xx\":%uA,\"4xx\":%uA,\"5xx\":%uA},",
                    total, sh->requests[1], sh->requests[2],
                    sh->requests[3], sh->requests[4], sh->requests[5]);

    p = ngx_sprintf(p, "\"cache\":{\"hit\":%uA,\"miss\":%uA,\"stale\":%uA,"
                    "\"bypass\":%uA,\"error\":%uA}}\n",
                    sh->cache[NGX_HTTP_LLM_FALLBACK_STAT_CACHE_HIT],
                    sh->cache[NGX_HTTP_LLM_FALLBACK_STAT_CACHE_MISS],
                    sh->cache[NGX_HTTP_LLM_FALLBACK_STAT_CACHE_STALE],
                    sh->cache[NGX_HTTP_LLM_FALLBACK_STAT_CACHE_BYPASS],
                    sh->cache[NGX_HTTP_LLM_FALLBACK_STAT_CACHE_ERROR]);

    b->last = p;

    return b;
}


static u_char *
ngx_http_llm_fallback_json_provider(u_char *p,
    ngx_http_llm_fallback_breaker_t *cb, ngx_http_llm_fallback_snapshot_t *s)
{
    ngx_uint_t                      i;
    ngx_http_llm_fallback_stats_t  *st;

    st = &s->stats;

    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, s->provider->name.data,
                                   s->provider->name.len);

    p = ngx_sprintf(p, "\":{\"state\":\"%s\",\"tracked\":%s,"
                    "\"retry_in\":%M,\"consecutive_failures\":%ui,"
                    "\"opened\":%uA,\"probes\":%ui,"
                    "\"attempts\":%uA,\"successes\":%uA,",
                    ngx_http_llm_fallback_states[s->state],
                    s->tracked ? "true" : "false",
                    (s->retry + 999) / 1000, st->consecutive,
                    st->opened, st->probes, st->attempts, st->successes);

    p = ngx_sprintf(p, "\"failures\":{\"error\":%uA,\"timeout\":%uA,"
                    "\"invalid_response\":%uA,\"open\":%uA",
                    st->failed[NGX_HTTP_LLM_FALLBACK_ERROR],
                    st->failed[NGX_HTTP_LLM_FALLBACK_TIMEOUT],
                    st->failed[NGX_HTTP_LLM_FALLBACK_INVALID],
                    st->failed[NGX_HTTP_LLM_FALLBACK_OPEN]);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NCODES; i++) {
        if (st->codes[i].code == 0) {
            break;
        }

        p = ngx_sprintf(p, ",\"http_%uA\":%uA", st->codes[i].code,
                        st->codes[i].count);
    }

    p = ngx_sprintf(p, "},\"tokens\":{\"prompt\":%uA,\"completion\":%uA},"
                    "\"attempt_duration_ms\":{\"count\":%uA,\"sum\":%uA,"
                    "\"buckets\":[",
                    st->prompt_tokens, st->completion_tokens,
                    st->attempts, st->duration_sum);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NBUCKETS; i++) {
        p = ngx_sprintf(p, i ? ",%uA" : "%uA", st->duration[i]);
    }

    p = ngx_cpymem(p, "]}}", sizeof("]}}") - 1);

    return p;
}


static ngx_buf_t *
ngx_http_llm_fallback_status_prometheus(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf,
    ngx_http_llm_fallback_snapshot_t *snap)
{
    u_char                           *p;
    size_t                            size;
    ngx_str_t                        *name;
    ngx_buf_t                        *b;
    ngx_uint_t                        i, j, n, breakers;
    ngx_http_llm_fallback_shctx_t    *sh;
    ngx_http_llm_fallback_stats_t    *st;
    ngx_http_llm_fallback_breaker_t  *cb;

    cb = lmcf->breaker;
    sh = cb->sh;
    n = lmcf->providers.nelts;

    size = NGX_HTTP_LLM_FALLBACK_PROM_MAIN;

    for (i = 0; i < n; i++) {
        size += NGX_HTTP_LLM_FALLBACK_PROM_LINES
                * (NGX_HTTP_LLM_FALLBACK_PROM_LINE
                   + 2 * snap[i].provider->name.len);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NULL;
    }

    p = b->last;

    breakers = 0;

    for (i = 0; i < n; i++) {
        if (snap[i].state != NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
            breakers = 1;
        }
    }

    if (breakers) {
        p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_STATE,
                       sizeof(NGX_HTTP_LLM_FALLBACK_PROM_STATE) - 1);

        for (i = 0; i < n; i++) {
            if (snap[i].state == NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
                continue;
            }

            p = ngx_cpymem(p, "llm_breaker_state{provider=\"",
                           sizeof("llm_breaker_state{provider=\"") - 1);
            p = ngx_http_llm_fallback_prom_label(p, &snap[i].provider->name);
            p = ngx_sprintf(p, "\"} %ui\n", snap[i].state);
        }

        p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_RETRY,
                       sizeof(NGX_HTTP_LLM_FALLBACK_PROM_RETRY) - 1);

        for (i = 0; i < n; i++) {
            if (snap[i].state == NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
                continue;
            }

            p = ngx_cpymem(p, "llm_breaker_retry_seconds{provider=\"",
                           sizeof("llm_breaker_retry_seconds{provider=\"")
                           - 1);
            p = ngx_http_llm_fallback_prom_label(p, &snap[i].provider->name);
            p = ngx_sprintf(p, "\"} %M.%03M\n", snap[i].retry / 1000,
                            snap[i].retry % 1000);
        }

        p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_CONSECUTIVE,
                       sizeof(NGX_HTTP_LLM_FALLBACK_PROM_CONSECUTIVE) - 1);

        for (i = 0; i < n; i++) {
            if (snap[i].state == NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
                continue;
            }

            p = ngx_cpymem(p, "llm_breaker_consecutive_failures{provider=\"",
                           sizeof("llm_breaker_consecutive_failures"
                                  "{provider=\"") - 1);
            p = ngx_http_llm_fallback_prom_label(p, &snap[i].provider->name);
            p = ngx_sprintf(p, "\"} %ui\n", snap[i].stats.consecutive);
        }

        p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_OPENED,
                       sizeof(NGX_HTTP_LLM_FALLBACK_PROM_OPENED) - 1);

        for (i = 0; i < n; i++) {
            if (snap[i].state == NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
                continue;
            }

            p = ngx_cpymem(p, "llm_breaker_opened_total{provider=\"",
                           sizeof("llm_breaker_opened_total{provider=\"")
                           - 1);
            p = ngx_http_llm_fallback_prom_label(p, &snap[i].provider->name);
            p = ngx_sprintf(p, "\"} %uA\n", snap[i].stats.opened);
        }

        p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_TRIALS,
                       sizeof(NGX_HTTP_LLM_FALLBACK_PROM_TRIALS) - 1);

        for (i = 0; i < n; i++) {
            if (snap[i].state == NGX_HTTP_LLM_FALLBACK_STATE_DISABLED) {
                continue;
            }

            p = ngx_cpymem(p, "llm_breaker_trials{provider=\"",
                           sizeof("llm_breaker_trials{provider=\"") - 1);
            p = ngx_http_llm_fallback_prom_label(p, &snap[i].provider->name);
            p = ngx_sprintf(p, "\"} %ui\n", snap[i].stats.probes);
        }
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_ATTEMPTS,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_ATTEMPTS) - 1);

    for (i = 0; i < n; i++) {
        name = &snap[i].provider->name;
        st = &snap[i].stats;

        for (j = 0; j < NGX_HTTP_LLM_FALLBACK_NREASONS; j++) {

            if (j == NGX_HTTP_LLM_FALLBACK_HTTP) {
                continue;
            }

            p = ngx_cpymem(p, "llm_provider_attempts_total{provider=\"",
                           sizeof("llm_provider_attempts_total{provider=\"")
                           - 1);
            p = ngx_http_llm_fallback_prom_label(p, name);

            if (j == NGX_HTTP_LLM_FALLBACK_OK) {
                p = ngx_sprintf(p, "\",outcome=\"success\"} %uA\n",
                                st->successes);
                continue;
            }

            p = ngx_sprintf(p, "\",outcome=\"%s\"} %uA\n",
                            ngx_http_llm_fallback_reason_name(j),
                            st->failed[j]);
        }

        for (j = 0; j < NGX_HTTP_LLM_FALLBACK_NCODES; j++) {
            if (st->codes[j].code == 0) {
                break;
            }

            p = ngx_cpymem(p, "llm_provider_attempts_total{provider=\"",
                           sizeof("llm_provider_attempts_total{provider=\"")
                           - 1);
            p = ngx_http_llm_fallback_prom_label(p, name);
            p = ngx_sprintf(p, "\",outcome=\"http_%uA\"} %uA\n",
                            st->codes[j].code, st->codes[j].count);
        }
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_TOKENS,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_TOKENS) - 1);

    for (i = 0; i < n; i++) {
        name = &snap[i].provider->name;

        p = ngx_cpymem(p, "llm_tokens_total{provider=\"",
                       sizeof("llm_tokens_total{provider=\"") - 1);
        p = ngx_http_llm_fallback_prom_label(p, name);
        p = ngx_sprintf(p, "\",type=\"prompt\"} %uA\n",
                        snap[i].stats.prompt_tokens);

        p = ngx_cpymem(p, "llm_tokens_total{provider=\"",
                       sizeof("llm_tokens_total{provider=\"") - 1);
        p = ngx_http_llm_fallback_prom_label(p, name);
        p = ngx_sprintf(p, "\",type=\"completion\"} %uA\n",
                        snap[i].stats.completion_tokens);
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_DURATION,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_DURATION) - 1);

    for (i = 0; i < n; i++) {
        p = ngx_http_llm_fallback_prom_histogram(p, &snap[i]);
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_REQUESTS,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_REQUESTS) - 1);

    for (i = 1; i < 6; i++) {
        p = ngx_sprintf(p, "llm_requests_total{class=\"%uixx\"} %uA\n",
                        i, sh->requests[i]);
    }

    p = ngx_cpymem(p, NGX_HTTP_LLM_FALLBACK_PROM_CACHE,
                   sizeof(NGX_HTTP_LLM_FALLBACK_PROM_CACHE) - 1);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_STAT_NCACHE; i++) {
        p = ngx_sprintf(p, "llm_cache_requests_total{status=\"%s\"} %uA\n",
                        ngx_http_llm_fallback_cache_names[i], sh->cache[i]);
    }

    b->last = p;

    return b;
}


static u_char *
ngx_http_llm_fallback_prom_histogram(u_char *p,
    ngx_http_llm_fallback_snapshot_t *s)
{
    ngx_str_t          *name;
    ngx_uint_t          i;
    ngx_atomic_uint_t   count;

    name = &s->provider->name;
    count = 0;

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NBUCKETS; i++) {
        count += s->stats.duration[i];

        p = ngx_cpymem(p, "llm_attempt_duration_seconds_bucket{provider=\"",
                       sizeof("llm_attempt_duration_seconds_bucket"
                              "{provider=\"") - 1);
        p = ngx_http_llm_fallback_prom_label(p, name);
        p = ngx_sprintf(p, "\",le=\"%s\"} %uA\n",
                        ngx_http_llm_fallback_le[i], count);
    }

    p = ngx_cpymem(p, "llm_attempt_duration_seconds_sum{provider=\"",
                   sizeof("llm_attempt_duration_seconds_sum{provider=\"")
                   - 1);
    p = ngx_http_llm_fallback_prom_label(p, name);
    p = ngx_sprintf(p, "\"} %uA.%03uA\n", s->stats.duration_sum / 1000,
                    s->stats.duration_sum % 1000);

    p = ngx_cpymem(p, "llm_attempt_duration_seconds_count{provider=\"",
                   sizeof("llm_attempt_duration_seconds_count{provider=\"")
                   - 1);
    p = ngx_http_llm_fallback_prom_label(p, name);
    p = ngx_sprintf(p, "\"} %uA\n", count);

    return p;
}


/* a Prometheus label value: backslash, double quote and line feed */

static u_char *
ngx_http_llm_fallback_prom_label(u_char *p, ngx_str_t *s)
{
    u_char  ch;
    size_t  i;

    for (i = 0; i < s->len; i++) {
        ch = s->data[i];

        if (ch == '\\' || ch == '"') {
            *p++ = '\\';
            *p++ = ch;

        } else if (ch == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = ch;
        }
    }

    return p;
}
