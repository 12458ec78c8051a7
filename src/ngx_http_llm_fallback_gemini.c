
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * The Gemini API (POST /v1beta/models/MODEL:generateContent): OpenAI
 * chat requests to generateContent requests, its responses and errors
 * to OpenAI ones.  The model is not in the body but in the URL.
 * Pure: jansson and libc only (see ngx_http_llm_fallback_translate.h).
 */


#include <string.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"


#define NGX_HTTP_LLM_FALLBACK_GEMINI_INT32_MAX  2147483647


static json_t *ngx_http_llm_fallback_gemini_contents(json_t *req,
    json_t *system, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_gemini_parts(json_t *content, json_t *parts,
    int role, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_gemini_text(json_t *parts, json_t *text);
static int ngx_http_llm_fallback_gemini_inline(json_t *parts,
    const char *mime, size_t mime_len, const char *data, size_t data_len);
static int ngx_http_llm_fallback_gemini_image(json_t *part, json_t *parts,
    ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_gemini_function_calls(json_t *calls,
    json_t *parts, json_t *names, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_gemini_function_response(json_t *m,
    json_t *parts, json_t *names, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_gemini_append(json_t *contents,
    const char *role, json_t *parts);
static int ngx_http_llm_fallback_gemini_config(json_t *req, json_t *out,
    json_t *config, ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_gemini_tools(json_t *tools,
    ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_gemini_tool_choice(json_t *tc,
    ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_gemini_choice(json_t *candidate,
    size_t index, size_t *ncalls, ngx_http_llm_fallback_xlat_response_t *x);


const ngx_http_llm_fallback_xlat_map_t  ngx_http_llm_fallback_gemini_finish[]
    = {
    { "STOP", "stop" },
    { "MAX_TOKENS", "length" },
    { "SAFETY", "content_filter" },
    { "RECITATION", "content_filter" },
    { "LANGUAGE", "content_filter" },
    { "BLOCKLIST", "content_filter" },
    { "PROHIBITED_CONTENT", "content_filter" },
    { "SPII", "content_filter" },
    { "IMAGE_SAFETY", "content_filter" },
    { "IMAGE_PROHIBITED_CONTENT", "content_filter" },
    { "IMAGE_RECITATION", "content_filter" },
    { NULL, NULL }
};


/*
 * reasoning_effort -> thinkingConfig.thinkingBudget, as Google's own
 * OpenAI API maps it (README "gemini"); "none" turns thinking off
 */

static const ngx_http_llm_fallback_xlat_effort_t
    ngx_http_llm_fallback_gemini_efforts[] = {
    { "none", 0 },
    { "minimal", 512 },
    { "low", 1024 },
    { "medium", 8192 },
    { "high", 24576 },
    { NULL, -1 }
};


json_t *
ngx_http_llm_fallback_gemini_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t  *out, *system, *contents, *config;

    if (!json_is_object(req)) {
        return NULL;
    }

    out = json_object();
    system = json_array();
    config = json_object();

    if (out == NULL || system == NULL || config == NULL) {
        goto failed;
    }

    contents = ngx_http_llm_fallback_gemini_contents(req, system, x);

    if (json_object_set_new(out, "contents", contents) != 0) {
        goto failed;
    }

    if (json_array_size(system)
        && json_object_set_new(out, "systemInstruction",
                               json_pack("{s:O}", "parts", system))
           != 0)
    {
        goto failed;
    }

    if (ngx_http_llm_fallback_gemini_config(req, out, config, x) != 0) {
        goto failed;
    }

    if (json_object_size(config)
        && json_object_set(out, "generationConfig", config) != 0)
    {
        goto failed;
    }

    json_decref(system);
    json_decref(config);

    return out;

failed:

    json_decref(system);
    json_decref(config);
    json_decref(out);

    return NULL;
}


/*
 * contents: system and developer messages go to "systemInstruction",
 * "assistant" is "model", tool results are functionResponse parts of a
 * user turn, and consecutive turns of one role are merged
 */

static json_t *
ngx_http_llm_fallback_gemini_contents(json_t *req, json_t *system,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    int          role, rc;
    size_t       i;
    json_t      *contents, *names, *m, *parts;
    const char  *target;

    contents = json_array();

    /* tool call id -> function name, for the function responses */
    names = json_object();

    if (contents == NULL || names == NULL) {
        goto failed;
    }

    json_array_foreach(json_object_get(req, "messages"), i, m) {

        role = ngx_http_llm_fallback_xlat_role(m);

        if (role == NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM) {
            if (ngx_http_llm_fallback_gemini_parts(
                    json_object_get(m, "content"), system, role, x)
                != 0)
            {
                goto failed;
            }

            continue;
        }

        parts = json_array();
        if (parts == NULL) {
            goto failed;
        }

        switch (role) {

        case NGX_HTTP_LLM_FALLBACK_ROLE_USER:
            target = "user";
            rc = ngx_http_llm_fallback_gemini_parts(
                     json_object_get(m, "content"), parts, role, x);
            break;

        case NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT:
            target = "model";
            rc = ngx_http_llm_fallback_gemini_parts(
                     json_object_get(m, "content"), parts, role, x);

            /* Gemini takes no thoughts back: their signatures are kept */

            if (json_is_string(json_object_get(m, "reasoning_content"))) {
                ngx_http_llm_fallback_xlat_drop(x, "reasoning_content");
            }

            if (json_array_size(json_object_get(m, "thinking_blocks"))) {
                ngx_http_llm_fallback_xlat_drop(x, "thinking_blocks");
            }

            if (rc == 0) {
                rc = ngx_http_llm_fallback_gemini_function_calls(
                         json_object_get(m, "tool_calls"), parts, names, x);
            }

            break;

        case NGX_HTTP_LLM_FALLBACK_ROLE_TOOL:
            target = "user";
            rc = ngx_http_llm_fallback_gemini_function_response(m, parts,
                                                                names, x);
            break;

        default:
            target = NULL;
            rc = 0;
            ngx_http_llm_fallback_xlat_drop(x,
                                         "messages with an unknown role");
            break;
        }

        if (rc != 0) {
            json_decref(parts);
            goto failed;
        }

        if (target == NULL || json_array_size(parts) == 0) {
            json_decref(parts);

            if (target) {
                ngx_http_llm_fallback_xlat_drop(x,
                                             "messages without content");
            }

            continue;
        }

        if (ngx_http_llm_fallback_gemini_append(contents, target, parts)
            != 0)
        {
            goto failed;
        }
    }

    json_decref(names);

    return contents;

failed:

    json_decref(names);
    json_decref(contents);

    return NULL;
}


static int
ngx_http_llm_fallback_gemini_parts(json_t *content, json_t *parts, int role,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t                              i;
    json_t                             *part, *v, *data, *format;
    const char                         *type;
    ngx_http_llm_fallback_xlat_data_t   d;

    if (json_is_string(content)) {
        return ngx_http_llm_fallback_gemini_text(parts, content);
    }

    json_array_foreach(content, i, part) {

        type = json_string_value(json_object_get(part, "type"));

        if (type == NULL) {
            ngx_http_llm_fallback_xlat_drop(x, "content parts without type");
            continue;
        }

        if (strcmp(type, "text") == 0) {
            if (ngx_http_llm_fallback_gemini_text(parts,
                                           json_object_get(part, "text"))
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "refusal") == 0
            && role == NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT)
        {
            if (ngx_http_llm_fallback_gemini_text(parts,
                                           json_object_get(part, "refusal"))
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (role != NGX_HTTP_LLM_FALLBACK_ROLE_USER) {
            ngx_http_llm_fallback_xlat_drop(x,
                             "non-text content parts outside user messages");
            continue;
        }

        if (strcmp(type, "image_url") == 0) {
            if (ngx_http_llm_fallback_gemini_image(part, parts, x) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "input_audio") == 0) {
            v = json_object_get(part, "input_audio");
            data = json_object_get(v, "data");
            format = json_object_get(v, "format");

            if (!json_is_string(data) || !json_is_string(format)
                || json_string_length(format) > 16)
            {
                ngx_http_llm_fallback_xlat_drop(x, "input_audio parts");
                continue;
            }

            v = json_sprintf("audio/%s", json_string_value(format));

            if (v == NULL
                || ngx_http_llm_fallback_gemini_inline(parts,
                                                json_string_value(v),
                                                json_string_length(v),
                                                json_string_value(data),
                                                json_string_length(data))
                   != 0)
            {
                json_decref(v);
                return -1;
            }

            json_decref(v);
            continue;
        }

        if (strcmp(type, "file") == 0) {
            v = json_object_get(json_object_get(part, "file"), "file_data");

            if (!json_is_string(v)
                || ngx_http_llm_fallback_xlat_data_url(json_string_value(v),
                                                       json_string_length(v),
                                                       &d)
                   != 0)
            {
                ngx_http_llm_fallback_xlat_drop(x, "file parts without "
                                                   "file_data");
                continue;
            }

            if (ngx_http_llm_fallback_gemini_inline(parts, d.mime, d.mime_len,
                                                    d.data, d.data_len)
                != 0)
            {
                return -1;
            }

            continue;
        }

        ngx_http_llm_fallback_xlat_drop(x, type);
    }

    return 0;
}


static int
ngx_http_llm_fallback_gemini_text(json_t *parts, json_t *text)
{
    if (!json_is_string(text) || json_string_length(text) == 0) {
        return 0;
    }

    return json_array_append_new(parts, json_pack("{s:O}", "text", text));
}


static int
ngx_http_llm_fallback_gemini_inline(json_t *parts, const char *mime,
    size_t mime_len, const char *data, size_t data_len)
{
    return json_array_append_new(parts,
               json_pack("{s:{s:s%,s:s%}}",
                         "inlineData",
                         "mimeType", mime, mime_len,
                         "data", data, data_len));
}


/* data URLs as inlineData, http(s) URLs as fileData */

static int
ngx_http_llm_fallback_gemini_image(json_t *part, json_t *parts,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t                             *image, *url, *fd;
    const char                         *s, *mime;
    ngx_http_llm_fallback_xlat_data_t   data;

    image = json_object_get(part, "image_url");
    url = json_is_string(image) ? image : json_object_get(image, "url");

    if (!json_is_string(url)) {
        ngx_http_llm_fallback_xlat_drop(x, "image_url parts without url");
        return 0;
    }

    if (json_object_get(image, "detail")) {
        ngx_http_llm_fallback_xlat_drop(x, "image_url.detail");
    }

    s = json_string_value(url);

    if (ngx_http_llm_fallback_xlat_data_url(s, json_string_length(url), &data)
        == 0)
    {
        return ngx_http_llm_fallback_gemini_inline(parts,
                                                   data.mime, data.mime_len,
                                                   data.data, data.data_len);
    }

    if (!ngx_http_llm_fallback_xlat_http_url(s, json_string_length(url))) {
        ngx_http_llm_fallback_xlat_drop(x, "image_url parts with other URLs");
        return 0;
    }

    fd = json_pack("{s:O}", "fileUri", url);
    if (fd == NULL) {
        return -1;
    }

    mime = ngx_http_llm_fallback_xlat_url_mime(s, json_string_length(url));

    if (mime && json_object_set_new(fd, "mimeType", json_string(mime)) != 0) {
        json_decref(fd);
        return -1;
    }

    return json_array_append_new(parts, json_pack("{s:o}", "fileData", fd));
}


/*
 * assistant tool_calls: functionCall parts; the thought signature Gemini
 * gave with the call comes back in the call's extra_content, else the
 * first call of a turn carries Gemini's "no signature" value
 */

static int
ngx_http_llm_fallback_gemini_function_calls(json_t *calls, json_t *parts,
    json_t *names, ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t   i, n;
    json_t  *call, *name, *id, *args, *part, *sig, *type;

    n = 0;

    json_array_foreach(calls, i, call) {

        type = json_object_get(call, "type");
        name = json_object_get(json_object_get(call, "function"), "name");

        if ((type && !(json_is_string(type)
                       && strcmp(json_string_value(type), "function") == 0))
            || !json_is_string(name))
        {
            ngx_http_llm_fallback_xlat_drop(x,
                                       "tool_calls without function or name");
            continue;
        }

        id = json_object_get(call, "id");

        if (json_is_string(id) && json_object_set(names,
                                                  json_string_value(id), name)
                                  != 0)
        {
            return -1;
        }

        args = ngx_http_llm_fallback_xlat_arguments(call);

        if (args == NULL) {
            ngx_http_llm_fallback_xlat_drop(x,
                   "tool_calls arguments that are not a JSON object (sent {})");

            args = json_object();
        }

        part = json_pack("{s:{s:O,s:o}}",
                         "functionCall",
                         "name", name,
                         "args", args);
        if (part == NULL) {
            return -1;
        }

        sig = json_object_get(json_object_get(json_object_get(call,
                                                   "extra_content"),
                                               "google"),
                              "thought_signature");

        if (json_is_string(sig)) {
            if (json_object_set(part, "thoughtSignature", sig) != 0) {
                json_decref(part);
                return -1;
            }

        } else if (n == 0
                   && json_object_set_new(part, "thoughtSignature",
                          json_string(
                              NGX_HTTP_LLM_FALLBACK_GEMINI_NO_SIGNATURE))
                      != 0)
        {
            json_decref(part);
            return -1;
        }

        if (json_array_append_new(parts, part) != 0) {
            return -1;
        }

        n++;
    }

    return 0;
}


/*
 * a tool message: a functionResponse part, named after the call it
 * answers; "response" is the content when it is a JSON object, else
 * {"output": content}
 */

static int
ngx_http_llm_fallback_gemini_function_response(json_t *m, json_t *parts,
    json_t *names, ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t         i;
    json_t        *id, *name, *content, *texts, *text, *part, *response, *v;
    json_error_t   jerr;

    id = json_object_get(m, "tool_call_id");
    name = json_is_string(id) ? json_object_get(names, json_string_value(id))
                              : NULL;

    if (name == NULL) {
        name = json_object_get(m, "name");
    }

    if (!json_is_string(name)) {
        name = id;
    }

    if (!json_is_string(name) || json_string_length(name) == 0) {
        ngx_http_llm_fallback_xlat_drop(x, "tool messages without "
                                           "tool_call_id");
        return 0;
    }

    content = json_object_get(m, "content");

    if (json_is_array(content)) {
        texts = json_array();
        if (texts == NULL) {
            return -1;
        }

        json_array_foreach(content, i, part) {
            v = json_object_get(part, "text");

            if (json_is_string(v) && json_array_append(texts, v) != 0) {
                json_decref(texts);
                return -1;
            }
        }

        text = ngx_http_llm_fallback_xlat_join(texts);
        json_decref(texts);

    } else {
        text = json_is_string(content) ? json_incref(content) : NULL;
    }

    if (text == NULL) {
        text = json_string("");
        if (text == NULL) {
            return -1;
        }
    }

    v = json_loadb(json_string_value(text), json_string_length(text), 0,
                   &jerr);

    if (json_is_object(v)) {
        response = v;

    } else {
        json_decref(v);
        response = json_pack("{s:O}", "output", text);
    }

    json_decref(text);

    return json_array_append_new(parts,
               json_pack("{s:{s:O,s:o}}",
                         "functionResponse",
                         "name", name,
                         "response", response));
}


/* a turn, merged into the previous one of the same role; takes parts */

static int
ngx_http_llm_fallback_gemini_append(json_t *contents, const char *role,
    json_t *parts)
{
    int          rc;
    size_t       n;
    json_t      *last;
    const char  *r;

    n = json_array_size(contents);
    last = n ? json_array_get(contents, n - 1) : NULL;
    r = json_string_value(json_object_get(last, "role"));

    if (r && strcmp(r, role) == 0) {
        rc = json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return rc;
    }

    return json_array_append_new(contents,
                                 json_pack("{s:s,s:o}",
                                           "role", role,
                                           "parts", parts));
}


/* sampling parameters, tools and the rest of the request */

static int
ngx_http_llm_fallback_gemini_config(json_t *req, json_t *out, json_t *config,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t      *v, *t, *schema;
    const char  *key, *s;
    json_int_t   max, budget;

    max = ngx_http_llm_fallback_xlat_max_tokens(req);

    if (max == 0) {
        max = x->max_tokens;
    }

    if (max > NGX_HTTP_LLM_FALLBACK_GEMINI_INT32_MAX) {
        max = NGX_HTTP_LLM_FALLBACK_GEMINI_INT32_MAX;
    }

    if (max && json_object_set_new(config, "maxOutputTokens",
                                   json_integer(max))
               != 0)
    {
        return -1;
    }

    json_object_foreach(req, key, v) {

        if (json_is_null(v)
            || strcmp(key, "model") == 0
            || strcmp(key, "messages") == 0
            || strcmp(key, "stream") == 0
            || strcmp(key, "stream_options") == 0
            || strcmp(key, "max_tokens") == 0
            || strcmp(key, "max_completion_tokens") == 0)
        {
            continue;
        }

        if (strcmp(key, "temperature") == 0 && json_is_number(v)) {
            if (json_object_set(config, "temperature", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "top_p") == 0 && json_is_number(v)) {
            if (json_object_set(config, "topP", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "presence_penalty") == 0 && json_is_number(v)) {
            if (json_object_set(config, "presencePenalty", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "frequency_penalty") == 0 && json_is_number(v)) {
            if (json_object_set(config, "frequencyPenalty", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "seed") == 0 && json_is_integer(v)
            && json_integer_value(v) >= -NGX_HTTP_LLM_FALLBACK_GEMINI_INT32_MAX
            && json_integer_value(v) <= NGX_HTTP_LLM_FALLBACK_GEMINI_INT32_MAX)
        {
            if (json_object_set(config, "seed", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "n") == 0 && json_is_integer(v)
            && json_integer_value(v) >= 1 && json_integer_value(v) <= 8)
        {
            if (json_integer_value(v) > 1
                && json_object_set(config, "candidateCount", v) != 0)
            {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "stop") == 0) {
            v = ngx_http_llm_fallback_xlat_stop(v, 1, x);

            if (v && json_object_set_new(config, "stopSequences", v) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "response_format") == 0) {
            s = json_string_value(json_object_get(v, "type"));
            schema = json_object_get(json_object_get(v, "json_schema"),
                                     "schema");

            if (s && strcmp(s, "text") == 0) {
                continue;
            }

            if (s && (strcmp(s, "json_object") == 0
                      || (strcmp(s, "json_schema") == 0
                          && json_is_object(schema))))
            {
                if (json_object_set_new(config, "responseMimeType",
                                        json_string("application/json"))
                    != 0)
                {
                    return -1;
                }

                if (strcmp(s, "json_schema") == 0
                    && json_object_set(config, "responseJsonSchema", schema)
                       != 0)
                {
                    return -1;
                }

                continue;
            }

            ngx_http_llm_fallback_xlat_drop(x, key);
            continue;
        }

        if (strcmp(key, "reasoning_effort") == 0) {
            budget = ngx_http_llm_fallback_xlat_effort(
                         ngx_http_llm_fallback_gemini_efforts, v);

            if (budget < 0) {
                ngx_http_llm_fallback_xlat_drop(x, key);
                continue;
            }

            t = budget ? json_pack("{s:I,s:b}", "thinkingBudget", budget,
                                   "includeThoughts", 1)
                       : json_pack("{s:I}", "thinkingBudget", budget);

            if (json_object_set_new(config, "thinkingConfig", t) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "tools") == 0 && json_is_array(v)) {
            t = ngx_http_llm_fallback_gemini_tools(v, x);

            if (t && json_object_set_new(out, "tools", t) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(key, "tool_choice") == 0) {
            continue;
        }

        if (strcmp(key, "parallel_tool_calls") == 0 && json_is_true(v)) {
            continue;
        }

        ngx_http_llm_fallback_xlat_drop(x, key);
    }

    v = json_object_get(req, "tool_choice");

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (json_object_get(out, "tools") == NULL) {
        ngx_http_llm_fallback_xlat_drop(x, "tool_choice without tools");
        return 0;
    }

    t = ngx_http_llm_fallback_gemini_tool_choice(v, x);

    if (t && json_object_set_new(out, "toolConfig", t) != 0) {
        return -1;
    }

    return 0;
}


/* OpenAI function tools: one tool of functionDeclarations */

static json_t *
ngx_http_llm_fallback_gemini_tools(json_t *tools,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t   i;
    json_t  *decls, *tool, *f, *name, *v, *decl;

    decls = json_array();
    if (decls == NULL) {
        return NULL;
    }

    json_array_foreach(tools, i, tool) {

        v = json_object_get(tool, "type");
        f = json_object_get(tool, "function");
        name = json_object_get(f, "name");

        if (!json_is_string(v) || strcmp(json_string_value(v), "function")
            || !json_is_string(name))
        {
            ngx_http_llm_fallback_xlat_drop(x, "tools other than functions");
            continue;
        }

        decl = json_pack("{s:O}", "name", name);
        if (decl == NULL) {
            goto failed;
        }

        v = json_object_get(f, "description");

        if (json_is_string(v) && json_object_set(decl, "description", v) != 0)
        {
            json_decref(decl);
            goto failed;
        }

        /* JSON Schema as is: "parameters" takes an OpenAPI subset only */

        v = json_object_get(f, "parameters");

        if (json_is_object(v)
            && json_object_set(decl, "parametersJsonSchema", v) != 0)
        {
            json_decref(decl);
            goto failed;
        }

        if (json_object_get(f, "strict")) {
            ngx_http_llm_fallback_xlat_drop(x, "tools.function.strict");
        }

        if (json_array_append_new(decls, decl) != 0) {
            goto failed;
        }
    }

    if (json_array_size(decls) == 0) {
        goto failed;
    }

    return json_pack("[{s:o}]", "functionDeclarations", decls);

failed:

    json_decref(decls);
    return NULL;
}


/* toolConfig.functionCallingConfig: NONE, AUTO, ANY [allowed names] */

static json_t *
ngx_http_llm_fallback_gemini_tool_choice(json_t *tc,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t      *name;
    const char  *s, *mode;

    if (json_is_string(tc)) {
        s = json_string_value(tc);

        if (strcmp(s, "none") == 0) {
            mode = "NONE";

        } else if (strcmp(s, "auto") == 0) {
            mode = "AUTO";

        } else if (strcmp(s, "required") == 0) {
            mode = "ANY";

        } else {
            ngx_http_llm_fallback_xlat_drop(x, "tool_choice");
            return NULL;
        }

        return json_pack("{s:{s:s}}", "functionCallingConfig", "mode", mode);
    }

    name = json_object_get(json_object_get(tc, "function"), "name");

    if (!json_is_string(name)) {
        ngx_http_llm_fallback_xlat_drop(x, "tool_choice");
        return NULL;
    }

    return json_pack("{s:{s:s,s:[O]}}",
                     "functionCallingConfig",
                     "mode", "ANY",
                     "allowedFunctionNames", name);
}


json_t *
ngx_http_llm_fallback_gemini_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    size_t   i, ncalls;
    json_t  *candidates, *choices, *candidate, *choice, *usage;

    x->prompt_tokens = -1;
    x->completion_tokens = -1;

    if (!json_is_object(resp)) {
        x->reason = "not a JSON object";
        return NULL;
    }

    candidates = json_object_get(resp, "candidates");

    if (!json_is_array(candidates) || json_array_size(candidates) == 0) {
        x->reason = json_object_get(json_object_get(resp, "promptFeedback"),
                                    "blockReason")
                    ? "the prompt was blocked" : "no candidates";
        return NULL;
    }

    choices = json_array();
    if (choices == NULL) {
        return NULL;
    }

    ncalls = 0;

    json_array_foreach(candidates, i, candidate) {

        choice = ngx_http_llm_fallback_gemini_choice(candidate,
                                                     json_array_size(choices),
                                                     &ncalls, x);
        if (choice == NULL) {
            continue;
        }

        if (json_array_append_new(choices, choice) != 0) {
            json_decref(choices);
            return NULL;
        }
    }

    if (json_array_size(choices) == 0) {
        x->reason = "no candidate with text or a function call";
        json_decref(choices);
        return NULL;
    }

    usage = ngx_http_llm_fallback_gemini_usage(
                json_object_get(resp, "usageMetadata"), x);

    return ngx_http_llm_fallback_xlat_completion(x,
               json_incref(json_object_get(resp, "responseId")),
               json_incref(json_object_get(resp, "modelVersion")),
               choices, usage);
}


/*
 * a candidate as a choice, or NULL when it has neither text nor a
 * function call (as a candidate blocked for safety); the text of
 * thought parts is the message's reasoning_content
 */

static json_t *
ngx_http_llm_fallback_gemini_choice(json_t *candidate, size_t index,
    size_t *ncalls, ngx_http_llm_fallback_xlat_response_t *x)
{
    size_t       i;
    json_t      *texts, *calls, *thoughts, *part, *v, *fc, *call, *message;
    json_t      *text;
    const char  *finish;

    texts = json_array();
    calls = json_array();
    thoughts = json_array();
    message = NULL;

    if (texts == NULL || calls == NULL || thoughts == NULL) {
        goto failed;
    }

    json_array_foreach(json_object_get(json_object_get(candidate, "content"),
                                       "parts"),
                       i, part)
    {
        v = json_object_get(part, "text");

        if (json_is_true(json_object_get(part, "thought"))) {
            if (json_is_string(v) && json_string_length(v)
                && json_array_append(thoughts, v) != 0)
            {
                goto failed;
            }

            continue;
        }

        if (json_is_string(v)) {
            if (json_string_length(v) && json_array_append(texts, v) != 0) {
                goto failed;
            }

            continue;
        }

        fc = json_object_get(part, "functionCall");
        v = json_object_get(fc, "name");

        if (!json_is_string(v) || json_string_length(v) == 0) {
            continue;
        }

        call = ngx_http_llm_fallback_gemini_call(part, *ncalls, x);

        if (json_array_append_new(calls, call) != 0) {
            goto failed;
        }

        (*ncalls)++;
    }

    text = ngx_http_llm_fallback_xlat_join(texts);

    if (text == NULL && json_array_size(calls) == 0) {
        goto failed;
    }

    /* "refusal", that OpenAI's schema requires: a block is the reason */

    message = json_pack("{s:s,s:o?,s:n}",
                        "role", "assistant",
                        "content", text,
                        "refusal");

    if (message == NULL) {
        goto failed;
    }

    v = ngx_http_llm_fallback_xlat_join(thoughts);

    if (v && json_object_set_new(message, "reasoning_content", v) != 0) {
        goto failed;
    }

    if (json_array_size(calls)
        && json_object_set(message, "tool_calls", calls) != 0)
    {
        goto failed;
    }

    finish = ngx_http_llm_fallback_xlat_map(
                 ngx_http_llm_fallback_gemini_finish,
                 json_string_value(json_object_get(candidate,
                                                   "finishReason")),
                 "stop");

    /* Gemini says STOP after function calls, OpenAI "tool_calls" */

    if (json_array_size(calls) && strcmp(finish, "stop") == 0) {
        finish = "tool_calls";
    }

    json_decref(texts);
    json_decref(calls);
    json_decref(thoughts);

    return json_pack("{s:I,s:o,s:n,s:s}",
                     "index", (json_int_t) index,
                     "message", message,
                     "logprobs",
                     "finish_reason", finish);

failed:

    json_decref(message);
    json_decref(texts);
    json_decref(calls);
    json_decref(thoughts);

    return NULL;
}


/*
 * a part with a "functionCall" as the n-th OpenAI tool call of the
 * answer (a new reference), NULL when its name is not a string: the
 * call's own id, else "call_<id>_<n>"; the thought signature goes where
 * Google's own OpenAI API has it
 */

json_t *
ngx_http_llm_fallback_gemini_call(json_t *part, size_t n,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    json_t  *fc, *id, *name, *args, *call, *v;

    fc = json_object_get(part, "functionCall");
    name = json_object_get(fc, "name");

    /* a call must name its function */

    if (!json_is_string(name) || json_string_length(name) == 0) {
        return NULL;
    }

    id = json_object_get(fc, "id");

    id = json_is_string(id) && json_string_length(id)
         ? json_incref(id)
         : ngx_http_llm_fallback_xlat_call_id(x, n);

    if (id == NULL) {
        return NULL;
    }

    args = json_object_get(fc, "args");

    call = ngx_http_llm_fallback_xlat_tool_call(json_string_value(id),
                                                json_string_length(id),
                                                json_string_value(name),
                                                json_string_length(name),
                                                json_is_object(args) ? args
                                                                     : NULL);
    json_decref(id);

    if (call == NULL) {
        return NULL;
    }

    v = json_object_get(part, "thoughtSignature");

    if (json_is_string(v)
        && json_object_set_new(call, "extra_content",
                               json_pack("{s:{s:O}}",
                                         "google",
                                         "thought_signature", v))
           != 0)
    {
        json_decref(call);
        return NULL;
    }

    return call;
}


/*
 * usage: completion_tokens counts the thoughts as OpenAI counts
 * reasoning tokens
 */

json_t *
ngx_http_llm_fallback_gemini_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    json_int_t  prompt, candidates, thoughts, tool, cached;

    prompt = ngx_http_llm_fallback_xlat_count(
                 json_object_get(usage, "promptTokenCount"));

    if (prompt < 0) {
        return NULL;
    }

    candidates = ngx_http_llm_fallback_xlat_count(
                     json_object_get(usage, "candidatesTokenCount"));
    thoughts = ngx_http_llm_fallback_xlat_count(
                   json_object_get(usage, "thoughtsTokenCount"));
    tool = ngx_http_llm_fallback_xlat_count(
               json_object_get(usage, "toolUsePromptTokenCount"));
    cached = ngx_http_llm_fallback_xlat_count(
                 json_object_get(usage, "cachedContentTokenCount"));

    prompt += (tool > 0) ? tool : 0;
    candidates = (candidates > 0 ? candidates : 0)
                 + (thoughts > 0 ? thoughts : 0);

    x->prompt_tokens = prompt;
    x->completion_tokens = candidates;

    return ngx_http_llm_fallback_xlat_usage(prompt, candidates,
                                            prompt + candidates, cached,
                                            thoughts);
}


/* {"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT"}} */

json_t *
ngx_http_llm_fallback_gemini_error(json_t *body)
{
    json_t  *error;

    if (json_is_array(body)) {
        body = json_array_get(body, 0);
    }

    error = json_object_get(body, "error");

    if (!json_is_object(error)) {
        return NULL;
    }

    return ngx_http_llm_fallback_xlat_error(json_object_get(error, "status"),
                                            json_object_get(error, "message"),
                                            NULL);
}
