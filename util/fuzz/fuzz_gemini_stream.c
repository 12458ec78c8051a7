
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include "ngx_http_llm_fallback_fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static int ngx_http_llm_fallback_fuzz_gemini(
    ngx_http_llm_fallback_xlat_stream_t *x, const char *type, json_t *data,
    json_t *out);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return ngx_http_llm_fallback_fuzz_stream(data, size,
                                             ngx_http_llm_fallback_fuzz_gemini);
}


/* Gemini's SSE events have no name */

static int
ngx_http_llm_fallback_fuzz_gemini(ngx_http_llm_fallback_xlat_stream_t *x,
    const char *type, json_t *data, json_t *out)
{
    return ngx_http_llm_fallback_gemini_stream(x, data, out);
}
