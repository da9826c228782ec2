/* The C runner of the conformance walk: every call goes through allowly_engine_call() of liballowly,
   on an embedded engine or a remote one.

   Usage: c_calls embedded <home_dir>
          c_calls remote <base_url> <api_key> <workspace_id>

   Reads one request per line on stdin, `<op>\t<args json>` (the args JSON on one line), and writes
   one line per request on stdout:
     ok\t<answer json>                          (compact JSON, one line; `null` for a 204 operation)
     error\t<code>\t<status>\t<kind>            (allowly_last_error_code/_status/_kind; status 0 = none)
   The line `__catalog__\t{}` answers `ok\t<catalog json>` (allowly_catalog()). A line without a tab
   answers `error\tinvalid_line\t0\tinvalid_request`; empty lines are skipped. Exits 0 at EOF.
   Nothing else is written to stdout; diagnostics go to stderr.

   Built by `make -C bindings-c tests` (scripts/c-test.sh) into bindings-c/build/plain/c_calls. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "allowly.h"

static int usage(const char *self) {
  fprintf(stderr, "usage: %s embedded <home_dir> | remote <base_url> <api_key> <workspace_id>\n", self);
  return 2;
}

int main(int argc, char **argv) {
  allowly_engine *engine = NULL;
  allowly_result rc;
  if (argc == 3 && strcmp(argv[1], "embedded") == 0) {
    rc = allowly_engine_open_embedded(argv[2], &engine);
  } else if (argc == 5 && strcmp(argv[1], "remote") == 0) {
    allowly_connect_options options = {0};
    options.workspace_id = argv[4];
    rc = allowly_engine_connect(argv[2], argv[3], &options, &engine);
  } else {
    return usage(argv[0]);
  }
  if (rc != ALLOWLY_RESULT_OK) {
    fprintf(stderr, "c_calls: cannot open the engine: %s: %s (%s)\n", allowly_result_name(rc),
            allowly_last_error_message(), allowly_last_error_code());
    return 1;
  }

  char *line = NULL;
  size_t capacity = 0;
  ssize_t len;
  int status = 0;
  while ((len = getline(&line, &capacity, stdin)) != -1) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (len == 0) continue;
    char *tab = memchr(line, '\t', (size_t)len);
    char *answer = NULL;
    if (tab == NULL) {
      fprintf(stderr, "c_calls: a line without a tab: %.200s\n", line);
      printf("error\tinvalid_line\t0\tinvalid_request\n");
    } else {
      *tab = '\0';
      const char *op = line;
      const char *args = tab + 1;
      size_t args_len = (size_t)(len - (tab + 1 - line));
      if (strcmp(op, "__catalog__") == 0) {
        rc = allowly_catalog(&answer);
      } else {
        rc = allowly_engine_call(engine, op, (const uint8_t *)args, args_len, &answer);
      }
      if (rc == ALLOWLY_RESULT_OK) {
        printf("ok\t%s\n", answer);
      } else {
        printf("error\t%s\t%u\t%s\n", allowly_last_error_code(), (unsigned)allowly_last_error_status(),
               allowly_last_error_kind());
      }
      allowly_string_free(answer);
    }
    if (fflush(stdout) != 0) {
      perror("c_calls: stdout");
      status = 1;
      break;
    }
  }
  free(line);
  allowly_engine_free(&engine);
  return status;
}
