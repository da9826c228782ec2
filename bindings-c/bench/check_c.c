/* The C half of the C-vs-Rust check benchmark (scripts/c-bench.sh runs it alternately with
   bench/check_rust.rs): the same embedded check on the same policy and request, through the C API.
   Prints `c_check_json median_ns=<n>` (allowly_engine_check, JSON in and out) and
   `c_check_action median_ns=<n>` (allowly_engine_check_action, typed), each over <checks> timed
   checks after a tenth as many warm-up checks.
   Usage: check_c <policy.json> <home dir> <checks> */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allowly.h"

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, allowly_last_error_message());
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s <policy.json> <home dir> <checks>\n", argv[0]);
    return 2;
  }
  int checks = atoi(argv[3]);
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  static char policy[65536];
  size_t policy_len = fread(policy, 1, sizeof policy, f);
  fclose(f);

  allowly_engine *engine = NULL;
  if (allowly_engine_open_embedded(argv[2], &engine) != ALLOWLY_RESULT_OK) die("open");
  if (allowly_engine_publish_policy(engine, (const uint8_t *)policy, policy_len, NULL) != ALLOWLY_RESULT_OK)
    die("publish");
  const char *grant = "{\"user_id\":\"bench_user\",\"policy_id\":\"bench\"}";
  char *auth = NULL;
  if (allowly_engine_create_authorization(engine, (const uint8_t *)grant, strlen(grant), &auth, NULL) !=
      ALLOWLY_RESULT_OK)
    die("authorize");

  char request[256];
  int request_len = snprintf(request, sizeof request,
                             "{\"authorization_id\":\"%s\",\"actions\":[\"email.send\"],"
                             "\"context\":{\"recipient_domain\":\"example.com\"}}",
                             auth);
  const char *context = "{\"recipient_domain\":\"example.com\"}";
  size_t context_len = strlen(context);
  long long *samples = malloc(sizeof(long long) * (size_t)checks);
  int warmup = checks / 10;

  /* allowly_engine_check: JSON request in, JSON response out (what a binding would call). */
  for (int i = 0; i < warmup + checks; i++) {
    char *response = NULL;
    long long start = now_ns();
    allowly_result rc = allowly_engine_check(engine, (const uint8_t *)request, (size_t)request_len, &response);
    long long elapsed = now_ns() - start;
    if (rc != ALLOWLY_RESULT_OK || !strstr(response, "\"decision\":\"allow\"")) die("check");
    allowly_string_free(response);
    if (i >= warmup) samples[i - warmup] = elapsed;
  }
  qsort(samples, (size_t)checks, sizeof *samples, compare);
  printf("c_check_json median_ns=%lld n=%d\n", samples[checks / 2], checks);

  /* allowly_engine_check_action: the typed convenience (decision enum + result handle). */
  for (int i = 0; i < warmup + checks; i++) {
    allowly_decision decision;
    allowly_action_result *result = NULL;
    long long start = now_ns();
    allowly_result rc = allowly_engine_check_action(engine, auth, "email.send", (const uint8_t *)context, context_len,
                                                    &decision, &result);
    long long elapsed = now_ns() - start;
    if (rc != ALLOWLY_RESULT_OK || decision != ALLOWLY_DECISION_ALLOW) die("check_action");
    allowly_action_result_free(&result);
    if (i >= warmup) samples[i - warmup] = elapsed;
  }
  qsort(samples, (size_t)checks, sizeof *samples, compare);
  printf("c_check_action median_ns=%lld n=%d\n", samples[checks / 2], checks);

  free(samples);
  allowly_string_free(auth);
  allowly_engine_free(&engine);
  return 0;
}
