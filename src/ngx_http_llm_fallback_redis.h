
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_REDIS_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct ngx_http_llm_fallback_redis_s
    ngx_http_llm_fallback_redis_t;
typedef struct ngx_http_llm_fallback_redis_op_s
    ngx_http_llm_fallback_redis_op_t;
typedef struct ngx_http_llm_fallback_redis_token_s
    ngx_http_llm_fallback_redis_token_t;

typedef void (*ngx_http_llm_fallback_redis_handler_pt)(
    ngx_http_llm_fallback_redis_op_t *op);


/*
 * A Redis server as configured: one per address, db and password, shared
 * by every location that names it.  The worker's connections to it live
 * in "redis" (lookups, small stores) and "writer" (large stores), created
 * in init_process: configuration is never written to at request time.
 */

typedef struct {
    ngx_str_t                             name;      /* for logs */
    u_char                               *host;      /* IP or unix path */
    in_port_t                             port;      /* 0: unix socket */
    ngx_uint_t                            db;
    ngx_str_t                             password;
    ngx_msec_t                            timeout;
    ngx_http_llm_fallback_redis_t        *redis;
    ngx_http_llm_fallback_redis_t        *writer;
} ngx_http_llm_fallback_redis_server_t;


/*
 * A command bound to a request; allocated by the caller from r->pool.
 * The handler runs from a posted event, never from inside hiredis, with
 * rc NGX_OK (value set), NGX_DECLINED (nil, or a value longer than "max":
 * then too_large is set and value.len is its length, nothing is copied)
 * or NGX_ERROR (Redis failed, timed out or is unavailable).
 */

struct ngx_http_llm_fallback_redis_op_s {
    ngx_http_request_t                     *request;
    ngx_http_llm_fallback_redis_server_t   *server;
    ngx_http_llm_fallback_redis_handler_pt  handler;
    void                                   *data;
    size_t                                  max;

    ngx_int_t                               rc;
    ngx_str_t                               value;
    unsigned                                too_large:1;

    /* private */
    ngx_event_t                             event;
    ngx_http_llm_fallback_redis_token_t    *token;
    ngx_http_event_handler_pt               read_event_handler;
};


ngx_http_llm_fallback_redis_server_t *ngx_http_llm_fallback_redis_add(
    ngx_conf_t *cf, ngx_str_t *addr, ngx_uint_t db, ngx_str_t *password,
    ngx_msec_t timeout);
ngx_int_t ngx_http_llm_fallback_redis_get(
    ngx_http_llm_fallback_redis_op_t *op, ngx_str_t *key,
    ngx_msec_t timeout);
ngx_int_t ngx_http_llm_fallback_redis_set(
    ngx_http_llm_fallback_redis_server_t *server, ngx_str_t *key,
    ngx_str_t *value, ngx_msec_t ttl, ngx_log_t *log);


#endif /* _NGX_HTTP_LLM_FALLBACK_REDIS_H_INCLUDED_ */
