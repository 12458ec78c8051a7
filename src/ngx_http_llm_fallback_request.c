
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_module.h"


#define NGX_HTTP_LLM_FALLBACK_T_STRING    0x01
#define NGX_HTTP_LLM_FALLBACK_T_ARRAY     0x02
#define NGX_HTTP_LLM_FALLBACK_T_NULL      0x04
#define NGX_HTTP_LLM_FALLBACK_T_OBJECT    0x08
#define NGX_HTTP_LLM_FALLBACK_T_BOOL      0x10
#define NGX_HTTP_LLM_FALLBACK_T_NUMBER    0x20
#define NGX_HTTP_LLM_FALLBACK_T_INTEGER   0x40


typedef struct {
    const char                       *name;
    ngx_uint_t                        types;
    const char                       *expected;
} ngx_http_llm_fallback_field_t;


static ngx_int_t ngx_http_llm_fallback_check_type(json_t *v,
    ngx_uint_t types);
static ngx_int_t ngx_http_llm_fallback_invalid(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    const char *fmt, const char *param, ngx_int_t index, const char *field,
    const char *expected);
static ngx_int_t ngx_http_llm_fallback_validate_messages(
    ngx_http_llm_fallback_ctx_t *ctx, json_t *messages,
    ngx_http_llm_fallback_error_t *err);


static ngx_http_llm_fallback_field_t  ngx_http_llm_fallback_fields[] = {
    { "model", NGX_HTTP_LLM_FALLBACK_T_STRING, "a string" },
    { "stream", NGX_HTTP_LLM_FALLBACK_T_BOOL|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "a boolean" },
    { "temperature",
      NGX_HTTP_LLM_FALLBACK_T_NUMBER|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "a number" },
    { "top_p", NGX_HTTP_LLM_FALLBACK_T_NUMBER|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "a number" },
    { "max_tokens",
      NGX_HTTP_LLM_FALLBACK_T_INTEGER|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "an integer" },
    { "max_completion_tokens",
      NGX_HTTP_LLM_FALLBACK_T_INTEGER|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "an integer" },
    { "tools", NGX_HTTP_LLM_FALLBACK_T_ARRAY, "an array" },
    { "stream_options",
      NGX_HTTP_LLM_FALLBACK_T_OBJECT|NGX_HTTP_LLM_FALLBACK_T_NULL,
      "an object" },
    { "stop",
      NGX_HTTP_LLM_FALLBACK_T_STRING|NGX_HTTP_LLM_FALLBACK_T_ARRAY
      |NGX_HTTP_LLM_FALLBACK_T_NULL,
      "a string, an array of strings or null" },
    { NULL, 0, NULL }
};


ngx_int_t
ngx_http_llm_fallback_is_json(ngx_http_request_t *r)
{
    u_char  *p, *last;
    size_t   len;

    if (r->headers_in.content_type == NULL) {
        return 1;
    }

    p = r->headers_in.content_type->value.data;
    len = r->headers_in.content_type->value.len;
    last = ngx_strlchr(p, p + len, ';');

    if (last) {
        len = last - p;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json", len) == 0)
    {
        return 1;
    }

    /* application/<anything>+json */

    if (len > sizeof("application/+json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/", 12) == 0
        && ngx_strncasecmp(p + len - 5, (u_char *) "+json", 5) == 0)
    {
        return 1;
    }

    return 0;
}


ngx_int_t
ngx_http_llm_fallback_validate(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err)
{
    json_t                         *v;
    ngx_http_llm_fallback_field_t  *f;

    if (!json_is_object(ctx->json)) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "The request body must be a JSON object.",
                   NULL, -1, NULL, NULL);
    }

    for (f = ngx_http_llm_fallback_fields; f->name; f++) {
        v = json_object_get(ctx->json, f->name);

        if (v != NULL && !ngx_http_llm_fallback_check_type(v, f->types)) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Invalid type for '%s': expected %s.",
                       f->name, -1, NULL, f->expected);
        }
    }

    v = json_object_get(ctx->json, "max_tokens");
    if (json_is_integer(v) && json_integer_value(v) < 1) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "Invalid 'max_tokens': integer below minimum value, "
                   "expected a value >= 1.", "max_tokens", -1, NULL, NULL);
    }

    v = json_object_get(ctx->json, "max_completion_tokens");
    if (json_is_integer(v) && json_integer_value(v) < 1) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "Invalid 'max_completion_tokens': integer below minimum "
                   "value, expected a value >= 1.", "max_completion_tokens",
                   -1, NULL, NULL);
    }

    v = json_object_get(ctx->json, "model");
    if (json_is_string(v)) {
        ctx->client_model.len = json_string_length(v);
        ctx->client_model.data = ngx_pnalloc(ctx->request->pool,
                                             ctx->client_model.len);
        if (ctx->client_model.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->client_model.data, json_string_value(v),
                   ctx->client_model.len);
    }

    ctx->stream = json_is_true(json_object_get(ctx->json, "stream"));

    v = json_object_get(ctx->json, "stream_options");
    if (json_is_object(v)) {
        v = json_object_get(v, "include_usage");

        if (v != NULL && !json_is_boolean(v)) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Invalid type for '%s': expected %s.",
                       "stream_options.include_usage", -1, NULL,
                       "a boolean");
        }

        ctx->include_usage = json_is_true(v);
    }

    v = json_object_get(ctx->json, "messages");

    if (v == NULL) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "Missing required parameter: '%s'.",
                   "messages", -1, NULL, NULL);
    }

    return ngx_http_llm_fallback_validate_messages(ctx, v, err);
}


static ngx_int_t
ngx_http_llm_fallback_validate_messages(ngx_http_llm_fallback_ctx_t *ctx,
    json_t *messages, ngx_http_llm_fallback_error_t *err)
{
    size_t   i, j;
    json_t  *m, *v, *part;

    if (!json_is_array(messages)) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "Invalid type for '%s': expected an array.",
                   "messages", -1, NULL, NULL);
    }

    if (json_array_size(messages) == 0) {
        return ngx_http_llm_fallback_invalid(ctx, err,
                   "Invalid '%s': empty array. Expected an array with "
                   "minimum length 1.", "messages", -1, NULL, NULL);
    }

    json_array_foreach(messages, i, m) {

        if (!json_is_object(m)) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Invalid type for '%s': expected an object.",
                       "messages", i, NULL, NULL);
        }

        v = json_object_get(m, "role");

        if (v == NULL) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Missing required parameter: '%s'.",
                       "messages", i, "role", NULL);
        }

        if (!json_is_string(v)) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Invalid type for '%s': expected a string.",
                       "messages", i, "role", NULL);
        }

        v = json_object_get(m, "content");

        if (v == NULL || json_is_string(v) || json_is_null(v)) {
            continue;
        }

        if (!json_is_array(v)) {
            return ngx_http_llm_fallback_invalid(ctx, err,
                       "Invalid type for '%s': expected a string, an array "
                       "of content parts or null.",
                       "messages", i, "content", NULL);
        }

        json_array_foreach(v, j, part) {
            if (!json_is_object(part)
                || !json_is_string(json_object_get(part, "type")))
            {
                return ngx_http_llm_fallback_invalid(ctx, err,
                           "Invalid content part in '%s': expected an "
                           "object with a string 'type'.",
                           "messages", i, "content", NULL);
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_check_type(json_t *v, ngx_uint_t types)
{
    switch (json_typeof(v)) {

    case JSON_STRING:
        return (types & NGX_HTTP_LLM_FALLBACK_T_STRING) != 0;

    case JSON_ARRAY:
        return (types & NGX_HTTP_LLM_FALLBACK_T_ARRAY) != 0;

    case JSON_OBJECT:
        return (types & NGX_HTTP_LLM_FALLBACK_T_OBJECT) != 0;

    case JSON_NULL:
        return (types & NGX_HTTP_LLM_FALLBACK_T_NULL) != 0;

    case JSON_TRUE:
    case JSON_FALSE:
        return (types & NGX_HTTP_LLM_FALLBACK_T_BOOL) != 0;

    case JSON_INTEGER:
        return (types & (NGX_HTTP_LLM_FALLBACK_T_INTEGER
                         |NGX_HTTP_LLM_FALLBACK_T_NUMBER))
               != 0;

    case JSON_REAL:
        return (types & NGX_HTTP_LLM_FALLBACK_T_NUMBER) != 0;

    default:
        return 0;
    }
}


/*
 * fills an invalid_request_error; "param" is the field name, with
 * "[index]" and ".field" appended when index >= 0 and field != NULL;
 * the message format takes the param (%s) and then "expected" (%s)
 */

static ngx_int_t
ngx_http_llm_fallback_invalid(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err, const char *fmt, const char *param,
    ngx_int_t index, const char *field, const char *expected)
{
    u_char      *p;
    size_t       len;
    ngx_pool_t  *pool;

    pool = ctx->request->pool;

    err->status = NGX_HTTP_BAD_REQUEST;
    err->type = "invalid_request_error";

    ngx_str_null(&err->param);

    if (param) {
        len = ngx_strlen(param) + NGX_INT_T_LEN + 3
              + (field ? ngx_strlen(field) + 1 : 0);

        p = ngx_pnalloc(pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        err->param.data = p;

        p = ngx_sprintf(p, "%s", param);

        if (index >= 0) {
            p = ngx_sprintf(p, "[%i]", index);
        }

        if (field) {
            p = ngx_sprintf(p, ".%s", field);
        }

        *p = '\0';
        err->param.len = p - err->param.data;
    }

    len = ngx_strlen(fmt) + err->param.len
          + (expected ? ngx_strlen(expected) : 0);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->message.data = p;

    /* fmt is a constant with at most two %s, param first */

    if (expected) {
        p = ngx_sprintf(p, fmt, err->param.data, expected);

    } else if (param) {
        p = ngx_sprintf(p, fmt, err->param.data);

    } else {
        p = ngx_cpymem(p, fmt, ngx_strlen(fmt));
    }

    err->message.len = p - err->message.data;

    return NGX_DECLINED;
}
