
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * The hot path's JSON scanner against jansson, on any bytes:
 *
 *   - it accepts exactly what json_loadb(data, size, 0) accepts;
 *   - its tokens describe the same value (a jansson tree built from them,
 *     strings unescaped by the scanner, is json_equal() to jansson's);
 *   - ngx_http_llm_fallback_json_tree() builds jansson's tree: the same
 *     serialisation, member order included;
 *   - ngx_http_llm_fallback_json_dumpb() serialises it as json_dumpb()
 *     does with the module's flags and the cache key's, in buffers of
 *     every size;
 *   - the request validation on it gives the same verdict (message,
 *     param, index, field) and the same model, stream and include_usage
 *     as the jansson validation it replaced, kept here as the reference;
 *   - the check of an OpenAI answer on it agrees with the jansson one.
 *
 * Everything the scanner allocates is freed after each input, so that
 * LeakSanitizer sees the harness's own leaks only.
 */


#include "ngx_http_llm_fallback_fuzz.h"
#include "ngx_http_llm_fallback_json.h"


#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_STRING    0x01
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_ARRAY     0x02
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL      0x04
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_OBJECT    0x08
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_BOOL      0x10
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_NUMBER    0x20
#define NGX_HTTP_LLM_FALLBACK_FUZZ_T_INTEGER   0x40


typedef struct ngx_http_llm_fallback_fuzz_block_s
    ngx_http_llm_fallback_fuzz_block_t;

struct ngx_http_llm_fallback_fuzz_block_s {
    ngx_http_llm_fallback_fuzz_block_t  *next;
    /* max_align_t: what the scanner gets is aligned as malloc's */
    long double                          data[1];
};


typedef struct {
    const char                          *name;
    unsigned                             types;
    const char                          *expected;
} ngx_http_llm_fallback_fuzz_field_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void *ngx_http_llm_fallback_fuzz_alloc(void *data, size_t size);
static void ngx_http_llm_fallback_fuzz_free(
    ngx_http_llm_fallback_fuzz_block_t **blocks);
static json_t *ngx_http_llm_fallback_fuzz_tree(
    ngx_http_llm_fallback_json_t *json, uint32_t i);
static json_t *ngx_http_llm_fallback_fuzz_string(
    ngx_http_llm_fallback_json_tok_t *t);
static void ngx_http_llm_fallback_fuzz_request(
    ngx_http_llm_fallback_json_t *json, json_t *root);
static void ngx_http_llm_fallback_fuzz_reference(json_t *root,
    ngx_http_llm_fallback_json_request_t *req);
static int ngx_http_llm_fallback_fuzz_messages(json_t *messages,
    ngx_http_llm_fallback_json_request_t *req);
static int ngx_http_llm_fallback_fuzz_type(json_t *v, unsigned types);
static int ngx_http_llm_fallback_fuzz_invalid(
    ngx_http_llm_fallback_json_request_t *req, const char *fmt,
    const char *param, long index, const char *field, const char *expected);
static void ngx_http_llm_fallback_fuzz_message(
    ngx_http_llm_fallback_json_request_t *req, char *buf, size_t size);
static void ngx_http_llm_fallback_fuzz_same_tree(json_t *a, json_t *b);
static void ngx_http_llm_fallback_fuzz_dump_as_jansson(json_t *json,
    size_t size, size_t flags);
static void ngx_http_llm_fallback_fuzz_answer(
    ngx_http_llm_fallback_json_t *json, json_t *root);


static const ngx_http_llm_fallback_fuzz_field_t
    ngx_http_llm_fallback_fuzz_fields[] =
{
    { "model", NGX_HTTP_LLM_FALLBACK_FUZZ_T_STRING, "a string" },
    { "stream", NGX_HTTP_LLM_FALLBACK_FUZZ_T_BOOL
                |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL, "a boolean" },
    { "temperature", NGX_HTTP_LLM_FALLBACK_FUZZ_T_NUMBER
                     |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL, "a number" },
    { "top_p", NGX_HTTP_LLM_FALLBACK_FUZZ_T_NUMBER
               |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL, "a number" },
    { "max_tokens", NGX_HTTP_LLM_FALLBACK_FUZZ_T_INTEGER
                    |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL, "an integer" },
    { "max_completion_tokens", NGX_HTTP_LLM_FALLBACK_FUZZ_T_INTEGER
                               |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL,
      "an integer" },
    { "tools", NGX_HTTP_LLM_FALLBACK_FUZZ_T_ARRAY, "an array" },
    { "stream_options", NGX_HTTP_LLM_FALLBACK_FUZZ_T_OBJECT
                        |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL, "an object" },
    { "stop", NGX_HTTP_LLM_FALLBACK_FUZZ_T_STRING
              |NGX_HTTP_LLM_FALLBACK_FUZZ_T_ARRAY
              |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL,
      "a string, an array of strings or null" },
    { NULL, 0, NULL }
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                  rc;
    json_t                              *root, *tree;
    json_error_t                         err;
    ngx_http_llm_fallback_json_t         json;
    ngx_http_llm_fallback_fuzz_block_t  *blocks;

    blocks = NULL;

    rc = ngx_http_llm_fallback_json_parse(&json, data, size,
                                          ngx_http_llm_fallback_fuzz_alloc,
                                          &blocks);

    root = json_loadb((const char *) data, size, 0, &err);

    if (root == NULL) {
        if (rc == NGX_HTTP_LLM_FALLBACK_JSON_OK) {
            fprintf(stderr, "jansson refused: %s (line %d, column %d)\n",
                    err.text, err.line, err.column);
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            rc == NGX_HTTP_LLM_FALLBACK_JSON_INVALID);

        ngx_http_llm_fallback_fuzz_free(&blocks);
        return 0;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(rc == NGX_HTTP_LLM_FALLBACK_JSON_OK);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json.ntoks > 0
                                      && json.toks[0].next == json.ntoks);

    tree = ngx_http_llm_fallback_fuzz_tree(&json, 0);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(tree != NULL);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_equal(tree, root));
    json_decref(tree);

    tree = ngx_http_llm_fallback_json_tree(&json);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(tree != NULL);
    ngx_http_llm_fallback_fuzz_same_tree(tree, root);
    json_decref(tree);

    ngx_http_llm_fallback_fuzz_dump_as_jansson(root, size,
                                         JSON_COMPACT|JSON_REAL_PRECISION(15));
    ngx_http_llm_fallback_fuzz_dump_as_jansson(root, size,
                                         JSON_COMPACT|JSON_SORT_KEYS);

    ngx_http_llm_fallback_fuzz_request(&json, root);
    ngx_http_llm_fallback_fuzz_answer(&json, root);

    json_decref(root);
    ngx_http_llm_fallback_fuzz_free(&blocks);

    return 0;
}


static void *
ngx_http_llm_fallback_fuzz_alloc(void *data, size_t size)
{
    ngx_http_llm_fallback_fuzz_block_t  **blocks = data;
    ngx_http_llm_fallback_fuzz_block_t   *b;

    b = malloc(offsetof(ngx_http_llm_fallback_fuzz_block_t, data) + size);
    if (b == NULL) {
        return NULL;
    }

    b->next = *blocks;
    *blocks = b;

    return b->data;
}


static void
ngx_http_llm_fallback_fuzz_free(ngx_http_llm_fallback_fuzz_block_t **blocks)
{
    ngx_http_llm_fallback_fuzz_block_t  *b, *next;

    for (b = *blocks; b; b = next) {
        next = b->next;
        free(b);
    }

    *blocks = NULL;
}


/* the value of token i as a jansson tree; checks the token links too */

static json_t *
ngx_http_llm_fallback_fuzz_tree(ngx_http_llm_fallback_json_t *json,
    uint32_t i)
{
    char                              *s;
    json_t                            *v, *key, *member;
    uint32_t                           n, j;
    ngx_http_llm_fallback_json_tok_t  *t;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(i < json->ntoks);

    t = &json->toks[i];

    switch (t->type) {

    case NGX_HTTP_LLM_FALLBACK_JSON_OBJECT:
        v = json_object();
        j = i + 1;

        for (n = t->size; n; n--) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json->toks[j].type == NGX_HTTP_LLM_FALLBACK_JSON_STRING
                && json->toks[j].next == j + 1);

            key = ngx_http_llm_fallback_fuzz_string(&json->toks[j]);
            member = ngx_http_llm_fallback_fuzz_tree(json, j + 1);

            /* a duplicate replaces the value, as in jansson */
            json_object_setn_new(v, json_string_value(key),
                                 json_string_length(key), member);

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                ngx_http_llm_fallback_json_get(json, i,
                                               json_string_value(key),
                                               json_string_length(key))
                != NGX_HTTP_LLM_FALLBACK_JSON_NONE);

            json_decref(key);
            j = json->toks[j + 1].next;
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(j == t->next);
        return v;

    case NGX_HTTP_LLM_FALLBACK_JSON_ARRAY:
        v = json_array();
        j = i + 1;

        for (n = t->size; n; n--) {
            json_array_append_new(v, ngx_http_llm_fallback_fuzz_tree(json, j));
            j = json->toks[j].next;
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(j == t->next);
        return v;

    case NGX_HTTP_LLM_FALLBACK_JSON_STRING:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(t->next == i + 1);
        return ngx_http_llm_fallback_fuzz_string(t);

    case NGX_HTTP_LLM_FALLBACK_JSON_INTEGER:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(t->next == i + 1);
        return json_integer(ngx_http_llm_fallback_json_integer(t));

    case NGX_HTTP_LLM_FALLBACK_JSON_REAL:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(t->next == i + 1);

        s = strndup((const char *) t->start, t->len);
        v = json_real(strtod(s, NULL));
        free(s);
        return v;

    case NGX_HTTP_LLM_FALLBACK_JSON_TRUE:
        return json_true();

    case NGX_HTTP_LLM_FALLBACK_JSON_FALSE:
        return json_false();

    case NGX_HTTP_LLM_FALLBACK_JSON_NULL:
        return json_null();

    default:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(0);
        return NULL;
    }
}


static json_t *
ngx_http_llm_fallback_fuzz_string(ngx_http_llm_fallback_json_tok_t *t)
{
    json_t         *v;
    size_t          n;
    unsigned char  *s;

    s = malloc(t->len + 1);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s != NULL);

    n = ngx_http_llm_fallback_json_unescape(t, s);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(n <= t->len);

    /* what the scanner accepted is valid UTF-8 without NUL */
    v = json_stringn((const char *) s, n);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(v != NULL);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(memchr(s, '\0', n) == NULL);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_json_streq(t, (const char *) s, n));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        n == 0 || !ngx_http_llm_fallback_json_streq(t, (const char *) s,
                                                    n - 1));

    free(s);

    return v;
}


static void
ngx_http_llm_fallback_fuzz_request(ngx_http_llm_fallback_json_t *json,
    json_t *root)
{
    char                                   a[512], b[512];
    json_t                                *model;
    ngx_http_llm_fallback_json_tok_t      *t;
    ngx_http_llm_fallback_json_request_t   req, ref;

    ngx_http_llm_fallback_json_request(json, &req);
    ngx_http_llm_fallback_fuzz_reference(root, &ref);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT((req.fmt == NULL) == (ref.fmt == NULL));

    if (req.fmt) {
        ngx_http_llm_fallback_fuzz_message(&req, a, sizeof(a));
        ngx_http_llm_fallback_fuzz_message(&ref, b, sizeof(b));

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(a, b) == 0);
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(req.stream == ref.stream);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(req.include_usage == ref.include_usage);

    model = json_object_get(root, "model");

    if (req.model == NGX_HTTP_LLM_FALLBACK_JSON_NONE) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(model == NULL);
        return;
    }

    t = &json->toks[req.model];

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(model)
        && ngx_http_llm_fallback_json_streq(t, json_string_value(model),
                                            json_string_length(model)));
}


/* the jansson validation the scanner replaced */

static void
ngx_http_llm_fallback_fuzz_reference(json_t *root,
    ngx_http_llm_fallback_json_request_t *req)
{
    json_t                                    *v;
    const ngx_http_llm_fallback_fuzz_field_t  *f;

    memset(req, 0, sizeof(ngx_http_llm_fallback_json_request_t));
    req->index = -1;

    if (!json_is_object(root)) {
        (void) ngx_http_llm_fallback_fuzz_invalid(req,
                   "The request body must be a JSON object.",
                   NULL, -1, NULL, NULL);
        return;
    }

    for (f = ngx_http_llm_fallback_fuzz_fields; f->name; f++) {
        v = json_object_get(root, f->name);

        if (v != NULL && !ngx_http_llm_fallback_fuzz_type(v, f->types)) {
            (void) ngx_http_llm_fallback_fuzz_invalid(req,
                       "Invalid type for '%s': expected %s.",
                       f->name, -1, NULL, f->expected);
            return;
        }
    }

    v = json_object_get(root, "max_tokens");
    if (json_is_integer(v) && json_integer_value(v) < 1) {
        (void) ngx_http_llm_fallback_fuzz_invalid(req,
                   "Invalid 'max_tokens': integer below minimum value, "
                   "expected a value >= 1.", "max_tokens", -1, NULL, NULL);
        return;
    }

    v = json_object_get(root, "max_completion_tokens");
    if (json_is_integer(v) && json_integer_value(v) < 1) {
        (void) ngx_http_llm_fallback_fuzz_invalid(req,
                   "Invalid 'max_completion_tokens': integer below minimum "
                   "value, expected a value >= 1.", "max_completion_tokens",
                   -1, NULL, NULL);
        return;
    }

    req->stream = json_is_true(json_object_get(root, "stream"));

    v = json_object_get(root, "stream_options");
    if (json_is_object(v)) {
        v = json_object_get(v, "include_usage");

        if (v != NULL && !json_is_boolean(v)) {
            (void) ngx_http_llm_fallback_fuzz_invalid(req,
                       "Invalid type for '%s': expected %s.",
                       "stream_options.include_usage", -1, NULL,
                       "a boolean");
            return;
        }

        req->include_usage = json_is_true(v);
    }

    v = json_object_get(root, "messages");

    if (v == NULL) {
        (void) ngx_http_llm_fallback_fuzz_invalid(req,
                   "Missing required parameter: '%s'.",
                   "messages", -1, NULL, NULL);
        return;
    }

    (void) ngx_http_llm_fallback_fuzz_messages(v, req);
}


static int
ngx_http_llm_fallback_fuzz_messages(json_t *messages,
    ngx_http_llm_fallback_json_request_t *req)
{
    size_t   i, j;
    json_t  *m, *v, *part;

    if (!json_is_array(messages)) {
        return ngx_http_llm_fallback_fuzz_invalid(req,
                   "Invalid type for '%s': expected an array.",
                   "messages", -1, NULL, NULL);
    }

    if (json_array_size(messages) == 0) {
        return ngx_http_llm_fallback_fuzz_invalid(req,
                   "Invalid '%s': empty array. Expected an array with "
                   "minimum length 1.", "messages", -1, NULL, NULL);
    }

    json_array_foreach(messages, i, m) {

        if (!json_is_object(m)) {
            return ngx_http_llm_fallback_fuzz_invalid(req,
                       "Invalid type for '%s': expected an object.",
                       "messages", i, NULL, NULL);
        }

        v = json_object_get(m, "role");

        if (v == NULL) {
            return ngx_http_llm_fallback_fuzz_invalid(req,
                       "Missing required parameter: '%s'.",
                       "messages", i, "role", NULL);
        }

        if (!json_is_string(v)) {
            return ngx_http_llm_fallback_fuzz_invalid(req,
                       "Invalid type for '%s': expected a string.",
                       "messages", i, "role", NULL);
        }

        v = json_object_get(m, "content");

        if (v == NULL || json_is_string(v) || json_is_null(v)) {
            continue;
        }

        if (!json_is_array(v)) {
            return ngx_http_llm_fallback_fuzz_invalid(req,
                       "Invalid type for '%s': expected a string, an array "
                       "of content parts or null.",
                       "messages", i, "content", NULL);
        }

        json_array_foreach(v, j, part) {
            if (!json_is_object(part)
                || !json_is_string(json_object_get(part, "type")))
            {
                return ngx_http_llm_fallback_fuzz_invalid(req,
                           "Invalid content part in '%s': expected an "
                           "object with a string 'type'.",
                           "messages", i, "content", NULL);
            }
        }
    }

    return 0;
}


static int
ngx_http_llm_fallback_fuzz_type(json_t *v, unsigned types)
{
    switch (json_typeof(v)) {

    case JSON_STRING:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_STRING) != 0;

    case JSON_ARRAY:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_ARRAY) != 0;

    case JSON_OBJECT:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_OBJECT) != 0;

    case JSON_NULL:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_NULL) != 0;

    case JSON_TRUE:
    case JSON_FALSE:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_BOOL) != 0;

    case JSON_INTEGER:
        return (types & (NGX_HTTP_LLM_FALLBACK_FUZZ_T_INTEGER
                         |NGX_HTTP_LLM_FALLBACK_FUZZ_T_NUMBER))
               != 0;

    case JSON_REAL:
        return (types & NGX_HTTP_LLM_FALLBACK_FUZZ_T_NUMBER) != 0;

    default:
        return 0;
    }
}


static int
ngx_http_llm_fallback_fuzz_invalid(ngx_http_llm_fallback_json_request_t *req,
    const char *fmt, const char *param, long index, const char *field,
    const char *expected)
{
    req->fmt = fmt;
    req->param = param;
    req->index = index;
    req->field = field;
    req->expected = expected;

    return -1;
}


/* the param and the message, as ngx_http_llm_fallback_invalid() makes them */

static void
ngx_http_llm_fallback_fuzz_message(ngx_http_llm_fallback_json_request_t *req,
    char *buf, size_t size)
{
    int   n;
    char  param[128];

    n = 0;
    param[0] = '\0';

    if (req->param) {
        n = snprintf(param, sizeof(param), "%s", req->param);

        if (req->index >= 0) {
            n += snprintf(param + n, sizeof(param) - n, "[%ld]", req->index);
        }

        if (req->field) {
            snprintf(param + n, sizeof(param) - n, ".%s", req->field);
        }
    }

    n = snprintf(buf, size, "%s|", param);

    /* the formats are constants with at most two %s, param first */
    snprintf(buf + n, size - n, req->fmt, param,
             req->expected ? req->expected : "");
}


/* equal, and serialised alike: member order and number formatting */

static void
ngx_http_llm_fallback_fuzz_same_tree(json_t *a, json_t *b)
{
    char    *sa, *sb;
    size_t   flags;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_equal(a, b));

    flags = JSON_COMPACT|JSON_ENCODE_ANY;

    sa = json_dumps(a, flags);
    sb = json_dumps(b, flags);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(sa != NULL && sb != NULL);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(sa, sb) == 0);

    free(sa);
    free(sb);
}


/*
 * the module's serialisation against json_dumpb(): the same length and
 * bytes when it fits, the same length when it does not (size, derived
 * from the input, picks a short buffer)
 */

static void
ngx_http_llm_fallback_fuzz_dump_as_jansson(json_t *json, size_t size,
    size_t flags)
{
    char           *a;
    size_t          n, m, short_len;
    unsigned char  *b;

    n = json_dumpb(json, NULL, 0, flags);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(n > 0);

    a = malloc(n);
    b = malloc(n);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(a != NULL && b != NULL);

    json_dumpb(json, a, n, flags);

    m = ngx_http_llm_fallback_json_dumpb(json, b, n, flags);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(m == n && memcmp(a, b, n) == 0);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_json_dumpb(json, NULL, 0, flags) == n);

    short_len = size % n;
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_json_dumpb(json, b, short_len, flags) == n);

    free(a);
    free(b);
}


/* the jansson check of an OpenAI answer that the scanner replaced */

static void
ngx_http_llm_fallback_fuzz_answer(ngx_http_llm_fallback_json_t *json,
    json_t *root)
{
    int                                       usable, shaped;
    size_t                                    i;
    json_t                                   *choices, *choice, *message;
    json_t                                   *v, *usage;
    json_int_t                                prompt, completion;
    ngx_http_llm_fallback_json_completion_t   c;

    ngx_http_llm_fallback_json_completion(json, &c);

    usable = 0;
    message = NULL;
    choices = json_object_get(root, "choices");

    if (json_is_array(choices) && json_array_size(choices) > 0) {
        message = json_object_get(json_array_get(choices, 0), "message");
    }

    if (json_is_object(message)) {
        v = json_object_get(message, "tool_calls");

        usable = json_is_string(json_object_get(message, "content"))
                 || (json_is_array(v) && json_array_size(v) > 0)
                 || json_is_string(json_object_get(message, "refusal"));
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(c.usable == usable);

    if (!usable) {
        return;
    }

    v = json_object_get(root, "model");

    if (json_is_string(v) && json_string_length(v) > 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            c.model != NGX_HTTP_LLM_FALLBACK_JSON_NONE
            && ngx_http_llm_fallback_json_streq(&json->toks[c.model],
                                                json_string_value(v),
                                                json_string_length(v)));

    } else {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            c.model == NGX_HTTP_LLM_FALLBACK_JSON_NONE);
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        c.has_id == json_is_string(json_object_get(root, "id")));

    v = json_object_get(root, "object");

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        c.has_object == (json_is_string(v)
                         && strcmp(json_string_value(v), "chat.completion")
                            == 0));

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        c.has_created == json_is_integer(json_object_get(root, "created")));

    usage = json_object_get(root, "usage");

    v = json_object_get(usage, "prompt_tokens");
    prompt = json_is_integer(v) ? json_integer_value(v) : -1;

    v = json_object_get(usage, "completion_tokens");
    completion = json_is_integer(v) ? json_integer_value(v) : -1;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(c.prompt_tokens == prompt);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(c.completion_tokens == completion);

    /* every choice has "logprobs" and a message with "refusal" */

    shaped = 1;

    json_array_foreach(choices, i, choice) {
        message = json_object_get(choice, "message");

        if (json_object_get(choice, "logprobs") == NULL
            || !json_is_object(message)
            || json_object_get(message, "refusal") == NULL)
        {
            shaped = 0;
        }
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(c.shaped == shaped);
}
