# ngx_http_llm_fallback_module: build, test, demo.
#
#   make deps        install missing Debian packages (apt-get; quick no-op)
#   make             build build/ngx_http_llm_fallback_module.so against the
#                    distro nginx (nginx-dev headers), warnings are errors
#   make test        deps + build, prove -r t/, node SDK test, nginx -t of
#                    conf/examples/*.conf
#   make build NGINX=1.26, make test NGINX=1.26
#                    the same against nginx 1.26.3 (Debian 13's), built
#                    from its Debian source package under build/nginx-1.26
#                    (util/build-nginx.sh; fetched and configured once)
#   make test-browser  the llm_status html page in headless Chromium
#                    (t/browser/, playwright-core); screenshot in
#                    build/status-page.png
#   make build-asan  nginx + module with AddressSanitizer and UBSan under
#                    build/asan/ (from Debian's nginx source package)
#   make test-asan   the same suites against the ASan build; any sanitizer
#                    report fails
#   make test-valgrind  a representative subset (VALGRIND_TESTS) with every
#                    nginx under memcheck; any report fails
#   make deb         the Debian package build/libnginx-mod-http-llm-fallback_
#                    VERSION_ARCH.deb (debian/, dh-sequence-nginx; built in
#                    a copy under build/deb/; lintian must pass)
#   make test-deb    (root) make deb, then install the package, nginx -t
#                    and a request through it, purge it (util/test-deb.sh)
#   make demo        nginx with the module on 127.0.0.1:8080, fake providers
#   make demo-stop   stop it
#   make lint        C style checks (util/lint.sh), and that the status
#                    page header is built from src/status-page/
#   make status-page src/ngx_http_llm_fallback_status_page.h from
#                    src/status-page/ (util/status-page.pl)
#   make fuzz        libFuzzer harnesses of the JSON scanner and the
#                    translators, FUZZ_SECONDS each (default 60)
#   make soak        200 clients (HTTP/1.1, HTTP/2, slow readers) through
#                    flaky providers, large events, black-holed servers,
#                    Redis restarts, reloads good and failing and a killed
#                    worker for SOAK_SECONDS (default 1800), pass criteria
#                    (util/soak/); logs in build/soak
#   make bench       the module against plain proxy_pass (bench/run.sh)
#   make bench-callgrind  instructions per request (bench/callgrind.sh)
#   make bench-rss   worker RSS over a million requests (bench/rss.sh)
#   make clean

SHELL := /bin/bash
.DEFAULT_GOAL := all

MODULE     := ngx_http_llm_fallback_module
TOP        := $(CURDIR)
BUILD      := $(TOP)/build

# NGINX= (or 1.22): the distro's nginx; NGINX=1.26: build/nginx-1.26.
# Never exported: nginx takes an NGINX environment variable for sockets
# inherited from a binary upgrade (and then does not daemonize).
NGINX      ?=
unexport NGINX
NGINX_DEV  ?= /usr/share/nginx/src

OBJ        := $(BUILD)/nginx

ifeq ($(filter-out 1.22,$(NGINX)),)
NGINX_BIN  ?= /usr/sbin/nginx
SO         := $(BUILD)/$(MODULE).so
else ifeq ($(NGINX),1.26)
NGINX_DIR  := $(BUILD)/nginx-1.26
NGINX_BIN  := $(NGINX_DIR)/sbin/nginx
SO         := $(NGINX_DIR)/$(MODULE).so
else
$(error NGINX=$(NGINX): 1.22 (the distro's) or 1.26)
endif

ASAN_DIR   := $(BUILD)/asan
ASAN_BIN   := $(ASAN_DIR)/sbin/nginx
ASAN_SO    := $(ASAN_DIR)/$(MODULE).so
ASAN_LOGS  := $(ASAN_DIR)/logs

PROVE      ?= prove
PROVE_JOBS ?= 2
PROVE_ARGS ?=
TESTS      ?= t/
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

# Test::Nginx settings shared by test and test-asan. The .t files put t/lib
# on @INC themselves (at its end), so PERL5LIB is left alone.
TEST_ENV = TEST_NGINX_RANDOMIZE=1

.PHONY: all build deps test test-prove test-sdk test-examples \
        build-asan test-asan demo demo-stop lint clean sdk-deps \
        fuzz bench bench-callgrind bench-rss test-valgrind soak \
        deb test-deb status-page test-browser browser-deps

all: build


# ---------------------------------------------------------------- deps

deps:
	@bash util/deps.sh


# ---------------------------------------------------------------- build

# configure again only when the module's config changed or there is none
$(OBJ)/Makefile: config
	@if [ ! -x $(NGINX_DEV)/configure ]; then \
	    echo "no $(NGINX_DEV)/configure: run 'make deps' (nginx-dev)" >&2; \
	    exit 1; \
	fi
	@mkdir -p $(OBJ)
	rm -f $@
	cd $(NGINX_DEV) && . ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt=-Werror \
	        --add-dynamic-module=$(TOP) --builddir=$(OBJ) \
	        > $(OBJ)/configure.log 2>&1 \
	    || { tail -n 30 $(OBJ)/configure.log; exit 1; }
	@test -f $@

ifdef NGINX_DIR

# nginx and the module, -Werror; the make inside rebuilds what changed
build:
	@bash util/build-nginx.sh "$(NGINX_DIR)"

else

# nginx's own Makefile knows the dependencies of every object; the .so is
# renamed into place so a running nginx that mapped the old one is not hurt
build: $(OBJ)/Makefile
	$(MAKE) -j$(JOBS) -f $(OBJ)/Makefile -C $(NGINX_DEV) modules
	@if ! cmp -s $(OBJ)/$(MODULE).so $(SO); then \
	    cp $(OBJ)/$(MODULE).so $(SO).tmp && mv -f $(SO).tmp $(SO) \
	    && echo "built $(SO)"; \
	fi

endif


# ---------------------------------------------------------------- tests

test: deps build
	@$(MAKE) --no-print-directory -k NGINX=$(NGINX) \
	    test-examples test-prove test-sdk

test-prove:
	@echo "=== prove -r $(TESTS) (nginx $(NGINX_BIN)) ==="
	$(TEST_ENV) TEST_NGINX_BINARY=$(NGINX_BIN) \
	    TEST_NGINX_LOAD_MODULES=$(SO) \
	    $(PROVE) -j$(PROVE_JOBS) -r $(PROVE_ARGS) $(TESTS)

t/sdk/node_modules/.package-lock.json: t/sdk/package.json \
                                       t/sdk/package-lock.json
	cd t/sdk && npm ci --no-audit --no-fund --loglevel=error

sdk-deps: t/sdk/node_modules/.package-lock.json

test-sdk: sdk-deps
	@echo "=== node --test t/sdk/ (openai and @anthropic-ai/sdk SDKs) ==="
	cd t/sdk && LLM_MODULE_SO=$(SO) LLM_NGINX_BINARY=$(NGINX_BIN) \
	    node --test

t/browser/node_modules/.package-lock.json: t/browser/package.json \
                                           t/browser/package-lock.json
	cd t/browser && npm ci --no-audit --no-fund --loglevel=error

browser-deps: t/browser/node_modules/.package-lock.json

CHROMIUM ?= /usr/bin/chromium

# skipped (exit 0) only when util/deps.sh could not install chromium
test-browser: build
	@if [ ! -x $(CHROMIUM) ]; then \
	    echo "=== SKIPPED test-browser: no $(CHROMIUM): the Debian" \
	         "package chromium could not be installed (make deps) ==="; \
	    exit 0; \
	fi; \
	$(MAKE) --no-print-directory browser-deps \
	&& echo "=== node --test t/browser/ (headless $(CHROMIUM)) ===" \
	&& cd t/browser && LLM_MODULE_SO=$(SO) LLM_NGINX_BINARY=$(NGINX_BIN) \
	    LLM_CHROMIUM=$(CHROMIUM) LLM_SCREENSHOT=$(BUILD)/status-page.png \
	    node --test

test-examples:
	@echo "=== nginx -t conf/examples/*.conf ==="
	NGINX_BIN=$(NGINX_BIN) bash util/check-examples.sh $(SO)


# ---------------------------------------------------------------- package

# VERSION is debian/changelog's; the repository's files are not written to
deb: deps
	@bash util/build-deb.sh $(BUILD)

test-deb: deb
	@echo "=== util/test-deb.sh (install, use, purge the package) ==="
	@bash util/test-deb.sh


# ---------------------------------------------------------------- asan

build-asan:
	@bash util/build-asan.sh "$(ASAN_DIR)"

test-asan: deps build-asan
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	@rc=0; \
	echo "=== prove -r $(TESTS) (AddressSanitizer nginx) ==="; \
	set -o pipefail; \
	$(TEST_ENV) TEST_NGINX_BINARY=$(ASAN_BIN) \
	    TEST_NGINX_LOAD_MODULES=$(ASAN_SO) \
	    bash util/asan-env.sh $(ASAN_LOGS) \
	    $(PROVE) -j$(PROVE_JOBS) -r $(PROVE_ARGS) $(TESTS) 2>&1 \
	    | tee $(ASAN_LOGS)/prove.out || rc=1; \
	$(MAKE) --no-print-directory sdk-deps || rc=1; \
	echo "=== node --test t/sdk/ (AddressSanitizer nginx) ==="; \
	(cd t/sdk && LLM_MODULE_SO=$(ASAN_SO) LLM_NGINX_BINARY=$(ASAN_BIN) \
	    bash ../../util/asan-env.sh $(ASAN_LOGS) node --test) 2>&1 \
	    | tee $(ASAN_LOGS)/sdk.out || rc=1; \
	echo "=== sanitizer reports ==="; \
	bash util/sanitizer-check.sh $(ASAN_LOGS) || rc=1; \
	exit $$rc


# ---------------------------------------------------------------- valgrind

VALGRIND_LOGS  := $(BUILD)/valgrind
VALGRIND_TESTS ?= t/001-basic.t t/030-anthropic.t t/050-stream.t t/060-messages.t \
                  t/051-stream-formats.t
VALGRIND_OPTS  := --tool=memcheck --leak-check=full \
                  --errors-for-leak-kinds=definite \
                  --show-leak-kinds=definite --num-callers=40 \
                  --suppressions=$(TOP)/util/valgrind.supp \
                  --log-file=$(VALGRIND_LOGS)/vg.%p

test-valgrind: deps build
	@rm -rf $(VALGRIND_LOGS) && mkdir -p $(VALGRIND_LOGS)
	@rc=0; \
	echo "=== prove $(VALGRIND_TESTS) (nginx under memcheck) ==="; \
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND="$(VALGRIND_OPTS)" \
	    TEST_NGINX_BINARY=$(NGINX_BIN) TEST_NGINX_LOAD_MODULES=$(SO) \
	    $(PROVE) $(PROVE_ARGS) $(VALGRIND_TESTS) || rc=1; \
	bash util/valgrind-check.sh $(VALGRIND_LOGS) || rc=1; \
	exit $$rc


# ---------------------------------------------------------------- fuzz

FUZZ_SECONDS ?= 60

fuzz: deps
	@echo "=== libFuzzer: each harness for $(FUZZ_SECONDS) s ==="
	bash util/fuzz/run.sh $(FUZZ_SECONDS)


# ---------------------------------------------------------------- soak

SOAK_SECONDS ?= 1800

soak: build
	@echo "=== soak: $(SOAK_SECONDS) s (util/soak/) ==="
	SOAK_SECONDS=$(SOAK_SECONDS) bash util/soak/run.sh


# ---------------------------------------------------------------- bench

bench: deps build
	bash bench/run.sh

bench-callgrind: deps build
	bash bench/callgrind.sh

bench-rss: deps build
	bash bench/rss.sh


# ---------------------------------------------------------------- demo

demo: build
	@bash util/demo.sh start

demo-stop:
	@bash util/demo.sh stop


# ---------------------------------------------------------------- misc

lint:
	@bash util/lint.sh
	@perl util/status-page.pl --check && echo "lint: status page header up to date"

status-page:
	@perl util/status-page.pl

clean:
	@if [ -f $(BUILD)/demo/logs/nginx.pid ]; then bash util/demo.sh stop; fi
	rm -rf $(BUILD) t/servroot* t/sdk/node_modules t/browser/node_modules
