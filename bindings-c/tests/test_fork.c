/* A program that forks after using the embedded engine: each child, forked right after a burst of
   checks (while the write-ahead-log checkpointer thread works on them), opens its own engine on the
   same home and gets an answer. The library's pthread_atfork hooks make this safe; without them a
   child could inherit the checkpointer's lock held and wait forever.
   Usage: test_fork <policy.json with an unguarded `email.send`> <empty home dir> */
#include "test_util.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 25
#define CHECKS_PER_ROUND 10
#define INTERNAL "{\"recipient_domain\":\"example.com\"}"

/* Whether a check of `email.send` to an internal recipient was answered `allow`. */
static int allowed(const allowly_engine *engine, const char *auth) {
  allowly_decision decision = ALLOWLY_DECISION_DENY;
  allowly_result rc =
      allowly_engine_check_action(engine, auth, "email.send", (const uint8_t *)INTERNAL, strlen(INTERNAL), &decision, NULL);
  return rc == ALLOWLY_RESULT_OK && decision == ALLOWLY_DECISION_ALLOW;
}

/* The child's work: its own engine, one check. Exits 0 when it was allowed. */
static void child(const char *home, const char *auth) {
  allowly_engine *own = NULL;
  int ok = allowly_engine_open_embedded(home, &own) == ALLOWLY_RESULT_OK && allowed(own, auth);
  allowly_engine_free(&own);
  _exit(ok ? 0 : 1);
}

/* The child's exit status, or -1 if it still ran after 10 s (it is then killed). */
static int wait_or_kill(pid_t pid) {
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <policy.json> <home dir>\n", argv[0]);
    return 2;
  }
  allowly_engine *engine = NULL;
  CHECK_RC(allowly_engine_open_embedded(argv[2], &engine), ALLOWLY_RESULT_OK);
  if (!engine) return test_report("test_fork");
  size_t policy_len = 0;
  char *policy = read_file(argv[1], &policy_len);
  CHECK_RC(allowly_engine_publish_policy(engine, (const uint8_t *)policy, policy_len, NULL), ALLOWLY_RESULT_OK);
  free(policy);
  const char create[] = "{\"user_id\":\"u\",\"policy_id\":\"bench\"}";
  char *auth = NULL;
  CHECK_RC(allowly_engine_create_authorization(engine, (const uint8_t *)create, strlen(create), &auth, NULL),
           ALLOWLY_RESULT_OK);
  if (!auth) return test_report("test_fork");

  int hung = 0, failed = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < CHECKS_PER_ROUND; i++) CHECK(allowed(engine, auth));
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(argv[2], auth);
    int status = wait_or_kill(pid);
    if (status == -1) hung++;
    else if (status != 0) failed++;
  }
  if (hung) fprintf(stderr, "%d of %d children hung opening their engine\n", hung, ROUNDS);
  CHECK(hung == 0);
  CHECK(failed == 0);
  /* The parent's engine goes on: its checkpointer was only held during each fork. */
  CHECK(allowed(engine, auth));

  allowly_string_free(auth);
  allowly_engine_free(&engine);
  return test_report("test_fork (25 children forked right after checks, each opens its own engine)");
}
