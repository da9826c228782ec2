/* Four threads share one engine handle: 10,000 checks against a budget that admits exactly half
   of them; then threads keep checking while the handle is closed under them.
   Usage: test_threads <policy.json with an unguarded `email.send`> <empty home dir> [checks] */
#include "test_util.h"

#include <pthread.h>

#define THREADS 4

static const allowly_engine *shared;
static const char *auth_id;
static int checks_per_thread;

struct tally {
  int allowed, budget_denied, other, errors, closed;
};

static void *worker(void *arg) {
  struct tally *t = arg;
  char request[256];
  snprintf(request, sizeof request,
           "{\"authorization_id\":\"%s\",\"actions\":[\"email.send\"],\"estimated_cost_micros\":1,"
           "\"context\":{\"recipient_domain\":\"example.com\"}}",
           auth_id);
  for (int i = 0; i < checks_per_thread; i++) {
    char *response = NULL;
    allowly_result rc = allowly_engine_check(shared, (const uint8_t *)request, strlen(request), &response);
    if (rc != ALLOWLY_RESULT_OK) {
      t->errors++;
      fprintf(stderr, "check failed: %s %s\n", allowly_last_error_code(), allowly_last_error_message());
    } else if (strstr(response, "\"decision\":\"allow\",\"reason\":\"authorization_granted_action_active\"")) {
      t->allowed++;
    } else if (strstr(response, "\"decision\":\"deny\",\"reason\":\"budget_exceeded\"")) {
      t->budget_denied++;
    } else {
      t->other++;
      fprintf(stderr, "unexpected answer: %.300s\n", response);
    }
    allowly_string_free(response);
  }
  return NULL;
}

/* Checks until the handle is closed; every answer is OK (deny or allow) or CLOSED. */
static void *until_closed(void *arg) {
  struct tally *t = arg;
  for (;;) {
    allowly_decision decision = ALLOWLY_DECISION_ALLOW;
    allowly_result rc = allowly_engine_check_action(shared, auth_id, "email.send", NULL, 0, &decision, NULL);
    if (rc == ALLOWLY_RESULT_CLOSED) {
      if (decision != ALLOWLY_DECISION_DENY) t->errors++;
      t->closed++;
      return NULL;
    }
    if (rc != ALLOWLY_RESULT_OK) t->errors++;
    else t->other++;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <policy.json> <home dir> [checks]\n", argv[0]);
    return 2;
  }
  int total = argc > 3 ? atoi(argv[3]) : 10000;
  checks_per_thread = total / THREADS;
  total = checks_per_thread * THREADS;
  int budget = total / 2;

  allowly_engine *engine = NULL;
  CHECK_RC(allowly_engine_open_embedded(argv[2], &engine), ALLOWLY_RESULT_OK);
  if (!engine) return test_report("test_threads");
  shared = engine;
  size_t policy_len = 0;
  char *policy = read_file(argv[1], &policy_len);
  CHECK_RC(allowly_engine_publish_policy(engine, (const uint8_t *)policy, policy_len, NULL), ALLOWLY_RESULT_OK);
  free(policy);
  char create[256];
  snprintf(create, sizeof create, "{\"user_id\":\"u\",\"policy_id\":\"bench\",\"budget_limit_micros\":%d}", budget);
  char *auth = NULL;
  CHECK_RC(allowly_engine_create_authorization(engine, (const uint8_t *)create, strlen(create), &auth, NULL),
           ALLOWLY_RESULT_OK);
  if (!auth) return test_report("test_threads");
  auth_id = auth;

  pthread_t threads[THREADS];
  struct tally tallies[THREADS];
  memset(tallies, 0, sizeof tallies);
  double start = now_ms();
  for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, &tallies[i]);
  struct tally sum = {0, 0, 0, 0, 0};
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    sum.allowed += tallies[i].allowed;
    sum.budget_denied += tallies[i].budget_denied;
    sum.other += tallies[i].other;
    sum.errors += tallies[i].errors;
  }
  double elapsed = now_ms() - start;
  printf("      %d checks on %d threads in %.0f ms: %d allowed, %d budget_exceeded\n", total, THREADS, elapsed,
         sum.allowed, sum.budget_denied);
  /* Budget exactness: each allowed check reserved 1 micro; exactly `budget` fit. */
  CHECK(sum.allowed == budget);
  CHECK(sum.budget_denied == total - budget);
  CHECK(sum.other == 0);
  CHECK(sum.errors == 0);

  /* The stored spend is exactly the budget: a zero-cost check shows it. */
  char request[256];
  snprintf(request, sizeof request,
           "{\"authorization_id\":\"%s\",\"actions\":[\"email.send\"],\"estimated_cost_micros\":0}", auth);
  char *response = NULL;
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)request, strlen(request), &response), ALLOWLY_RESULT_OK);
  char expected[128];
  snprintf(expected, sizeof expected, "\"limit_micros\":%d,\"spent_micros\":%d,", budget, budget);
  CHECK_CONTAINS(response, expected);
  allowly_string_free(response);

  /* Close while four threads are checking: each sees OK answers, then CLOSED; nothing crashes. */
  memset(tallies, 0, sizeof tallies);
  for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, until_closed, &tallies[i]);
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  CHECK_RC(allowly_engine_close(engine), ALLOWLY_RESULT_OK);
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    CHECK(tallies[i].closed == 1);
    CHECK(tallies[i].errors == 0);
  }
  allowly_engine_free(&engine);
  allowly_string_free(auth);
  return test_report("test_threads (4 threads x one handle, budget exactness, close under load)");
}
