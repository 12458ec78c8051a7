
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * The hot path's JSON scanner, the request validation and the check of
 * an OpenAI answer on it, the jansson tree from its tokens.  Pure: libc
 * and jansson only (see ngx_http_llm_fallback_json.h).
 */


#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ngx_http_llm_fallback_json.h"

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_HTTP_LLM_FALLBACK_JSON_SSE2         1
#endif


/* byte classes inside a string */
#define NGX_HTTP_LLM_FALLBACK_JSON_C_PLAIN      0
#define NGX_HTTP_LLM_FALLBACK_JSON_C_QUOTE      1
#define NGX_HTTP_LLM_FALLBACK_JSON_C_ESCAPE     2
#define NGX_HTTP_LLM_FALLBACK_JSON_C_CONTROL    3
#define NGX_HTTP_LLM_FALLBACK_JSON_C_UTF8       4

/* no open container */
#define NGX_HTTP_LLM_FALLBACK_JSON_TOP          0xffffffff

/* the first token array, in tokens: a guess from the length, bounded */
#define NGX_HTTP_LLM_FALLBACK_JSON_MIN_TOKENS   16
#define NGX_HTTP_LLM_FALLBACK_JSON_MAX_TOKENS   1024

/* request field types */
#define NGX_HTTP_LLM_FALLBACK_JSON_T_STRING     0x01
#define NGX_HTTP_LLM_FALLBACK_JSON_T_ARRAY      0x02
#define NGX_HTTP_LLM_FALLBACK_JSON_T_NULL       0x04
#define NGX_HTTP_LLM_FALLBACK_JSON_T_OBJECT     0x08
#define NGX_HTTP_LLM_FALLBACK_JSON_T_BOOL       0x10
#define NGX_HTTP_LLM_FALLBACK_JSON_T_NUMBER     0x20
#define NGX_HTTP_LLM_FALLBACK_JSON_T_INTEGER    0x40

/* without SSE2, SWAR: 8 bytes of a string at a time */
#define NGX_HTTP_LLM_FALLBACK_JSON_ONES         0x0101010101010101ULL
#define NGX_HTTP_LLM_FALLBACK_JSON_HIGHS        0x8080808080808080ULL

/* the first special byte of a word is its lowest set bit */
#if (defined __GNUC__ && defined __BYTE_ORDER__                               \
     && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
#define NGX_HTTP_LLM_FALLBACK_JSON_CTZ          1
#endif

/* ' ', '\t', '\n', '\r'; anything above ' ' is not white space */
#define ngx_http_llm_fallback_json_space(c)                                   \
    ((c) <= ' ' && ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r'))

#define ngx_http_llm_fallback_json_digit(c)  ((unsigned) ((c) - '0') < 10)
#define ngx_http_llm_fallback_json_alpha(c)                                   \
    ((unsigned) (((c) | 0x20) - 'a') < 26)


typedef struct {
    unsigned                          types;
    const char                       *expected;
} ngx_http_llm_fallback_json_field_t;


/* the serialisation's output: what fits is written, all is counted */
typedef struct {
    unsigned char                    *pos;
    size_t                            left;
    size_t                            len;
    int                               precision;
    unsigned                          sort:1;
} ngx_http_llm_fallback_json_out_t;


/* an open container while a tree is built */
typedef struct {
    json_t                           *value;
    uint32_t                          end;
    /* an object expects a member's key next */
    unsigned                          key:1;
} ngx_http_llm_fallback_json_frame_t;


static int ngx_http_llm_fallback_json_grow(ngx_http_llm_fallback_json_t *json);
static const unsigned char *ngx_http_llm_fallback_json_string(
    const unsigned char *p, const unsigned char *end,
    ngx_http_llm_fallback_json_tok_t *t);
static const unsigned char *ngx_http_llm_fallback_json_plain(
    const unsigned char *p, const unsigned char *end);
static const unsigned char *ngx_http_llm_fallback_json_number(
    ngx_http_llm_fallback_json_t *json, const unsigned char *p,
    const unsigned char *end, ngx_http_llm_fallback_json_tok_t *t,
    int *rc);
static const unsigned char *ngx_http_llm_fallback_json_digits(
    const unsigned char *p, const unsigned char *end);
static int ngx_http_llm_fallback_json_overflow(
    ngx_http_llm_fallback_json_t *json, const unsigned char *p, size_t len);
static long ngx_http_llm_fallback_json_hex4(const unsigned char *p,
    const unsigned char *end);
static size_t ngx_http_llm_fallback_json_utf8(const unsigned char *p,
    const unsigned char *end);
static size_t ngx_http_llm_fallback_json_decode(const unsigned char **pp,
    unsigned char *out);
static int ngx_http_llm_fallback_json_key(ngx_http_llm_fallback_json_tok_t *t,
    const char *s, size_t len);
static json_t *ngx_http_llm_fallback_json_scalar(
    ngx_http_llm_fallback_json_t *json, ngx_http_llm_fallback_json_tok_t *t);
static const char *ngx_http_llm_fallback_json_text(
    ngx_http_llm_fallback_json_t *json, ngx_http_llm_fallback_json_tok_t *t,
    size_t *len);
static int ngx_http_llm_fallback_json_dump(
    ngx_http_llm_fallback_json_out_t *out, const json_t *json,
    unsigned depth);
static int ngx_http_llm_fallback_json_dump_object(
    ngx_http_llm_fallback_json_out_t *out, json_t *json, unsigned depth);
static int ngx_http_llm_fallback_json_dump_member(
    ngx_http_llm_fallback_json_out_t *out, const char *key, size_t len,
    json_t *value, unsigned depth);
static int ngx_http_llm_fallback_json_compare(const void *one,
    const void *two);
static int ngx_http_llm_fallback_json_dump_string(
    ngx_http_llm_fallback_json_out_t *out, const char *s, size_t len);
static int ngx_http_llm_fallback_json_dump_real(
    ngx_http_llm_fallback_json_out_t *out, double v);
static void ngx_http_llm_fallback_json_dump_integer(
    ngx_http_llm_fallback_json_out_t *out, json_int_t v);
static void ngx_http_llm_fallback_json_put(
    ngx_http_llm_fallback_json_out_t *out, const void *data, size_t len);
static int ngx_http_llm_fallback_json_types(
    ngx_http_llm_fallback_json_tok_t *t, unsigned types);
static void ngx_http_llm_fallback_json_invalid(
    ngx_http_llm_fallback_json_request_t *req, const char *fmt,
    const char *param, long index, const char *field, const char *expected);
static void ngx_http_llm_fallback_json_messages(
    ngx_http_llm_fallback_json_t *json, uint32_t messages,
    ngx_http_llm_fallback_json_request_t *req);
static int ngx_http_llm_fallback_json_shaped(
    ngx_http_llm_fallback_json_t *json, uint32_t choices);


static const unsigned char  ngx_http_llm_fallback_json_class[256] = {
    /* 0x00 - 0x1f: control characters */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0x20 - 0x7f: '"' and '\\' */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80 - 0xff: UTF-8 sequences */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4
};


/* the two-character escapes: "\\b" stands for '\b', and so on */

static const char  ngx_http_llm_fallback_json_escapes[] = "\"\\\b\f\n\r\t";
static const char  ngx_http_llm_fallback_json_escaped[] = "\"\\bfnrt";


/*
 * The request's top-level members looked up: the checked fields first,
 * in the order their errors are reported, each with its type in
 * ngx_http_llm_fallback_json_fields[] at the same index.
 */

static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_request_keys[] =
{
    { "model", 5 },
    { "stream", 6 },
    { "temperature", 11 },
    { "top_p", 5 },
    { "max_tokens", 10 },
    { "max_completion_tokens", 21 },
    { "tools", 5 },
    { "stream_options", 14 },
    { "stop", 4 },
    { "messages", 8 }
};

#define NGX_HTTP_LLM_FALLBACK_JSON_R_MODEL            0
#define NGX_HTTP_LLM_FALLBACK_JSON_R_STREAM           1
#define NGX_HTTP_LLM_FALLBACK_JSON_R_MAX_TOKENS       4
#define NGX_HTTP_LLM_FALLBACK_JSON_R_MAX_COMPLETION   5
#define NGX_HTTP_LLM_FALLBACK_JSON_R_STREAM_OPTIONS   7
#define NGX_HTTP_LLM_FALLBACK_JSON_R_MESSAGES         9
#define NGX_HTTP_LLM_FALLBACK_JSON_R_NFIELDS          9
#define NGX_HTTP_LLM_FALLBACK_JSON_R_NKEYS            10


static const ngx_http_llm_fallback_json_field_t
    ngx_http_llm_fallback_json_fields[] =
{
    { NGX_HTTP_LLM_FALLBACK_JSON_T_STRING, "a string" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_BOOL|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "a boolean" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_NUMBER|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "a number" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_NUMBER|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "a number" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_INTEGER|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "an integer" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_INTEGER|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "an integer" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_ARRAY, "an array" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_OBJECT|NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "an object" },
    { NGX_HTTP_LLM_FALLBACK_JSON_T_STRING|NGX_HTTP_LLM_FALLBACK_JSON_T_ARRAY
      |NGX_HTTP_LLM_FALLBACK_JSON_T_NULL,
      "a string, an array of strings or null" }
};


/* a message's members */

static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_message_keys[] =
{
    { "role", 4 },
    { "content", 7 }
};


/* an OpenAI answer's members, its message's and its usage's */

static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_answer_keys[] =
{
    { "choices", 7 },
    { "model", 5 },
    { "id", 2 },
    { "object", 6 },
    { "created", 7 },
    { "usage", 5 }
};


static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_reply_keys[] =
{
    { "content", 7 },
    { "tool_calls", 10 },
    { "refusal", 7 }
};


static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_choice_keys[] =
{
    { "logprobs", 8 },
    { "message", 7 }
};


static const ngx_http_llm_fallback_json_key_t
    ngx_http_llm_fallback_json_usage_keys[] =
{
    { "prompt_tokens", 13 },
    { "completion_tokens", 17 }
};


/*
 * NGX_HTTP_LLM_FALLBACK_JSON_OK, _INVALID when jansson would reject the
 * bytes, _NOMEM when the allocator failed
 */

int
ngx_http_llm_fallback_json_parse(ngx_http_llm_fallback_json_t *json,
    const unsigned char *buf, size_t len,
    ngx_http_llm_fallback_json_alloc_pt alloc, void *data)
{
    int                                rc, key;
    size_t                             n;
    uint32_t                           parent, depth, up;
    const unsigned char               *p, *end, *q;
    ngx_http_llm_fallback_json_tok_t  *t, *pt;

    if (len > NGX_HTTP_LLM_FALLBACK_JSON_MAX_LEN) {
        return NGX_HTTP_LLM_FALLBACK_JSON_NOMEM;
    }

    n = len / 16 + NGX_HTTP_LLM_FALLBACK_JSON_MIN_TOKENS;

    if (n > NGX_HTTP_LLM_FALLBACK_JSON_MAX_TOKENS) {
        n = NGX_HTTP_LLM_FALLBACK_JSON_MAX_TOKENS;
    }

    json->alloc = alloc;
    json->data = data;
    json->ntoks = 0;
    json->nalloc = (uint32_t) n;
    json->depth = 0;

    json->toks = alloc(data, n * sizeof(ngx_http_llm_fallback_json_tok_t));
    if (json->toks == NULL) {
        return NGX_HTTP_LLM_FALLBACK_JSON_NOMEM;
    }

    p = buf;
    end = buf + len;

    while (p < end && ngx_http_llm_fallback_json_space(*p)) {
        p++;
    }

    /* jansson without JSON_DECODE_ANY: an object or an array */

    if (p == end || (*p != '{' && *p != '[')) {
        return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
    }

    /* pt: the innermost open container, at index parent */

    parent = NGX_HTTP_LLM_FALLBACK_JSON_TOP;
    pt = NULL;
    depth = 0;
    key = 0;

    for ( ;; ) {

        /* an object member's key and ':' */

        if (key) {
            if (p == end || *p != '"') {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            if (json->ntoks == json->nalloc
                && ngx_http_llm_fallback_json_grow(json) != 0)
            {
                return NGX_HTTP_LLM_FALLBACK_JSON_NOMEM;
            }

            /* the tokens may have moved */
            t = &json->toks[json->ntoks++];
            pt = &json->toks[parent];
            pt->size++;

            t->type = NGX_HTTP_LLM_FALLBACK_JSON_STRING;
            t->next = json->ntoks;
            t->size = 0;

            p = ngx_http_llm_fallback_json_string(p + 1, end, t);
            if (p == NULL) {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            while (p < end && ngx_http_llm_fallback_json_space(*p)) {
                p++;
            }

            if (p == end || *p != ':') {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            p++;

            while (p < end && ngx_http_llm_fallback_json_space(*p)) {
                p++;
            }
        }

        /* a value; jansson counts the value itself in its depth */

        if (p == end || depth >= NGX_HTTP_LLM_FALLBACK_JSON_MAX_DEPTH) {
            return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
        }

        if (json->ntoks == json->nalloc
            && ngx_http_llm_fallback_json_grow(json) != 0)
        {
            return NGX_HTTP_LLM_FALLBACK_JSON_NOMEM;
        }

        t = &json->toks[json->ntoks++];

        if (pt) {
            pt = &json->toks[parent];
        }

        t->start = p;
        t->len = 0;
        t->size = 0;
        t->escaped = 0;
        t->next = json->ntoks;

        switch (*p) {

        case '{':
        case '[':
            t->type = (*p == '{') ? NGX_HTTP_LLM_FALLBACK_JSON_OBJECT
                                  : NGX_HTTP_LLM_FALLBACK_JSON_ARRAY;

            /* "next" links the open containers until they are closed */

            t->next = parent;
            parent = json->ntoks - 1;
            pt = t;
            depth++;
            p++;

            if (depth > json->depth) {
                json->depth = depth;
            }

            while (p < end && ngx_http_llm_fallback_json_space(*p)) {
                p++;
            }

            if (p == end) {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            if (*p == (pt->type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT ? '}'
                                                                     : ']'))
            {
                /* empty: closed below */
                break;
            }

            key = (pt->type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT);

            if (!key) {
                pt->size++;
            }

            continue;

        case '"':
            t->type = NGX_HTTP_LLM_FALLBACK_JSON_STRING;

            p = ngx_http_llm_fallback_json_string(p + 1, end, t);
            if (p == NULL) {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            break;

        case 't':
        case 'f':
        case 'n':

            /* jansson takes every letter that follows as part of it */

            for (q = p; q < end && ngx_http_llm_fallback_json_alpha(*q); q++)
            {
                /* void */
            }

            n = q - p;

            if (n == 4 && p[0] == 't' && p[1] == 'r' && p[2] == 'u'
                && p[3] == 'e')
            {
                t->type = NGX_HTTP_LLM_FALLBACK_JSON_TRUE;

            } else if (n == 5 && p[0] == 'f' && p[1] == 'a' && p[2] == 'l'
                       && p[3] == 's' && p[4] == 'e')
            {
                t->type = NGX_HTTP_LLM_FALLBACK_JSON_FALSE;

            } else if (n == 4 && p[0] == 'n' && p[1] == 'u' && p[2] == 'l'
                       && p[3] == 'l')
            {
                t->type = NGX_HTTP_LLM_FALLBACK_JSON_NULL;

            } else {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            t->len = n;
            p = q;

            /*
             * jansson puts back the byte that ended a number or a literal;
             * a NUL byte put back is lost (its stream buffer ends at a
             * NUL), so one NUL right after them is skipped
             */

            if (p < end && *p == '\0') {
                p++;
            }

            break;

        default:
            if (*p != '-' && !ngx_http_llm_fallback_json_digit(*p)) {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            p = ngx_http_llm_fallback_json_number(json, p, end, t, &rc);
            if (p == NULL) {
                return rc;
            }

            if (p < end && *p == '\0') {
                p++;
            }

            break;
        }

        /* after a value: a ',' or the ends of containers */

        for ( ;; ) {

            while (p < end && ngx_http_llm_fallback_json_space(*p)) {
                p++;
            }

            if (pt == NULL) {
                /* the top-level value is complete */
                return (p == end) ? NGX_HTTP_LLM_FALLBACK_JSON_OK
                                  : NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            if (p == end) {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            if (*p == ',') {
                p++;

                while (p < end && ngx_http_llm_fallback_json_space(*p)) {
                    p++;
                }

                key = (pt->type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT);

                if (!key) {
                    pt->size++;
                }

                break;
            }

            if (*p != (pt->type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT ? '}'
                                                                     : ']'))
            {
                return NGX_HTTP_LLM_FALLBACK_JSON_INVALID;
            }

            p++;

            /* the container ends before the next token */

            up = pt->next;
            pt->next = json->ntoks;
            parent = up;
            depth--;

            pt = (parent == NGX_HTTP_LLM_FALLBACK_JSON_TOP)
                 ? NULL : &json->toks[parent];
        }
    }
}


static int
ngx_http_llm_fallback_json_grow(ngx_http_llm_fallback_json_t *json)
{
    uint32_t                           n;
    ngx_http_llm_fallback_json_tok_t  *toks;

    /* at most 2 GiB of tokens, far more than any body nginx reads */

    if (json->nalloc
        > 0x7fffffff / sizeof(ngx_http_llm_fallback_json_tok_t) / 2)
    {
        return -1;
    }

    n = json->nalloc * 2;

    toks = json->alloc(json->data,
                       n * sizeof(ngx_http_llm_fallback_json_tok_t));
    if (toks == NULL) {
        return -1;
    }

    memcpy(toks, json->toks,
           json->ntoks * sizeof(ngx_http_llm_fallback_json_tok_t));

    json->toks = toks;
    json->nalloc = n;

    return 0;
}


/* p: after the opening quote; returns the byte after the closing one */

static const unsigned char *
ngx_http_llm_fallback_json_string(const unsigned char *p,
    const unsigned char *end, ngx_http_llm_fallback_json_tok_t *t)
{
    long    u;
    size_t  n;

    t->start = p;
    t->escaped = 0;

    for ( ;; ) {

        p = ngx_http_llm_fallback_json_plain(p, end);

        while (p < end && ngx_http_llm_fallback_json_class[*p] == 0) {
            p++;
        }

        if (p == end) {
            return NULL;
        }

        switch (ngx_http_llm_fallback_json_class[*p]) {

        case NGX_HTTP_LLM_FALLBACK_JSON_C_QUOTE:
            t->len = p - t->start;
            return p + 1;

        case NGX_HTTP_LLM_FALLBACK_JSON_C_ESCAPE:
            t->escaped = 1;
            p++;

            if (p == end) {
                return NULL;
            }

            switch (*p) {

            case '"': case '\\': case '/':
            case 'b': case 'f': case 'n': case 'r': case 't':
                p++;
                break;

            case 'u':
                u = ngx_http_llm_fallback_json_hex4(p + 1, end);

                /* \u0000 and lone surrogates are refused by jansson */

                if (u <= 0 || (u >= 0xdc00 && u <= 0xdfff)) {
                    return NULL;
                }

                p += 5;

                if (u >= 0xd800 && u <= 0xdbff) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
                        return NULL;
                    }

                    u = ngx_http_llm_fallback_json_hex4(p + 2, end);

                    if (u < 0xdc00 || u > 0xdfff) {
                        return NULL;
                    }

                    p += 6;
                }

                break;

            default:
                return NULL;
            }

            break;

        case NGX_HTTP_LLM_FALLBACK_JSON_C_UTF8:
            n = ngx_http_llm_fallback_json_utf8(p, end);
            if (n == 0) {
                return NULL;
            }

            p += n;
            break;

        default: /* NGX_HTTP_LLM_FALLBACK_JSON_C_CONTROL */
            return NULL;
        }
    }
}


/*
 * Skips bytes that stand for themselves in a string, many at a time:
 * stops at or before the first '"', '\\', control character or non-ASCII
 * byte, or a few bytes before the end.
 */

static const unsigned char *
ngx_http_llm_fallback_json_plain(const unsigned char *p,
    const unsigned char *end)
{
#if (NGX_HTTP_LLM_FALLBACK_JSON_SSE2)

    int      m;
    __m128i  x, quote, backslash, space;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    space = _mm_set1_epi8(' ');

    while (end - p >= 16) {
        x = _mm_loadu_si128((const __m128i *) p);

        /* a signed compare: a byte >= 0x80 is below ' ' too */

        m = _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote),
                             _mm_cmpeq_epi8(x, backslash)),
                _mm_cmplt_epi8(x, space)));

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }

#else

    uint64_t  w, q, b, m;

    /*
     * tests for a zero byte (after the XOR) and for a byte below 0x20
     * that never miss one, and whose lowest flag is exact (a borrow only
     * runs upwards)
     */

    while (end - p >= 8) {
        memcpy(&w, p, 8);

        q = w ^ (NGX_HTTP_LLM_FALLBACK_JSON_ONES * '"');
        b = w ^ (NGX_HTTP_LLM_FALLBACK_JSON_ONES * '\\');

        m = (((q - NGX_HTTP_LLM_FALLBACK_JSON_ONES) & ~q)
             | ((b - NGX_HTTP_LLM_FALLBACK_JSON_ONES) & ~b)
             | ((w - NGX_HTTP_LLM_FALLBACK_JSON_ONES * 0x20) & ~w)
             | w)
            & NGX_HTTP_LLM_FALLBACK_JSON_HIGHS;

        if (m) {
#if (NGX_HTTP_LLM_FALLBACK_JSON_CTZ)
            p += __builtin_ctzll(m) >> 3;
#endif
            break;
        }

        p += 8;
    }

#endif

    return p;
}


/* p: at '-' or a digit; NULL with *rc on errors */

static const unsigned char *
ngx_http_llm_fallback_json_number(ngx_http_llm_fallback_json_t *json,
    const unsigned char *p, const unsigned char *end,
    ngx_http_llm_fallback_json_tok_t *t, int *rc)
{
    int                   neg, over;
    size_t                n;
    const unsigned char  *q, *digits;

    *rc = NGX_HTTP_LLM_FALLBACK_JSON_INVALID;

    q = p;
    neg = (*q == '-');

    if (neg) {
        q++;
    }

    digits = q;

    if (q == end) {
        return NULL;
    }

    if (*q == '0') {
        q++;

        if (q < end && ngx_http_llm_fallback_json_digit(*q)) {
            return NULL;
        }

    } else {
        q = ngx_http_llm_fallback_json_digits(q, end);
        if (q == NULL) {
            return NULL;
        }
    }

    t->start = p;

    if (q == end || (*q != '.' && *q != 'e' && *q != 'E')) {

        /* strtoll()'s ERANGE: beyond json_int_t */

        n = q - digits;

        if (n > 19
            || (n == 19
                && memcmp(digits, neg ? "9223372036854775808"
                                      : "9223372036854775807", 19) > 0))
        {
            return NULL;
        }

        t->type = NGX_HTTP_LLM_FALLBACK_JSON_INTEGER;
        t->len = q - p;

        return q;
    }

    if (*q == '.') {
        q = ngx_http_llm_fallback_json_digits(q + 1, end);
        if (q == NULL) {
            return NULL;
        }
    }

    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;

        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }

        q = ngx_http_llm_fallback_json_digits(q, end);
        if (q == NULL) {
            return NULL;
        }
    }

    t->type = NGX_HTTP_LLM_FALLBACK_JSON_REAL;
    t->len = q - p;

    over = ngx_http_llm_fallback_json_overflow(json, p, q - p);

    if (over) {
        if (over < 0) {
            *rc = NGX_HTTP_LLM_FALLBACK_JSON_NOMEM;
        }

        return NULL;
    }

    return q;
}


/* one digit or more at p: after them, else NULL */

static const unsigned char *
ngx_http_llm_fallback_json_digits(const unsigned char *p,
    const unsigned char *end)
{
    if (p == end || !ngx_http_llm_fallback_json_digit(*p)) {
        return NULL;
    }

    do {
        p++;
    } while (p < end && ngx_http_llm_fallback_json_digit(*p));

    return p;
}


/*
 * jansson refuses a real that strtod() makes infinite: 1 when it would,
 * 0 when not, -1 when out of memory.  The decimal magnitude decides
 * without strtod() except next to DBL_MAX (about 1.8e308).
 */

static int
ngx_http_llm_fallback_json_overflow(ngx_http_llm_fallback_json_t *json,
    const unsigned char *p, size_t len)
{
    int                   sat, neg;
    char                 *s, buf[128];
    double                v;
    int64_t               k, e, z;
    const unsigned char  *q, *end;

    end = p + len;
    q = p;

    if (*q == '-') {
        q++;
    }

    /* the value is below 10^k */

    if (*q != '0') {
        for (k = 0; q < end && ngx_http_llm_fallback_json_digit(*q); q++) {
            k++;
        }

    } else {
        q++;
        k = 0;

        if (q < end && *q == '.') {
            q++;

            for (z = 1; q < end && *q == '0'; q++) {
                z++;
            }

            if (q == end || !ngx_http_llm_fallback_json_digit(*q)) {
                /* zero */
                return 0;
            }

            k = 1 - z;

        } else {
            return 0;
        }
    }

    while (q < end && *q != 'e' && *q != 'E') {
        q++;
    }

    e = 0;
    sat = 0;

    if (q < end) {
        q++;
        neg = (*q == '-');

        if (*q == '-' || *q == '+') {
            q++;
        }

        for ( /* void */ ; q < end; q++) {
            if (e >= 1000000000) {
                sat = 1;
                break;
            }

            e = e * 10 + (*q - '0');
        }

        if (neg) {
            e = -e;
        }
    }

    if (!sat || len < 100000000) {
        k += e;

        if (k <= 308) {
            return 0;
        }

        if (k >= 310) {
            return 1;
        }
    }

    /* close to DBL_MAX: ask strtod() as jansson does */

    if (len < sizeof(buf)) {
        s = buf;

    } else {
        s = json->alloc(json->data, len + 1);
        if (s == NULL) {
            return -1;
        }
    }

    memcpy(s, p, len);
    s[len] = '\0';

    errno = 0;
    v = strtod(s, NULL);

    return ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE);
}


static long
ngx_http_llm_fallback_json_hex4(const unsigned char *p,
    const unsigned char *end)
{
    long           v;
    unsigned int   i;
    unsigned char  c;

    if (end - p < 4) {
        return -1;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return v;
}


/*
 * the length of the UTF-8 sequence at p, 0 when invalid: overlong,
 * a surrogate, beyond U+10FFFF, cut (jansson's utf8_check_full())
 */

static size_t
ngx_http_llm_fallback_json_utf8(const unsigned char *p,
    const unsigned char *end)
{
    size_t    n, i;
    uint32_t  u, min;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        u = p[0] & 0x1f;
        min = 0x80;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        u = p[0] & 0x0f;
        min = 0x800;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        u = p[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }

        u = (u << 6) | (p[i] & 0x3f);
    }

    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
        return 0;
    }

    return n;
}


/*
 * The member "key" of the object at index obj: the last one, as in
 * jansson, where a duplicate key replaces the value.  NONE when obj is
 * not an object or has no such member.
 */

uint32_t
ngx_http_llm_fallback_json_get(ngx_http_llm_fallback_json_t *json,
    uint32_t obj, const char *key, size_t len)
{
    uint32_t                          found;
    ngx_http_llm_fallback_json_key_t  k;

    k.name = key;
    k.len = len;

    ngx_http_llm_fallback_json_lookup(json, obj, &k, 1, &found);

    return found;
}


/*
 * Several members of an object in one pass: found[i] is the value of the
 * last member named keys[i], or NONE.
 */

void
ngx_http_llm_fallback_json_lookup(ngx_http_llm_fallback_json_t *json,
    uint32_t obj, const ngx_http_llm_fallback_json_key_t *keys,
    uint32_t nkeys, uint32_t *found)
{
    uint32_t                           i, k, n;
    ngx_http_llm_fallback_json_tok_t  *toks;

    for (k = 0; k < nkeys; k++) {
        found[k] = NGX_HTTP_LLM_FALLBACK_JSON_NONE;
    }

    toks = json->toks;

    if (toks[obj].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT) {
        return;
    }

    i = obj + 1;

    for (n = toks[obj].size; n; n--) {

        for (k = 0; k < nkeys; k++) {
            if (ngx_http_llm_fallback_json_key(&toks[i], keys[k].name,
                                               keys[k].len))
            {
                found[k] = i + 1;
                break;
            }
        }

        i = toks[i + 1].next;
    }
}


static int
ngx_http_llm_fallback_json_key(ngx_http_llm_fallback_json_tok_t *t,
    const char *s, size_t len)
{
    if (!t->escaped) {
        return t->len == len
               && (len == 0
                   || (t->start[0] == (unsigned char) s[0]
                       && memcmp(t->start + 1, s + 1, len - 1) == 0));
    }

    return ngx_http_llm_fallback_json_streq(t, s, len);
}


/* a string token's value equals s */

int
ngx_http_llm_fallback_json_streq(ngx_http_llm_fallback_json_tok_t *tok,
    const char *s, size_t len)
{
    size_t                n;
    unsigned char         c[4];
    const unsigned char  *p, *end;

    if (!tok->escaped) {
        return tok->len == len && memcmp(tok->start, s, len) == 0;
    }

    /* an escape is longer than what it stands for */

    if (tok->len < len) {
        return 0;
    }

    p = tok->start;
    end = p + tok->len;

    while (p < end) {
        n = ngx_http_llm_fallback_json_decode(&p, c);

        if (n > len || memcmp(c, s, n) != 0) {
            return 0;
        }

        s += n;
        len -= n;
    }

    return len == 0;
}


/* a string token's value into dst, which has room for tok->len bytes */

size_t
ngx_http_llm_fallback_json_unescape(ngx_http_llm_fallback_json_tok_t *tok,
    unsigned char *dst)
{
    unsigned char        *d;
    const unsigned char  *p, *end;

    if (!tok->escaped) {
        memcpy(dst, tok->start, tok->len);
        return tok->len;
    }

    p = tok->start;
    end = p + tok->len;
    d = dst;

    while (p < end) {
        d += ngx_http_llm_fallback_json_decode(&p, d);
    }

    return d - dst;
}


/* one character of a valid string, at most 4 bytes, into out */

static size_t
ngx_http_llm_fallback_json_decode(const unsigned char **pp,
    unsigned char *out)
{
    long                  u, lo;
    const char           *e;
    const unsigned char  *p;

    p = *pp;

    if (*p != '\\') {
        *out = *p;
        *pp = p + 1;
        return 1;
    }

    p++;

    if (*p != 'u') {
        /* '"', '\\', '/' stand for themselves */
        e = memchr(ngx_http_llm_fallback_json_escaped, *p,
                   sizeof(ngx_http_llm_fallback_json_escaped) - 1);

        *out = e ? ngx_http_llm_fallback_json_escapes[
                                      e - ngx_http_llm_fallback_json_escaped]
                 : *p;
        *pp = p + 1;

        return 1;
    }

    u = ngx_http_llm_fallback_json_hex4(p + 1, p + 5);
    p += 5;

    if (u >= 0xd800 && u <= 0xdbff) {
        lo = ngx_http_llm_fallback_json_hex4(p + 2, p + 6);
        u = ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
        p += 6;
    }

    *pp = p;

    if (u < 0x80) {
        out[0] = (unsigned char) u;
        return 1;
    }

    if (u < 0x800) {
        out[0] = (unsigned char) (0xc0 | (u >> 6));
        out[1] = (unsigned char) (0x80 | (u & 0x3f));
        return 2;
    }

    if (u < 0x10000) {
        out[0] = (unsigned char) (0xe0 | (u >> 12));
        out[1] = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
        out[2] = (unsigned char) (0x80 | (u & 0x3f));
        return 3;
    }

    out[0] = (unsigned char) (0xf0 | (u >> 18));
    out[1] = (unsigned char) (0x80 | ((u >> 12) & 0x3f));
    out[2] = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
    out[3] = (unsigned char) (0x80 | (u & 0x3f));

    return 4;
}


/* an integer token's value: in range, the scanner checked */

int64_t
ngx_http_llm_fallback_json_integer(ngx_http_llm_fallback_json_tok_t *tok)
{
    uint64_t              v;
    const unsigned char  *p, *end;

    p = tok->start;
    end = p + tok->len;

    if (*p == '-') {
        p++;
    }

    for (v = 0; p < end; p++) {
        v = v * 10 + (*p - '0');
    }

    if (*tok->start == '-') {
        return (int64_t) (0 - v);
    }

    return (int64_t) v;
}


/*
 * The tree json_loadb() would build from the same bytes: the same
 * values, the same member order (a duplicate key replaces the value in
 * place, as jansson's parser does with the same call), without lexing
 * the bytes again.  Iterative; NULL on no memory.
 */

json_t *
ngx_http_llm_fallback_json_tree(ngx_http_llm_fallback_json_t *json)
{
    size_t                               n, klen;
    json_t                              *root, *v;
    uint32_t                             i, sp;
    const char                          *key;
    ngx_http_llm_fallback_json_tok_t    *t;
    ngx_http_llm_fallback_json_frame_t  *stack, *top;

    n = (json->depth + 1) * sizeof(ngx_http_llm_fallback_json_frame_t);

    stack = json->alloc(json->data, n);
    if (stack == NULL) {
        return NULL;
    }

    root = NULL;
    key = NULL;
    klen = 0;
    sp = 0;

    for (i = 0; i < json->ntoks; /* void */ ) {

        t = &json->toks[i];
        top = sp ? &stack[sp - 1] : NULL;

        if (top && top->key) {
            /* a member's key, kept until its value is built */

            key = ngx_http_llm_fallback_json_text(json, t, &klen);
            if (key == NULL) {
                goto failed;
            }

            top->key = 0;
            i++;
            continue;
        }

        switch (t->type) {

        case NGX_HTTP_LLM_FALLBACK_JSON_OBJECT:
            v = json_object();
            break;

        case NGX_HTTP_LLM_FALLBACK_JSON_ARRAY:
            v = json_array();
            break;

        default:
            v = ngx_http_llm_fallback_json_scalar(json, t);
            break;
        }

        if (v == NULL) {
            goto failed;
        }

        /* the *_new() calls release the value when they fail */

        if (top == NULL) {
            root = v;

        } else if (json_is_object(top->value)) {
            if (json_object_setn_new_nocheck(top->value, key, klen, v) != 0) {
                goto failed;
            }

            top->key = 1;

        } else if (json_array_append_new(top->value, v) != 0) {
            goto failed;
        }

        i++;

        if (t->type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT
            || t->type == NGX_HTTP_LLM_FALLBACK_JSON_ARRAY)
        {
            stack[sp].value = v;
            stack[sp].end = t->next;
            stack[sp].key = json_is_object(v);
            sp++;
        }

        /* the containers that end here */

        while (sp && stack[sp - 1].end == i) {
            sp--;
        }
    }

    return root;

failed:

    json_decref(root);

    return NULL;
}


static json_t *
ngx_http_llm_fallback_json_scalar(ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_tok_t *t)
{
    char        *s, buf[64];
    size_t       len;
    const char  *text;

    switch (t->type) {

    case NGX_HTTP_LLM_FALLBACK_JSON_STRING:
        text = ngx_http_llm_fallback_json_text(json, t, &len);
        return text ? json_stringn_nocheck(text, len) : NULL;

    case NGX_HTTP_LLM_FALLBACK_JSON_INTEGER:
        return json_integer(ngx_http_llm_fallback_json_integer(t));

    case NGX_HTTP_LLM_FALLBACK_JSON_REAL:

        /* strtod(), as jansson; the scanner checked that it is finite */

        if (t->len < sizeof(buf)) {
            s = buf;

        } else {
            s = json->alloc(json->data, t->len + 1);
            if (s == NULL) {
                return NULL;
            }
        }

        memcpy(s, t->start, t->len);
        s[t->len] = '\0';

        return json_real(strtod(s, NULL));

    case NGX_HTTP_LLM_FALLBACK_JSON_TRUE:
        return json_true();

    case NGX_HTTP_LLM_FALLBACK_JSON_FALSE:
        return json_false();

    default: /* NGX_HTTP_LLM_FALLBACK_JSON_NULL */
        return json_null();
    }
}


/* a string token's value: in place without escapes, else unescaped */

static const char *
ngx_http_llm_fallback_json_text(ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_tok_t *t, size_t *len)
{
    unsigned char  *d;

    if (!t->escaped) {
        *len = t->len;
        return (const char *) t->start;
    }

    d = json->alloc(json->data, t->len);
    if (d == NULL) {
        return NULL;
    }

    *len = ngx_http_llm_fallback_json_unescape(t, d);

    return (const char *) d;
}


/*
 * json_dumpb(json, buf, size, flags): the same bytes and result (the
 * length of the whole serialisation, only what fits is written; 0 on
 * errors).  Done here for JSON_COMPACT with JSON_SORT_KEYS and
 * JSON_REAL_PRECISION(n); other flags, nesting deeper than
 * NGX_HTTP_LLM_FALLBACK_JSON_DUMP_DEPTH, objects to sort with more than
 * NGX_HTTP_LLM_FALLBACK_JSON_SORT_MAX members and errors are left to
 * json_dumpb().  No loop check: the trees are built here, not cyclic.
 */

size_t
ngx_http_llm_fallback_json_dumpb(const json_t *json, unsigned char *buf,
    size_t size, size_t flags)
{
    ngx_http_llm_fallback_json_out_t  out;

    if (!(flags & JSON_COMPACT)
        || (flags & ~(size_t) (JSON_COMPACT|JSON_SORT_KEYS
                               |JSON_REAL_PRECISION(0x1f)))
        || (!json_is_object(json) && !json_is_array(json)))
    {
        return json_dumpb(json, (char *) buf, size, flags);
    }

    out.pos = buf;
    out.left = size;
    out.len = 0;
    out.sort = (flags & JSON_SORT_KEYS) ? 1 : 0;

    /* jansson: 0 is 17 digits */
    out.precision = (int) ((flags >> 11) & 0x1f);

    if (out.precision == 0) {
        out.precision = 17;
    }

    if (ngx_http_llm_fallback_json_dump(&out, json, 0) != 0) {
        return json_dumpb(json, (char *) buf, size, flags);
    }

    return out.len;
}


static int
ngx_http_llm_fallback_json_dump(ngx_http_llm_fallback_json_out_t *out,
    const json_t *json, unsigned depth)
{
    size_t  i, n;

    if (depth > NGX_HTTP_LLM_FALLBACK_JSON_DUMP_DEPTH) {
        return -1;
    }

    switch (json_typeof(json)) {

    case JSON_OBJECT:
        /* jansson's iterators take a json_t * without const */
        return ngx_http_llm_fallback_json_dump_object(out, (json_t *) json,
                                                      depth);

    case JSON_ARRAY:
        ngx_http_llm_fallback_json_put(out, "[", 1);

        n = json_array_size(json);

        for (i = 0; i < n; i++) {
            if (i) {
                ngx_http_llm_fallback_json_put(out, ",", 1);
            }

            if (ngx_http_llm_fallback_json_dump(out, json_array_get(json, i),
                                                depth + 1)
                != 0)
            {
                return -1;
            }
        }

        ngx_http_llm_fallback_json_put(out, "]", 1);
        return 0;

    case JSON_STRING:
        return ngx_http_llm_fallback_json_dump_string(out,
                                                      json_string_value(json),
                                                      json_string_length(json));

    case JSON_INTEGER:
        ngx_http_llm_fallback_json_dump_integer(out, json_integer_value(json));
        return 0;

    case JSON_REAL:
        return ngx_http_llm_fallback_json_dump_real(out,
                                                    json_real_value(json));

    case JSON_TRUE:
        ngx_http_llm_fallback_json_put(out, "true", 4);
        return 0;

    case JSON_FALSE:
        ngx_http_llm_fallback_json_put(out, "false", 5);
        return 0;

    case JSON_NULL:
        ngx_http_llm_fallback_json_put(out, "null", 4);
        return 0;

    default:
        return -1;
    }
}


/* members in insertion order, or sorted as jansson's compare_keys() */

static int
ngx_http_llm_fallback_json_dump_object(ngx_http_llm_fallback_json_out_t *out,
    json_t *json, unsigned depth)
{
    void    *iter, *m[NGX_HTTP_LLM_FALLBACK_JSON_SORT_MAX];
    size_t   i, n;

    ngx_http_llm_fallback_json_put(out, "{", 1);

    if (!out->sort) {
        i = 0;

        for (iter = json_object_iter(json); iter;
             iter = json_object_iter_next(json, iter))
        {
            if (i++) {
                ngx_http_llm_fallback_json_put(out, ",", 1);
            }

            if (ngx_http_llm_fallback_json_dump_member(out,
                                            json_object_iter_key(iter),
                                            json_object_iter_key_len(iter),
                                            json_object_iter_value(iter),
                                            depth)
                != 0)
            {
                return -1;
            }
        }

        ngx_http_llm_fallback_json_put(out, "}", 1);
        return 0;
    }

    if (json_object_size(json) > NGX_HTTP_LLM_FALLBACK_JSON_SORT_MAX) {
        return -1;
    }

    n = 0;

    for (iter = json_object_iter(json);
         iter && n < NGX_HTTP_LLM_FALLBACK_JSON_SORT_MAX;
         iter = json_object_iter_next(json, iter))
    {
        m[n++] = iter;
    }

    qsort(m, n, sizeof(void *), ngx_http_llm_fallback_json_compare);

    for (i = 0; i < n; i++) {
        if (i) {
            ngx_http_llm_fallback_json_put(out, ",", 1);
        }

        if (ngx_http_llm_fallback_json_dump_member(out,
                                            json_object_iter_key(m[i]),
                                            json_object_iter_key_len(m[i]),
                                            json_object_iter_value(m[i]),
                                            depth)
            != 0)
        {
            return -1;
        }
    }

    ngx_http_llm_fallback_json_put(out, "}", 1);

    return 0;
}


static int
ngx_http_llm_fallback_json_dump_member(ngx_http_llm_fallback_json_out_t *out,
    const char *key, size_t len, json_t *value, unsigned depth)
{
    if (ngx_http_llm_fallback_json_dump_string(out, key, len) != 0) {
        return -1;
    }

    ngx_http_llm_fallback_json_put(out, ":", 1);

    return ngx_http_llm_fallback_json_dump(out, value, depth + 1);
}


/* two object iterators, by key: jansson's compare_keys() */

static int
ngx_http_llm_fallback_json_compare(const void *one, const void *two)
{
    int     rc;
    void   *a, *b;
    size_t  alen, blen;

    memcpy(&a, one, sizeof(void *));
    memcpy(&b, two, sizeof(void *));

    alen = json_object_iter_key_len(a);
    blen = json_object_iter_key_len(b);

    rc = memcmp(json_object_iter_key(a), json_object_iter_key(b),
                (alen < blen) ? alen : blen);

    if (rc) {
        return rc;
    }

    return (alen > blen) - (alen < blen);
}


/* jansson's dump_string() without JSON_ENSURE_ASCII, JSON_ESCAPE_SLASH */

static int
ngx_http_llm_fallback_json_dump_string(ngx_http_llm_fallback_json_out_t *out,
    const char *s, size_t len)
{
    char                  esc[6];
    size_t                n;
    const char           *e;
    unsigned char         c;
    const unsigned char  *p, *q, *end;

    static const char     hex[] = "0123456789ABCDEF";

    ngx_http_llm_fallback_json_put(out, "\"", 1);

    p = (const unsigned char *) s;
    end = p + len;

    for ( ;; ) {
        q = ngx_http_llm_fallback_json_plain(p, end);

        while (q < end && ngx_http_llm_fallback_json_class[*q] == 0) {
            q++;
        }

        ngx_http_llm_fallback_json_put(out, p, q - p);

        if (q == end) {
            break;
        }

        c = *q;

        if (ngx_http_llm_fallback_json_class[c]
            == NGX_HTTP_LLM_FALLBACK_JSON_C_UTF8)
        {
            n = ngx_http_llm_fallback_json_utf8(q, end);
            if (n == 0) {
                return -1;
            }

            ngx_http_llm_fallback_json_put(out, q, n);
            p = q + n;
            continue;
        }

        esc[0] = '\\';

        e = memchr(ngx_http_llm_fallback_json_escapes, c,
                   sizeof(ngx_http_llm_fallback_json_escapes) - 1);

        if (e) {
            esc[1] = ngx_http_llm_fallback_json_escaped[
                                      e - ngx_http_llm_fallback_json_escapes];
            n = 2;

        } else {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0f];
            n = 6;
        }

        ngx_http_llm_fallback_json_put(out, esc, n);
        p = q + 1;
    }

    ngx_http_llm_fallback_json_put(out, "\"", 1);

    return 0;
}


/* jansson's jsonp_dtostr() */

static int
ngx_http_llm_fallback_json_dump_real(ngx_http_llm_fallback_json_out_t *out,
    double v)
{
    int    n;
    char  *start, *end, buf[24];

    n = snprintf(buf, sizeof(buf), "%.*g", out->precision, v);

    if (n < 0 || (size_t) n >= sizeof(buf)) {
        return -1;
    }

    /* a dot or an 'e', or it would be read back as an integer */

    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        if ((size_t) n + 3 >= sizeof(buf)) {
            return -1;
        }

        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }

    /* no '+' and no leading zeros in the exponent */

    start = strchr(buf, 'e');

    if (start) {
        start++;
        end = start + 1;

        if (*start == '-') {
            start++;
        }

        while (*end == '0') {
            end++;
        }

        if (end != start) {
            memmove(start, end, n - (end - buf));
            n -= end - start;
        }
    }

    ngx_http_llm_fallback_json_put(out, buf, n);

    return 0;
}


static void
ngx_http_llm_fallback_json_dump_integer(ngx_http_llm_fallback_json_out_t *out,
    json_int_t v)
{
    char      buf[24], *p;
    uint64_t  u;

    u = (v < 0) ? 0 - (uint64_t) v : (uint64_t) v;

    p = buf + sizeof(buf);

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    ngx_http_llm_fallback_json_put(out, p, buf + sizeof(buf) - p);
}


static void
ngx_http_llm_fallback_json_put(ngx_http_llm_fallback_json_out_t *out,
    const void *data, size_t len)
{
    if (len == 0) {
        return;
    }

    if (out->left >= len) {
        memcpy(out->pos, data, len);
        out->pos += len;
        out->left -= len;

    } else {
        /* nothing more is written once something did not fit */
        out->left = 0;
    }

    out->len += len;
}


/*
 * The checks of a chat completions request, in the order of their
 * errors; the request must have parsed.
 */

void
ngx_http_llm_fallback_json_request(ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_request_t *req)
{
    uint32_t                           i, v,
                                       f[NGX_HTTP_LLM_FALLBACK_JSON_R_NKEYS];
    ngx_http_llm_fallback_json_tok_t  *toks;

    memset(req, 0, sizeof(ngx_http_llm_fallback_json_request_t));
    req->index = -1;

    toks = json->toks;

    if (toks[0].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT) {
        ngx_http_llm_fallback_json_invalid(req,
            "The request body must be a JSON object.", NULL, -1, NULL, NULL);
        return;
    }

    ngx_http_llm_fallback_json_lookup(json, 0,
                                      ngx_http_llm_fallback_json_request_keys,
                                      NGX_HTTP_LLM_FALLBACK_JSON_R_NKEYS, f);

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_JSON_R_NFIELDS; i++) {
        if (f[i]
            && !ngx_http_llm_fallback_json_types(&toks[f[i]],
                                   ngx_http_llm_fallback_json_fields[i].types))
        {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid type for '%s': expected %s.",
                ngx_http_llm_fallback_json_request_keys[i].name, -1, NULL,
                ngx_http_llm_fallback_json_fields[i].expected);
            return;
        }
    }

    /* max_tokens, max_completion_tokens */

    for (i = NGX_HTTP_LLM_FALLBACK_JSON_R_MAX_TOKENS;
         i <= NGX_HTTP_LLM_FALLBACK_JSON_R_MAX_COMPLETION;
         i++)
    {
        v = f[i];

        if (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER
            && ngx_http_llm_fallback_json_integer(&toks[v]) < 1)
        {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid '%s': integer below minimum value, expected a "
                "value >= 1.", ngx_http_llm_fallback_json_request_keys[i].name,
                -1, NULL, NULL);
            return;
        }
    }

    /* checked: a string if present */
    req->model = f[NGX_HTTP_LLM_FALLBACK_JSON_R_MODEL];

    v = f[NGX_HTTP_LLM_FALLBACK_JSON_R_STREAM];
    req->stream = (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_TRUE);

    v = f[NGX_HTTP_LLM_FALLBACK_JSON_R_STREAM_OPTIONS];

    if (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_OBJECT) {
        v = ngx_http_llm_fallback_json_get(json, v, "include_usage", 13);

        if (v && toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_TRUE
            && toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_FALSE)
        {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid type for '%s': expected %s.",
                "stream_options.include_usage", -1, NULL, "a boolean");
            return;
        }

        req->include_usage = (v
                              && toks[v].type
                                 == NGX_HTTP_LLM_FALLBACK_JSON_TRUE);
    }

    v = f[NGX_HTTP_LLM_FALLBACK_JSON_R_MESSAGES];

    if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
        ngx_http_llm_fallback_json_invalid(req,
            "Missing required parameter: '%s'.", "messages", -1, NULL, NULL);
        return;
    }

    ngx_http_llm_fallback_json_messages(json, v, req);
}


static void
ngx_http_llm_fallback_json_messages(ngx_http_llm_fallback_json_t *json,
    uint32_t messages, ngx_http_llm_fallback_json_request_t *req)
{
    long                               i;
    uint32_t                           m, v, part, n, f[2];
    ngx_http_llm_fallback_json_tok_t  *toks;

    toks = json->toks;

    if (toks[messages].type != NGX_HTTP_LLM_FALLBACK_JSON_ARRAY) {
        ngx_http_llm_fallback_json_invalid(req,
            "Invalid type for '%s': expected an array.", "messages", -1,
            NULL, NULL);
        return;
    }

    if (toks[messages].size == 0) {
        ngx_http_llm_fallback_json_invalid(req,
            "Invalid '%s': empty array. Expected an array with minimum "
            "length 1.", "messages", -1, NULL, NULL);
        return;
    }

    m = messages + 1;

    for (i = 0; i < (long) toks[messages].size; i++, m = toks[m].next) {

        if (toks[m].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT) {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid type for '%s': expected an object.", "messages", i,
                NULL, NULL);
            return;
        }

        ngx_http_llm_fallback_json_lookup(json, m,
                                      ngx_http_llm_fallback_json_message_keys,
                                      2, f);
        v = f[0];

        if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
            ngx_http_llm_fallback_json_invalid(req,
                "Missing required parameter: '%s'.", "messages", i, "role",
                NULL);
            return;
        }

        if (toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_STRING) {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid type for '%s': expected a string.", "messages", i,
                "role", NULL);
            return;
        }

        v = f[1];

        if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE
            || toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
            || toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_NULL)
        {
            continue;
        }

        if (toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_ARRAY) {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid type for '%s': expected a string, an array of "
                "content parts or null.", "messages", i, "content", NULL);
            return;
        }

        part = v + 1;

        for (n = toks[v].size; n; n--, part = toks[part].next) {
            if (toks[part].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT) {
                break;
            }

            v = ngx_http_llm_fallback_json_get(json, part, "type", 4);

            if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE
                || toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_STRING)
            {
                break;
            }
        }

        if (n) {
            ngx_http_llm_fallback_json_invalid(req,
                "Invalid content part in '%s': expected an object with a "
                "string 'type'.", "messages", i, "content", NULL);
            return;
        }
    }
}


static int
ngx_http_llm_fallback_json_types(ngx_http_llm_fallback_json_tok_t *t,
    unsigned types)
{
    switch (t->type) {

    case NGX_HTTP_LLM_FALLBACK_JSON_STRING:
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_STRING) != 0;

    case NGX_HTTP_LLM_FALLBACK_JSON_ARRAY:
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_ARRAY) != 0;

    case NGX_HTTP_LLM_FALLBACK_JSON_OBJECT:
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_OBJECT) != 0;

    case NGX_HTTP_LLM_FALLBACK_JSON_NULL:
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_NULL) != 0;

    case NGX_HTTP_LLM_FALLBACK_JSON_TRUE:
    case NGX_HTTP_LLM_FALLBACK_JSON_FALSE:
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_BOOL) != 0;

    case NGX_HTTP_LLM_FALLBACK_JSON_INTEGER:
        return (types & (NGX_HTTP_LLM_FALLBACK_JSON_T_INTEGER
                         |NGX_HTTP_LLM_FALLBACK_JSON_T_NUMBER))
               != 0;

    default: /* NGX_HTTP_LLM_FALLBACK_JSON_REAL */
        return (types & NGX_HTTP_LLM_FALLBACK_JSON_T_NUMBER) != 0;
    }
}


static void
ngx_http_llm_fallback_json_invalid(ngx_http_llm_fallback_json_request_t *req,
    const char *fmt, const char *param, long index, const char *field,
    const char *expected)
{
    req->fmt = fmt;
    req->param = param;
    req->index = index;
    req->field = field;
    req->expected = expected;
}


/* what parse_response of the openai format needs; the answer parsed */

void
ngx_http_llm_fallback_json_completion(ngx_http_llm_fallback_json_t *json,
    ngx_http_llm_fallback_json_completion_t *c)
{
    uint32_t                           v, f[6], m[3], u[2];
    ngx_http_llm_fallback_json_tok_t  *toks;

    memset(c, 0, sizeof(ngx_http_llm_fallback_json_completion_t));
    c->prompt_tokens = -1;
    c->completion_tokens = -1;

    toks = json->toks;

    /* choices, model, id, object, created, usage */

    ngx_http_llm_fallback_json_lookup(json, 0,
                                      ngx_http_llm_fallback_json_answer_keys,
                                      6, f);
    v = f[0];

    if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE
        || toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_ARRAY
        || toks[v].size == 0)
    {
        return;
    }

    /* choices[0].message: content, tool_calls, refusal */

    v = ngx_http_llm_fallback_json_get(json, v + 1, "message", 7);

    if (v == NGX_HTTP_LLM_FALLBACK_JSON_NONE
        || toks[v].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT)
    {
        return;
    }

    ngx_http_llm_fallback_json_lookup(json, v,
                                      ngx_http_llm_fallback_json_reply_keys,
                                      3, m);

    c->usable = (m[0] && toks[m[0]].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING)
                || (m[1]
                    && toks[m[1]].type == NGX_HTTP_LLM_FALLBACK_JSON_ARRAY
                    && toks[m[1]].size > 0)
                || (m[2]
                    && toks[m[2]].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING);

    if (!c->usable) {
        return;
    }

    c->shaped = ngx_http_llm_fallback_json_shaped(json, f[0]);

    /* an escape never stands for nothing: raw length 0 is an empty value */

    v = f[1];

    if (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
        && toks[v].len > 0)
    {
        c->model = v;
    }

    v = f[2];
    c->has_id = (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING);

    v = f[3];
    c->has_object = (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
                     && ngx_http_llm_fallback_json_streq(&toks[v],
                            "chat.completion", 15));

    v = f[4];
    c->has_created = (v && toks[v].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER);

    /* usage: prompt_tokens, completion_tokens; NONE is the root's index */

    if (f[5] == NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
        return;
    }

    ngx_http_llm_fallback_json_lookup(json, f[5],
                                      ngx_http_llm_fallback_json_usage_keys,
                                      2, u);

    if (u[0] && toks[u[0]].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER) {
        c->prompt_tokens = ngx_http_llm_fallback_json_integer(&toks[u[0]]);
    }

    if (u[1] && toks[u[1]].type == NGX_HTTP_LLM_FALLBACK_JSON_INTEGER) {
        c->completion_tokens = ngx_http_llm_fallback_json_integer(&toks[u[1]]);
    }
}


/*
 * every element of the array CHOICES is an object with "logprobs" and a
 * "message" object with "refusal" (of any value)
 */

static int
ngx_http_llm_fallback_json_shaped(ngx_http_llm_fallback_json_t *json,
    uint32_t choices)
{
    uint32_t                           n, e, f[2];
    ngx_http_llm_fallback_json_tok_t  *toks;

    toks = json->toks;

    for (n = toks[choices].size, e = choices + 1; n; n--, e = toks[e].next) {

        /* a choice that is not an object has no members: it fails */

        ngx_http_llm_fallback_json_lookup(json, e,
                                       ngx_http_llm_fallback_json_choice_keys,
                                       2, f);

        if (f[0] == NGX_HTTP_LLM_FALLBACK_JSON_NONE
            || f[1] == NGX_HTTP_LLM_FALLBACK_JSON_NONE
            || toks[f[1]].type != NGX_HTTP_LLM_FALLBACK_JSON_OBJECT
            || ngx_http_llm_fallback_json_get(json, f[1], "refusal", 7)
               == NGX_HTTP_LLM_FALLBACK_JSON_NONE)
        {
            return 0;
        }
    }

    return 1;
}
