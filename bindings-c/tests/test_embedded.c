/* Embedded engine through the C API: the quickstart flow, verification accept/reject, bad input
   (NULL, invalid UTF-8, malformed JSON), every operation through allowly_engine_call, close and free.
   Usage: test_embedded <support-agent policy.json> <empty home dir> */
#include "flows.h"

static void bad_input(const allowly_engine *engine) {
  allowly_decision decision = ALLOWLY_DECISION_ALLOW;
  allowly_action_result *result = (allowly_action_result *)1;
  char *out = (char *)1;

  /* NULL pointers. */
  CHECK_RC(allowly_engine_check_action(NULL, "auth_x", "email.send", NULL, 0, &decision, &result),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK(result == NULL);
  CHECK_STR(allowly_last_error_code(), "null_parameter");
  CHECK(strlen(allowly_last_error_message()) > 0);
  CHECK_RC(allowly_engine_check_action(engine, NULL, "email.send", NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", NULL, NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", NULL, 0, NULL, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_check(engine, NULL, 10, &out), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(out == NULL);
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)"{}", 2, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_check(NULL, (const uint8_t *)"{}", 2, &out), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_create_authorization(engine, NULL, 0, NULL, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_revoke_authorization(engine, NULL, NULL, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_resolve_confirmation(engine, NULL, true, 0, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_resolve_escalation(engine, "esc_x", true, NULL, NULL, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_settle_budget(engine, NULL, 1, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_publish_policy(engine, NULL, 0, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_key_document(engine, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_workspace_id(NULL, &out), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_open_embedded(NULL, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  allowly_engine *other = (allowly_engine *)1;
  CHECK_RC(allowly_engine_open_embedded(NULL, &other), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(other == NULL);
  CHECK_RC(allowly_engine_connect(NULL, "key", NULL, &other), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_close(NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(allowly_action_result_decision(NULL) == ALLOWLY_DECISION_DENY);
  CHECK(allowly_action_result_reason(NULL) == NULL);
  allowly_action_result_free(NULL);
  allowly_action_result *none = NULL;
  allowly_action_result_free(&none);
  allowly_string_free(NULL);
  allowly_engine_free(NULL);

  /* Invalid UTF-8. */
  const char bad_utf8[] = {'a', 'u', 't', 'h', '_', (char)0xff, (char)0xfe, 0};
  CHECK_RC(allowly_engine_check_action(engine, bad_utf8, "email.send", NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_INVALID_UTF8);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK_STR(allowly_last_error_code(), "invalid_utf8");
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)bad_utf8, sizeof bad_utf8 - 1, &out),
           ALLOWLY_RESULT_INVALID_JSON);
  const char bad_utf8_json[] = "{\"authorization_id\":\"\xff\",\"actions\":[\"email.send\"]}";
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)bad_utf8_json, sizeof bad_utf8_json - 1, &out),
           ALLOWLY_RESULT_INVALID_JSON);
  CHECK_RC(allowly_engine_revoke_authorization(engine, bad_utf8, NULL, NULL), ALLOWLY_RESULT_INVALID_UTF8);
  CHECK_RC(allowly_engine_open_embedded(bad_utf8, &other), ALLOWLY_RESULT_INVALID_UTF8);

  /* Malformed JSON, JSON of the wrong shape, duplicate members, a context that is not JSON. */
  const char *malformed[] = {"", "{", "{\"authorization_id\":", "nul", "[1,2", "{\"a\":1}}"};
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
    CHECK_RC(allowly_engine_check(engine, (const uint8_t *)malformed[i], strlen(malformed[i]), &out),
             ALLOWLY_RESULT_INVALID_JSON);
    CHECK(out == NULL);
  }
  const char *wrong_shape[] = {
      "{}",
      "[]",
      "{\"authorization_id\":\"auth_x\",\"actions\":\"email.send\"}",
      "{\"authorization_id\":\"auth_x\",\"actions\":[],\"unknown\":1}",
      "{\"authorization_id\":\"auth_x\",\"actions\":[]}",
      "{\"authorization_id\":\"auth_x\",\"authorization_id\":\"auth_y\",\"actions\":[\"a\"]}",
  };
  for (size_t i = 0; i < sizeof wrong_shape / sizeof *wrong_shape; i++) {
    CHECK_RC(allowly_engine_check(engine, (const uint8_t *)wrong_shape[i], strlen(wrong_shape[i]), &out),
             ALLOWLY_RESULT_INVALID_REQUEST);
  }
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", (const uint8_t *)"{oops", 5, &decision, NULL),
           ALLOWLY_RESULT_INVALID_JSON);
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", (const uint8_t *)"[1]", 3, &decision, NULL),
           ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK_RC(allowly_engine_create_authorization(engine, (const uint8_t *)"{\"user_id\":1}", 13, NULL, NULL),
           ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK_RC(allowly_engine_publish_policy(engine, (const uint8_t *)"{\"policy_id\":", 13, NULL),
           ALLOWLY_RESULT_INVALID_JSON);
  CHECK_STR(allowly_last_error_code(), "invalid_json");
  CHECK_STR(allowly_last_error_kind(), "invalid_request");
  CHECK(allowly_last_error_status() == 400);
  CHECK_RC(allowly_engine_publish_policy(engine, (const uint8_t *)"{\"policy_id\":\"p\"}", 17, NULL),
           ALLOWLY_RESULT_INVALID_REQUEST);

  /* Unknown objects: typed codes, and an unknown authorization is a signed deny, not an error. */
  CHECK_RC(allowly_engine_revoke_authorization(engine, "auth_nope", NULL, NULL), ALLOWLY_RESULT_NOT_FOUND);
  CHECK_STR(allowly_last_error_code(), "authorization_not_found");
  CHECK_STR(allowly_last_error_kind(), "not_found");
  CHECK(allowly_last_error_status() == 404); /* what allowly serve answers for the same error */
  CHECK_RC(allowly_engine_resolve_escalation(engine, "esc_nope", true, "me", NULL, NULL), ALLOWLY_RESULT_NOT_FOUND);
  CHECK_RC(allowly_engine_resolve_confirmation(engine, "nonce_nope", true, 0, NULL), ALLOWLY_RESULT_NOT_FOUND);
  allowly_action_result *unknown = NULL;
  CHECK_RC(allowly_engine_check_action(engine, "auth_nope", "email.send", NULL, 0, &decision, &unknown),
           ALLOWLY_RESULT_OK);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK_STR(allowly_action_result_reason(unknown), "authorization_not_found");
  CHECK(allowly_action_result_receipt_json(unknown) != NULL);
  allowly_action_result_free(&unknown);
  CHECK(unknown == NULL);
  allowly_action_result_free(&unknown); /* a second free of the same variable is a no-op */

  /* A home that cannot be created. */
  CHECK_RC(allowly_engine_open_embedded("/proc/allowly-cannot-create-this", &other), ALLOWLY_RESULT_IO_ERROR);
  CHECK(other == NULL);
  CHECK_STR(allowly_last_error_kind(), "internal");
  CHECK(allowly_last_error_status() == 500);

  /* Bad remote settings: refused before anything is sent. */
  allowly_connect_options options = {0};
  allowly_fallback fallback = {"search.web", 7};
  options.fallbacks = &fallback;
  options.fallbacks_len = 1;
  CHECK_RC(allowly_engine_connect("http://127.0.0.1:1", "key", &options, &other), ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK_RC(allowly_engine_connect("not a url", "key", NULL, &other), ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK_RC(allowly_engine_connect("http://127.0.0.1:1", "", NULL, &other), ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK(other == NULL);

  CHECK_STR(allowly_result_name(ALLOWLY_RESULT_CLOSED), "ALLOWLY_RESULT_CLOSED");
  CHECK_STR(allowly_result_name(9999), "ALLOWLY_RESULT_UNKNOWN");
}

static void close_and_free(allowly_engine *engine) {
  allowly_engine *copy = engine;
  CHECK_RC(allowly_engine_close(engine), ALLOWLY_RESULT_OK);
  CHECK_RC(allowly_engine_close(engine), ALLOWLY_RESULT_OK); /* closing twice is fine */
  allowly_decision decision = ALLOWLY_DECISION_ALLOW;
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_CLOSED);
  CHECK(decision == ALLOWLY_DECISION_DENY);
  CHECK_STR(allowly_last_error_code(), "closed");
  CHECK_RC(allowly_engine_call(engine, "list_policies", (const uint8_t *)"{}", 2, &(char *){NULL}),
           ALLOWLY_RESULT_CLOSED);
  char *out = NULL;
  const char *req = "{\"authorization_id\":\"auth_x\",\"actions\":[\"email.send\"]}";
  CHECK_RC(allowly_engine_check(engine, (const uint8_t *)req, strlen(req), &out), ALLOWLY_RESULT_CLOSED);
  CHECK(out == NULL);
  CHECK_RC(allowly_engine_key_document(engine, &out), ALLOWLY_RESULT_CLOSED);

  allowly_engine_free(&engine);
  CHECK(engine == NULL);
  allowly_engine_free(&engine); /* a second free of the same variable is a no-op */
  CHECK_RC(allowly_engine_check_action(engine, "auth_x", "email.send", NULL, 0, &decision, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  (void)copy; /* using `copy` now would be use-after-free: documented as undefined */
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <policy.json> <home dir>\n", argv[0]);
    return 2;
  }
  CHECK(allowly_version() != NULL && strlen(allowly_version()) > 0);
  CHECK_STR(allowly_last_error_code(), "");
  CHECK_STR(allowly_last_error_kind(), "");
  CHECK(allowly_last_error_status() == 0);

  allowly_engine *engine = NULL;
  CHECK_RC(allowly_engine_open_embedded(argv[2], &engine), ALLOWLY_RESULT_OK);
  if (!engine) return test_report("test_embedded");

  char *receipt = run_quickstart(engine, engine, argv[1]);
  run_verification(engine, receipt);
  free(receipt);
  bad_input(engine);
  run_call_flow(engine, engine, argv[1]);
  /* Last: with `{}` it rotates the signing key, among others. */
  int operations = walk_catalog(engine);
  printf("      allowly_engine_call reached the %d operations of the catalog (embedded)\n", operations);
  CHECK(operations >= 22);

  /* A second handle on the same home sees the same workspace. */
  allowly_engine *again = NULL;
  CHECK_RC(allowly_engine_open_embedded(argv[2], &again), ALLOWLY_RESULT_OK);
  char *ws1 = NULL, *ws2 = NULL;
  CHECK_RC(allowly_engine_workspace_id(engine, &ws1), ALLOWLY_RESULT_OK);
  CHECK_RC(allowly_engine_workspace_id(again, &ws2), ALLOWLY_RESULT_OK);
  CHECK(ws1 && ws2 && strcmp(ws1, ws2) == 0);
  allowly_string_free(ws1);
  allowly_string_free(ws2);
  allowly_engine_free(&again);

  close_and_free(engine);
  return test_report("test_embedded (quickstart, verification, bad input, allowly_engine_call, close)");
}
