
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * Tables and helpers shared by the provider translators.  Pure: jansson
 * and libc only (see ngx_http_llm_fallback_translate.h).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"


#define NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX     48
#define NGX_HTTP_LLM_FALLBACK_XLAT_COUNT_MAX  ((json_int_t) 1 << 40)


typedef struct {
    const char                       *ext;
    const char                       *mime;
} ngx_http_llm_fallback_xlat_ext_t;


static int ngx_http_llm_fallback_xlat_blank(const char *s, size_t len);


const ngx_http_llm_fallback_xlat_role_t  ngx_http_llm_fallback_xlat_roles[] = {
    { "system", NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM },
    { "developer", NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM },
    { "user", NGX_HTTP_LLM_FALLBACK_ROLE_USER },
    { "assistant", NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT },
    { "tool", NGX_HTTP_LLM_FALLBACK_ROLE_TOOL },
    { NULL, NGX_HTTP_LLM_FALLBACK_ROLE_UNKNOWN }
};


static const ngx_http_llm_fallback_xlat_ext_t  ngx_http_llm_fallback_xlat_exts[]
    = {
    { ".png", "image/png" },
    { ".jpg", "image/jpeg" },
    { ".jpeg", "image/jpeg" },
    { ".gif", "image/gif" },
    { ".webp", "image/webp" },
    { ".heic", "image/heic" },
    { ".heif", "image/heif" },
    { ".pdf", "application/pdf" },
    { NULL, NULL }
};


int
ngx_http_llm_fallback_xlat_role(json_t *message)
{
    const char                               *role;
    const ngx_http_llm_fallback_xlat_role_t  *r;

    role = json_string_value(json_object_get(message, "role"));

    if (role == NULL) {
        return NGX_HTTP_LLM_FALLBACK_ROLE_UNKNOWN;
    }

    for (r = ngx_http_llm_fallback_xlat_roles; r->name; r++) {
        if (strcmp(r->name, role) == 0) {
            return r->role;
        }
    }

    return NGX_HTTP_LLM_FALLBACK_ROLE_UNKNOWN;
}


const char *
ngx_http_llm_fallback_xlat_map(const ngx_http_llm_fallback_xlat_map_t *map,
    const char *name, const char *dflt)
{
    if (name == NULL) {
        return dflt;
    }

    for ( /* void */ ; map->name; map++) {
        if (strcmp(map->name, name) == 0) {
            return map->value;
        }
    }

    return dflt;
}


void
ngx_http_llm_fallback_xlat_drop(ngx_http_llm_fallback_xlat_request_t *x,
    const char *what)
{
    size_t  i;

    for (i = 0; i < x->ndropped; i++) {
        if (x->dropped[i] == what || strcmp(x->dropped[i], what) == 0) {
            return;
        }
    }

    if (x->ndropped < NGX_HTTP_LLM_FALLBACK_XLAT_MAX_DROPPED) {
        x->dropped[x->ndropped++] = what;
    }
}


/* "data:image/png;base64,iVBOR..." -> 0, anything else -> -1 */

int
ngx_http_llm_fallback_xlat_data_url(const char *url, size_t len,
    ngx_http_llm_fallback_xlat_data_t *data)
{
    int          base64;
    const char  *p, *last, *comma, *semi, *param;

    if (len < sizeof("data:,") - 1 || strncasecmp(url, "data:", 5) != 0) {
        return -1;
    }

    p = url + 5;
    last = url + len;

    comma = memchr(p, ',', last - p);
    if (comma == NULL) {
        return -1;
    }

    semi = memchr(p, ';', comma - p);

    data->mime = p;
    data->mime_len = (semi ? semi : comma) - p;

    base64 = 0;

    for (param = semi; param && param < comma; /* void */ ) {
        param++;
        semi = memchr(param, ';', comma - param);

        if ((size_t) ((semi ? semi : comma) - param) == sizeof("base64") - 1
            && strncasecmp(param, "base64", sizeof("base64") - 1) == 0)
        {
            base64 = 1;
        }

        param = semi;
    }

    if (!base64 || data->mime_len == 0 || comma + 1 == last) {
        return -1;
    }

    data->data = comma + 1;
    data->data_len = last - (comma + 1);

    return 0;
}


int
ngx_http_llm_fallback_xlat_http_url(const char *url, size_t len)
{
    return (len > sizeof("http://") - 1
            && strncasecmp(url, "http://", sizeof("http://") - 1) == 0)
           || (len > sizeof("https://") - 1
               && strncasecmp(url, "https://", sizeof("https://") - 1) == 0);
}


/* a MIME type from the URL path's extension, or NULL */

const char *
ngx_http_llm_fallback_xlat_url_mime(const char *url, size_t len)
{
    size_t                                   n, elen;
    const char                              *end;
    const ngx_http_llm_fallback_xlat_ext_t  *e;

    for (n = 0; n < len && url[n] != '?' && url[n] != '#'; n++) {
        /* void */
    }

    end = url + n;

    for (e = ngx_http_llm_fallback_xlat_exts; e->ext; e++) {
        elen = strlen(e->ext);

        if (n > elen && strncasecmp(end - elen, e->ext, elen) == 0) {
            return e->mime;
        }
    }

    return NULL;
}


/* max_completion_tokens, else max_tokens, else 0 */

json_int_t
ngx_http_llm_fallback_xlat_max_tokens(json_t *req)
{
    json_t  *v;

    v = json_object_get(req, "max_completion_tokens");

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        return json_integer_value(v);
    }

    v = json_object_get(req, "max_tokens");

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        return json_integer_value(v);
    }

    return 0;
}


/* the budget of a reasoning_effort value, -1 when it is not one */

json_int_t
ngx_http_llm_fallback_xlat_effort(
    const ngx_http_llm_fallback_xlat_effort_t *efforts, json_t *effort)
{
    const char  *name;

    name = json_string_value(effort);

    if (name == NULL) {
        return -1;
    }

    for ( /* void */ ; efforts->name; efforts++) {
        if (strcmp(efforts->name, name) == 0) {
            return efforts->budget;
        }
    }

    return -1;
}


/* a token count: -1 when not an integer, else within [0, 2^40] */

json_int_t
ngx_http_llm_fallback_xlat_count(json_t *v)
{
    json_int_t  n;

    if (!json_is_integer(v)) {
        return -1;
    }

    n = json_integer_value(v);

    if (n < 0) {
        return 0;
    }

    return (n > NGX_HTTP_LLM_FALLBACK_XLAT_COUNT_MAX)
           ? NGX_HTTP_LLM_FALLBACK_XLAT_COUNT_MAX : n;
}


/*
 * an array of strings joined into one (a new reference), or NULL when
 * the array is empty
 */

json_t *
ngx_http_llm_fallback_xlat_join(json_t *strings)
{
    char    *buf, *p;
    size_t   i, len;
    json_t  *s, *out;

    switch (json_array_size(strings)) {

    case 0:
        return NULL;

    case 1:
        return json_incref(json_array_get(strings, 0));

    default:
        break;
    }

    len = 0;

    json_array_foreach(strings, i, s) {
        len += json_string_length(s);
    }

    buf = malloc(len + 1);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;

    json_array_foreach(strings, i, s) {
        memcpy(p, json_string_value(s), json_string_length(s));
        p += json_string_length(s);
    }

    out = json_stringn(buf, len);

    free(buf);

    return out;
}


/*
 * "stop": a string or an array of strings -> an array, or NULL if none;
 * empty strings are left out, and so are blank ones unless blank_ok
 */

json_t *
ngx_http_llm_fallback_xlat_stop(json_t *stop, int blank_ok,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t   i;
    json_t  *out, *list, *s;

    list = json_is_string(stop) ? json_pack("[O]", stop) : json_incref(stop);
    out = json_array();

    if (out == NULL) {
        goto failed;
    }

    json_array_foreach(list, i, s) {

        if (!json_is_string(s) || json_string_length(s) == 0
            || (!blank_ok
                && ngx_http_llm_fallback_xlat_blank(json_string_value(s),
                                                    json_string_length(s))))
        {
            ngx_http_llm_fallback_xlat_drop(x, "stop sequences that are "
                                               "empty or white space");
            continue;
        }

        if (json_array_append(out, s) != 0) {
            goto failed;
        }
    }

    json_decref(list);

    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }

    return out;

failed:

    json_decref(list);
    json_decref(out);

    return NULL;
}


static int
ngx_http_llm_fallback_xlat_blank(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return 0;
        }
    }

    return 1;
}


/*
 * the arguments of an OpenAI tool call as a JSON object (a new
 * reference): "" is {}, anything but a JSON object is NULL
 */

json_t *
ngx_http_llm_fallback_xlat_arguments(json_t *call)
{
    json_t        *args, *v;
    json_error_t   jerr;

    v = json_object_get(json_object_get(call, "function"), "arguments");

    if (v == NULL || json_is_null(v)) {
        return json_object();
    }

    if (json_is_object(v)) {
        return json_incref(v);
    }

    if (!json_is_string(v)) {
        return NULL;
    }

    if (ngx_http_llm_fallback_xlat_blank(json_string_value(v),
                                         json_string_length(v)))
    {
        return json_object();
    }

    args = json_loadb(json_string_value(v), json_string_length(v), 0, &jerr);

    if (!json_is_object(args)) {
        json_decref(args);
        return NULL;
    }

    return args;
}


/*
 * an OpenAI tool call: {"id","type":"function","function":{"name",
 * "arguments"}}, the arguments (borrowed, NULL is {}) as a JSON string
 */

json_t *
ngx_http_llm_fallback_xlat_tool_call(const char *id, size_t id_len,
    const char *name, size_t name_len, json_t *args)
{
    char    *s;
    json_t  *call, *a;

    if (args) {
        s = json_dumps(args, JSON_COMPACT|JSON_ENCODE_ANY);
        if (s == NULL) {
            return NULL;
        }

        a = json_string(s);
        free(s);

    } else {
        a = json_string("{}");
    }

    call = json_pack("{s:s%,s:s,s:{s:s%,s:o}}",
                     "id", id, id_len,
                     "type", "function",
                     "function",
                     "name", name, name_len,
                     "arguments", a);

    return call;
}


/* "call_<id>_<n>" for a tool call the provider gave no id */

json_t *
ngx_http_llm_fallback_xlat_call_id(ngx_http_llm_fallback_xlat_response_t *x,
    size_t n)
{
    int   len;
    char  buf[NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX + 32];

    len = snprintf(buf, sizeof(buf), "call_%.*s_%zu",
                   (int) (x->id_len < NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX
                          ? x->id_len : NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX),
                   x->id ? x->id : "", n);

    if (len < 0 || (size_t) len >= sizeof(buf)) {
        return NULL;
    }

    return json_stringn(buf, len);
}


/* OpenAI usage; cached and reasoning are left out when negative */

json_t *
ngx_http_llm_fallback_xlat_usage(json_int_t prompt, json_int_t completion,
    json_int_t total, json_int_t cached, json_int_t reasoning)
{
    json_t  *usage;

    usage = json_pack("{s:I,s:I,s:I}",
                      "prompt_tokens", prompt,
                      "completion_tokens", completion,
                      "total_tokens", total);
    if (usage == NULL) {
        return NULL;
    }

    if (cached >= 0
        && json_object_set_new(usage, "prompt_tokens_details",
                               json_pack("{s:I}", "cached_tokens", cached))
           != 0)
    {
        json_decref(usage);
        return NULL;
    }

    if (reasoning >= 0
        && json_object_set_new(usage, "completion_tokens_details",
                               json_pack("{s:I}", "reasoning_tokens",
                                         reasoning))
           != 0)
    {
        json_decref(usage);
        return NULL;
    }

    return usage;
}


/*
 * the chat.completion around translated choices; takes the references
 * of id, model, choices and usage (each may be NULL but choices)
 */

json_t *
ngx_http_llm_fallback_xlat_completion(ngx_http_llm_fallback_xlat_response_t *x,
    json_t *id, json_t *model, json_t *choices, json_t *usage)
{
    int      len;
    char     buf[NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX + 16];
    json_t  *c;

    if (choices == NULL) {
        goto failed;
    }

    if (!json_is_string(id) || json_string_length(id) == 0) {
        json_decref(id);

        len = snprintf(buf, sizeof(buf), "chatcmpl-%.*s",
                       (int) (x->id_len < NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX
                              ? x->id_len
                              : NGX_HTTP_LLM_FALLBACK_XLAT_ID_MAX),
                       x->id ? x->id : "");

        id = (len > 0 && (size_t) len < sizeof(buf)) ? json_stringn(buf, len)
                                                     : NULL;
        if (id == NULL) {
            goto failed;
        }
    }

    if (!json_is_string(model) || json_string_length(model) == 0) {
        json_decref(model);

        model = json_stringn(x->model ? x->model : "", x->model_len);
        if (model == NULL) {
            goto failed;
        }
    }

    c = json_pack("{s:o,s:s,s:I,s:o,s:o}",
                  "id", id,
                  "object", "chat.completion",
                  "created", x->created,
                  "model", model,
                  "choices", choices);

    id = NULL;
    model = NULL;
    choices = NULL;

    if (c == NULL) {
        goto failed;
    }

    if (usage && json_object_set_new(c, "usage", usage) != 0) {
        json_decref(c);
        return NULL;
    }

    return c;

failed:

    json_decref(id);
    json_decref(model);
    json_decref(choices);
    json_decref(usage);

    return NULL;
}


/*
 * an OpenAI error object {"message","type","param","code"} from borrowed
 * values; a type that is not a string is "provider_error"
 */

json_t *
ngx_http_llm_fallback_xlat_error(json_t *type, json_t *message, json_t *code)
{
    json_t  *t;

    if (!json_is_string(message)) {
        return NULL;
    }

    t = json_is_string(type) ? json_incref(type)
                             : json_string("provider_error");

    return json_pack("{s:O,s:o,s:n,s:o}",
                     "message", message,
                     "type", t,
                     "param",
                     "code", ngx_http_llm_fallback_xlat_error_code(code));
}


/*
 * an error's "code" as OpenAI's schema has it, a string or null (a new
 * reference): compatible servers may send the HTTP status as a number
 */

json_t *
ngx_http_llm_fallback_xlat_error_code(json_t *code)
{
    if (json_is_string(code)) {
        return json_incref(code);
    }

    if (json_is_integer(code)) {
        return json_sprintf("%" JSON_INTEGER_FORMAT,
                            json_integer_value(code));
    }

    return json_null();
}
