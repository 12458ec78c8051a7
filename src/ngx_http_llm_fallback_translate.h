
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_


/*
 * The provider format translators: pure functions of JSON in -> JSON out.
 * They depend on jansson and libc only, never on nginx, so that the
 * fuzz harnesses in util/fuzz/ build them alone; the nginx glue is
 * ngx_http_llm_fallback_format.c.
 *
 * Requests: an OpenAI chat request -> the provider's request; nothing
 * of the input is modified (parts of it may be shared by reference).
 * Responses: the provider's answer -> an OpenAI chat.completion, or
 * NULL when it is not a usable answer.  Errors: the provider's error
 * body -> an OpenAI error object, or NULL when it is not one.
 *
 * The mapping tables (roles, finish reasons) and the helpers that build
 * OpenAI objects are shared with the streaming translation.
 */


#include <stddef.h>
#include <jansson.h>


#define NGX_HTTP_LLM_FALLBACK_XLAT_MAX_DROPPED        16

/* Anthropic requires max_tokens: used without client or provider value */
#define NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MAX_TOKENS    4096

/* a neutral first user turn when a conversation starts with the model */
#define NGX_HTTP_LLM_FALLBACK_XLAT_FIRST_TURN         "."

/* Gemini's documented value for function calls made by another model */
#define NGX_HTTP_LLM_FALLBACK_GEMINI_NO_SIGNATURE                            \
    "skip_thought_signature_validator"

/* OpenAI message roles, as the translators see them */
#define NGX_HTTP_LLM_FALLBACK_ROLE_UNKNOWN            0
#define NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM             1
#define NGX_HTTP_LLM_FALLBACK_ROLE_USER               2
#define NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT          3
#define NGX_HTTP_LLM_FALLBACK_ROLE_TOOL               4


typedef struct {
    const char                       *name;
    const char                       *value;
} ngx_http_llm_fallback_xlat_map_t;


typedef struct {
    const char                       *name;
    int                               role;
} ngx_http_llm_fallback_xlat_role_t;


/* a parsed "data:MIME[;...];base64,DATA" URL */
typedef struct {
    const char                       *mime;
    size_t                            mime_len;
    const char                       *data;
    size_t                            data_len;
} ngx_http_llm_fallback_xlat_data_t;


typedef struct {
    /* in: the model to ask for (Gemini: none, it is in the URL) */
    const char                       *model;
    size_t                            model_len;
    /* in: the provider's default max_tokens, 0 if none */
    json_int_t                        max_tokens;
    /* in: ask the provider for a stream */
    unsigned                          stream:1;

    /* out: what the target cannot express and was not sent */
    const char                       *dropped[
                                        NGX_HTTP_LLM_FALLBACK_XLAT_MAX_DROPPED];
    size_t                            ndropped;
} ngx_http_llm_fallback_xlat_request_t;


typedef struct {
    /* in: the model asked for, reported when the answer names none */
    const char                       *model;
    size_t                            model_len;
    /* in: a unique hex string for ids the provider does not give */
    const char                       *id;
    size_t                            id_len;
    /* in: "created" */
    json_int_t                        created;

    /* out: usage counts, -1 when unknown */
    json_int_t                        prompt_tokens;
    json_int_t                        completion_tokens;
    /* out: why the answer is not usable, when NULL is returned */
    const char                       *reason;
} ngx_http_llm_fallback_xlat_response_t;


/* translate.c: tables and helpers shared by the formats */

extern const ngx_http_llm_fallback_xlat_role_t
    ngx_http_llm_fallback_xlat_roles[];

int ngx_http_llm_fallback_xlat_role(json_t *message);
const char *ngx_http_llm_fallback_xlat_map(
    const ngx_http_llm_fallback_xlat_map_t *map, const char *name,
    const char *dflt);
void ngx_http_llm_fallback_xlat_drop(ngx_http_llm_fallback_xlat_request_t *x,
    const char *what);
int ngx_http_llm_fallback_xlat_data_url(const char *url, size_t len,
    ngx_http_llm_fallback_xlat_data_t *data);
int ngx_http_llm_fallback_xlat_http_url(const char *url, size_t len);
const char *ngx_http_llm_fallback_xlat_url_mime(const char *url, size_t len);
json_int_t ngx_http_llm_fallback_xlat_max_tokens(json_t *req);
json_int_t ngx_http_llm_fallback_xlat_count(json_t *v);
json_t *ngx_http_llm_fallback_xlat_join(json_t *strings);
json_t *ngx_http_llm_fallback_xlat_stop(json_t *stop, int blank_ok,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_xlat_arguments(json_t *call);
json_t *ngx_http_llm_fallback_xlat_tool_call(const char *id, size_t id_len,
    const char *name, size_t name_len, json_t *args);
json_t *ngx_http_llm_fallback_xlat_call_id(
    ngx_http_llm_fallback_xlat_response_t *x, size_t n);
json_t *ngx_http_llm_fallback_xlat_usage(json_int_t prompt,
    json_int_t completion, json_int_t total, json_int_t cached,
    json_int_t reasoning);
json_t *ngx_http_llm_fallback_xlat_completion(
    ngx_http_llm_fallback_xlat_response_t *x, json_t *id, json_t *model,
    json_t *choices, json_t *usage);
json_t *ngx_http_llm_fallback_xlat_error(json_t *type, json_t *message,
    json_t *code);

/* anthropic.c: the Messages API */

extern const ngx_http_llm_fallback_xlat_map_t
    ngx_http_llm_fallback_anthropic_finish[];

json_t *ngx_http_llm_fallback_anthropic_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_anthropic_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
json_t *ngx_http_llm_fallback_anthropic_error(json_t *body);
json_t *ngx_http_llm_fallback_anthropic_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x);

/* gemini.c: generateContent */

extern const ngx_http_llm_fallback_xlat_map_t
    ngx_http_llm_fallback_gemini_finish[];

json_t *ngx_http_llm_fallback_gemini_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_gemini_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
json_t *ngx_http_llm_fallback_gemini_error(json_t *body);
json_t *ngx_http_llm_fallback_gemini_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x);


#endif /* _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_ */
