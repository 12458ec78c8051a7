
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * llm_models: a GET handler listing models, the way OpenAI's
 * GET /v1/models does, or Anthropic's when the request carries an
 * anthropic-version header.  Both bodies are made once, when the
 * configuration is loaded (at the merge, when every llm_provider is
 * known); a request only picks one.
 */


#define NGX_HTTP_LLM_FALLBACK_MODELS_OWNER  "llm-fallback"


struct ngx_http_llm_fallback_models_s {
    /* ngx_str_t: the names given; NULL: the providers' model= */
    ngx_array_t                      *names;
    ngx_str_t                         openai;
    ngx_str_t                         anthropic;
    u_char                           *file;
    ngx_uint_t                        line;
};


static ngx_int_t ngx_http_llm_fallback_models_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_llm_fallback_models_anthropic(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_llm_fallback_models_valid(ngx_str_t *name);
static ngx_int_t ngx_http_llm_fallback_models_build(ngx_conf_t *cf,
    ngx_http_llm_fallback_models_t *m);
static ngx_int_t ngx_http_llm_fallback_models_add(json_t *openai,
    json_t *anthropic, ngx_str_t *id, ngx_str_t *owner, time_t created,
    u_char *created_at);


static ngx_str_t  ngx_http_llm_fallback_models_type =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_models_allow =
    ngx_string("GET, HEAD");
static ngx_str_t  ngx_http_llm_fallback_models_owner =
    ngx_string(NGX_HTTP_LLM_FALLBACK_MODELS_OWNER);

static ngx_str_t  ngx_http_llm_fallback_models_405_openai = ngx_string(
    "{\"error\":{\"message\":\"Only GET and HEAD are allowed on this "
    "endpoint.\",\"type\":\"invalid_request_error\",\"param\":null,"
    "\"code\":\"method_not_allowed\"}}");

static ngx_str_t  ngx_http_llm_fallback_models_405_anthropic = ngx_string(
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"Only GET and HEAD are allowed on this endpoint.\"}}");


char *
ngx_http_llm_fallback_models(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_str_t                       *value, *name, *names;
    ngx_uint_t                       i, j;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_llm_fallback_models_t  *m;

    if (lcf->models) {
        return "is duplicate";
    }

    m = ngx_pcalloc(cf->pool, sizeof(ngx_http_llm_fallback_models_t));
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (cf->args->nelts > 1) {
        m->names = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_str_t));
        if (m->names == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 1; i < cf->args->nelts; i++) {

            if (ngx_http_llm_fallback_models_valid(&value[i]) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid model name \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            names = m->names->elts;

            for (j = 0; j < m->names->nelts; j++) {
                if (names[j].len == value[i].len
                    && ngx_strncmp(names[j].data, value[i].data,
                                   value[i].len)
                       == 0)
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "duplicate model name \"%V\"",
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

            name = ngx_array_push(m->names);
            if (name == NULL) {
                return NGX_CONF_ERROR;
            }

            *name = value[i];
        }
    }

    m->file = cf->conf_file->file.name.data;
    m->line = cf->conf_file->line;

    lcf->models = m;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llm_fallback_models_handler;

    return NGX_CONF_OK;
}


/*
 * At the merge of a location's configuration: the whole http{} block has
 * been read, so every llm_provider is declared.  The lists are made here.
 */

char *
ngx_http_llm_fallback_models_merge(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *conf)
{
    const char                      *other;
    ngx_http_llm_fallback_models_t  *m;

    m = conf->models;

    if (m == NULL || m->openai.len) {
        return NGX_CONF_OK;
    }

    other = NULL;

    if (conf->chain_names || conf->chain_var) {
        other = "llm_fallback_chain";

    } else if (conf->status_format) {
        other = "llm_status";
    }

    if (other) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"llm_models\" cannot be used with \"%s\" in one "
                      "location in %s:%ui", other, m->file, m->line);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_fallback_models_build(cf, m) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_llm_fallback_models_valid(ngx_str_t *name)
{
    json_t  *s;

    if (name->len == 0) {
        return NGX_ERROR;
    }

    /* what jansson takes as a JSON string: UTF-8, no NUL */

    s = json_stringn((const char *) name->data, name->len);
    if (s == NULL) {
        return NGX_ERROR;
    }

    json_decref(s);

    if (ngx_strlchr(name->data, name->data + name->len, '\0')) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_models_build(ngx_conf_t *cf,
    ngx_http_llm_fallback_models_t *m)
{
    u_char                              *p;
    json_t                              *openai, *anthropic, *data, *first;
    json_t                              *last;
    time_t                               now;
    ngx_tm_t                             tm;
    ngx_str_t                           *names;
    ngx_uint_t                           i, j;
    ngx_http_llm_fallback_provider_t    *pr;
    ngx_http_llm_fallback_main_conf_t   *lmcf;
    u_char                               created_at[
                                             sizeof("1970-01-01T00:00:00Z")];

    now = ngx_time();
    ngx_gmtime(now, &tm);

    p = ngx_sprintf(created_at, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
    *p = '\0';

    openai = json_pack("{s:s,s:[]}", "object", "list", "data");
    if (openai == NULL
        || ngx_http_llm_fallback_json_keep(cf->temp_pool, openai) != NGX_OK)
    {
        json_decref(openai);
        return NGX_ERROR;
    }

    anthropic = json_pack("{s:[],s:b}", "data", "has_more", 0);
    if (anthropic == NULL
        || ngx_http_llm_fallback_json_keep(cf->temp_pool, anthropic)
           != NGX_OK)
    {
        json_decref(anthropic);
        return NGX_ERROR;
    }

    if (m->names) {
        names = m->names->elts;

        for (i = 0; i < m->names->nelts; i++) {
            if (ngx_http_llm_fallback_models_add(openai, anthropic,
                                        &names[i],
                                        &ngx_http_llm_fallback_models_owner,
                                        now, created_at)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    } else {
        lmcf = ngx_http_conf_get_module_main_conf(cf,
                                                ngx_http_llm_fallback_module);
        pr = lmcf->providers.elts;

        for (i = 0; i < lmcf->providers.nelts; i++) {

            if (pr[i].model.len == 0) {
                continue;
            }

            /* each model once, owned by the first provider declaring it */

            for (j = 0; j < i; j++) {
                if (pr[j].model.len == pr[i].model.len
                    && ngx_strncmp(pr[j].model.data, pr[i].model.data,
                                   pr[i].model.len)
                       == 0)
                {
                    break;
                }
            }

            if (j < i) {
                continue;
            }

            if (ngx_http_llm_fallback_models_valid(&pr[i].model) != NGX_OK) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "invalid model name \"%V\" of llm provider "
                              "\"%V\" for \"llm_models\" in %s:%ui",
                              &pr[i].model, &pr[i].name, m->file, m->line);
                return NGX_ERROR;
            }

            if (ngx_http_llm_fallback_models_add(openai, anthropic,
                                                 &pr[i].model, &pr[i].name,
                                                 now, created_at)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /* Anthropic's paging: the first and the last id, null when empty */

    data = json_object_get(anthropic, "data");

    if (json_array_size(data)) {
        first = json_object_get(json_array_get(data, 0), "id");
        last = json_object_get(json_array_get(data,
                                              json_array_size(data) - 1),
                               "id");

        if (json_object_set(anthropic, "first_id", first) != 0
            || json_object_set(anthropic, "last_id", last) != 0)
        {
            return NGX_ERROR;
        }

    } else {
        if (json_object_set_new(anthropic, "first_id", json_null()) != 0
            || json_object_set_new(anthropic, "last_id", json_null()) != 0)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_llm_fallback_dump(cf->pool, openai, &m->openai) != NGX_OK
        || ngx_http_llm_fallback_dump(cf->pool, anthropic, &m->anthropic)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_models_add(json_t *openai, json_t *anthropic,
    ngx_str_t *id, ngx_str_t *owner, time_t created, u_char *created_at)
{
    json_t  *model;

    model = json_pack("{s:s%,s:s,s:I,s:s%}",
                      "id", (const char *) id->data, id->len,
                      "object", "model",
                      "created", (json_int_t) created,
                      "owned_by", (const char *) owner->data, owner->len);

    if (model == NULL
        || json_array_append_new(json_object_get(openai, "data"), model)
           != 0)
    {
        return NGX_ERROR;
    }

    model = json_pack("{s:s,s:s%,s:s%,s:s}",
                      "type", "model",
                      "id", (const char *) id->data, id->len,
                      "display_name", (const char *) id->data, id->len,
                      "created_at", (const char *) created_at);

    if (model == NULL
        || json_array_append_new(json_object_get(anthropic, "data"), model)
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_models_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_str_t                         *body;
    ngx_uint_t                         anthropic;
    ngx_chain_t                        out;
    ngx_http_llm_fallback_models_t    *m;
    ngx_http_llm_fallback_loc_conf_t  *lcf;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);
    m = lcf->models;

    anthropic = ngx_http_llm_fallback_models_anthropic(r);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        r->headers_out.status = NGX_HTTP_OK;
        body = anthropic ? &m->anthropic : &m->openai;

    } else {
        if (ngx_http_llm_fallback_add_header(r, "Allow",
                                          &ngx_http_llm_fallback_models_allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.status = NGX_HTTP_NOT_ALLOWED;
        body = anthropic ? &ngx_http_llm_fallback_models_405_anthropic
                         : &ngx_http_llm_fallback_models_405_openai;
    }

    r->headers_out.content_type = ngx_http_llm_fallback_models_type;
    r->headers_out.content_type_len = ngx_http_llm_fallback_models_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* an Anthropic client: it sends anthropic-version with every request */

static ngx_uint_t
ngx_http_llm_fallback_models_anthropic(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
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

        if (h[i].key.len == sizeof("anthropic-version") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "anthropic-version",
                               sizeof("anthropic-version") - 1)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}
