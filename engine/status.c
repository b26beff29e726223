// engine/status.c — names of the e2h_status codes and the library version (public API).
#include "../include/e2h.h"

const char *e2h_status_name(e2h_status s) {
    switch (s) {
    case E2H_OK: return "E2H_OK";
    case E2H_ERR_INVALID_ARG: return "E2H_ERR_INVALID_ARG";
    case E2H_ERR_IO: return "E2H_ERR_IO";
    case E2H_ERR_FORMAT: return "E2H_ERR_FORMAT";
    case E2H_ERR_UNSUPPORTED: return "E2H_ERR_UNSUPPORTED";
    case E2H_ERR_SHAPE: return "E2H_ERR_SHAPE";
    case E2H_ERR_NOMEM: return "E2H_ERR_NOMEM";
    case E2H_ERR_CONTEXT: return "E2H_ERR_CONTEXT";
    case E2H_ERR_KV_FULL: return "E2H_ERR_KV_FULL";
    case E2H_ERR_TOKENIZER: return "E2H_ERR_TOKENIZER";
    }
    return "E2H_ERR_UNKNOWN";
}

#define E2H_STR2(x) #x
#define E2H_STR(x) E2H_STR2(x)
const char *e2h_version(void) {
    return E2H_STR(E2H_VERSION_MAJOR) "." E2H_STR(E2H_VERSION_MINOR) "." E2H_STR(E2H_VERSION_PATCH);
}
