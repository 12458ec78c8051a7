
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * The circuit breaker: one node per provider name in a shared zone, so
 * that every worker sees the same state and the state survives reloads.
 * The state machine runs under the zone mutex in short critical sections
 * that neither log nor allocate; the counters are atomics.
 */


/* what a report did to the breaker, logged after the unlock */
#define NGX_HTTP_LLM_FALLBACK_EVENT_NONE       0
#define NGX_HTTP_LLM_FALLBACK_EVENT_OPENED     1
#define NGX_HTTP_LLM_FALLBACK_EVENT_REOPENED   2
#define NGX_HTTP_LLM_FALLBACK_EVENT_RETRY      3
#define NGX_HTTP_LLM_FALLBACK_EVENT_CLOSED     4

/* outcomes of an attempt for the state machine */
#define NGX_HTTP_LLM_FALLBACK_VERDICT_NEUTRAL  0
#define NGX_HTTP_LLM_FALLBACK_VERDICT_SUCCESS  1
#define NGX_HTTP_LLM_FALLBACK_VERDICT_FAILURE  2

/* a trial slot held longer is taken back: its worker is gone */
#define NGX_HTTP_LLM_FALLBACK_PROBE_LOST       120000

/* the implicit counters-only zone of llm_status without a breaker */
#define NGX_HTTP_LLM_FALLBACK_STATUS_ZONE      "llm_status"
#define NGX_HTTP_LLM_FALLBACK_STATUS_SIZE      (1024 * 1024)


static ngx_int_t ngx_http_llm_fallback_breaker_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_uint_t ngx_http_llm_fallback_breaker_sync(
    ngx_http_llm_fallback_breaker_t *cb);
static ngx_uint_t ngx_http_llm_fallback_breaker_configured(
    ngx_http_llm_fallback_breaker_t *cb, ngx_http_llm_fallback_node_t *node);
static ngx_http_llm_fallback_node_t *ngx_http_llm_fallback_breaker_lookup(
    ngx_http_llm_fallback_breaker_t *cb, ngx_str_t *name, uint32_t hash);
static ngx_int_t ngx_http_llm_fallback_breaker_admit(
    ngx_http_llm_fallback_breaker_t *cb, ngx_http_llm_fallback_stats_t *st,
    ngx_http_llm_fallback_probe_t *probe, ngx_msec_t now, ngx_msec_t *wait);
static ngx_uint_t ngx_http_llm_fallback_breaker_update(
    ngx_http_llm_fallback_breaker_t *cb, ngx_http_llm_fallback_stats_t *st,
    ngx_uint_t verdict, ngx_uint_t probe, time_t retry_after,
    ngx_msec_t now, ngx_msec_t *cooldown);
static void ngx_http_llm_fallback_breaker_open(
    ngx_http_llm_fallback_stats_t *st, ngx_msec_t now, ngx_msec_t cooldown);
static void ngx_http_llm_fallback_breaker_count(
    ngx_http_llm_fallback_stats_t *st, ngx_uint_t reason, ngx_uint_t status,
    ngx_msec_t duration, ngx_http_llm_fallback_result_t *result);
static void ngx_http_llm_fallback_breaker_cleanup(void *data);


static ngx_msec_t  ngx_http_llm_fallback_buckets[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};


char *
ngx_http_llm_fallback_circuit_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_llm_fallback_main_conf_t *lmcf = conf;

    u_char                           *p;
    ssize_t                           size;
    ngx_int_t                         n;
    ngx_str_t                        *value, name, s;
    ngx_msec_t                       *msp;
    ngx_uint_t                        i;
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_llm_fallback_breaker_t  *cb;

    if (lmcf->breaker) {
        return "is duplicate";
    }

    cb = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_breaker_t));
    if (cb == NULL) {
        return NGX_CONF_ERROR;
    }

    cb->failures = 5;
    cb->window = 60000;
    cb->cooldown = 30000;
    cb->max_cooldown = 300000;
    cb->probes = 1;

    value = cf->args->elts;

    ngx_str_null(&name);
    size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                goto invalid;
            }

            name.len = p - name.data;

            if (name.len == 0) {
                goto invalid;
            }

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                goto invalid;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            cb->failures = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "probes=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            cb->probes = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            s.len = value[i].len - 7;
            s.data = value[i].data + 7;
            msp = &cb->window;

        } else if (ngx_strncmp(value[i].data, "cooldown=", 9) == 0) {
            s.len = value[i].len - 9;
            s.data = value[i].data + 9;
            msp = &cb->cooldown;

        } else if (ngx_strncmp(value[i].data, "max_cooldown=", 13) == 0) {
            s.len = value[i].len - 13;
            s.data = value[i].data + 13;
            msp = &cb->max_cooldown;

        } else {
            goto invalid;
        }

        *msp = ngx_parse_time(&s, 0);

        if (*msp == (ngx_msec_t) NGX_ERROR || *msp == 0) {
            goto invalid;
        }
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cb->cooldown > cb->max_cooldown) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cooldown\" is larger than \"max_cooldown\"");
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_llm_fallback_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    cb->shm_zone = shm_zone;
    cb->providers = &lmcf->providers;

    shm_zone->init = ngx_http_llm_fallback_breaker_init_zone;
    shm_zone->data = cb;

    lmcf->breaker = cb;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       ngx_http_llm_fallback_conf_param(cf, &value[i]));
    return NGX_CONF_ERROR;
}


/*
 * postconfiguration: llm_status without llm_circuit_breaker still needs
 * shared counters, so it gets a small zone of its own without a breaker
 */

ngx_int_t
ngx_http_llm_fallback_breaker_init(ngx_conf_t *cf,
    ngx_http_llm_fallback_main_conf_t *lmcf)
{
    ngx_str_t                         name;
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_llm_fallback_breaker_t  *cb;

    if (lmcf->breaker == NULL && lmcf->status_used) {

        cb = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_breaker_t));
        if (cb == NULL) {
            return NGX_ERROR;
        }

        ngx_str_set(&name, NGX_HTTP_LLM_FALLBACK_STATUS_ZONE);

        shm_zone = ngx_shared_memory_add(cf, &name,
                                         NGX_HTTP_LLM_FALLBACK_STATUS_SIZE,
                                         &ngx_http_llm_fallback_module);
        if (shm_zone == NULL) {
            return NGX_ERROR;
        }

        cb->shm_zone = shm_zone;
        cb->providers = &lmcf->providers;

        shm_zone->init = ngx_http_llm_fallback_breaker_init_zone;
        shm_zone->data = cb;

        lmcf->breaker = cb;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_breaker_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_llm_fallback_breaker_t  *ocb = data;

    size_t                            len;
    ngx_uint_t                        missing;
    ngx_http_llm_fallback_breaker_t  *cb;

    cb = shm_zone->data;

    if (ocb) {
        /* a reload: the state is kept, new providers get a node */

        cb->sh = ocb->sh;
        cb->shpool = ocb->shpool;

        goto sync;
    }

    cb->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cb->sh = cb->shpool->data;

        return NGX_OK;
    }

    cb->sh = ngx_slab_calloc(cb->shpool,
                             sizeof(ngx_http_llm_fallback_shctx_t));
    if (cb->sh == NULL) {
        return NGX_ERROR;
    }

    cb->shpool->data = cb->sh;

    ngx_rbtree_init(&cb->sh->rbtree, &cb->sh->sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_queue_init(&cb->sh->queue);

    len = sizeof(" in llm_circuit_breaker zone \"\"") + shm_zone->shm.name.len;

    cb->shpool->log_ctx = ngx_slab_alloc(cb->shpool, len);
    if (cb->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cb->shpool->log_ctx, " in llm_circuit_breaker zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported once, below */

    cb->shpool->log_nomem = 0;

sync:

    missing = ngx_http_llm_fallback_breaker_sync(cb);

    if (missing) {
        ngx_log_error(NGX_LOG_ALERT, shm_zone->shm.log, 0,
                      "could not allocate nodes for %ui of %ui llm "
                      "providers%s, their breakers stay closed and "
                      "they are not counted",
                      missing, cb->providers->nelts, cb->shpool->log_ctx);
    }

    /* the gen_ai histograms: after every breaker node, with what is left */

    missing = ngx_http_llm_fallback_genai_sync(cb);

    if (missing) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "no room for the gen_ai metrics of %ui of %ui llm "
                      "providers%s", missing, cb->providers->nelts,
                      cb->shpool->log_ctx);
    }

    return NGX_OK;
}


/*
 * at start and on every reload, in the master: add the new providers;
 * the nodes are made here so that the request path never allocates.
 * Nothing is removed here: the reload may still fail (a listen socket
 * that cannot be bound), and the running workers would lose the state
 * of providers they still use.  The providers the new configuration
 * dropped are forgotten by ngx_http_llm_fallback_breaker_commit().
 */

static ngx_uint_t
ngx_http_llm_fallback_breaker_sync(ngx_http_llm_fallback_breaker_t *cb)
{
    size_t                             size;
    uint32_t                           hash;
    ngx_uint_t                         i, missing;
    ngx_http_llm_fallback_node_t      *node;
    ngx_http_llm_fallback_provider_t  *p;

    p = cb->providers->elts;
    missing = 0;

    ngx_shmtx_lock(&cb->shpool->mutex);

    for (i = 0; i < cb->providers->nelts; i++) {

        hash = ngx_crc32_short(p[i].name.data, p[i].name.len);

        if (ngx_http_llm_fallback_breaker_lookup(cb, &p[i].name, hash)) {
            continue;
        }

        size = offsetof(ngx_http_llm_fallback_node_t, name) + p[i].name.len;

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

        ngx_rbtree_insert(&cb->sh->rbtree, &node->sn.node);
        ngx_queue_insert_tail(&cb->sh->queue, &node->queue);
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    return missing;
}


/*
 * init_module, in the master, once the new configuration is committed
 * (its listen sockets are open and nothing can fail any more): forget
 * the providers it no longer has.  Workers of the previous generation
 * that still finish requests for them find no node and count nothing.
 */

ngx_int_t
ngx_http_llm_fallback_breaker_commit(ngx_cycle_t *cycle)
{
    ngx_queue_t                        *q, *next;
    ngx_http_llm_fallback_node_t       *node;
    ngx_http_llm_fallback_breaker_t    *cb;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llm_fallback_module);

    if (lmcf == NULL || lmcf->breaker == NULL || lmcf->breaker->sh == NULL) {
        return NGX_OK;
    }

    cb = lmcf->breaker;

    ngx_shmtx_lock(&cb->shpool->mutex);

    for (q = ngx_queue_head(&cb->sh->queue);
         q != ngx_queue_sentinel(&cb->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);

        node = ngx_queue_data(q, ngx_http_llm_fallback_node_t, queue);

        if (ngx_http_llm_fallback_breaker_configured(cb, node)) {
            continue;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&cb->sh->rbtree, &node->sn.node);
        ngx_slab_free_locked(cb->shpool, node);
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_llm_fallback_breaker_configured(ngx_http_llm_fallback_breaker_t *cb,
    ngx_http_llm_fallback_node_t *node)
{
    ngx_uint_t                         i;
    ngx_http_llm_fallback_provider_t  *p;

    p = cb->providers->elts;

    for (i = 0; i < cb->providers->nelts; i++) {
        if (p[i].name.len == node->sn.str.len
            && ngx_memcmp(p[i].name.data, node->sn.str.data, p[i].name.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_http_llm_fallback_node_t *
ngx_http_llm_fallback_breaker_lookup(ngx_http_llm_fallback_breaker_t *cb,
    ngx_str_t *name, uint32_t hash)
{
    return (ngx_http_llm_fallback_node_t *)
               ngx_str_rbtree_lookup(&cb->sh->rbtree, name, hash);
}


/*
 * before an attempt: NGX_OK to go on (a trial when ctx->probe->active),
 * NGX_DECLINED when the breaker is open and the provider is skipped
 */

ngx_int_t
ngx_http_llm_fallback_breaker_acquire(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p)
{
    uint32_t                            hash;
    ngx_int_t                           rc;
    ngx_msec_t                          now, wait;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_llm_fallback_node_t       *node;
    ngx_http_llm_fallback_probe_t      *probe;
    ngx_http_llm_fallback_breaker_t    *cb;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    ctx->attempt_start = ngx_current_msec;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);
    cb = lmcf->breaker;

    if (cb == NULL || cb->failures == 0 || !p->breaker) {
        return NGX_OK;
    }

    hash = ngx_crc32_short(p->name.data, p->name.len);
    wait = 0;

    for ( ;; ) {
        probe = ctx->probe;

        if (probe) {
            probe->breaker = cb;
            probe->name = &p->name;
            probe->hash = hash;
        }

        now = ngx_current_msec;

        ngx_shmtx_lock(&cb->shpool->mutex);

        node = ngx_http_llm_fallback_breaker_lookup(cb, &p->name, hash);

        rc = node ? ngx_http_llm_fallback_breaker_admit(cb, &node->stats,
                                                        probe, now, &wait)
                  : NGX_OK;

        ngx_shmtx_unlock(&cb->shpool->mutex);

        if (rc != NGX_AGAIN) {
            break;
        }

        /*
         * a trial slot is free: first get the cleanup that gives it back
         * if the request dies, then try again
         */

        cln = ngx_pool_cleanup_add(r->pool,
                                   sizeof(ngx_http_llm_fallback_probe_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(cln->data, sizeof(ngx_http_llm_fallback_probe_t));

        cln->handler = ngx_http_llm_fallback_breaker_cleanup;
        ctx->probe = cln->data;
    }

    if (rc == NGX_DECLINED) {
        if (ctx->open_wait == 0 || wait < ctx->open_wait) {
            ctx->open_wait = wait ? wait : 1;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "llm fallback: \"%V\" is open, skipped, retry in %M",
                       &p->name, wait);

        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm fallback: \"%V\" admitted, trial:%ui", &p->name,
                   (ngx_uint_t) (ctx->probe && ctx->probe->active));

    return NGX_OK;
}


/* under the mutex */

static ngx_int_t
ngx_http_llm_fallback_breaker_admit(ngx_http_llm_fallback_breaker_t *cb,
    ngx_http_llm_fallback_stats_t *st, ngx_http_llm_fallback_probe_t *probe,
    ngx_msec_t now, ngx_msec_t *wait)
{
    ngx_msec_int_t  left;

    if (st->state == NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED) {
        return NGX_OK;
    }

    left = (ngx_msec_int_t) (st->open_until - now);

    if (left > 0) {
        *wait = (ngx_msec_t) left;
        goto skip;
    }

    /* half-open */

    if (st->probes >= cb->probes) {

        if ((ngx_msec_int_t) (now - st->probe_time)
            < (ngx_msec_int_t) ngx_max(cb->max_cooldown,
                                       NGX_HTTP_LLM_FALLBACK_PROBE_LOST))
        {
            *wait = 0;
            goto skip;
        }

        /*
         * the trials were never given back: their worker is gone, or
         * they run for longer than that (a long stream); should they
         * report after all, they no longer count as trials
         */

        st->probes = 0;
        st->probe_gen++;
    }

    if (probe == NULL) {
        return NGX_AGAIN;
    }

    st->probes++;
    st->probe_time = now;
    probe->active = 1;
    probe->gen = st->probe_gen;

    return NGX_OK;

skip:

    (void) ngx_atomic_fetch_add(&st->failed[NGX_HTTP_LLM_FALLBACK_OPEN], 1);

    return NGX_DECLINED;
}


/*
 * after an attempt: counts it, and runs the state machine; "counts" is
 * set when the outcome is a llm_fallback_on condition
 */

void
ngx_http_llm_fallback_breaker_report(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sr_ctx_t *sc,
    ngx_uint_t reason, ngx_uint_t status, ngx_uint_t counts)
{
    time_t                              ra;
    uint32_t                            hash;
    ngx_msec_t                          now, cooldown, duration;
    ngx_uint_t                          verdict, probe, event, consecutive;
    ngx_http_llm_fallback_node_t       *node;
    ngx_http_llm_fallback_result_t     *res;
    ngx_http_llm_fallback_breaker_t    *cb;
    ngx_http_llm_fallback_provider_t   *p;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llm_fallback_module);
    cb = lmcf->breaker;

    probe = (ctx->probe && ctx->probe->active);

    if (probe) {
        ctx->probe->active = 0;
    }

    if (cb == NULL) {
        return;
    }

    p = sc->provider;

    if (reason == NGX_HTTP_LLM_FALLBACK_OK) {
        verdict = NGX_HTTP_LLM_FALLBACK_VERDICT_SUCCESS;
        res = &ctx->result;

    } else {
        verdict = counts ? NGX_HTTP_LLM_FALLBACK_VERDICT_FAILURE
                         : NGX_HTTP_LLM_FALLBACK_VERDICT_NEUTRAL;
        res = NULL;
    }

    ra = -1;

    if (reason == NGX_HTTP_LLM_FALLBACK_HTTP
        && (status == NGX_HTTP_TOO_MANY_REQUESTS
            || status == NGX_HTTP_SERVICE_UNAVAILABLE))
    {
        ra = sc->retry_after;
    }

    if (cb->failures == 0 || !p->breaker) {
        verdict = NGX_HTTP_LLM_FALLBACK_VERDICT_NEUTRAL;
        ra = -1;
    }

    hash = ngx_crc32_short(p->name.data, p->name.len);
    now = ngx_current_msec;
    duration = now - ctx->attempt_start;
    event = NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
    cooldown = 0;
    consecutive = 0;

    ngx_shmtx_lock(&cb->shpool->mutex);

    node = ngx_http_llm_fallback_breaker_lookup(cb, &p->name, hash);

    if (node) {
        if (probe && ctx->probe->gen != node->stats.probe_gen) {
            /* a trial taken for lost: its slot went to another one */
            probe = 0;
        }

        if (probe && node->stats.probes) {
            node->stats.probes--;
        }

        ngx_http_llm_fallback_breaker_count(&node->stats, reason, status,
                                            duration, res);

        event = ngx_http_llm_fallback_breaker_update(cb, &node->stats,
                                                     verdict, probe, ra, now,
                                                     &cooldown);
        consecutive = node->stats.consecutive;
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);

    if (reason == NGX_HTTP_LLM_FALLBACK_OK) {
        ngx_http_llm_fallback_genai_count(r, ctx, sc);
    }

    switch (event) {

    case NGX_HTTP_LLM_FALLBACK_EVENT_OPENED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" circuit breaker opened for %Mms "
                      "after %ui failures", &p->name, cooldown, consecutive);
        break;

    case NGX_HTTP_LLM_FALLBACK_EVENT_REOPENED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" circuit breaker reopened for %Mms "
                      "after a failed trial", &p->name, cooldown);
        break;

    case NGX_HTTP_LLM_FALLBACK_EVENT_RETRY:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "llm provider \"%V\" circuit breaker opened for %Mms "
                      "by Retry-After", &p->name, cooldown);
        break;

    case NGX_HTTP_LLM_FALLBACK_EVENT_CLOSED:
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "llm provider \"%V\" circuit breaker closed after "
                      "a successful trial", &p->name);
        break;

    default:
        break;
    }
}


/* the state machine of README "Circuit breaker", under the mutex */

static ngx_uint_t
ngx_http_llm_fallback_breaker_update(ngx_http_llm_fallback_breaker_t *cb,
    ngx_http_llm_fallback_stats_t *st, ngx_uint_t verdict, ngx_uint_t probe,
    time_t retry_after, ngx_msec_t now, ngx_msec_t *cooldown)
{
    ngx_msec_t  cd;

    if (verdict == NGX_HTTP_LLM_FALLBACK_VERDICT_SUCCESS) {
        st->consecutive = 0;

    } else if (verdict == NGX_HTTP_LLM_FALLBACK_VERDICT_FAILURE) {
        st->consecutive++;
    }

    if (retry_after >= 0) {
        /* the provider said when to come back: open at once */

        if (retry_after > (time_t) (cb->max_cooldown / 1000)) {
            cd = cb->max_cooldown;

        } else {
            cd = (ngx_msec_t) retry_after * 1000;
        }

        if (st->state == NGX_HTTP_LLM_FALLBACK_BREAKER_OPEN
            && (ngx_msec_int_t) (st->open_until - (now + cd)) >= 0)
        {
            return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
        }

        ngx_http_llm_fallback_breaker_open(st, now, cd);
        *cooldown = cd;

        return NGX_HTTP_LLM_FALLBACK_EVENT_RETRY;
    }

    if (st->state == NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED) {

        if (verdict == NGX_HTTP_LLM_FALLBACK_VERDICT_SUCCESS) {
            st->failures = 0;
            return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
        }

        if (verdict != NGX_HTTP_LLM_FALLBACK_VERDICT_FAILURE) {
            return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
        }

        if (st->failures == 0 || now - st->window_start >= cb->window) {
            st->window_start = now;
            st->failures = 0;
        }

        if (++st->failures < cb->failures) {
            return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
        }

        ngx_http_llm_fallback_breaker_open(st, now, cb->cooldown);
        *cooldown = cb->cooldown;

        return NGX_HTTP_LLM_FALLBACK_EVENT_OPENED;
    }

    /*
     * open or half-open: only a trial decides; an attempt that began
     * before the breaker opened changes nothing
     */

    if (!probe) {
        return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
    }

    if (verdict == NGX_HTTP_LLM_FALLBACK_VERDICT_SUCCESS) {
        st->state = NGX_HTTP_LLM_FALLBACK_BREAKER_CLOSED;
        st->failures = 0;
        st->cooldown = 0;

        return NGX_HTTP_LLM_FALLBACK_EVENT_CLOSED;
    }

    if (verdict != NGX_HTTP_LLM_FALLBACK_VERDICT_FAILURE) {
        return NGX_HTTP_LLM_FALLBACK_EVENT_NONE;
    }

    cd = ngx_max(st->cooldown * 2, cb->cooldown);
    cd = ngx_min(cd, cb->max_cooldown);

    ngx_http_llm_fallback_breaker_open(st, now, cd);
    *cooldown = cd;

    return NGX_HTTP_LLM_FALLBACK_EVENT_REOPENED;
}


static void
ngx_http_llm_fallback_breaker_open(ngx_http_llm_fallback_stats_t *st,
    ngx_msec_t now, ngx_msec_t cooldown)
{
    st->state = NGX_HTTP_LLM_FALLBACK_BREAKER_OPEN;
    st->open_until = now + cooldown;
    st->cooldown = cooldown;
    st->failures = 0;

    (void) ngx_atomic_fetch_add(&st->opened, 1);
}


static void
ngx_http_llm_fallback_breaker_count(ngx_http_llm_fallback_stats_t *st,
    ngx_uint_t reason, ngx_uint_t status, ngx_msec_t duration,
    ngx_http_llm_fallback_result_t *result)
{
    ngx_uint_t  i;

    (void) ngx_atomic_fetch_add(&st->attempts, 1);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NBUCKETS - 1; i++) {
        if (duration <= ngx_http_llm_fallback_buckets[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->duration[i], 1);
    (void) ngx_atomic_fetch_add(&st->duration_sum, duration);

    if (reason == NGX_HTTP_LLM_FALLBACK_OK) {
        (void) ngx_atomic_fetch_add(&st->successes, 1);

        if (result && result->prompt_tokens > 0) {
            (void) ngx_atomic_fetch_add(&st->prompt_tokens,
                                        result->prompt_tokens);
        }

        if (result && result->completion_tokens > 0) {
            (void) ngx_atomic_fetch_add(&st->completion_tokens,
                                        result->completion_tokens);
        }

        return;
    }

    if (reason >= NGX_HTTP_LLM_FALLBACK_NREASONS) {
        return;
    }

    (void) ngx_atomic_fetch_add(&st->failed[reason], 1);

    if (reason != NGX_HTTP_LLM_FALLBACK_HTTP) {
        return;
    }

    /* http_NNN: the code's slot, or the first free one */

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_NCODES; i++) {

        if (st->codes[i].code == 0) {
            st->codes[i].code = status;
        }

        if (st->codes[i].code == status) {
            (void) ngx_atomic_fetch_add(&st->codes[i].count, 1);
            return;
        }
    }
}


/* a trial that ended without an outcome (the client went away) */

void
ngx_http_llm_fallback_breaker_release(ngx_http_llm_fallback_ctx_t *ctx)
{
    if (ctx->probe && ctx->probe->active) {
        ngx_http_llm_fallback_breaker_cleanup(ctx->probe);
    }
}


static void
ngx_http_llm_fallback_breaker_cleanup(void *data)
{
    ngx_http_llm_fallback_probe_t  *probe = data;

    ngx_http_llm_fallback_node_t     *node;
    ngx_http_llm_fallback_breaker_t  *cb;

    if (!probe->active) {
        return;
    }

    probe->active = 0;
    cb = probe->breaker;

    ngx_shmtx_lock(&cb->shpool->mutex);

    node = ngx_http_llm_fallback_breaker_lookup(cb, probe->name, probe->hash);

    if (node && node->stats.probes && node->stats.probe_gen == probe->gen) {
        node->stats.probes--;
    }

    ngx_shmtx_unlock(&cb->shpool->mutex);
}
