
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_JSON_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_JSON_H_INCLUDED_


/*
 * The hot path's JSON scanner: one pass over the bytes, no recursion, no
 * tree, no copies.  It accepts exactly what jansson's json_loadb(buf,
 * len, 0, &err) accepts (an object or an array at the top; strict UTF-8;
 * no \u0000; lone surrogates, integers beyond json_int_t and reals beyond
 * a double rejected; nesting up to jansson's 2048 levels), so that a body
 * jansson would refuse is refused here with the same outcome; jansson is
 * then asked only for its error text.
 *
 * What it produces is a flat token array, jsmn-like, allocated through
 * the caller's allocator (the request pool in nginx): one token per
 * value and per object key, in document order, each with the index of
 * the token that follows its whole subtree.  Strings point into the
 * input, unescaped only on demand.
 *
 * The request validation and the check of an OpenAI answer are built on
 * it here too, and a jansson tree, the one json_loadb() would build, for
 * the code that needs one; and the compact serialisation of jansson
 * trees, byte for byte json_dumpb()'s, in one pass and without its
 * per-fragment callbacks.  Pure C: libc and
 * jansson only, never nginx, so that the libFuzzer harness in util/fuzz/
 * builds it alone and compares it with jansson.
 */


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


/* jansson's JSON_PARSER_MAX_DEPTH: a value's depth counts itself */
#define NGX_HTTP_LLM_FALLBACK_JSON_MAX_DEPTH    2048

#define NGX_HTTP_LLM_FALLBACK_JSON_OBJECT       1
#define NGX_HTTP_LLM_FALLBACK_JSON_ARRAY        2
#define NGX_HTTP_LLM_FALLBACK_JSON_STRING       3
#define NGX_HTTP_LLM_FALLBACK_JSON_INTEGER      4
#define NGX_HTTP_LLM_FALLBACK_JSON_REAL         5
#define NGX_HTTP_LLM_FALLBACK_JSON_TRUE         6
#define NGX_HTTP_LLM_FALLBACK_JSON_FALSE        7
#define NGX_HTTP_LLM_FALLBACK_JSON_NULL         8

/* ngx_http_llm_fallback_json_parse() */
#define NGX_HTTP_LLM_FALLBACK_JSON_OK           0
#define NGX_HTTP_LLM_FALLBACK_JSON_INVALID     -1
#define NGX_HTTP_LLM_FALLBACK_JSON_NOMEM       -2

/* no such token: the root is index 0 and never a member */
#define NGX_HTTP_LLM_FALLBACK_JSON_NONE         0

/* the real precision of the module's JSON output */
#define NGX_HTTP_LLM_FALLBACK_JSON_PRECISION    15

/*
 * the serialisation leaves deeper trees, and objects to sort with more
 * members, to json_dumpb(): its recursion stays within a few hundred KiB
 * of stack
 */
#define NGX_HTTP_LLM_FALLBACK_JSON_DUMP_DEPTH   512
#define NGX_HTTP_LLM_FALLBACK_JSON_SORT_MAX     32

/* token offsets are 32-bit: larger bodies are refused as _NOMEM */
#define NGX_HTTP_LLM_FALLBACK_JSON_MAX_LEN      0xfffffffe


typedef void *(*ngx_http_llm_fallback_json_alloc_pt)(void *data, size_t size);


typedef struct {
    /* strings: the raw bytes between the quotes */
    const unsigned char              *start;
    uint32_t                          len;
    /* the index of the token after this value and all it contains */
    uint32_t                          next;
    /* objects: members (duplicates included); arrays: elements */
    uint32_t                          size;
    unsigned char                     type;
    /* a string with backslash escapes */
    unsigned char                     escaped;
} ngx_http_llm_fallback_json_tok_t;


typedef struct {
    const char                       *name;
    size_t                            len;
} ngx_http_llm_fallback_json_key_t;


typedef struct {
    ngx_http_llm_fallback_json_tok_t *toks;
    uint32_t                          ntoks;
    uint32_t                          nalloc;
    /* the deepest nesting of containers */
    uint32_t                          depth;
    ngx_http_llm_fallback_json_alloc_pt  alloc;
    void                             *data;
} ngx_http_llm_fallback_json_t;


/*
 * A request's validation: "fmt" is NULL when the request is valid,
 * else the OpenAI-style message with up to two %s, the param first and
 * then "expected"; the param is "param", then "[index]" when index >= 0,
 * then ".field" when field is not NULL.
 */
typedef struct {
    const char                       *fmt;
    const char                       *param;
    long                              index;
    const char                       *field;
    const char                       *expected;

    /* when valid: the "model" string token or NONE, "stream": true,
     * "stream_options": {"include_usage": true} */
    uint32_t                          model;
    unsigned                          stream:1;
    unsigned                          include_usage:1;
} ngx_http_llm_fallback_json_request_t;


/* what an OpenAI chat.completion answer has */
typedef struct {
    /* choices[0].message has content, tool_calls or a refusal */
    unsigned                          usable:1;
    /*
     * every choice has "logprobs" and a "message" object with
     * "refusal", as OpenAI's schema requires
     */
    unsigned                          shaped:1;
    /* each field is present with the right type and value */
    unsigned                          has_id:1;
    unsigned                          has_object:1;
    unsigned                          has_created:1;
    /* a non-empty "model" string token, or NONE */
    uint32_t                          model;
    /* usage counts, -1 when not integers */
    int64_t                           prompt_tokens;
    int64_t                           completion_tokens;
} ngx_http_llm_fallback_json_completion_t;


int ngx_http_llm_fallback_json_parse(ngx_http_llm_fallback_json_t *json,
    const unsigned char *buf, size_t len,
    ngx_http_llm_fallback_json_alloc_pt alloc, void *data);
uint32_t ngx_http_llm_fallback_json_get(ngx_http_llm_fallback_json_t *json,
    uint32_t obj, const char *key, size_t len);
void ngx_http_llm_fallback_json_lookup(ngx_http_llm_fallback_json_t *json,
    uint32_t obj, const ngx_http_llm_fallback_json_key_t *keys,
    uint32_t nkeys, uint32_t *found);
int ngx_http_llm_fallback_json_streq(ngx_http_llm_fallback_json_tok_t *tok,
    const char *s, size_t len);
size_t ngx_http_llm_fallback_json_unescape(
    ngx_http_llm_fallback_json_tok_t *tok, unsigned char *dst);
int64_t ngx_http_llm_fallback_json_integer(
    ngx_http_llm_fallback_json_tok_t *tok);
json_t *ngx_http_llm_fallback_json_tree(ngx_http_llm_fallback_json_t *json);
size_t ngx_http_llm_fallback_json_dumpb(const json_t *json,
    unsigned char *buf, size_t size, size_t flags);

void ngx_http_llm_fallback_json_request(ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_request_t *req);
void ngx_http_llm_fallback_json_completion(
    ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_completion_t *c);


#endif /* _NGX_HTTP_LLM_FALLBACK_JSON_H_INCLUDED_ */
