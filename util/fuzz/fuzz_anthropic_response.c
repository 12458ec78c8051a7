
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include "ngx_http_llm_fallback_fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* an answer (and, from the same bytes, an error body) of the provider */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                                   *before;
    json_t                                 *in, *out;
    ngx_http_llm_fallback_xlat_response_t   x;

    in = ngx_http_llm_fallback_fuzz_load(data, size);
    if (in == NULL) {
        return 0;
    }

    before = ngx_http_llm_fallback_fuzz_dump(in);

    ngx_http_llm_fallback_fuzz_response_params(&x, size);

    out = ngx_http_llm_fallback_anthropic_response(in, &x);

    if (out) {
        ngx_http_llm_fallback_fuzz_completion(out, &x);
        json_decref(out);

    } else {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x.reason != NULL);
    }

    ngx_http_llm_fallback_fuzz_error(ngx_http_llm_fallback_anthropic_error(in));

    ngx_http_llm_fallback_fuzz_same(in, before);
    json_decref(in);

    return 0;
}
