
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_COMMON_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_json.h"


#define NGX_HTTP_LLM_FALLBACK_MAX_CHAIN        32

/* llm_fallback_on conditions */
#define NGX_HTTP_LLM_FALLBACK_ON_ERROR         0x0002
#define NGX_HTTP_LLM_FALLBACK_ON_TIMEOUT       0x0004
#define NGX_HTTP_LLM_FALLBACK_ON_INVALID       0x0008
#define NGX_HTTP_LLM_FALLBACK_ON_HTTP_5XX      0x0010
#define NGX_HTTP_LLM_FALLBACK_ON_OFF           0x0020

/* http_NNN conditions: one bit per status 400..599 */
#define NGX_HTTP_LLM_FALLBACK_CODE_MIN         400
#define NGX_HTTP_LLM_FALLBACK_CODE_MAX         599
#define NGX_HTTP_LLM_FALLBACK_CODE_BYTES       25

/* why an attempt did not produce the answer */
#define NGX_HTTP_LLM_FALLBACK_OK               0
#define NGX_HTTP_LLM_FALLBACK_ERROR            1
#define NGX_HTTP_LLM_FALLBACK_TIMEOUT          2
#define NGX_HTTP_LLM_FALLBACK_INVALID          3
#define NGX_HTTP_LLM_FALLBACK_HTTP             4
#define NGX_HTTP_LLM_FALLBACK_OPEN             5
#define NGX_HTTP_LLM_FALLBACK_NREASONS         6

/* circuit breaker states, in the shared zone */
#define NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED   0
#define NGX_HTTP_LLM_FALLBACK_BREAKER_OPEN     1

/* distinct http_NNN failure codes counted per provider */
#define NGX_HTTP_LLM_FALLBACK_NCODES           16

/* llm_attempt_duration_seconds buckets, the last one is +Inf */
#define NGX_HTTP_LLM_FALLBACK_NBUCKETS         10

/* cache lookups counted for llm_status */
#define NGX_HTTP_LLM_FALLBACK_STAT_CACHE_HIT     0
#define NGX_HTTP_LLM_FALLBACK_STAT_CACHE_MISS    1
#define NGX_HTTP_LLM_FALLBACK_STAT_CACHE_STALE   2
#define NGX_HTTP_LLM_FALLBACK_STAT_CACHE_BYPASS  3
#define NGX_HTTP_LLM_FALLBACK_STAT_CACHE_ERROR   4
#define NGX_HTTP_LLM_FALLBACK_STAT_NCACHE        5

/* llm_status output formats */
#define NGX_HTTP_LLM_FALLBACK_STATUS_JSON        1
#define NGX_HTTP_LLM_FALLBACK_STATUS_PROMETHEUS  2
#define NGX_HTTP_LLM_FALLBACK_STATUS_HTML        3

/* OpenTelemetry GenAI histograms: buckets, the last one is +Inf */
#define NGX_HTTP_LLM_FALLBACK_GENAI_NTOKENS      15
#define NGX_HTTP_LLM_FALLBACK_GENAI_NDURATION    15
#define NGX_HTTP_LLM_FALLBACK_GENAI_NTTFT        17

/* (request model, response model) rows per provider, the last: "other" */
#define NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS      4
#define NGX_HTTP_LLM_FALLBACK_GENAI_MODEL_LEN    64

#define NGX_HTTP_LLM_FALLBACK_JSON_FLAGS                                      \
    (JSON_COMPACT|JSON_REAL_PRECISION(NGX_HTTP_LLM_FALLBACK_JSON_PRECISION))


typedef struct ngx_http_llm_fallback_ctx_s      ngx_http_llm_fallback_ctx_t;
typedef struct ngx_http_llm_fallback_sr_ctx_s   ngx_http_llm_fallback_sr_ctx_t;
typedef struct ngx_http_llm_fallback_format_s   ngx_http_llm_fallback_format_t;
typedef struct ngx_http_llm_fallback_cache_conf_s
    ngx_http_llm_fallback_cache_conf_t;
typedef struct ngx_http_llm_fallback_cache_ctx_s
    ngx_http_llm_fallback_cache_ctx_t;
typedef struct ngx_http_llm_fallback_stream_s
    ngx_http_llm_fallback_stream_t;
typedef struct ngx_http_llm_fallback_api_s      ngx_http_llm_fallback_api_t;

/* how a service hands its verdict back to the driver: see handler.c */
typedef void (*ngx_http_llm_fallback_done_pt)(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_int_t rc);
typedef ngx_int_t (*ngx_http_llm_fallback_commit_pt)(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);


typedef struct {
    ngx_str_t                         name;
    ngx_str_t                         uri;
    ngx_http_llm_fallback_format_t   *format;
    ngx_str_t                         model;

    /* api_key=: may contain variables, evaluated per attempt */
    ngx_http_complex_value_t         *key;
    /* api_key_file= or api_key_env=, or a literal api_key= */
    ngx_str_t                         static_key;
    /* the full header value for a static key, e.g. "Bearer sk-..." */
    ngx_str_t                         static_value;
    ngx_str_t                         key_header;
    ngx_str_t                         key_prefix;

    /*
     * the headers of an attempt, made once with the lowercase name and
     * hash a parsed header has, so that proxy_set_header of the same
     * name replaces them: Content-Type first, Accept, the format's own;
     * and the credential's, with static_value or an empty value
     */
    ngx_array_t                       headers;
    ngx_table_elt_t                   credential;

    ngx_uint_t                        max_tokens;
    ngx_msec_t                        timeout;
    ngx_flag_t                        breaker;
} ngx_http_llm_fallback_provider_t;


typedef struct {
    ngx_atomic_t                      code;
    ngx_atomic_t                      count;
} ngx_http_llm_fallback_code_stat_t;


/* a provider's breaker state and counters, in the shared zone */
typedef struct {
    /* the state machine: changed under the zone mutex only */
    ngx_uint_t                        state;
    ngx_uint_t                        failures;     /* in the window */
    ngx_uint_t                        consecutive;
    ngx_uint_t                        probes;       /* trials in flight */
    ngx_uint_t                        probe_gen;    /* slots reclaimed */
    ngx_msec_t                        window_start;
    ngx_msec_t                        open_until;
    ngx_msec_t                        cooldown;     /* of the last opening */
    ngx_msec_t                        probe_time;

    /* counters for llm_status */
    ngx_atomic_t                      opened;
    ngx_atomic_t                      attempts;
    ngx_atomic_t                      successes;
    ngx_atomic_t                      failed[NGX_HTTP_LLM_FALLBACK_NREASONS];
    ngx_atomic_t                      prompt_tokens;
    ngx_atomic_t                      completion_tokens;
    ngx_atomic_t                      duration[
                                          NGX_HTTP_LLM_FALLBACK_NBUCKETS];
    ngx_atomic_t                      duration_sum;  /* milliseconds */
    ngx_http_llm_fallback_code_stat_t codes[NGX_HTTP_LLM_FALLBACK_NCODES];
} ngx_http_llm_fallback_stats_t;


/* keyed by provider name, so that state survives reloads */
typedef struct {
    ngx_str_node_t                    sn;
    ngx_queue_t                       queue;
    ngx_http_llm_fallback_stats_t     stats;
    u_char                            name[1];
} ngx_http_llm_fallback_node_t;


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       queue;
    ngx_atomic_t                      requests[6];  /* by status class */
    ngx_atomic_t                      cache[NGX_HTTP_LLM_FALLBACK_STAT_NCACHE];

    /* ngx_http_llm_fallback_genai_node_t, by provider name */
    ngx_rbtree_t                      genai_rbtree;
    ngx_rbtree_node_t                 genai_sentinel;
    ngx_queue_t                       genai_queue;
} ngx_http_llm_fallback_shctx_t;


/*
 * the OpenTelemetry GenAI histograms of one (request model, response
 * model) pair of a provider, changed under the zone mutex; durations in
 * milliseconds
 */
typedef struct {
    u_char                            request_model[
                                      NGX_HTTP_LLM_FALLBACK_GENAI_MODEL_LEN];
    u_char                            response_model[
                                      NGX_HTTP_LLM_FALLBACK_GENAI_MODEL_LEN];
    size_t                            request_len;
    size_t                            response_len;
    ngx_uint_t                        used;

    ngx_atomic_uint_t                 count;
    ngx_atomic_uint_t                 duration[
                                      NGX_HTTP_LLM_FALLBACK_GENAI_NDURATION];
    ngx_atomic_uint_t                 duration_sum;
    ngx_atomic_uint_t                 ttft[NGX_HTTP_LLM_FALLBACK_GENAI_NTTFT];
    ngx_atomic_uint_t                 ttft_sum;

    /* [0]: input, [1]: output */
    ngx_atomic_uint_t                 tokens[2][
                                      NGX_HTTP_LLM_FALLBACK_GENAI_NTOKENS];
    ngx_atomic_uint_t                 tokens_sum[2];
    ngx_atomic_uint_t                 tokens_count[2];
} ngx_http_llm_fallback_genai_row_t;


typedef struct {
    ngx_str_node_t                    sn;
    ngx_queue_t                       queue;
    ngx_http_llm_fallback_genai_row_t rows[NGX_HTTP_LLM_FALLBACK_GENAI_NMODELS];
    u_char                            name[1];
} ngx_http_llm_fallback_genai_node_t;


/* the llm_circuit_breaker zone and policy; failures == 0: counters only */
typedef struct {
    ngx_http_llm_fallback_shctx_t    *sh;
    ngx_slab_pool_t                  *shpool;
    ngx_shm_zone_t                   *shm_zone;
    ngx_array_t                      *providers;
    ngx_uint_t                        failures;
    ngx_msec_t                        window;
    ngx_msec_t                        cooldown;
    ngx_msec_t                        max_cooldown;
    ngx_uint_t                        probes;
} ngx_http_llm_fallback_breaker_t;


/*
 * a half-open trial slot held by a request, given back by a cleanup;
 * "gen" is the node's probe_gen when the slot was taken: once the slots
 * were reclaimed as lost, a late report leaves the new trials' count be
 */
typedef struct {
    ngx_http_llm_fallback_breaker_t  *breaker;
    ngx_str_t                        *name;
    uint32_t                          hash;
    ngx_uint_t                        active;
    ngx_uint_t                        gen;
} ngx_http_llm_fallback_probe_t;


typedef struct {
    ngx_array_t                       providers;
    ngx_uint_t                        used;
    ngx_uint_t                        status_used;
    ngx_http_llm_fallback_breaker_t  *breaker;

    /* ngx_http_llm_fallback_redis_server_t *: one per Redis server */
    ngx_array_t                      *redis;
} ngx_http_llm_fallback_main_conf_t;


typedef struct {
    ngx_http_llm_fallback_api_t      *api;
    ngx_http_llm_fallback_provider_t **chain;
    ngx_uint_t                        nchain;
    ngx_http_complex_value_t         *chain_var;
    ngx_array_t                      *chain_names;
    u_char                           *chain_file;
    ngx_uint_t                        chain_line;

    ngx_uint_t                        fallback_on;
    u_char                            fallback_codes[
                                          NGX_HTTP_LLM_FALLBACK_CODE_BYTES];
    ngx_uint_t                        tries;
    ngx_msec_t                        fallback_timeout;
    ngx_uint_t                        retries;
    ngx_msec_t                        backoff;
    ngx_msec_t                        max_backoff;
    ngx_msec_t                        attempt_timeout;
    ngx_msec_t                        stream_idle_timeout;
    ngx_flag_t                        response_headers;
    size_t                            max_response_size;
    ngx_uint_t                        status_format;

    /* llm_cache (NULL: off), llm_cache_key, llm_cache_bypass */
    ngx_http_llm_fallback_cache_conf_t *cache;
    ngx_http_complex_value_t         *cache_key;
    ngx_array_t                      *cache_bypass;

    /* llm_models, see models.c */
    struct ngx_http_llm_fallback_models_s *models;
} ngx_http_llm_fallback_loc_conf_t;


typedef struct {
    ngx_http_llm_fallback_provider_t *provider;
    ngx_uint_t                        status;
    ngx_uint_t                        reason;
} ngx_http_llm_fallback_attempt_t;


/* a successful attempt, translated to an OpenAI chat.completion */
typedef struct {
    ngx_str_t                         body;
    json_t                           *json;
    ngx_str_t                         model;
    ngx_int_t                         prompt_tokens;
    ngx_int_t                         completion_tokens;
    /* the provider's own answer, when it speaks the door's API */
    ngx_str_t                         native;
} ngx_http_llm_fallback_result_t;


/* an error for the client, in the OpenAI error shape */
typedef struct {
    ngx_uint_t                        status;
    const char                       *type;
    ngx_str_t                         message;
    ngx_str_t                         param;
    const char                       *code;    /* NULL: null */
    json_t                           *error;   /* a provider's error object */
    /* the chain ended without an answer: the attempts are listed */
    unsigned                          attempts:1;
} ngx_http_llm_fallback_error_t;


/* an event stream's output chain, see sse.c */
typedef struct {
    ngx_pool_t                       *pool;
    ngx_chain_t                      *out;
    ngx_chain_t                      *last;
    ngx_chain_t                      *free;
    ngx_chain_t                      *busy;
    size_t                            busy_size;
    /* written since the last flush */
    size_t                            held;
} ngx_http_llm_fallback_sse_t;


#define NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI      0
#define NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC   1
#define NGX_HTTP_LLM_FALLBACK_FORMAT_GEMINI      2


struct ngx_http_llm_fallback_format_s {
    ngx_str_t                         name;
    ngx_uint_t                        type;
    ngx_str_t                         key_header;
    ngx_str_t                         key_prefix;

    ngx_int_t                       (*create_request)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_provider_t *p,
                                          ngx_str_t *body);
    ngx_int_t                       (*parse_response)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_provider_t *p,
                                          ngx_str_t *body,
                                          ngx_http_llm_fallback_result_t *res);
    json_t                         *(*parse_error)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_str_t *body);

    /* fixed request headers, ended by a null key; may be NULL */
    ngx_keyval_t                     *headers;
};


/*
 * A front door: the client API of a location (llm_api).  Every door
 * speaks to the chain in the canonical form: the request is an OpenAI
 * chat request (ctx->scan and its tree), a result an OpenAI
 * chat.completion (ctx->result), a stream's events OpenAI
 * chat.completion.chunk objects.  The driver and the stream call these;
 * a door writes, it never sends or ends anything.
 */
struct ngx_http_llm_fallback_api_s {
    ngx_str_t                         name;
    /* a part of the cache key, so that doors never share an entry */
    ngx_str_t                         tag;
    /* appended to a provider's uri for the door's attempts */
    ngx_str_t                         uri_suffix;

    /*
     * the provider format that speaks the door's API (-1: none): its
     * providers get the client's body as it is (native_request), their
     * answers and events go back as they came (native_response,
     * stream_event), and ctx->native_headers go with their attempts
     */
    ngx_int_t                         native;
    /* the chain is narrowed to its native providers */
    ngx_flag_t                        native_only;
    ngx_int_t                       (*native_request)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_provider_t *p,
                                          ngx_str_t *body);
    /* as a format's parse_response; res->native is the body to send */
    ngx_int_t                       (*native_response)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_provider_t *p,
                                          ngx_str_t *body,
                                          ngx_http_llm_fallback_result_t *res);

    /* the client's body into the canonical request; NGX_DECLINED: err */
    ngx_int_t                       (*parse)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_error_t *err);
    /* ctx->result as the response body, and its type */
    ngx_int_t                       (*result)(ngx_http_request_t *r,
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_str_t *type, ngx_str_t *body);
    /* an error as the response body; ctx is NULL before the body is read */
    ngx_int_t                       (*error)(ngx_http_request_t *r,
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_error_t *err,
                                          ngx_str_t *body);

    /*
     * stream events, written into sse: an attempt's stream begins; a
     * chunk with content, tool call or usage deltas (raw: its bytes, when
     * they are the provider's own and may go as they are); the end; an
     * error object after the commit point, already redacted
     */
    ngx_int_t                       (*stream_start)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_sse_t *sse);
    ngx_int_t                       (*stream_chunk)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_sse_t *sse,
                                          json_t *chunk, ngx_str_t *raw);
    ngx_int_t                       (*stream_end)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_sse_t *sse);
    ngx_int_t                       (*stream_error)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_sse_t *sse,
                                          json_t *error);
    /*
     * a native provider's event as it came (its name, its data and the
     * data parsed), in place of the chunks it was translated into
     */
    ngx_int_t                       (*stream_event)(
                                          ngx_http_llm_fallback_ctx_t *ctx,
                                          ngx_http_llm_fallback_sse_t *sse,
                                          ngx_str_t *name, ngx_str_t *data,
                                          json_t *json);
};


struct ngx_http_llm_fallback_sr_ctx_s {
    ngx_http_llm_fallback_ctx_t      *ctx;
    ngx_http_request_t               *sr;
    ngx_http_llm_fallback_provider_t *provider;

    ngx_int_t                         rc;
    ngx_uint_t                        status;
    time_t                            retry_after;

    u_char                           *start;
    u_char                           *last;
    u_char                           *end;

    /* an event stream answer to a "stream": true request */
    ngx_http_llm_fallback_stream_t   *stream;
    /* when its last input came, for llm_stream_idle_timeout */
    ngx_msec_t                        active;

    unsigned                          header_seen:1;
    unsigned                          eof:1;
    unsigned                          too_large:1;
    unsigned                          timed_out:1;
    unsigned                          idle:1;
    unsigned                          done:1;
};


struct ngx_http_llm_fallback_ctx_s {
    ngx_http_request_t               *request;
    ngx_http_llm_fallback_loc_conf_t *conf;
    ngx_http_llm_fallback_api_t      *api;
    /* the door's own state, see api->parse */
    void                             *door;
    /* ngx_table_elt_t: headers for the door's native providers */
    ngx_array_t                      *native_headers;
    /* the client's request in the door's API, when not the canonical */
    json_t                           *native_json;

    /* the driver's: a stream reached its commit point */
    ngx_http_llm_fallback_commit_pt   commit;

    /* the request's tokens; its jansson tree, built on first use only:
     * see ngx_http_llm_fallback_request_json() */
    ngx_http_llm_fallback_json_t      scan;
    json_t                           *json;
    ngx_str_t                         body;
    ngx_str_t                         client_model;
    ngx_uint_t                        stream;
    ngx_uint_t                        include_usage;

    ngx_http_llm_fallback_provider_t **chain;
    ngx_uint_t                        nchain;
    ngx_uint_t                        index;
    ngx_uint_t                        retries;
    ngx_uint_t                        tries;
    ngx_array_t                       attempts;

    ngx_http_llm_fallback_sr_ctx_t   *current;
    ngx_event_t                       timer;

    ngx_msec_t                        start;
    ngx_msec_t                        deadline;
    ngx_msec_t                        backoff;
    ngx_msec_t                        ttft;

    ngx_http_llm_fallback_result_t    result;
    ngx_http_llm_fallback_provider_t *served;

    /* a JSON body built for the previous attempt, reusable as is */
    ngx_http_llm_fallback_format_t   *body_format;
    ngx_str_t                         body_model;
    ngx_uint_t                        body_max_tokens;
    ngx_str_t                         provider_body;

    ngx_str_t                         reasons;
    ngx_uint_t                        nreasons;

    /* circuit breaker: the trial slot, the shortest wait of a skip */
    ngx_http_llm_fallback_probe_t    *probe;
    ngx_msec_t                        open_wait;
    ngx_msec_t                        attempt_start;

    ngx_http_llm_fallback_cache_ctx_t *cache;
    /* X-LLM-Cache, $llm_cache_status: empty without a lookup */
    ngx_str_t                         cache_status;

    unsigned                          waiting:1;
    unsigned                          sleeping:1;
    unsigned                          deadline_hit:1;
    unsigned                          finished:1;
    unsigned                          has_result:1;
    /* a stream's first content went to the client: no more fallback */
    unsigned                          committed:1;
};


/* common.c: helpers for every layer */
ngx_int_t ngx_http_llm_fallback_json_keep(ngx_pool_t *pool, json_t *json);
ngx_int_t ngx_http_llm_fallback_dump(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
json_t *ngx_http_llm_fallback_request_json(ngx_http_llm_fallback_ctx_t *ctx);
json_t *ngx_http_llm_fallback_json_load(ngx_pool_t *pool, ngx_str_t *body);
void *ngx_http_llm_fallback_json_palloc(void *pool, size_t size);
ngx_int_t ngx_http_llm_fallback_json_tok_str(ngx_pool_t *pool,
    ngx_http_llm_fallback_json_tok_t *tok, ngx_str_t *out);
ngx_int_t ngx_http_llm_fallback_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
const char *ngx_http_llm_fallback_reason_name(ngx_uint_t reason);
ngx_str_t *ngx_http_llm_fallback_reasons(ngx_http_llm_fallback_ctx_t *ctx);
ngx_http_llm_fallback_provider_t *ngx_http_llm_fallback_find_provider(
    ngx_http_llm_fallback_main_conf_t *lmcf, u_char *name, size_t len);
ngx_str_t *ngx_http_llm_fallback_conf_param(ngx_conf_t *cf,
    ngx_str_t *value);
void ngx_http_llm_fallback_stop_upstream(ngx_http_request_t *r);

/* sse.c */
ngx_int_t ngx_http_llm_fallback_sse_data(ngx_http_llm_fallback_sse_t *sse,
    u_char *data, size_t len);
ngx_int_t ngx_http_llm_fallback_sse_json(ngx_http_llm_fallback_sse_t *sse,
    json_t *json);
ngx_int_t ngx_http_llm_fallback_sse_event(ngx_http_llm_fallback_sse_t *sse,
    ngx_str_t *name, u_char *data, size_t len);
ngx_int_t ngx_http_llm_fallback_sse_event_json(
    ngx_http_llm_fallback_sse_t *sse, ngx_str_t *name, json_t *json);

/* redact.c */
ngx_int_t ngx_http_llm_fallback_redact(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, json_t *json);

/* conf.c */
char *ngx_http_llm_fallback_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_fallback_chain(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_fallback_on(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_fallback_retries(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_fallback_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_llm_fallback_resolve_chain(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *lcf);
ngx_http_llm_fallback_format_t *ngx_http_llm_fallback_find_format(
    ngx_str_t *name);

/* handler.c: the driver */
ngx_int_t ngx_http_llm_fallback_handler(ngx_http_request_t *r);

/* attempt.c */
ngx_int_t ngx_http_llm_fallback_init_headers(ngx_conf_t *cf,
    ngx_http_llm_fallback_provider_t *p);
ngx_int_t ngx_http_llm_fallback_start_attempt(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p);
ngx_int_t ngx_http_llm_fallback_cancel_attempt(
    ngx_http_llm_fallback_sr_ctx_t *sc);
ngx_http_llm_fallback_sr_ctx_t *ngx_http_llm_fallback_attempt_ctx(
    ngx_http_request_t *r);

/* stream.c */
ngx_int_t ngx_http_llm_fallback_stream_start(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_http_output_body_filter_pt output);
ngx_int_t ngx_http_llm_fallback_stream_body(ngx_http_request_t *sr,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_chain_t *in);
ngx_uint_t ngx_http_llm_fallback_stream_held(
    ngx_http_llm_fallback_sr_ctx_t *sc);
ngx_uint_t ngx_http_llm_fallback_stream_failure(
    ngx_http_llm_fallback_sr_ctx_t *sc);
const char *ngx_http_llm_fallback_stream_failure_name(
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_uint_t reason);
ngx_int_t ngx_http_llm_fallback_stream_end(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc, ngx_uint_t reason);
ngx_int_t ngx_http_llm_fallback_stream_send(ngx_http_request_t *r,
    ngx_http_llm_fallback_sr_ctx_t *sc);
ngx_int_t ngx_http_llm_fallback_stream_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason);

/* filter.c */
ngx_int_t ngx_http_llm_fallback_filter_init(ngx_conf_t *cf);

/* api_chat.c: the front doors */
extern ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_chat;
extern ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_messages;
extern ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_count_tokens;

/* openai.c */
extern ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_openai;

/* format.c */
extern ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_anthropic;
extern ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_gemini;

/* response.c */
ngx_int_t ngx_http_llm_fallback_send_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
ngx_int_t ngx_http_llm_fallback_send_stream_header(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
ngx_int_t ngx_http_llm_fallback_send_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err);

/* breaker.c */
char *ngx_http_llm_fallback_circuit_breaker(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_llm_fallback_breaker_init(ngx_conf_t *cf,
    ngx_http_llm_fallback_main_conf_t *lmcf);
ngx_int_t ngx_http_llm_fallback_breaker_commit(ngx_cycle_t *cycle);
ngx_int_t ngx_http_llm_fallback_breaker_acquire(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p);
void ngx_http_llm_fallback_breaker_report(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason, ngx_uint_t status, ngx_uint_t counts);
void ngx_http_llm_fallback_breaker_release(ngx_http_llm_fallback_ctx_t *ctx);

/* status.c */
char *ngx_http_llm_fallback_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_llm_fallback_status_init(ngx_conf_t *cf);
void ngx_http_llm_fallback_status_cache(ngx_http_request_t *r,
    ngx_uint_t status);

/* genai.c */
ngx_uint_t ngx_http_llm_fallback_genai_sync(
    ngx_http_llm_fallback_breaker_t *cb);
void ngx_http_llm_fallback_genai_count(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc);
ngx_buf_t *ngx_http_llm_fallback_genai_prometheus(ngx_http_request_t *r,
    ngx_http_llm_fallback_main_conf_t *lmcf);

/* cache.c */
char *ngx_http_llm_fallback_cache_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_llm_fallback_cache_merge(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *prev,
    ngx_http_llm_fallback_loc_conf_t *conf);
ngx_int_t ngx_http_llm_fallback_cache_lookup(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_done_pt done);
void ngx_http_llm_fallback_cache_store(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
ngx_int_t ngx_http_llm_fallback_cache_stale(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);

/* redis.c */
ngx_int_t ngx_http_llm_fallback_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_llm_fallback_redis_exit_process(ngx_cycle_t *cycle);

/* variables.c */
ngx_int_t ngx_http_llm_fallback_add_variables(ngx_conf_t *cf);

/* models.c: llm_models */
typedef struct ngx_http_llm_fallback_models_s
    ngx_http_llm_fallback_models_t;

char *ngx_http_llm_fallback_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_llm_fallback_models_merge(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *conf);


extern ngx_module_t  ngx_http_llm_fallback_module;


#endif /* _NGX_HTTP_LLM_FALLBACK_COMMON_H_INCLUDED_ */
