
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_redis.h"


/*
 * The hiredis asynchronous API on nginx's event loop.
 *
 * Each worker has at most one connection per configured server (address,
 * db, password), made on first use.  Its fd is wrapped in an nginx
 * connection registered level-triggered, because hiredis reads once per
 * event.  AUTH and SELECT are queued ahead of the first command.  After a
 * failure the worker waits (backoff, 100ms doubling to 2s) before it
 * connects again; meanwhile commands fail at once.
 *
 * hiredis 0.14 has no command timeout (redisAsyncSetTimeout is 1.x), so a
 * watchdog on the connection's read event closes a connection that has
 * not answered for "timeout" while commands are pending: a hung Redis
 * (DEBUG SLEEP, a stopped process, a black-holed address) costs each
 * request at most its own timeout, and the connection is made again.
 *
 * Large stores (SET of more than NGX_HTTP_LLM_FALLBACK_REDIS_SMALL_SET
 * bytes) go over a second connection of their own: Redis answers a
 * connection's commands in order, and a large answer takes a while to be
 * written and read, so a lookup pipelined behind one would wait for it,
 * and the watchdog would close the connection with every lookup on it.
 * Small ones stay with the lookups, in order: a lookup sent after a store
 * sees it.  The large stores' watchdog is ten times "timeout", at least a
 * second; while NGX_HTTP_LLM_FALLBACK_REDIS_MAX_WRITES stores or
 * NGX_HTTP_LLM_FALLBACK_REDIS_MAX_UNSENT unsent bytes wait on it, more are
 * dropped (not stored): a slow Redis never piles answers up in memory.
 *
 * hiredis calls a callback exactly once per accepted command, with a NULL
 * reply when the connection is freed, possibly long after the request
 * that sent it has gone.  It is therefore given a token that lives as
 * long as the worker, not the request's op: the request's pool cleanup
 * clears token->op, and the callback only records the reply and posts the
 * op's event.  Requests resume from that event, outside hiredis.
 */


#define NGX_HTTP_LLM_FALLBACK_REDIS_MIN_BACKOFF  100
#define NGX_HTTP_LLM_FALLBACK_REDIS_MAX_BACKOFF  2000

/* the large stores' connection: its watchdog, when stores are dropped */
#define NGX_HTTP_LLM_FALLBACK_REDIS_SMALL_SET    65536
#define NGX_HTTP_LLM_FALLBACK_REDIS_WRITE_MIN    1000
#define NGX_HTTP_LLM_FALLBACK_REDIS_MAX_WRITES   64
#define NGX_HTTP_LLM_FALLBACK_REDIS_MAX_UNSENT   (16 * 1024 * 1024)


struct ngx_http_llm_fallback_redis_token_s {
    ngx_http_llm_fallback_redis_op_t     *op;
    ngx_http_llm_fallback_redis_t        *redis;
    ngx_http_llm_fallback_redis_token_t  *next;
};


struct ngx_http_llm_fallback_redis_s {
    ngx_http_llm_fallback_redis_server_t *server;
    redisAsyncContext                    *ac;
    ngx_connection_t                     *connection;
    ngx_log_t                            *log;
    ngx_pool_t                           *pool;
    ngx_http_llm_fallback_redis_token_t  *free;

    ngx_uint_t                            pending;
    ngx_msec_t                            timeout;   /* the watchdog */
    ngx_msec_t                            backoff;
    ngx_msec_t                            retry_at;
    const char                           *role;      /* for logs */

    /* writes the commands of one event loop turn at once */
    ngx_event_t                           flush;

    unsigned                              ready:1;
    unsigned                              closing:1;
    unsigned                              exiting:1;
    unsigned                              issuing:1;
    unsigned                              want_write:1;
};


static ngx_int_t ngx_http_llm_fallback_redis_connect(
    ngx_http_llm_fallback_redis_t *rd);
static void ngx_http_llm_fallback_redis_close(
    ngx_http_llm_fallback_redis_t *rd);
static void ngx_http_llm_fallback_redis_sent(
    ngx_http_llm_fallback_redis_t *rd);
static void ngx_http_llm_fallback_redis_flush(
    ngx_http_llm_fallback_redis_t *rd);
static void ngx_http_llm_fallback_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_llm_fallback_redis_replied(
    ngx_http_llm_fallback_redis_t *rd, redisReply *reply);
static ngx_http_llm_fallback_redis_token_t *
    ngx_http_llm_fallback_redis_get_token(ngx_http_llm_fallback_redis_t *rd);
static void ngx_http_llm_fallback_redis_free_token(
    ngx_http_llm_fallback_redis_t *rd,
    ngx_http_llm_fallback_redis_token_t *token);

static void ngx_http_llm_fallback_redis_add_read(void *privdata);
static void ngx_http_llm_fallback_redis_del_read(void *privdata);
static void ngx_http_llm_fallback_redis_add_write(void *privdata);
static void ngx_http_llm_fallback_redis_del_write(void *privdata);
static void ngx_http_llm_fallback_redis_cleanup(void *privdata);
static void ngx_http_llm_fallback_redis_read_handler(ngx_event_t *rev);
static void ngx_http_llm_fallback_redis_write_handler(ngx_event_t *wev);

static void ngx_http_llm_fallback_redis_connected(
    const redisAsyncContext *ac, int status);
static void ngx_http_llm_fallback_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_llm_fallback_redis_setup_done(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_llm_fallback_redis_set_done(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_llm_fallback_redis_get_done(redisAsyncContext *ac,
    void *reply, void *privdata);

static void ngx_http_llm_fallback_redis_op_handler(ngx_event_t *ev);
static void ngx_http_llm_fallback_redis_op_cleanup(void *data);
static ngx_http_llm_fallback_redis_t *ngx_http_llm_fallback_redis_create(
    ngx_cycle_t *cycle, ngx_http_llm_fallback_redis_server_t *server,
    ngx_msec_t timeout, const char *role);
static void ngx_http_llm_fallback_redis_free(
    ngx_http_llm_fallback_redis_t *rd);


ngx_http_llm_fallback_redis_server_t *
ngx_http_llm_fallback_redis_add(ngx_conf_t *cf, ngx_str_t *addr,
    ngx_uint_t db, ngx_str_t *password, ngx_msec_t timeout)
{
    u_char                                 *p;
    size_t                                  len;
    in_port_t                               port;
    ngx_str_t                               host;
    ngx_url_t                               u;
    ngx_uint_t                              i;
    ngx_http_llm_fallback_main_conf_t      *lmcf;
    ngx_http_llm_fallback_redis_server_t  **sp, *s;

    if (addr->len > 5 && ngx_strncmp(addr->data, "unix:", 5) == 0) {
        host.data = addr->data + 5;
        host.len = addr->len - 5;
        port = 0;

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = *addr;
        u.default_port = 6379;

        /* a host name is resolved here, once: never on the request path */

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"redis=%V\" of \"llm_cache\"",
                               u.err ? u.err : "no address", addr);
            return NULL;
        }

        if (u.naddrs > 1) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "\"redis=%V\" of \"llm_cache\" has %ui "
                               "addresses, the first is used",
                               addr, u.naddrs);
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN);
        if (p == NULL) {
            return NULL;
        }

        host.data = p;
        host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                 p, NGX_SOCKADDR_STRLEN, 0);
        port = ngx_inet_get_port(u.addrs[0].sockaddr);
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_llm_fallback_module);

    if (lmcf->redis == NULL) {
        lmcf->redis = ngx_array_create(cf->pool, 2,
                          sizeof(ngx_http_llm_fallback_redis_server_t *));
        if (lmcf->redis == NULL) {
            return NULL;
        }
    }

    sp = lmcf->redis->elts;

    for (i = 0; i < lmcf->redis->nelts; i++) {
        s = sp[i];

        if (s->port == port
            && s->db == db
            && ngx_strlen(s->host) == host.len
            && ngx_strncmp(s->host, host.data, host.len) == 0
            && s->password.len == password->len
            && ngx_strncmp(s->password.data, password->data, password->len)
               == 0)
        {
            s->timeout = ngx_max(s->timeout, timeout);
            return s;
        }
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_redis_server_t));
    if (s == NULL) {
        return NULL;
    }

    s->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (s->host == NULL) {
        return NULL;
    }

    ngx_memcpy(s->host, host.data, host.len);
    s->host[host.len] = '\0';

    len = host.len + sizeof("unix:[]:65535") - 1;

    s->name.data = ngx_pnalloc(cf->pool, len);
    if (s->name.data == NULL) {
        return NULL;
    }

    if (port == 0) {
        p = ngx_sprintf(s->name.data, "unix:%V", &host);

    } else if (ngx_strlchr(host.data, host.data + host.len, ':')) {
        p = ngx_sprintf(s->name.data, "[%V]:%d", &host, (int) port);

    } else {
        p = ngx_sprintf(s->name.data, "%V:%d", &host, (int) port);
    }

    s->name.len = p - s->name.data;
    s->port = port;
    s->db = db;
    s->password = *password;
    s->timeout = timeout;

    sp = ngx_array_push(lmcf->redis);
    if (sp == NULL) {
        return NULL;
    }

    *sp = s;

    return s;
}


ngx_int_t
ngx_http_llm_fallback_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_msec_t                              timeout;
    ngx_uint_t                              i;
    ngx_http_llm_fallback_main_conf_t      *lmcf;
    ngx_http_llm_fallback_redis_server_t  **sp;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llm_fallback_module);

    if (lmcf == NULL || lmcf->redis == NULL) {
        return NGX_OK;
    }

    sp = lmcf->redis->elts;

    for (i = 0; i < lmcf->redis->nelts; i++) {

        /* connected lazily, on first use */

        sp[i]->redis = ngx_http_llm_fallback_redis_create(cycle, sp[i],
                                                          sp[i]->timeout,
                                                          "");
        if (sp[i]->redis == NULL) {
            return NGX_ERROR;
        }

        timeout = ngx_max(sp[i]->timeout * 10,
                          NGX_HTTP_LLM_FALLBACK_REDIS_WRITE_MIN);

        sp[i]->writer = ngx_http_llm_fallback_redis_create(cycle, sp[i],
                                                           timeout,
                                                           " (large stores)");
        if (sp[i]->writer == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_llm_fallback_redis_t *
ngx_http_llm_fallback_redis_create(ngx_cycle_t *cycle,
    ngx_http_llm_fallback_redis_server_t *server, ngx_msec_t timeout,
    const char *role)
{
    ngx_http_llm_fallback_redis_t  *rd;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_llm_fallback_redis_t));
    if (rd == NULL) {
        return NULL;
    }

    rd->server = server;
    rd->log = cycle->log;
    rd->pool = cycle->pool;
    rd->timeout = timeout;
    rd->role = role;
    rd->retry_at = ngx_current_msec;

    rd->flush.handler = ngx_http_llm_fallback_redis_flush_handler;
    rd->flush.data = rd;
    rd->flush.log = cycle->log;

    return rd;
}


void
ngx_http_llm_fallback_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                              i;
    ngx_http_llm_fallback_main_conf_t      *lmcf;
    ngx_http_llm_fallback_redis_server_t  **sp;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llm_fallback_module);

    if (lmcf == NULL || lmcf->redis == NULL) {
        return;
    }

    sp = lmcf->redis->elts;

    for (i = 0; i < lmcf->redis->nelts; i++) {
        ngx_http_llm_fallback_redis_free(sp[i]->redis);
        ngx_http_llm_fallback_redis_free(sp[i]->writer);
    }
}


static void
ngx_http_llm_fallback_redis_free(ngx_http_llm_fallback_redis_t *rd)
{
    if (rd == NULL) {
        return;
    }

    rd->exiting = 1;

    if (rd->ac) {
        /* runs the pending callbacks, the cleanup hook, closes the fd */
        redisAsyncFree(rd->ac);
    }
}


ngx_int_t
ngx_http_llm_fallback_redis_get(ngx_http_llm_fallback_redis_op_t *op,
    ngx_str_t *key, ngx_msec_t timeout)
{
    int                                   rc;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_request_t                   *r;
    ngx_http_llm_fallback_redis_t        *rd;
    ngx_http_llm_fallback_redis_token_t  *token;

    r = op->request;
    rd = op->server->redis;

    op->rc = NGX_ERROR;

    if (rd == NULL || ngx_http_llm_fallback_redis_connect(rd) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_redis_op_cleanup;
    cln->data = op;

    token = ngx_http_llm_fallback_redis_get_token(rd);
    if (token == NULL) {
        return NGX_ERROR;
    }

    token->op = op;

    rd->issuing = 1;

    rc = redisAsyncCommand(rd->ac, ngx_http_llm_fallback_redis_get_done,
                           token, "GET %b", key->data, key->len);

    rd->issuing = 0;

    if (rc != REDIS_OK) {
        rd->want_write = 0;
        ngx_http_llm_fallback_redis_free_token(rd, token);
        return NGX_ERROR;
    }

    op->token = token;

    ngx_http_llm_fallback_redis_sent(rd);

    op->event.handler = ngx_http_llm_fallback_redis_op_handler;
    op->event.data = r->connection;
    op->event.log = r->connection->log;

    ngx_add_timer(&op->event, timeout);

    /* notice a client that goes away while Redis is being asked */

    op->read_event_handler = r->read_event_handler;
    r->read_event_handler = ngx_http_test_reading;

    r->main->count++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "llm cache: GET \"%V\" from redis %V",
                   key, &op->server->name);

    ngx_http_llm_fallback_redis_flush(rd);

    return NGX_AGAIN;
}


ngx_int_t
ngx_http_llm_fallback_redis_set(ngx_http_llm_fallback_redis_server_t *server,
    ngx_str_t *key, ngx_str_t *value, ngx_msec_t ttl, ngx_log_t *log)
{
    int                              rc;
    u_char                          *p, buf[NGX_INT_T_LEN];
    ngx_http_llm_fallback_redis_t   *rd;

    rd = (value->len > NGX_HTTP_LLM_FALLBACK_REDIS_SMALL_SET)
         ? server->writer : server->redis;

    if (rd == NULL || ngx_http_llm_fallback_redis_connect(rd) != NGX_OK) {
        return NGX_ERROR;
    }

    /* Redis is slower than the answers come: drop, do not pile up */

    if (rd == server->writer
        && (rd->pending >= NGX_HTTP_LLM_FALLBACK_REDIS_MAX_WRITES
            || (rd->pending
                && sdslen(rd->ac->c.obuf) + value->len
                   > NGX_HTTP_LLM_FALLBACK_REDIS_MAX_UNSENT)))
    {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "llm cache: SET \"%V\" dropped, %ui stores and "
                       "%uz bytes wait", key, rd->pending,
                       sdslen(rd->ac->c.obuf));
        return NGX_DECLINED;
    }

    p = ngx_sprintf(buf, "%M", ttl);

    /* fire and forget: the callback only logs a failure */

    rd->issuing = 1;

    rc = redisAsyncCommand(rd->ac, ngx_http_llm_fallback_redis_set_done, rd,
                           "SET %b %b PX %b", key->data, key->len,
                           value->data, value->len, buf, (size_t) (p - buf));

    rd->issuing = 0;

    if (rc != REDIS_OK) {
        rd->want_write = 0;
        return NGX_ERROR;
    }

    ngx_http_llm_fallback_redis_sent(rd);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "llm cache: SET \"%V\" PX %M, %uz bytes",
                   key, ttl, value->len);

    ngx_http_llm_fallback_redis_flush(rd);

    return NGX_OK;
}


/* NGX_OK: the context exists (it may still be connecting) */

static ngx_int_t
ngx_http_llm_fallback_redis_connect(ngx_http_llm_fallback_redis_t *rd)
{
    ngx_connection_t                      *c;
    redisAsyncContext                     *ac;
    ngx_http_llm_fallback_redis_server_t  *s;

    if (rd->ac) {
        return rd->closing ? NGX_DECLINED : NGX_OK;
    }

    if (rd->exiting
        || (ngx_msec_int_t) (rd->retry_at - ngx_current_msec) > 0)
    {
        return NGX_DECLINED;
    }

    s = rd->server;

    /* an IP literal or a path: no name resolution here */

    ac = s->port ? redisAsyncConnect((char *) s->host, s->port)
                 : redisAsyncConnectUnix((char *) s->host);

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "llm cache: could not allocate a redis context");
        goto failed;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "llm cache: connect() to redis %V%s failed: %s",
                      &s->name, rd->role, ac->errstr);
        redisAsyncFree(ac);
        goto failed;
    }

    c = ngx_get_connection(ac->c.fd, rd->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        goto failed;
    }

    c->data = rd;
    c->log = rd->log;
    c->read->log = rd->log;
    c->write->log = rd->log;
    c->read->handler = ngx_http_llm_fallback_redis_read_handler;
    c->write->handler = ngx_http_llm_fallback_redis_write_handler;

    rd->ac = ac;
    rd->connection = c;
    rd->pending = 0;
    rd->ready = 0;
    rd->closing = 0;

    ac->data = rd;
    ac->ev.data = rd;
    ac->ev.addRead = ngx_http_llm_fallback_redis_add_read;
    ac->ev.delRead = ngx_http_llm_fallback_redis_del_read;
    ac->ev.addWrite = ngx_http_llm_fallback_redis_add_write;
    ac->ev.delWrite = ngx_http_llm_fallback_redis_del_write;
    ac->ev.cleanup = ngx_http_llm_fallback_redis_cleanup;

    /* the hooks must be set first: this waits for the socket to be writable */

    redisAsyncSetConnectCallback(ac, ngx_http_llm_fallback_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_llm_fallback_redis_disconnected);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "llm cache: connecting to redis %V, fd:%d",
                   &s->name, c->fd);

    /* queued ahead of any command, sent once connected */

    if (s->password.len) {
        if (redisAsyncCommand(ac, ngx_http_llm_fallback_redis_setup_done, rd,
                              "AUTH %b", s->password.data, s->password.len)
            != REDIS_OK)
        {
            ngx_http_llm_fallback_redis_close(rd);
            return NGX_ERROR;
        }

        ngx_http_llm_fallback_redis_sent(rd);
    }

    if (s->db) {
        if (redisAsyncCommand(ac, ngx_http_llm_fallback_redis_setup_done, rd,
                              "SELECT %d", (int) s->db)
            != REDIS_OK)
        {
            ngx_http_llm_fallback_redis_close(rd);
            return NGX_ERROR;
        }

        ngx_http_llm_fallback_redis_sent(rd);
    }

    return NGX_OK;

failed:

    rd->backoff = rd->backoff ? ngx_min(rd->backoff * 2,
                                        NGX_HTTP_LLM_FALLBACK_REDIS_MAX_BACKOFF)
                              : NGX_HTTP_LLM_FALLBACK_REDIS_MIN_BACKOFF;
    rd->retry_at = ngx_current_msec + rd->backoff;

    return NGX_ERROR;
}


/*
 * Frees the context: pending callbacks run with a NULL reply, then the
 * cleanup hook releases the nginx connection and hiredis closes the fd.
 * Inside a hiredis callback the free is deferred until it returns.
 */

static void
ngx_http_llm_fallback_redis_close(ngx_http_llm_fallback_redis_t *rd)
{
    if (rd->ac == NULL || rd->closing) {
        return;
    }

    rd->closing = 1;

    redisAsyncFree(rd->ac);
}


static void
ngx_http_llm_fallback_redis_sent(ngx_http_llm_fallback_redis_t *rd)
{
    ngx_event_t  *rev;

    rd->pending++;

    rev = rd->connection->read;

    if (!rev->timer_set) {
        ngx_add_timer(rev, rd->timeout);
    }
}


/*
 * A command was appended while "issuing": it is written by a posted event
 * at the end of this turn of the event loop, with every other command of
 * the turn, in one write() (Redis then reads a pipeline); no epoll_ctl()
 * pair, no extra turn.  Before the connection is up, the write event
 * waits for it.
 */

static void
ngx_http_llm_fallback_redis_flush(ngx_http_llm_fallback_redis_t *rd)
{
    if (!rd->want_write) {
        return;
    }

    rd->want_write = 0;

    if (rd->ac == NULL) {
        return;
    }

    if (!(rd->ac->c.flags & REDIS_CONNECTED)) {
        ngx_http_llm_fallback_redis_add_write(rd);
        return;
    }

    if (!rd->flush.posted) {
        ngx_post_event(&rd->flush, &ngx_posted_events);
    }
}


static void
ngx_http_llm_fallback_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_llm_fallback_redis_t *rd = ev->data;

    if (rd->ac == NULL) {
        return;
    }

    /* hiredis adds the write event itself if the socket is full */

    redisAsyncHandleWrite(rd->ac);
}


static void
ngx_http_llm_fallback_redis_replied(ngx_http_llm_fallback_redis_t *rd,
    redisReply *reply)
{
    ngx_event_t  *rev;

    if (rd->pending) {
        rd->pending--;
    }

    if (reply == NULL || rd->connection == NULL) {
        /* the context is being freed */
        return;
    }

    if (reply->type != REDIS_REPLY_ERROR) {
        rd->ready = 1;
        rd->backoff = 0;
    }

    /* the watchdog: Redis answers, so it is not hung */

    rev = rd->connection->read;

    if (rd->pending) {
        ngx_add_timer(rev, rd->timeout);

    } else if (rev->timer_set) {
        ngx_del_timer(rev);
    }
}


static ngx_http_llm_fallback_redis_token_t *
ngx_http_llm_fallback_redis_get_token(ngx_http_llm_fallback_redis_t *rd)
{
    ngx_http_llm_fallback_redis_token_t  *token;

    token = rd->free;

    if (token) {
        rd->free = token->next;

    } else {
        /* worker lifetime; reused, so bounded by the commands in flight */

        token = ngx_palloc(rd->pool,
                           sizeof(ngx_http_llm_fallback_redis_token_t));
        if (token == NULL) {
            return NULL;
        }
    }

    token->op = NULL;
    token->redis = rd;
    token->next = NULL;

    return token;
}


static void
ngx_http_llm_fallback_redis_free_token(ngx_http_llm_fallback_redis_t *rd,
    ngx_http_llm_fallback_redis_token_t *token)
{
    token->op = NULL;
    token->next = rd->free;
    rd->free = token;
}


static void
ngx_http_llm_fallback_redis_add_read(void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    ngx_event_t  *rev;

    if (rd->connection == NULL) {
        return;
    }

    rev = rd->connection->read;

    if (!rev->active
        && ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "llm cache: could not add the redis read event");
    }
}


static void
ngx_http_llm_fallback_redis_del_read(void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    ngx_event_t  *rev;

    if (rd->connection == NULL) {
        return;
    }

    rev = rd->connection->read;

    if (rev->active && ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "llm cache: could not delete the redis read event");
    }
}


static void
ngx_http_llm_fallback_redis_add_write(void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    ngx_event_t  *wev;

    if (rd->connection == NULL) {
        return;
    }

    if (rd->issuing) {
        /* see ngx_http_llm_fallback_redis_flush() */
        rd->want_write = 1;
        return;
    }

    wev = rd->connection->write;

    if (!wev->active
        && ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "llm cache: could not add the redis write event");
    }
}


static void
ngx_http_llm_fallback_redis_del_write(void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    ngx_event_t  *wev;

    if (rd->connection == NULL) {
        return;
    }

    wev = rd->connection->write;

    if (wev->active && ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "llm cache: could not delete the redis write event");
    }
}


/*
 * Called by hiredis once, when the context is freed, after the pending
 * callbacks and just before it closes the fd: release the nginx side
 * without closing the socket, and drop every reference to the context.
 */

static void
ngx_http_llm_fallback_redis_cleanup(void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    ngx_connection_t  *c;

    c = rd->connection;

    if (c) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (ngx_del_conn) {
            ngx_del_conn(c, 0);

        } else {
            if (c->read->active || c->read->disabled) {
                ngx_del_event(c->read, NGX_READ_EVENT, 0);
            }

            if (c->write->active || c->write->disabled) {
                ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
            }
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_free_connection(c);

        c->fd = (ngx_socket_t) -1;
    }

    if (rd->flush.posted) {
        ngx_delete_posted_event(&rd->flush);
    }

    rd->ac->ev.data = NULL;
    rd->ac = NULL;
    rd->connection = NULL;
    rd->pending = 0;
    rd->closing = 0;

    if (rd->exiting) {
        return;
    }

    /*
     * a connection that worked may be made again at once (an idle close,
     * a restart); otherwise back off
     */

    if (rd->ready) {
        rd->backoff = 0;
        rd->retry_at = ngx_current_msec;

    } else {
        rd->backoff = rd->backoff
                      ? ngx_min(rd->backoff * 2,
                                NGX_HTTP_LLM_FALLBACK_REDIS_MAX_BACKOFF)
                      : NGX_HTTP_LLM_FALLBACK_REDIS_MIN_BACKOFF;
        rd->retry_at = ngx_current_msec + rd->backoff;
    }

    rd->ready = 0;
}


static void
ngx_http_llm_fallback_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t               *c;
    ngx_http_llm_fallback_redis_t  *rd;

    c = rev->data;
    rd = c->data;

    if (rev->timedout) {
        rev->timedout = 0;

        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "llm cache: redis %V%s timed out, closing the "
                      "connection", &rd->server->name, rd->role);

        /* a hung server: back off before connecting again */

        rd->ready = 0;

        ngx_http_llm_fallback_redis_close(rd);
        return;
    }

    /* c and rd->ac may be freed by this call: neither is touched after */

    redisAsyncHandleRead(rd->ac);
}


static void
ngx_http_llm_fallback_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t               *c;
    ngx_http_llm_fallback_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    redisAsyncHandleWrite(rd->ac);
}


static void
ngx_http_llm_fallback_redis_connected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_llm_fallback_redis_t  *rd;

    rd = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "llm cache: connect() to redis %V%s failed: %s",
                      &rd->server->name, rd->role, ac->errstr);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "llm cache: connected to redis %V", &rd->server->name);
}


static void
ngx_http_llm_fallback_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_llm_fallback_redis_t  *rd;

    rd = ac->data;

    if (status != REDIS_OK && !rd->exiting) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "llm cache: lost the connection to redis %V%s: %s",
                      &rd->server->name, rd->role,
                      ac->errstr[0] ? ac->errstr : "closed");
    }
}


static void
ngx_http_llm_fallback_redis_setup_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    redisReply  *rr = reply;

    ngx_http_llm_fallback_redis_replied(rd, rr);

    if (rr == NULL || rr->type != REDIS_REPLY_ERROR) {
        return;
    }

    /* the message never contains the password */

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "llm cache: redis %V refused AUTH or SELECT: %*s",
                  &rd->server->name, (size_t) rr->len, rr->str);

    rd->ready = 0;

    ngx_http_llm_fallback_redis_close(rd);
}


static void
ngx_http_llm_fallback_redis_set_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_llm_fallback_redis_t *rd = privdata;

    redisReply  *rr = reply;

    ngx_http_llm_fallback_redis_replied(rd, rr);

    if (rr && rr->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "llm cache: redis %V SET failed: %*s",
                      &rd->server->name, (size_t) rr->len, rr->str);
    }
}


static void
ngx_http_llm_fallback_redis_get_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_http_llm_fallback_redis_token_t *token = privdata;

    redisReply                        *rr = reply;
    ngx_http_request_t                *r;
    ngx_http_llm_fallback_redis_t     *rd;
    ngx_http_llm_fallback_redis_op_t  *op;

    rd = token->redis;
    op = token->op;

    ngx_http_llm_fallback_redis_replied(rd, rr);
    ngx_http_llm_fallback_redis_free_token(rd, token);

    if (op == NULL || rd->exiting) {
        /* the request has gone or has stopped waiting */
        return;
    }

    op->token = NULL;
    r = op->request;

    if (rr == NULL) {
        op->rc = NGX_ERROR;

    } else if (rr->type == REDIS_REPLY_NIL) {
        op->rc = NGX_DECLINED;

    } else if (rr->type == REDIS_REPLY_STRING
               && op->max && (size_t) rr->len > op->max)
    {
        /* not copied: the caller logs it and takes it for a nil */

        op->value.data = NULL;
        op->value.len = rr->len;
        op->too_large = 1;
        op->rc = NGX_DECLINED;

    } else if (rr->type == REDIS_REPLY_STRING) {

        /* the reply is freed when this callback returns */

        op->value.data = ngx_pnalloc(r->pool, rr->len);

        if (op->value.data == NULL) {
            op->rc = NGX_ERROR;

        } else {
            ngx_memcpy(op->value.data, rr->str, rr->len);
            op->value.len = rr->len;
            op->rc = NGX_OK;
        }

    } else {
        if (rr->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "llm cache: redis %V GET failed: %*s",
                          &op->server->name, (size_t) rr->len, rr->str);
        }

        op->rc = NGX_ERROR;
    }

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    /* resume the request outside hiredis */

    ngx_post_event(&op->event, &ngx_posted_events);
}


static void
ngx_http_llm_fallback_redis_op_handler(ngx_event_t *ev)
{
    ngx_connection_t                  *c;
    ngx_http_request_t                *r;
    ngx_http_llm_fallback_redis_op_t  *op;

    op = (ngx_http_llm_fallback_redis_op_t *)
             ((u_char *) ev - offsetof(ngx_http_llm_fallback_redis_op_t,
                                       event));

    r = op->request;
    c = r->connection;

    if (ev->timedout) {
        ev->timedout = 0;

        /* the token stays with hiredis until its callback runs */

        if (op->token) {
            op->token->op = NULL;
            op->token = NULL;
        }

        op->rc = NGX_ERROR;

        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "llm cache: redis %V timed out", &op->server->name);
    }

    r->read_event_handler = op->read_event_handler;
    r->main->count--;

    op->handler(op);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_llm_fallback_redis_op_cleanup(void *data)
{
    ngx_http_llm_fallback_redis_op_t *op = data;

    if (op->token) {
        op->token->op = NULL;
        op->token = NULL;
    }

    if (op->event.timer_set) {
        ngx_del_timer(&op->event);
    }

    if (op->event.posted) {
        ngx_delete_posted_event(&op->event);
    }
}
