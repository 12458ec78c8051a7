
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_MESSAGES_H_INCLUDED_


/*
 * The Anthropic Messages front door's translators (llm_api messages):
 * pure functions of JSON in -> JSON out on jansson and libc only, as
 * those of ngx_http_llm_fallback_translate.h, so that the fuzz
 * harnesses build them alone; the nginx side is
 * ngx_http_llm_fallback_api_messages.c.
 *
 * The door's requests are checked and translated into the canonical
 * request (an OpenAI chat request); the canonical answers
 * (chat.completion) and stream chunks (chat.completion.chunk) are
 * translated back into an Anthropic message and Anthropic's events.
 *
 * Reasoning in the canonical form follows the convention of
 * OpenAI-compatible servers: "reasoning_content" (text) on a message or
 * a delta, and "thinking_blocks" (Anthropic's thinking and
 * redacted_thinking blocks, with their signatures) beside it.
 */


#include <stddef.h>
#include <jansson.h>


#define NGX_HTTP_LLM_FALLBACK_MSG_ERROR_LEN          512
#define NGX_HTTP_LLM_FALLBACK_MSG_MAX_DROPPED        16
/* tool_use blocks one stream may open */
#define NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS          128


typedef struct {
    /* in: a count_tokens request, which has no max_tokens */
    unsigned                          count_tokens:1;

    /* out: the request asked for a stream */
    unsigned                          stream:1;
    /*
     * out: Anthropic's invalid_request_error message naming the field
     * ("messages.1.content.0.type: ..."), when NULL is returned; empty
     * when it failed for want of memory
     */
    char                              error[
                                        NGX_HTTP_LLM_FALLBACK_MSG_ERROR_LEN];
    /* out: what the canonical request cannot express and was dropped */
    const char                       *dropped[
                                        NGX_HTTP_LLM_FALLBACK_MSG_MAX_DROPPED];
    size_t                            ndropped;
} ngx_http_llm_fallback_msg_request_t;


typedef struct {
    /* in: the request's stop_sequences (NULL: none), see stop_reason */
    json_t                           *stop_sequences;
    /* in: a unique string, for "msg_..." when the answer's id is not */
    const char                       *id;
    size_t                            id_len;
    /* in: the model asked for, reported when the answer names none */
    const char                       *model;
    size_t                            model_len;
} ngx_http_llm_fallback_msg_response_t;


typedef struct {
    /* in: as in ngx_http_llm_fallback_msg_response_t */
    json_t                           *stop_sequences;
    const char                       *id;
    size_t                            id_len;
    const char                       *model;
    size_t                            model_len;

    /* state between chunks, owned by the translator, zero at start */
    int                               started;
    int                               ended;
    /* the open content block: its index, its kind (0: none) */
    int                               block;
    int                               kind;
    int                               nblocks;
    /* canonical tool call index -> content block index + 1 */
    int                               tools[
                                        NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS];
    json_t                           *finish;       /* finish_reason */
    json_t                           *stop_sequence;
    json_t                           *signature;    /* of the open block */
    json_int_t                        input_tokens;
    json_int_t                        output_tokens;
    json_int_t                        cache_read;
} ngx_http_llm_fallback_msg_stream_t;


/*
 * A Messages request (a JSON object, anything else is an error) checked
 * as strictly as Anthropic checks it, and translated: a new reference to
 * the canonical request, or NULL with x->error set.  Nothing of the
 * input is modified (parts may be shared by reference).
 */
json_t *ngx_http_llm_fallback_msg_request(json_t *req,
    ngx_http_llm_fallback_msg_request_t *x);

/*
 * A chat.completion -> an Anthropic message (a new reference), or NULL
 * when it has no choice or on no memory.
 */
json_t *ngx_http_llm_fallback_msg_response(json_t *completion,
    ngx_http_llm_fallback_msg_response_t *x);

/*
 * Streaming: one chat.completion.chunk in, zero or more events appended
 * to "out" (a JSON array) as [NAME, DATA] pairs: message_start when the
 * first chunk comes, content_block_start/_delta/_stop for text,
 * thinking and tool_use (input_json_delta) blocks; a chunk after the
 * end adds nothing.  message_delta (stop_reason, stop_sequence, usage)
 * and message_stop are written by _end, once, since the usage chunk
 * comes after the finish.  Return 0, or -1 on no memory or a chunk that
 * is not one (out is then as it was).
 */
int ngx_http_llm_fallback_msg_stream(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *chunk, json_t *out);
int ngx_http_llm_fallback_msg_stream_end(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out);
void ngx_http_llm_fallback_msg_stream_free(
    ngx_http_llm_fallback_msg_stream_t *s);

/*
 * A complete chat.completion as the events of a stream that gives it
 * (a cache HIT of a stream request): [NAME, DATA] pairs into "out".
 */
int ngx_http_llm_fallback_msg_replay(json_t *completion,
    ngx_http_llm_fallback_msg_response_t *x, json_t *out);

/* Anthropic's error type for an HTTP status */
const char *ngx_http_llm_fallback_msg_error_type(unsigned status);


#endif /* _NGX_HTTP_LLM_FALLBACK_MESSAGES_H_INCLUDED_ */
