
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


static char *ngx_http_llm_fallback_read_key_file(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *key);
static void ngx_http_llm_fallback_check_key_mode(ngx_conf_t *cf,
    ngx_str_t *name, ngx_uint_t mode);
static void ngx_http_llm_fallback_trim(ngx_str_t *s);
static char *ngx_http_llm_fallback_set_key(ngx_conf_t *cf,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *value);


/* the front doors, by llm_api name */

static ngx_http_llm_fallback_api_t  *ngx_http_llm_fallback_apis[] = {
    &ngx_http_llm_fallback_api_chat,
    &ngx_http_llm_fallback_api_messages,
    &ngx_http_llm_fallback_api_count_tokens,
    NULL
};


static ngx_http_llm_fallback_format_t  *ngx_http_llm_fallback_formats[] = {
    &ngx_http_llm_fallback_format_openai,
    &ngx_http_llm_fallback_format_anthropic,
    &ngx_http_llm_fallback_format_gemini,
    NULL
};


char *
ngx_http_llm_fallback_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_main_conf_t *lmcf = conf;

    char                              *rv;
    ngx_int_t                          n;
    ngx_str_t                         *value, s, format, key, auth_header;
    ngx_uint_t                         i, keys;
    ngx_http_llm_fallback_provider_t  *p;

    value = cf->args->elts;

    if (value[1].len == 0 || ngx_strchr(value[1].data, '=') != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid llm provider name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_llm_fallback_find_provider(lmcf, value[1].data,
                                            value[1].len)
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate llm provider \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    p = ngx_array_push(&lmcf->providers);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(p, sizeof(ngx_http_llm_fallback_provider_t));

    p->name = value[1];
    p->timeout = NGX_CONF_UNSET_MSEC;
    p->breaker = 1;

    ngx_str_set(&format, "openai");
    ngx_str_null(&key);
    ngx_str_null(&auth_header);
    keys = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "uri=", 4) == 0) {
            p->uri.len = value[i].len - 4;
            p->uri.data = value[i].data + 4;

            if (p->uri.len == 0 || p->uri.data[0] != '/') {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "format=", 7) == 0) {
            format.len = value[i].len - 7;
            format.data = value[i].data + 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            p->model.len = value[i].len - 6;
            p->model.data = value[i].data + 6;

            if (p->model.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key=", 8) == 0) {
            key.len = value[i].len - 8;
            key.data = value[i].data + 8;

            if (key.len == 0) {
                goto invalid;
            }

            keys++;
            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_file=", 13) == 0) {
            s.len = value[i].len - 13;
            s.data = value[i].data + 13;

            if (s.len == 0) {
                goto invalid;
            }

            rv = ngx_http_llm_fallback_read_key_file(cf, &s, &p->static_key);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            keys++;
            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_env=", 12) == 0) {
            s.len = value[i].len - 12;
            s.data = value[i].data + 12;

            if (s.len == 0) {
                goto invalid;
            }

            /* config values are NUL-terminated */

            p->static_key.data = (u_char *) getenv((char *) s.data);

            if (p->static_key.data == NULL || p->static_key.data[0] == '\0') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "environment variable \"%V\" of "
                                   "\"api_key_env\" is not set", &s);
                return NGX_CONF_ERROR;
            }

            p->static_key.len = ngx_strlen(p->static_key.data);
            p->static_key.data = ngx_pstrdup(cf->pool, &p->static_key);
            if (p->static_key.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_http_llm_fallback_trim(&p->static_key);

            keys++;
            continue;
        }

        if (ngx_strncmp(value[i].data, "auth_header=", 12) == 0) {
            auth_header.len = value[i].len - 12;
            auth_header.data = value[i].data + 12;

            if (auth_header.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_tokens=", 11) == 0) {
            n = ngx_atoi(value[i].data + 11, value[i].len - 11);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            p->max_tokens = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.len = value[i].len - 8;
            s.data = value[i].data + 8;

            p->timeout = ngx_parse_time(&s, 0);
            if (p->timeout == (ngx_msec_t) NGX_ERROR || p->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "breaker=on") == 0) {
            p->breaker = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "breaker=off") == 0) {
            p->breaker = 0;
            continue;
        }

        goto invalid;
    }

    if (p->uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm provider \"%V\" must have \"uri=\" parameter",
                           &p->name);
        return NGX_CONF_ERROR;
    }

    if (keys > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "llm provider \"%V\" has more than one of "
                           "\"api_key=\", \"api_key_file=\" and "
                           "\"api_key_env=\"", &p->name);
        return NGX_CONF_ERROR;
    }

    p->format = ngx_http_llm_fallback_find_format(&format);
    if (p->format == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown llm provider format \"%V\"", &format);
        return NGX_CONF_ERROR;
    }

    p->key_header = p->format->key_header;
    p->key_prefix = p->format->key_prefix;

    if (auth_header.len) {
        p->key_header = auth_header;

        if (auth_header.len != sizeof("Authorization") - 1
            || ngx_strncasecmp(auth_header.data, (u_char *) "Authorization",
                               auth_header.len)
               != 0)
        {
            ngx_str_null(&p->key_prefix);
        }
    }

    if (key.len) {
        rv = ngx_http_llm_fallback_set_key(cf, p, &key);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (p->static_key.len) {
        s.len = p->key_prefix.len + p->static_key.len;
        s.data = ngx_pnalloc(cf->pool, s.len);
        if (s.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ngx_cpymem(s.data, p->key_prefix.data, p->key_prefix.len),
                   p->static_key.data, p->static_key.len);

        p->static_value = s;
    }

    if (ngx_http_llm_fallback_init_headers(cf, p) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of llm provider \"%V\"",
                       ngx_http_llm_fallback_conf_param(cf, &value[i]),
                       &value[1]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_llm_fallback_set_key(ngx_conf_t *cf,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *value)
{
    ngx_http_compile_complex_value_t   ccv;

    if (ngx_http_script_variables_count(value) == 0) {
        p->static_key = *value;
        return NGX_CONF_OK;
    }

    p->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (p->key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = p->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_llm_fallback_read_key_file(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *key)
{
    char             *rv;
    ssize_t           n;
    ngx_str_t         name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" of \"api_key_file\" "
                           "failed", name.data);
        return NGX_CONF_ERROR;
    }

    rv = NGX_CONF_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto done;
    }

    if (ngx_file_size(&fi) == 0 || ngx_file_size(&fi) > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"api_key_file\" \"%s\" is empty or too large",
                           name.data);
        goto done;
    }

    ngx_http_llm_fallback_check_key_mode(cf, &name, ngx_file_access(&fi));

    key->len = (size_t) ngx_file_size(&fi);
    key->data = ngx_pnalloc(cf->pool, key->len);
    if (key->data == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, key->data, key->len, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    key->len = n;

    ngx_http_llm_fallback_trim(key);

    if (key->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"api_key_file\" \"%s\" is empty", name.data);
        goto done;
    }

    rv = NGX_CONF_OK;

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return rv;
}


/*
 * A key file any user of the machine can read (or replace) is warned
 * about, with the fix.  Group access is left alone: nginx reads the key
 * as the user that starts it (the master process, at start and reload),
 * so 600 is enough, and a file shared with a group (640) is deliberate.
 */

static void
ngx_http_llm_fallback_check_key_mode(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t mode)
{
    char  *what;

    switch (mode & (S_IROTH|S_IWOTH)) {

    case S_IROTH:
        what = "readable";
        break;

    case S_IWOTH:
        what = "writable";
        break;

    case S_IROTH|S_IWOTH:
        what = "readable and writable";
        break;

    default:
        return;
    }

    /* ngx_sprintf() has no octal */

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "\"api_key_file\" \"%V\" is %s by any user "
                       "(mode 0%ui%ui%ui), restrict it with "
                       "\"chmod 600 %V\"%s",
                       name, what, (mode >> 6) & 7, (mode >> 3) & 7, mode & 7,
                       name,
                       (mode & S_IRGRP) ? " (or 640 to keep its group's access)"
                                        : "");
}


static void
ngx_http_llm_fallback_trim(ngx_str_t *s)
{
    while (s->len
           && (s->data[s->len - 1] == '\n' || s->data[s->len - 1] == '\r'
               || s->data[s->len - 1] == ' ' || s->data[s->len - 1] == '\t'))
    {
        s->len--;
    }

    while (s->len && (s->data[0] == ' ' || s->data[0] == '\t')) {
        s->data++;
        s->len--;
    }
}


char *
ngx_http_llm_fallback_chain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_str_t                          *value, *name;
    ngx_uint_t                          i;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_compile_complex_value_t    ccv;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    if (lcf->chain_names || lcf->chain_var) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 1 > NGX_HTTP_LLM_FALLBACK_MAX_CHAIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many providers in \"llm_fallback_chain\", "
                           "the maximum is %d",
                           NGX_HTTP_LLM_FALLBACK_MAX_CHAIN);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2 && value[1].data[0] == '$') {
        lcf->chain_var = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
        if (lcf->chain_var == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &value[1];
        ccv.complex_value = lcf->chain_var;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else {
        lcf->chain_names = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                            sizeof(ngx_str_t));
        if (lcf->chain_names == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 1; i < cf->args->nelts; i++) {
            name = ngx_array_push(lcf->chain_names);
            if (name == NULL) {
                return NGX_CONF_ERROR;
            }

            *name = value[i];
        }

        lcf->chain_file = cf->conf_file->file.name.data;
        lcf->chain_line = cf->conf_file->line;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_llm_fallback_handler;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_llm_fallback_module);
    lmcf->used = 1;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_llm_fallback_resolve_chain(ngx_conf_t *cf,
    ngx_http_llm_fallback_loc_conf_t *lcf)
{
    ngx_str_t                          *names;
    ngx_uint_t                          i;
    ngx_http_llm_fallback_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_llm_fallback_module);

    names = lcf->chain_names->elts;

    lcf->chain = ngx_palloc(cf->pool, lcf->chain_names->nelts
                                * sizeof(ngx_http_llm_fallback_provider_t *));
    if (lcf->chain == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < lcf->chain_names->nelts; i++) {
        lcf->chain[i] = ngx_http_llm_fallback_find_provider(lmcf,
                                                            names[i].data,
                                                            names[i].len);
        if (lcf->chain[i] == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown llm provider \"%V\" in "
                          "\"llm_fallback_chain\" in %s:%ui",
                          &names[i], lcf->chain_file, lcf->chain_line);
            return NGX_ERROR;
        }
    }

    lcf->nchain = lcf->chain_names->nelts;

    return NGX_OK;
}


/* llm_api: the front door of a location */

char *
ngx_http_llm_fallback_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (lcf->api) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_llm_fallback_apis[i]; i++) {
        if (ngx_http_llm_fallback_apis[i]->name.len == value[1].len
            && ngx_strncmp(ngx_http_llm_fallback_apis[i]->name.data,
                           value[1].data, value[1].len)
               == 0)
        {
            lcf->api = ngx_http_llm_fallback_apis[i];
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown llm_api \"%V\"", &value[1]);

    return NGX_CONF_ERROR;
}


ngx_http_llm_fallback_format_t *
ngx_http_llm_fallback_find_format(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_llm_fallback_formats[i]; i++) {
        if (ngx_http_llm_fallback_formats[i]->name.len == name->len
            && ngx_strncmp(ngx_http_llm_fallback_formats[i]->name.data,
                           name->data, name->len)
               == 0)
        {
            return ngx_http_llm_fallback_formats[i];
        }
    }

    return NULL;
}


char *
ngx_http_llm_fallback_on(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_int_t    code;
    ngx_str_t   *value;
    ngx_uint_t   i, mask;

    if (lcf->fallback_on != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mask = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "error") == 0) {
            mask |= NGX_HTTP_LLM_FALLBACK_ON_ERROR;

        } else if (ngx_strcmp(value[i].data, "timeout") == 0) {
            mask |= NGX_HTTP_LLM_FALLBACK_ON_TIMEOUT;

        } else if (ngx_strcmp(value[i].data, "invalid_response") == 0) {
            mask |= NGX_HTTP_LLM_FALLBACK_ON_INVALID;

        } else if (ngx_strcmp(value[i].data, "http_5xx") == 0) {
            mask |= NGX_HTTP_LLM_FALLBACK_ON_HTTP_5XX;

        } else if (ngx_strcmp(value[i].data, "off") == 0) {
            mask |= NGX_HTTP_LLM_FALLBACK_ON_OFF;

        } else if (value[i].len == 8
                   && ngx_strncmp(value[i].data, "http_", 5) == 0)
        {
            code = ngx_atoi(value[i].data + 5, 3);

            if (code < NGX_HTTP_LLM_FALLBACK_CODE_MIN
                || code > NGX_HTTP_LLM_FALLBACK_CODE_MAX)
            {
                goto invalid;
            }

            code -= NGX_HTTP_LLM_FALLBACK_CODE_MIN;
            lcf->fallback_codes[code / 8] |= (u_char) (1 << (code % 8));

        } else {
            goto invalid;
        }
    }

    if ((mask & NGX_HTTP_LLM_FALLBACK_ON_OFF) && cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"off\" cannot be combined with other "
                           "conditions");
        return NGX_CONF_ERROR;
    }

    lcf->fallback_on = mask;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       ngx_http_llm_fallback_conf_param(cf, &value[i]));
    return NGX_CONF_ERROR;
}


char *
ngx_http_llm_fallback_retries(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_llm_fallback_loc_conf_t *lcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lcf->retries != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n > 100) {
        i = 1;
        goto invalid;
    }

    lcf->retries = n;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "backoff=", 8) == 0) {
            s.len = value[i].len - 8;
            s.data = value[i].data + 8;

            lcf->backoff = ngx_parse_time(&s, 0);
            if (lcf->backoff == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_backoff=", 12) == 0) {
            s.len = value[i].len - 12;
            s.data = value[i].data + 12;

            lcf->max_backoff = ngx_parse_time(&s, 0);
            if (lcf->max_backoff == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       ngx_http_llm_fallback_conf_param(cf, &value[i]));
    return NGX_CONF_ERROR;
}
