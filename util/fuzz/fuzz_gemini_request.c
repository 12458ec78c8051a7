
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include "ngx_http_llm_fallback_fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                                  *before;
    json_t                                *in, *out;
    ngx_http_llm_fallback_xlat_request_t   x;

    in = ngx_http_llm_fallback_fuzz_load(data, size);
    if (in == NULL) {
        return 0;
    }

    before = ngx_http_llm_fallback_fuzz_dump(in);

    ngx_http_llm_fallback_fuzz_params(&x, size);

    out = ngx_http_llm_fallback_gemini_request(in, &x);

    if (out) {
        ngx_http_llm_fallback_fuzz_turns(json_object_get(out, "contents"),
                                         "parts");
        ngx_http_llm_fallback_fuzz_round_trip(out);
        json_decref(out);

    } else {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!json_is_object(in));
    }

    ngx_http_llm_fallback_fuzz_same(in, before);
    json_decref(in);

    return 0;
}
