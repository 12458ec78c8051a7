
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


static ngx_int_t ngx_http_llm_fallback_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_llm_fallback_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_llm_fallback_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_llm_fallback_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_llm_fallback_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_llm_fallback_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_llm_fallback_init_process(ngx_cycle_t *cycle);
static void ngx_http_llm_fallback_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_llm_fallback_tries_bounds = {
    ngx_conf_check_num_bounds, 0, 1000
};


static ngx_command_t  ngx_http_llm_fallback_commands[] = {

    { ngx_string("llm_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_llm_fallback_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_circuit_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_llm_fallback_circuit_breaker,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_fallback_chain"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_llm_fallback_chain,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_fallback_on"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_llm_fallback_on,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_fallback_tries"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, tries),
      &ngx_http_llm_fallback_tries_bounds },

    { ngx_string("llm_fallback_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, fallback_timeout),
      NULL },

    { ngx_string("llm_retries"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_llm_fallback_retries,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_attempt_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, attempt_timeout),
      NULL },

    { ngx_string("llm_stream_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, stream_idle_timeout),
      NULL },

    { ngx_string("llm_response_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, response_headers),
      NULL },

    { ngx_string("llm_max_response_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, max_response_size),
      NULL },

    { ngx_string("llm_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_llm_fallback_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_llm_fallback_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_models"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_llm_fallback_models,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_llm_fallback_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("llm_cache_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, cache_key),
      NULL },

    { ngx_string("llm_cache_bypass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_llm_fallback_loc_conf_t, cache_bypass),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_llm_fallback_module_ctx = {
    ngx_http_llm_fallback_preconfiguration,  /* preconfiguration */
    ngx_http_llm_fallback_postconfiguration, /* postconfiguration */

    ngx_http_llm_fallback_create_main_conf,  /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_llm_fallback_create_loc_conf,   /* create location configuration */
    ngx_http_llm_fallback_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_llm_fallback_module = {
    NGX_MODULE_V1,
    &ngx_http_llm_fallback_module_ctx,       /* module context */
    ngx_http_llm_fallback_commands,          /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    ngx_http_llm_fallback_init_module,       /* init module */
    ngx_http_llm_fallback_init_process,      /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    ngx_http_llm_fallback_exit_process,      /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_llm_fallback_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_llm_fallback_add_variables(cf);
}


static ngx_int_t
ngx_http_llm_fallback_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_llm_fallback_module);

    if (ngx_http_llm_fallback_breaker_init(cf, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the counters of llm_status, in the zone the breaker set up */

    if (lmcf->breaker && ngx_http_llm_fallback_status_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!lmcf->used) {
        return NGX_OK;
    }

    return ngx_http_llm_fallback_filter_init(cf);
}


static void *
ngx_http_llm_fallback_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->providers, cf->pool, 4,
                       sizeof(ngx_http_llm_fallback_provider_t))
        != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


static void *
ngx_http_llm_fallback_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_llm_fallback_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->api = NULL;
     *     conf->chain = NULL;
     *     conf->nchain = 0;
     *     conf->chain_var = NULL;
     *     conf->chain_names = NULL;
     *     conf->fallback_codes = { 0 };
     *     conf->status_format = 0;
     *     conf->cache_key = NULL;
     */

    conf->fallback_on = NGX_CONF_UNSET_UINT;
    conf->tries = NGX_CONF_UNSET_UINT;
    conf->fallback_timeout = NGX_CONF_UNSET_MSEC;
    conf->retries = NGX_CONF_UNSET_UINT;
    conf->backoff = NGX_CONF_UNSET_MSEC;
    conf->max_backoff = NGX_CONF_UNSET_MSEC;
    conf->attempt_timeout = NGX_CONF_UNSET_MSEC;
    conf->stream_idle_timeout = NGX_CONF_UNSET_MSEC;
    conf->response_headers = NGX_CONF_UNSET;
    conf->max_response_size = NGX_CONF_UNSET_SIZE;
    conf->cache = NGX_CONF_UNSET_PTR;
    conf->cache_bypass = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_llm_fallback_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_llm_fallback_loc_conf_t *prev = parent;
    ngx_http_llm_fallback_loc_conf_t *conf = child;

    ngx_uint_t  code;

    if (conf->fallback_on == NGX_CONF_UNSET_UINT) {

        if (prev->fallback_on == NGX_CONF_UNSET_UINT) {
            prev->fallback_on = NGX_HTTP_LLM_FALLBACK_ON_ERROR
                                |NGX_HTTP_LLM_FALLBACK_ON_TIMEOUT
                                |NGX_HTTP_LLM_FALLBACK_ON_INVALID
                                |NGX_HTTP_LLM_FALLBACK_ON_HTTP_5XX;

            code = 429 - NGX_HTTP_LLM_FALLBACK_CODE_MIN;
            prev->fallback_codes[code / 8] |= (u_char) (1 << (code % 8));
        }

        conf->fallback_on = prev->fallback_on;
        ngx_memcpy(conf->fallback_codes, prev->fallback_codes,
                   NGX_HTTP_LLM_FALLBACK_CODE_BYTES);
    }

    ngx_conf_merge_uint_value(conf->tries, prev->tries, 0);
    ngx_conf_merge_msec_value(conf->fallback_timeout,
                              prev->fallback_timeout, 0);
    ngx_conf_merge_uint_value(conf->retries, prev->retries, 0);
    ngx_conf_merge_msec_value(conf->backoff, prev->backoff, 100);
    ngx_conf_merge_msec_value(conf->max_backoff, prev->max_backoff, 2000);
    ngx_conf_merge_msec_value(conf->attempt_timeout,
                              prev->attempt_timeout, 60000);
    ngx_conf_merge_msec_value(conf->stream_idle_timeout,
                              prev->stream_idle_timeout, 30000);
    ngx_conf_merge_value(conf->response_headers, prev->response_headers, 1);

    if (conf->api == NULL) {
        conf->api = prev->api ? prev->api : &ngx_http_llm_fallback_api_chat;
    }
    ngx_conf_merge_size_value(conf->max_response_size,
                              prev->max_response_size, 8 * 1024 * 1024);

    if (ngx_http_llm_fallback_cache_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_fallback_models_merge(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->chain_names && conf->chain == NULL) {
        if (ngx_http_llm_fallback_resolve_chain(cf, conf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_fallback_init_module(ngx_cycle_t *cycle)
{
    /*
     * seed jansson's hash function once, in the master, so that workers
     * never read /dev/urandom on the request path
     */

    json_object_seed(0);

    return ngx_http_llm_fallback_breaker_commit(cycle);
}


static ngx_int_t
ngx_http_llm_fallback_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_llm_fallback_redis_init_process(cycle);
}


static void
ngx_http_llm_fallback_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_llm_fallback_redis_exit_process(cycle);
}
