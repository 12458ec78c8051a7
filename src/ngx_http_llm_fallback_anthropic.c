
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * The Anthropic Messages API (POST /v1/messages): OpenAI chat requests
 * to Messages requests, Messages responses and errors to OpenAI ones.
 * Pure: jansson and libc only (see ngx_http_llm_fallback_translate.h).
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"


static json_t *ngx_http_llm_fallback_anthropic_messages(json_t *req,
    json_t *system, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_content(json_t *content,
    json_t *blocks, int role, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_text(json_t *blocks,
    json_t *text, json_t *part);
static int ngx_http_llm_fallback_anthropic_image(json_t *part,
    json_t *blocks, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_file(json_t *part,
    json_t *blocks, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_tool_calls(json_t *calls,
    json_t *blocks, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_thinking_blocks(json_t *m,
    json_t *blocks, ngx_http_llm_fallback_xlat_request_t *x);
static int ngx_http_llm_fallback_anthropic_tool_result(json_t *m,
    json_t *blocks, ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_anthropic_id(json_t *id);
static int ngx_http_llm_fallback_anthropic_append(json_t *messages,
    const char *role, json_t *blocks);
static int ngx_http_llm_fallback_anthropic_finalize(json_t *messages);
static int ngx_http_llm_fallback_anthropic_collapse(json_t *holder,
    const char *key);
static json_t *ngx_http_llm_fallback_anthropic_tools(json_t *tools,
    ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_anthropic_tool_choice(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
static json_int_t ngx_http_llm_fallback_anthropic_budget(json_t *req,
    json_int_t *max, ngx_http_llm_fallback_xlat_request_t *x);
static json_t *ngx_http_llm_fallback_anthropic_format(json_t *rf,
    ngx_http_llm_fallback_xlat_request_t *x);


const ngx_http_llm_fallback_xlat_map_t  ngx_http_llm_fallback_anthropic_finish[]
    = {
    { "end_turn", "stop" },
    { "stop_sequence", "stop" },
    { "pause_turn", "stop" },
    { "max_tokens", "length" },
    { "model_context_window_exceeded", "length" },
    { "tool_use", "tool_calls" },
    { "refusal", "content_filter" },
    { NULL, NULL }
};


/* reasoning_effort -> thinking.budget_tokens (README "anthropic") */

static const ngx_http_llm_fallback_xlat_effort_t
    ngx_http_llm_fallback_anthropic_efforts[] = {
    { "minimal", 1024 },
    { "low", 1024 },
    { "medium", 4096 },
    { "high", 16384 },
    { "none", 0 },
    { NULL, -1 }
};


json_t *
ngx_http_llm_fallback_anthropic_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    double       t;
    json_t      *out, *system, *messages, *v, *tools, *choice;
    const char  *key;
    json_int_t   max, budget;

    if (!json_is_object(req)) {
        return NULL;
    }

    out = json_object();
    system = json_array();

    if (out == NULL || system == NULL) {
        goto failed;
    }

    if (x->model_len
        && json_object_set_new(out, "model",
                               json_stringn(x->model, x->model_len))
           != 0)
    {
        goto failed;
    }

    messages = ngx_http_llm_fallback_anthropic_messages(req, system, x);

    if (json_object_set_new(out, "messages", messages) != 0) {
        goto failed;
    }

    if (json_array_size(system)) {
        if (json_object_set(out, "system", system) != 0
            || ngx_http_llm_fallback_anthropic_collapse(out, "system") != 0)
        {
            goto failed;
        }
    }

    budget = ngx_http_llm_fallback_anthropic_budget(req, &max, x);

    if (json_object_set_new(out, "max_tokens", json_integer(max)) != 0) {
        goto failed;
    }

    if (budget
        && json_object_set_new(out, "thinking",
                               json_pack("{s:s,s:I}",
                                         "type", "enabled",
                                         "budget_tokens", budget))
           != 0)
    {
        goto failed;
    }

    json_object_foreach(req, key, v) {

        if (json_is_null(v)
            || strcmp(key, "model") == 0
            || strcmp(key, "messages") == 0
            || strcmp(key, "stream") == 0
            || strcmp(key, "stream_options") == 0
            || strcmp(key, "max_tokens") == 0
            || strcmp(key, "max_completion_tokens") == 0
            || strcmp(key, "reasoning_effort") == 0
            || strcmp(key, "tool_choice") == 0
            || strcmp(key, "parallel_tool_calls") == 0)
        {
            continue;
        }

        if (strcmp(key, "temperature") == 0 && json_is_number(v)) {
            /* Anthropic's range is [0, 1], OpenAI's [0, 2] */

            t = json_number_value(v);

            if (budget && t != 1.0) {
                /* thinking takes the default temperature only */
                ngx_http_llm_fallback_xlat_drop(x,
                                     "temperature (with reasoning_effort)");
                continue;
            }

            if (t > 1.0 || t < 0.0) {
                t = (t > 1.0) ? 1.0 : 0.0;
                ngx_http_llm_fallback_xlat_drop(x,
                                            "temperature outside [0, 1]");
            }

            if (json_object_set_new(out, "temperature", json_real(t)) != 0) {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "top_p") == 0 && json_is_number(v)) {
            t = json_number_value(v);

            if (budget && (t < 0.95 || t > 1.0)) {
                /* thinking takes top_p from 0.95 to 1 only */
                ngx_http_llm_fallback_xlat_drop(x,
                                   "top_p below 0.95 (with reasoning_effort)");
                continue;
            }

            if (json_object_set(out, "top_p", v) != 0) {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "stop") == 0) {
            /* Anthropic rejects stop sequences of white space only */

            v = ngx_http_llm_fallback_xlat_stop(v, 0, x);

            if (v && json_object_set_new(out, "stop_sequences", v) != 0) {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "tools") == 0 && json_is_array(v)) {
            tools = ngx_http_llm_fallback_anthropic_tools(v, x);

            if (tools && json_object_set_new(out, "tools", tools) != 0) {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "response_format") == 0) {
            v = ngx_http_llm_fallback_anthropic_format(v, x);

            if (v && json_object_set_new(out, "output_config",
                                         json_pack("{s:o}", "format", v))
                     != 0)
            {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "user") == 0 && json_is_string(v)) {
            if (json_object_set_new(out, "metadata",
                                    json_pack("{s:O}", "user_id", v))
                != 0)
            {
                goto failed;
            }

            continue;
        }

        if (strcmp(key, "n") == 0 && json_is_integer(v)
            && json_integer_value(v) == 1)
        {
            continue;
        }

        ngx_http_llm_fallback_xlat_drop(x, key);
    }

    choice = ngx_http_llm_fallback_anthropic_tool_choice(req, x);

    if (choice) {
        if (json_object_get(out, "tools") == NULL) {
            json_decref(choice);
            ngx_http_llm_fallback_xlat_drop(x, "tool_choice without tools");

        } else if (json_object_set_new(out, "tool_choice", choice) != 0) {
            goto failed;
        }
    }

    if (x->stream
        && json_object_set_new(out, "stream", json_true()) != 0)
    {
        goto failed;
    }

    json_decref(system);

    return out;

failed:

    json_decref(system);
    json_decref(out);

    return NULL;
}


/*
 * max_tokens, and the thinking budget that reasoning_effort asks for (0:
 * none).  Anthropic wants 1024 <= budget_tokens < max_tokens: a budget
 * the client's max_tokens cannot hold is cut to max_tokens - 1 (OpenAI
 * counts reasoning in max_tokens too), down to 1024, below which
 * max_tokens is raised by 1024; without a client max_tokens, one that
 * cannot hold the budget is raised by the budget.  A forced tool_choice
 * ("required" or a function) wins: Anthropic does not think then.
 */

static json_int_t
ngx_http_llm_fallback_anthropic_budget(json_t *req, json_int_t *max,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t      *v, *tc;
    json_int_t   client, budget;

    client = ngx_http_llm_fallback_xlat_max_tokens(req);

    *max = client ? client
                  : x->max_tokens ? x->max_tokens
                                  : NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MAX_TOKENS;

    v = json_object_get(req, "reasoning_effort");

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    budget = ngx_http_llm_fallback_xlat_effort(
                 ngx_http_llm_fallback_anthropic_efforts, v);

    if (budget < 0) {
        ngx_http_llm_fallback_xlat_drop(x, "reasoning_effort");
        return 0;
    }

    if (budget == 0) {
        return 0;
    }

    tc = json_object_get(req, "tool_choice");

    if (json_array_size(json_object_get(req, "tools"))
        && (json_is_object(tc)
            || (json_is_string(tc)
                && strcmp(json_string_value(tc), "required") == 0)))
    {
        ngx_http_llm_fallback_xlat_drop(x,
                               "reasoning_effort (with a forced tool_choice)");
        return 0;
    }

    if (budget < *max) {
        return budget;
    }

    if (client == 0) {
        *max += budget;
        return budget;
    }

    if (*max > NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MIN_BUDGET) {
        return *max - 1;
    }

    *max += NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MIN_BUDGET;

    return NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MIN_BUDGET;
}


/*
 * response_format: a JSON schema as output_config.format (Anthropic has
 * no JSON mode without a schema, nor a name for it)
 */

static json_t *
ngx_http_llm_fallback_anthropic_format(json_t *rf,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t      *schema;
    const char  *type;

    type = json_string_value(json_object_get(rf, "type"));

    if (type && strcmp(type, "text") == 0) {
        return NULL;
    }

    schema = json_object_get(json_object_get(rf, "json_schema"), "schema");

    if (type && strcmp(type, "json_schema") == 0 && json_is_object(schema)) {
        return json_pack("{s:s,s:O}", "type", "json_schema",
                         "schema", schema);
    }

    if (type && strcmp(type, "json_object") == 0) {
        ngx_http_llm_fallback_xlat_drop(x, "response_format json_object");

    } else {
        ngx_http_llm_fallback_xlat_drop(x, "response_format");
    }

    return NULL;
}


/*
 * messages: system and developer messages go to "system"; tool results
 * become tool_result blocks of a user turn; consecutive turns of one
 * role are merged, as the roles must alternate
 */

static json_t *
ngx_http_llm_fallback_anthropic_messages(json_t *req, json_t *system,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    int          role, rc;
    size_t       i;
    json_t      *messages, *m, *blocks;
    const char  *target;

    messages = json_array();
    if (messages == NULL) {
        return NULL;
    }

    json_array_foreach(json_object_get(req, "messages"), i, m) {

        role = ngx_http_llm_fallback_xlat_role(m);

        if (role == NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM) {
            if (ngx_http_llm_fallback_anthropic_content(
                    json_object_get(m, "content"), system, role, x)
                != 0)
            {
                goto failed;
            }

            continue;
        }

        blocks = json_array();
        if (blocks == NULL) {
            goto failed;
        }

        switch (role) {

        case NGX_HTTP_LLM_FALLBACK_ROLE_USER:
            target = "user";
            rc = ngx_http_llm_fallback_anthropic_content(
                     json_object_get(m, "content"), blocks, role, x);
            break;

        case NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT:
            target = "assistant";
            rc = ngx_http_llm_fallback_anthropic_thinking_blocks(m, blocks,
                                                                 x);

            if (rc == 0) {
                rc = ngx_http_llm_fallback_anthropic_content(
                         json_object_get(m, "content"), blocks, role, x);
            }

            if (rc == 0) {
                rc = ngx_http_llm_fallback_anthropic_tool_calls(
                         json_object_get(m, "tool_calls"), blocks, x);
            }

            break;

        case NGX_HTTP_LLM_FALLBACK_ROLE_TOOL:
            target = "user";
            rc = ngx_http_llm_fallback_anthropic_tool_result(m, blocks, x);
            break;

        default:
            target = NULL;
            rc = 0;
            ngx_http_llm_fallback_xlat_drop(x,
                                         "messages with an unknown role");
            break;
        }

        if (rc != 0) {
            json_decref(blocks);
            goto failed;
        }

        if (target == NULL || json_array_size(blocks) == 0) {
            json_decref(blocks);

            if (target) {
                ngx_http_llm_fallback_xlat_drop(x,
                                             "messages without content");
            }

            continue;
        }

        if (ngx_http_llm_fallback_anthropic_append(messages, target, blocks)
            != 0)
        {
            goto failed;
        }
    }

    if (ngx_http_llm_fallback_anthropic_finalize(messages) != 0) {
        goto failed;
    }

    return messages;

failed:

    json_decref(messages);
    return NULL;
}


/* text parts (all roles) and image and file parts (user) as blocks */

static int
ngx_http_llm_fallback_anthropic_content(json_t *content, json_t *blocks,
    int role, ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t       i;
    json_t      *part;
    const char  *type;

    if (json_is_string(content)) {
        return ngx_http_llm_fallback_anthropic_text(blocks, content, NULL);
    }

    json_array_foreach(content, i, part) {

        type = json_string_value(json_object_get(part, "type"));

        if (type == NULL) {
            ngx_http_llm_fallback_xlat_drop(x, "content parts without type");
            continue;
        }

        if (strcmp(type, "text") == 0) {
            if (ngx_http_llm_fallback_anthropic_text(blocks,
                                            json_object_get(part, "text"),
                                            part)
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "refusal") == 0
            && role == NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT)
        {
            if (ngx_http_llm_fallback_anthropic_text(blocks,
                                            json_object_get(part, "refusal"),
                                            NULL)
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
            if (ngx_http_llm_fallback_anthropic_image(part, blocks, x) != 0) {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "file") == 0) {
            if (ngx_http_llm_fallback_anthropic_file(part, blocks, x) != 0) {
                return -1;
            }

            continue;
        }

        ngx_http_llm_fallback_xlat_drop(x, type);
    }

    return 0;
}


/* a text block; empty texts are left out, Anthropic rejects them */

static int
ngx_http_llm_fallback_anthropic_text(json_t *blocks, json_t *text,
    json_t *part)
{
    json_t  *block, *cc;

    if (!json_is_string(text) || json_string_length(text) == 0) {
        return 0;
    }

    block = json_pack("{s:s,s:O}", "type", "text", "text", text);
    if (block == NULL) {
        return -1;
    }

    /* prompt caching, as some OpenAI clients already mark it */

    cc = json_object_get(part, "cache_control");

    if (json_is_object(cc) && json_object_set(block, "cache_control", cc) != 0)
    {
        json_decref(block);
        return -1;
    }

    return json_array_append_new(blocks, block);
}


static int
ngx_http_llm_fallback_anthropic_image(json_t *part, json_t *blocks,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t                             *image, *url;
    const char                         *s;
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
        if (!((data.mime_len == sizeof("image/png") - 1
               && strncmp(data.mime, "image/png", data.mime_len) == 0)
              || (data.mime_len == sizeof("image/gif") - 1
                  && strncmp(data.mime, "image/gif", data.mime_len) == 0)
              || (data.mime_len == sizeof("image/jpeg") - 1
                  && strncmp(data.mime, "image/jpeg", data.mime_len) == 0)
              || (data.mime_len == sizeof("image/webp") - 1
                  && strncmp(data.mime, "image/webp", data.mime_len) == 0)))
        {
            ngx_http_llm_fallback_xlat_drop(x,
                                 "images other than jpeg, png, gif, webp");
            return 0;
        }

        return json_array_append_new(blocks,
                   json_pack("{s:s,s:{s:s,s:s%,s:s%}}",
                             "type", "image",
                             "source",
                             "type", "base64",
                             "media_type", data.mime, data.mime_len,
                             "data", data.data, data.data_len));
    }

    if (ngx_http_llm_fallback_xlat_http_url(s, json_string_length(url))) {
        return json_array_append_new(blocks,
                   json_pack("{s:s,s:{s:s,s:O}}",
                             "type", "image",
                             "source",
                             "type", "url",
                             "url", url));
    }

    ngx_http_llm_fallback_xlat_drop(x, "image_url parts with other URLs");

    return 0;
}


/* a PDF as a data URL in "file_data": a document block */

static int
ngx_http_llm_fallback_anthropic_file(json_t *part, json_t *blocks,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t                             *fd;
    ngx_http_llm_fallback_xlat_data_t   data;

    fd = json_object_get(json_object_get(part, "file"), "file_data");

    if (!json_is_string(fd)
        || ngx_http_llm_fallback_xlat_data_url(json_string_value(fd),
                                               json_string_length(fd), &data)
           != 0
        || data.mime_len != sizeof("application/pdf") - 1
        || strncmp(data.mime, "application/pdf", data.mime_len) != 0)
    {
        ngx_http_llm_fallback_xlat_drop(x, "file parts other than PDF data");
        return 0;
    }

    return json_array_append_new(blocks,
               json_pack("{s:s,s:{s:s,s:s,s:s%}}",
                         "type", "document",
                         "source",
                         "type", "base64",
                         "media_type", "application/pdf",
                         "data", data.data, data.data_len));
}


/*
 * an assistant message's thinking_blocks, as Anthropic gave them: thinking
 * (with its signature) and redacted_thinking blocks, first in the turn, as
 * a tool use turn with thinking needs them; reasoning_content alone has no
 * signature and is not sent
 */

static int
ngx_http_llm_fallback_anthropic_thinking_blocks(json_t *m, json_t *blocks,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t       i, n;
    json_t      *b, *text, *sig, *data;
    const char  *type;

    n = json_array_size(blocks);

    json_array_foreach(json_object_get(m, "thinking_blocks"), i, b) {

        type = json_string_value(json_object_get(b, "type"));
        text = json_object_get(b, "thinking");
        sig = json_object_get(b, "signature");
        data = json_object_get(b, "data");

        if (type && strcmp(type, "thinking") == 0 && json_is_string(text)
            && json_is_string(sig) && json_string_length(sig))
        {
            if (json_array_append_new(blocks,
                    json_pack("{s:s,s:O,s:O}",
                              "type", "thinking",
                              "thinking", text,
                              "signature", sig))
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (type && strcmp(type, "redacted_thinking") == 0
            && json_is_string(data) && json_string_length(data))
        {
            if (json_array_append_new(blocks,
                    json_pack("{s:s,s:O}",
                              "type", "redacted_thinking",
                              "data", data))
                != 0)
            {
                return -1;
            }

            continue;
        }

        ngx_http_llm_fallback_xlat_drop(x, "thinking_blocks without a "
                                           "signature or data");
    }

    text = json_object_get(m, "reasoning_content");

    if (json_array_size(blocks) == n && json_is_string(text)
        && json_string_length(text))
    {
        ngx_http_llm_fallback_xlat_drop(x, "reasoning_content without "
                                           "thinking_blocks");
    }

    return 0;
}


/* assistant tool_calls: tool_use blocks */

static int
ngx_http_llm_fallback_anthropic_tool_calls(json_t *calls, json_t *blocks,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t   i;
    json_t  *call, *id, *name, *args, *type;

    json_array_foreach(calls, i, call) {

        type = json_object_get(call, "type");
        name = json_object_get(json_object_get(call, "function"), "name");
        id = ngx_http_llm_fallback_anthropic_id(json_object_get(call, "id"));

        if ((type && !(json_is_string(type)
                       && strcmp(json_string_value(type), "function") == 0))
            || !json_is_string(name) || id == NULL)
        {
            json_decref(id);
            ngx_http_llm_fallback_xlat_drop(x,
                                 "tool_calls without function, name or id");
            continue;
        }

        args = ngx_http_llm_fallback_xlat_arguments(call);

        if (args == NULL) {
            ngx_http_llm_fallback_xlat_drop(x,
                   "tool_calls arguments that are not a JSON object (sent {})");

            args = json_object();
        }

        if (json_array_append_new(blocks,
                json_pack("{s:s,s:o,s:O,s:o}",
                          "type", "tool_use",
                          "id", id,
                          "name", name,
                          "input", args))
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* a tool message: a tool_result block */

static int
ngx_http_llm_fallback_anthropic_tool_result(json_t *m, json_t *blocks,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t  *id, *content, *result, *texts;

    id = ngx_http_llm_fallback_anthropic_id(json_object_get(m,
                                                           "tool_call_id"));
    if (id == NULL) {
        ngx_http_llm_fallback_xlat_drop(x, "tool messages without "
                                           "tool_call_id");
        return 0;
    }

    result = json_pack("{s:s,s:o}", "type", "tool_result", "tool_use_id", id);
    if (result == NULL) {
        return -1;
    }

    content = json_object_get(m, "content");

    if (json_is_string(content)) {
        if (json_string_length(content)
            && json_object_set(result, "content", content) != 0)
        {
            goto failed;
        }

    } else if (json_is_array(content)) {
        texts = json_array();

        if (texts == NULL
            || ngx_http_llm_fallback_anthropic_content(content, texts,
                                     NGX_HTTP_LLM_FALLBACK_ROLE_USER, x)
               != 0)
        {
            json_decref(texts);
            goto failed;
        }

        if (json_array_size(texts) == 0) {
            json_decref(texts);

        } else if (json_object_set_new(result, "content", texts) != 0) {
            goto failed;
        }
    }

    return json_array_append_new(blocks, result);

failed:

    json_decref(result);
    return -1;
}


/*
 * a tool use id as Anthropic accepts it (^[a-zA-Z0-9_-]+$): other bytes
 * become "_", the same way in tool_use and tool_result blocks
 */

static json_t *
ngx_http_llm_fallback_anthropic_id(json_t *id)
{
    char        *buf;
    size_t       i, len;
    json_t      *out;
    const char  *s;

    if (!json_is_string(id) || json_string_length(id) == 0) {
        return NULL;
    }

    s = json_string_value(id);
    len = json_string_length(id);

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
        {
            break;
        }
    }

    if (i == len) {
        return json_incref(id);
    }

    buf = malloc(len);
    if (buf == NULL) {
        return NULL;
    }

    for (i = 0; i < len; i++) {
        buf[i] = ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                  || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')
                 ? s[i] : '_';
    }

    out = json_stringn(buf, len);

    free(buf);

    return out;
}


/* a turn, merged into the previous one of the same role; takes blocks */

static int
ngx_http_llm_fallback_anthropic_append(json_t *messages, const char *role,
    json_t *blocks)
{
    int          rc;
    size_t       n;
    json_t      *last;
    const char  *r;

    n = json_array_size(messages);
    last = n ? json_array_get(messages, n - 1) : NULL;
    r = json_string_value(json_object_get(last, "role"));

    if (r && strcmp(r, role) == 0) {
        rc = json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return rc;
    }

    return json_array_append_new(messages,
                                 json_pack("{s:s,s:o}",
                                           "role", role,
                                           "content", blocks));
}


/*
 * the conversation starts with a user turn, tool_result blocks come
 * first in their turn, and a single text block is sent as a string
 */

static int
ngx_http_llm_fallback_anthropic_finalize(json_t *messages)
{
    size_t       i, j, k;
    json_t      *m, *content, *b;
    const char  *r, *type;

    r = json_string_value(json_object_get(json_array_get(messages, 0),
                                          "role"));

    if (r && strcmp(r, "assistant") == 0) {
        if (json_array_insert_new(messages, 0,
                json_pack("{s:s,s:[{s:s,s:s}]}",
                          "role", "user",
                          "content",
                          "type", "text",
                          "text", NGX_HTTP_LLM_FALLBACK_XLAT_FIRST_TURN))
            != 0)
        {
            return -1;
        }
    }

    json_array_foreach(messages, i, m) {
        content = json_object_get(m, "content");

        /* a stable partition: tool_result blocks to the front */

        k = 0;

        json_array_foreach(content, j, b) {
            type = json_string_value(json_object_get(b, "type"));

            if (type && strcmp(type, "tool_result") == 0) {
                if (j != k) {
                    json_incref(b);

                    if (json_array_remove(content, j) != 0
                        || json_array_insert_new(content, k, b) != 0)
                    {
                        return -1;
                    }
                }

                k++;
            }
        }

        if (ngx_http_llm_fallback_anthropic_collapse(m, "content") != 0) {
            return -1;
        }
    }

    return 0;
}


/* [{"type":"text","text":"..."}] alone is sent as the string "..." */

static int
ngx_http_llm_fallback_anthropic_collapse(json_t *holder, const char *key)
{
    json_t      *blocks, *b;
    const char  *type;

    blocks = json_object_get(holder, key);

    if (json_array_size(blocks) != 1) {
        return 0;
    }

    b = json_array_get(blocks, 0);
    type = json_string_value(json_object_get(b, "type"));

    if (type == NULL || strcmp(type, "text") != 0
        || json_object_size(b) != 2)
    {
        return 0;
    }

    return json_object_set(holder, key, json_object_get(b, "text"));
}


/* OpenAI function tools: {"name","description","input_schema"} */

static json_t *
ngx_http_llm_fallback_anthropic_tools(json_t *tools,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    size_t   i;
    json_t  *out, *tool, *f, *name, *v, *schema;

    out = json_array();
    if (out == NULL) {
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

        v = json_object_get(f, "parameters");

        if (json_is_object(v)) {
            if (json_is_string(json_object_get(v, "type"))) {
                schema = json_incref(v);

            } else {
                schema = json_copy(v);

                if (schema == NULL
                    || json_object_set_new(schema, "type",
                                           json_string("object"))
                       != 0)
                {
                    json_decref(schema);
                    goto failed;
                }
            }

        } else {
            schema = json_pack("{s:s,s:{}}", "type", "object",
                               "properties");
        }

        tool = json_pack("{s:O,s:o}", "name", name, "input_schema", schema);
        if (tool == NULL) {
            goto failed;
        }

        v = json_object_get(f, "description");

        if (json_is_string(v) && json_object_set(tool, "description", v) != 0)
        {
            json_decref(tool);
            goto failed;
        }

        if (json_object_get(f, "strict")) {
            ngx_http_llm_fallback_xlat_drop(x, "tools.function.strict");
        }

        if (json_array_append_new(out, tool) != 0) {
            goto failed;
        }
    }

    if (json_array_size(out) == 0) {
        goto failed;
    }

    return out;

failed:

    json_decref(out);
    return NULL;
}


/*
 * "none", "auto", "required" and {"type":"function",...} as
 * {"type":"none|auto|any|tool"}; "parallel_tool_calls": false as
 * "disable_parallel_tool_use"
 */

static json_t *
ngx_http_llm_fallback_anthropic_tool_choice(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x)
{
    json_t      *tc, *choice, *name, *parallel;
    const char  *s;

    tc = json_object_get(req, "tool_choice");
    parallel = json_object_get(req, "parallel_tool_calls");
    choice = NULL;

    if (json_is_string(tc)) {
        s = json_string_value(tc);

        if (strcmp(s, "none") == 0) {
            choice = json_pack("{s:s}", "type", "none");

        } else if (strcmp(s, "auto") == 0) {
            choice = json_pack("{s:s}", "type", "auto");

        } else if (strcmp(s, "required") == 0) {
            choice = json_pack("{s:s}", "type", "any");

        } else {
            ngx_http_llm_fallback_xlat_drop(x, "tool_choice");
        }

    } else if (json_is_object(tc)) {
        name = json_object_get(json_object_get(tc, "function"), "name");

        if (json_is_string(name)) {
            choice = json_pack("{s:s,s:O}", "type", "tool", "name", name);

        } else {
            ngx_http_llm_fallback_xlat_drop(x, "tool_choice");
        }

    } else if (tc && !json_is_null(tc)) {
        ngx_http_llm_fallback_xlat_drop(x, "tool_choice");
    }

    if (!json_is_false(parallel)) {
        return choice;
    }

    if (choice == NULL) {
        if (json_object_get(req, "tools") == NULL) {
            return NULL;
        }

        choice = json_pack("{s:s}", "type", "auto");
        if (choice == NULL) {
            return NULL;
        }
    }

    s = json_string_value(json_object_get(choice, "type"));

    if (s && strcmp(s, "none") != 0
        && json_object_set_new(choice, "disable_parallel_tool_use",
                               json_true())
           != 0)
    {
        json_decref(choice);
        return NULL;
    }

    return choice;
}


json_t *
ngx_http_llm_fallback_anthropic_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    size_t       i;
    json_t      *texts, *calls, *block, *v, *id, *name, *call, *message;
    json_t      *text, *choice, *usage, *thoughts, *thinking, *reasoning;
    const char  *type, *finish;

    x->prompt_tokens = -1;
    x->completion_tokens = -1;

    if (!json_is_object(resp)) {
        x->reason = "not a JSON object";
        return NULL;
    }

    v = json_object_get(resp, "content");

    if (!json_is_array(v)) {
        x->reason = "no \"content\" array";
        return NULL;
    }

    texts = json_array();
    calls = json_array();
    thoughts = json_array();
    thinking = json_array();
    text = NULL;
    message = NULL;

    if (texts == NULL || calls == NULL || thoughts == NULL
        || thinking == NULL)
    {
        goto failed;
    }

    json_array_foreach(json_object_get(resp, "content"), i, block) {
        type = json_string_value(json_object_get(block, "type"));

        if (type == NULL) {
            continue;
        }

        if (strcmp(type, "text") == 0) {
            v = json_object_get(block, "text");

            if (json_is_string(v) && json_string_length(v)
                && json_array_append(texts, v) != 0)
            {
                goto failed;
            }

            continue;
        }

        if (strcmp(type, "thinking") == 0) {
            v = json_object_get(block, "thinking");

            if (!json_is_string(v)) {
                continue;
            }

            if ((json_string_length(v) && json_array_append(thoughts, v) != 0)
                || json_array_append(thinking, block) != 0)
            {
                goto failed;
            }

            continue;
        }

        if (strcmp(type, "redacted_thinking") == 0) {
            if (json_is_string(json_object_get(block, "data"))
                && json_array_append(thinking, block) != 0)
            {
                goto failed;
            }

            continue;
        }

        if (strcmp(type, "tool_use") != 0) {
            /* server tools: not in OpenAI */
            continue;
        }

        name = json_object_get(block, "name");

        if (!json_is_string(name)) {
            continue;
        }

        id = json_object_get(block, "id");

        id = json_is_string(id) && json_string_length(id)
             ? json_incref(id)
             : ngx_http_llm_fallback_xlat_call_id(x, json_array_size(calls));

        if (id == NULL) {
            goto failed;
        }

        call = ngx_http_llm_fallback_xlat_tool_call(json_string_value(id),
                                                    json_string_length(id),
                                                    json_string_value(name),
                                                    json_string_length(name),
                                                    json_object_get(block,
                                                                    "input"));
        json_decref(id);

        if (json_array_append_new(calls, call) != 0) {
            goto failed;
        }
    }

    text = ngx_http_llm_fallback_xlat_join(texts);

    if (text == NULL && json_array_size(calls) == 0) {
        x->reason = "no text and no tool call";
        goto failed;
    }

    /*
     * "content": null when the answer is tool calls only; "refusal", that
     * OpenAI's schema requires, is null: a refusal is the stop reason
     */

    message = json_pack("{s:s,s:o?,s:n}",
                        "role", "assistant",
                        "content", text,
                        "refusal");
    text = NULL;

    if (message == NULL) {
        goto failed;
    }

    /* thinking as OpenAI-compatible servers have it */

    reasoning = ngx_http_llm_fallback_xlat_join(thoughts);

    if (reasoning
        && json_object_set_new(message, "reasoning_content", reasoning) != 0)
    {
        goto failed;
    }

    if (json_array_size(thinking)
        && json_object_set(message, "thinking_blocks", thinking) != 0)
    {
        goto failed;
    }

    if (json_array_size(calls)
        && json_object_set(message, "tool_calls", calls) != 0)
    {
        goto failed;
    }

    finish = ngx_http_llm_fallback_xlat_map(
                 ngx_http_llm_fallback_anthropic_finish,
                 json_string_value(json_object_get(resp, "stop_reason")),
                 json_array_size(calls) ? "tool_calls" : "stop");

    choice = json_pack("{s:i,s:o,s:n,s:s}",
                       "index", 0,
                       "message", message,
                       "logprobs",
                       "finish_reason", finish);
    message = NULL;

    json_decref(texts);
    json_decref(calls);
    json_decref(thoughts);
    json_decref(thinking);

    usage = ngx_http_llm_fallback_anthropic_usage(
                json_object_get(resp, "usage"), x);

    return ngx_http_llm_fallback_xlat_completion(x,
               json_incref(json_object_get(resp, "id")),
               json_incref(json_object_get(resp, "model")),
               choice ? json_pack("[o]", choice) : NULL,
               usage);

failed:

    json_decref(message);
    json_decref(text);
    json_decref(texts);
    json_decref(calls);
    json_decref(thoughts);
    json_decref(thinking);

    return NULL;
}


/*
 * usage: prompt_tokens counts the cached input as OpenAI does
 * (input_tokens + cache_creation_input_tokens + cache_read_input_tokens)
 */

json_t *
ngx_http_llm_fallback_anthropic_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    json_int_t  in, out, created, read;

    in = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                          "input_tokens"));
    out = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                           "output_tokens"));

    if (in < 0 || out < 0) {
        return NULL;
    }

    created = ngx_http_llm_fallback_xlat_count(
                  json_object_get(usage, "cache_creation_input_tokens"));
    read = ngx_http_llm_fallback_xlat_count(
               json_object_get(usage, "cache_read_input_tokens"));

    in += (created > 0 ? created : 0) + (read > 0 ? read : 0);

    x->prompt_tokens = in;
    x->completion_tokens = out;

    return ngx_http_llm_fallback_xlat_usage(in, out, in + out, read, -1);
}


/* {"type":"error","error":{"type":"...","message":"..."}} */

json_t *
ngx_http_llm_fallback_anthropic_error(json_t *body)
{
    json_t  *error;

    error = json_object_get(body, "error");

    if (!json_is_object(error)) {
        return NULL;
    }

    return ngx_http_llm_fallback_xlat_error(json_object_get(error, "type"),
                                            json_object_get(error, "message"),
                                            NULL);
}
