
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include "ngx_http_llm_fallback_fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return ngx_http_llm_fallback_fuzz_stream(data, size,
               ngx_http_llm_fallback_anthropic_stream);
}
