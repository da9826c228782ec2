/* Remote engine through the C API against `allowly serve`: the quickstart flow, verification with
   the runtime's key document, typed refusals, every operation through allowly_engine_call; then the local fallback against a silent socket
   (within the check timeout) and a closed port.
   Usage: test_remote <url> <setup key> <runtime key> <workspace id> <support-agent policy.json> */
#include "flows.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK_TIMEOUT_MS 300
/* Slack over the timeout for thread start-up and, under valgrind, slow first runs. */
#define SLACK_MS 1500

/* A TCP socket on 127.0.0.1 that accepts connections (the kernel completes the handshake) and
   never answers. Returns the fd; writes the port. */
static int silent_socket(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    perror("silent socket");
    exit(2);
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

static void fallback_on(const char *url, const char *failure, int bounded) {
  allowly_fallback fallbacks[2] = {{"search.web", ALLOWLY_FALLBACK_FAIL_OPEN},
                                   {"email.send", ALLOWLY_FALLBACK_FAIL_CLOSED}};
  allowly_connect_options options = {0};
  options.check_timeout_ms = CHECK_TIMEOUT_MS;
  options.request_timeout_ms = CHECK_TIMEOUT_MS;
  options.fallbacks = fallbacks;
  options.fallbacks_len = 2;
  allowly_engine *engine = NULL;
  CHECK_RC(allowly_engine_connect(url, "allowly.runtime.test", &options, &engine), ALLOWLY_RESULT_OK);
  if (!engine) return;

  const char *request = "{\"authorization_id\":\"auth_x\",\"actions\":[\"email.send\",\"search.web\",\"refund.issue\"]}";
  char *response = NULL;
  double start = now_ms();
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)request, strlen(request), &response), ALLOWLY_RESULT_OK);
  double elapsed = now_ms() - start;
  char expect[160];
  snprintf(expect, sizeof expect, "\"email.send\":{\"decision\":\"deny\",\"reason\":\"fallback_closed_%s\"", failure);
  CHECK_CONTAINS(response, expect);
  snprintf(expect, sizeof expect, "\"search.web\":{\"decision\":\"allow\",\"reason\":\"fallback_open_%s\"", failure);
  CHECK_CONTAINS(response, expect);
  snprintf(expect, sizeof expect, "\"refund.issue\":{\"decision\":\"deny\",\"reason\":\"fallback_closed_%s\"", failure);
  CHECK_CONTAINS(response, expect);
  CHECK_CONTAINS(response, "\"is_fallback\":true");
  CHECK_CONTAINS(response, "\"engine_version\":\"sdk_fallback\"");
  allowly_string_free(response);
  if (bounded) {
    printf("      fallback (%s) answered in %.0f ms (check timeout %d ms)\n", failure, elapsed, CHECK_TIMEOUT_MS);
    CHECK(elapsed >= CHECK_TIMEOUT_MS - 5);
    CHECK(elapsed < CHECK_TIMEOUT_MS + SLACK_MS);
  }

  /* The typed convenience: deny, fallback, no receipt. */
  allowly_decision decision = ALLOWLY_DECISION_ALLOW;
  allowly_action_result *result = NULL;
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", NULL, 0, &decision, &result),
           ALLOWLY_RESULT_OK);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK(allowly_action_result_is_fallback(result));
  CHECK(allowly_action_result_receipt_json(result) == NULL);
  allowly_action_result_free(&result);
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "search.web", NULL, 0, &decision, NULL), ALLOWLY_RESULT_OK);
  CHECK(decision == ALLOWLY_DECISION_ALLOW);

  /* Other calls do not fall back: they fail with a typed code. */
  const char *create = "{\"user_id\":\"u\",\"policy_id\":\"support_agent\"}";
  allowly_result rc = allowly_engine_create_authorization(engine, (const uint8_t *)create, strlen(create), NULL, NULL);
  CHECK(rc == (strcmp(failure, "timeout") == 0 ? ALLOWLY_RESULT_TIMEOUT : ALLOWLY_RESULT_UNREACHABLE));
  CHECK_STR(allowly_last_error_kind(), failure);
  CHECK(allowly_last_error_status() == 0); /* no answer, no status */

  /* A check through allowly_engine_call falls back the same way. */
  char *answer = call_op(engine, "check", request, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, "\"is_fallback\":true");
  allowly_string_free(answer);
  expect_call_error(engine, "get_authorization", "{\"authorization_id\":\"auth_x\"}",
                    strcmp(failure, "timeout") == 0 ? ALLOWLY_RESULT_TIMEOUT : ALLOWLY_RESULT_UNREACHABLE, failure, 0,
                    failure, __LINE__);
  allowly_engine_free(&engine);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s <url> <setup key> <runtime key> <workspace id> <policy.json>\n", argv[0]);
    return 2;
  }
  const char *url = argv[1], *setup_key = argv[2], *runtime_key = argv[3], *workspace = argv[4];

  allowly_engine *admin = NULL, *engine = NULL;
  CHECK_RC(allowly_engine_connect(url, setup_key, NULL, &admin), ALLOWLY_RESULT_OK);
  allowly_connect_options options = {0};
  options.workspace_id = workspace;
  CHECK_RC(allowly_engine_connect(url, runtime_key, &options, &engine), ALLOWLY_RESULT_OK);
  if (!admin || !engine) return test_report("test_remote");

  char *receipt = run_quickstart(admin, engine, argv[5]);
  run_verification(engine, receipt);
  free(receipt);
  run_call_flow(admin, engine, argv[5]);
  /* With the runtime key: `{}` must not rotate the shared server's signing key. */
  int operations = walk_catalog(engine);
  printf("      allowly_engine_call reached the %d operations of the catalog (remote)\n", operations);
  CHECK(operations >= 22);

  /* Typed refusals from the runtime. */
  const char *policy = "{\"policy_id\":\"x\"}";
  CHECK_RC(allowly_engine_publish_policy(engine, (const uint8_t *)policy, strlen(policy), NULL),
           ALLOWLY_RESULT_UNAUTHORIZED);
  CHECK_STR(allowly_last_error_kind(), "forbidden"); /* a runtime key on a setup operation */
  CHECK(allowly_last_error_status() == 403);
  expect_call_error(engine, "list_api_keys", "{}", ALLOWLY_RESULT_UNAUTHORIZED, "forbidden", 403, "forbidden",
                    __LINE__);
  allowly_engine *stranger = NULL;
  CHECK_RC(allowly_engine_connect(url, "allowly.runtime.not_a_key", NULL, &stranger), ALLOWLY_RESULT_OK);
  const char *create = "{\"user_id\":\"u\",\"policy_id\":\"support_agent\"}";
  CHECK_RC(allowly_engine_create_authorization(stranger, (const uint8_t *)create, strlen(create), NULL, NULL),
           ALLOWLY_RESULT_UNAUTHORIZED);
  CHECK_STR(allowly_last_error_kind(), "unauthorized");
  CHECK(allowly_last_error_status() == 401);
  allowly_engine_free(&stranger);
  CHECK_RC(allowly_engine_revoke_authorization(engine, "auth_nope", NULL, NULL), ALLOWLY_RESULT_NOT_FOUND);
  const char *bad = "{\"authorization_id\":\"auth_x\",\"actions\":[]}";
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)bad, strlen(bad), &(char *){NULL}),
           ALLOWLY_RESULT_INVALID_REQUEST);

  /* A context of 100 KiB is over the server's body limit: a typed refusal, never a fallback. */
  size_t big_size = 100 * 1024;
  char *big = malloc(big_size + 16);
  CHECK(big != NULL);
  if (big) {
    memcpy(big, "{\"note\":\"", 9);
    memset(big + 9, 'x', big_size);
    memcpy(big + 9 + big_size, "\"}", 3);
    for (int attempt = 0; attempt < 5; attempt++) {
      allowly_decision refused = ALLOWLY_DECISION_ALLOW;
      CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", (const uint8_t *)big, strlen(big),
                                           &refused, NULL),
               ALLOWLY_RESULT_INVALID_REQUEST);
      CHECK_STR(allowly_last_error_code(), "request_too_large");
      CHECK(refused == ALLOWLY_DECISION_DENY);
    }
    free(big);
  }

  /* Check after close. */
  CHECK_RC(allowly_engine_close(engine), ALLOWLY_RESULT_OK);
  allowly_decision decision = ALLOWLY_DECISION_ALLOW;
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_CLOSED);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  allowly_engine_free(&engine);
  allowly_engine_free(&admin);

  /* Fallback on a silent socket, within the check timeout. */
  int port = 0;
  int silent = silent_socket(&port);
  char silent_url[64];
  snprintf(silent_url, sizeof silent_url, "http://127.0.0.1:%d", port);
  fallback_on(silent_url, "timeout", 1);
  close(silent);

  /* Fallback on a closed port. */
  int closed_fd = silent_socket(&port);
  close(closed_fd);
  char closed_url[64];
  snprintf(closed_url, sizeof closed_url, "http://127.0.0.1:%d", port);
  fallback_on(closed_url, "unreachable", 0);

  return test_report("test_remote (quickstart and verification via allowly serve, fallback)");
}
