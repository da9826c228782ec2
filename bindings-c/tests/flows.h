/* The flows every engine kind runs: the quickstart of tests/scenarios/quickstart.json, and the
   verification accept / reject cases. Shared by test_embedded.c and test_remote.c. */
#ifndef ALLOWLY_TEST_FLOWS_H
#define ALLOWLY_TEST_FLOWS_H

#include "test_util.h"

#define INTERNAL "{\"recipient_domain\":\"example.com\"}"
#define EXTERNAL "{\"recipient_domain\":\"partner.org\"}"

/* check_action, asserting decision and reason; returns the result (caller frees). */
static allowly_action_result *expect_action(const allowly_engine *engine, const char *auth, const char *action,
                                            const char *context, allowly_decision decision, const char *reason,
                                            int line) {
  allowly_decision got = ALLOWLY_DECISION_ALLOW;
  allowly_action_result *result = NULL;
  allowly_result rc = allowly_engine_check_action(engine, auth, action, (const uint8_t *)context,
                                                  context ? strlen(context) : 0, &got, &result);
  if (rc != ALLOWLY_RESULT_OK || got != decision || result == NULL ||
      strcmp(allowly_action_result_reason(result), reason) != 0) {
    fprintf(stderr, "FAIL line %d: %s → rc %s, decision %u, reason %s; expected decision %u, reason %s (%s)\n", line,
            action, allowly_result_name(rc), (unsigned)got,
            result ? allowly_action_result_reason(result) : "(none)", (unsigned)decision, reason,
            allowly_last_error_message());
    test_failures++;
  }
  return result;
}

/* A JSON check with an estimated cost; asserts fragments of the answer; returns it (caller frees). */
static char *expect_spend(const allowly_engine *engine, const char *auth, const char *decision_reason,
                          const char *budget, int line) {
  char request[512];
  snprintf(request, sizeof request,
           "{\"authorization_id\":\"%s\",\"actions\":[\"email.send\"],\"context\":" INTERNAL
           ",\"estimated_cost_micros\":20000000}",
           auth);
  char *response = NULL;
  allowly_result rc = allowly_engine_check(engine, (const uint8_t *)request, strlen(request), &response);
  if (rc != ALLOWLY_RESULT_OK || !response || !strstr(response, decision_reason) || !strstr(response, budget)) {
    fprintf(stderr, "FAIL line %d: spend → %s: %.600s\n  expected %s and %s\n", line, allowly_result_name(rc),
            response ? response : allowly_last_error_message(), decision_reason, budget);
    test_failures++;
  }
  return response;
}

/* The quickstart flow. `admin` publishes the policy (a setup key when remote); `engine` does the
   rest (a runtime key when remote). Returns the receipt JSON of the first allowed check. */
static char *run_quickstart(const allowly_engine *admin, const allowly_engine *engine, const char *policy_path) {
  size_t policy_len = 0;
  char *policy = read_file(policy_path, &policy_len);
  char *published = NULL;
  CHECK_RC(allowly_engine_publish_policy(admin, (const uint8_t *)policy, policy_len, &published), ALLOWLY_RESULT_OK);
  CHECK_CONTAINS(published, "\"policy_id\":\"support_agent\"");
  /* The publish shape (it once answered the create shape, without who published it). */
  CHECK_CONTAINS(published, "\"created_by\":\"");
  CHECK_CONTAINS(published, "\"authorization_migrations\":[]");
  allowly_string_free(published);
  free(policy);

  const char *create = "{\"user_id\":\"user_42\",\"policy_id\":\"support_agent\",\"budget_limit_micros\":50000000}";
  char *auth = NULL, *created = NULL;
  CHECK_RC(allowly_engine_create_authorization(engine, (const uint8_t *)create, strlen(create), &auth, &created),
           ALLOWLY_RESULT_OK);
  CHECK(auth != NULL && strncmp(auth, "auth_", 5) == 0);
  CHECK_CONTAINS(created, "\"actions\":[\"email.send\",\"refund.issue\",\"account.delete\"]");
  allowly_string_free(created);
  if (!auth) return NULL;

  allowly_action_result *r;
  r = expect_action(engine, auth, "email.send", INTERNAL, ALLOWLY_DECISION_ALLOW,
                    "authorization_granted_action_active", __LINE__);
  char *receipt = NULL;
  if (r && allowly_action_result_receipt_json(r)) receipt = strdup(allowly_action_result_receipt_json(r));
  CHECK(receipt != NULL);
  CHECK(allowly_action_result_receipt_id(r) && strncmp(allowly_action_result_receipt_id(r), "rcp_", 4) == 0);
  CHECK(!allowly_action_result_is_fallback(r));
  CHECK_CONTAINS(allowly_action_result_json(r), "\"decision\":\"allow\"");
  allowly_action_result_free(&r);

  r = expect_action(engine, auth, "email.send", EXTERNAL, ALLOWLY_DECISION_CONFIRM,
                    "condition_requires_user_confirmation", __LINE__);
  CHECK(allowly_action_result_confirm_nonce(r) != NULL);
  CHECK(allowly_action_result_confirmation_id(r) && strncmp(allowly_action_result_confirmation_id(r), "cnf_", 4) == 0);
  char *resolved = NULL;
  CHECK_RC(allowly_engine_resolve_confirmation(engine, allowly_action_result_confirm_nonce(r), true, 300, &resolved),
           ALLOWLY_RESULT_OK);
  CHECK(resolved != NULL);
  allowly_string_free(resolved);
  allowly_action_result_free(&r);

  r = expect_action(engine, auth, "email.send", EXTERNAL, ALLOWLY_DECISION_ALLOW, "user_confirmed", __LINE__);
  allowly_action_result_free(&r);

  r = expect_action(engine, auth, "refund.issue", NULL, ALLOWLY_DECISION_ESCALATE, "escalation_required", __LINE__);
  CHECK(allowly_action_result_escalation_id(r) && strncmp(allowly_action_result_escalation_id(r), "esc_", 4) == 0);
  CHECK_RC(allowly_engine_resolve_escalation(engine, allowly_action_result_escalation_id(r), true, "finance_lead",
                                             NULL, NULL),
           ALLOWLY_RESULT_OK);
  /* Resolving twice is a typed conflict, not a crash. */
  CHECK(allowly_engine_resolve_escalation(engine, allowly_action_result_escalation_id(r), true, "finance_lead", NULL,
                                          NULL) != ALLOWLY_RESULT_OK);
  allowly_action_result_free(&r);

  r = expect_action(engine, auth, "refund.issue", NULL, ALLOWLY_DECISION_ALLOW, "escalation_approved", __LINE__);
  allowly_action_result_free(&r);
  r = expect_action(engine, auth, "refund.issue", NULL, ALLOWLY_DECISION_ESCALATE, "escalation_required", __LINE__);
  allowly_action_result_free(&r);
  r = expect_action(engine, auth, "account.delete", NULL, ALLOWLY_DECISION_DENY, "action_denied_by_policy", __LINE__);
  allowly_action_result_free(&r);

  char *spend_1 = expect_spend(engine, auth, "\"decision\":\"allow\",\"reason\":\"authorization_granted_action_active\"",
                               "\"budget\":{\"limit_micros\":50000000,\"spent_micros\":0,\"estimated_cost_micros\":"
                               "20000000,\"spent_after_micros\":20000000}",
                               __LINE__);
  char *spend_1_receipt = json_string(spend_1, "receipt_id");
  CHECK(spend_1_receipt != NULL);
  allowly_string_free(spend_1);
  allowly_string_free(expect_spend(engine, auth, "\"decision\":\"allow\",\"reason\":\"authorization_granted_action_active\"",
                                   "\"budget\":{\"limit_micros\":50000000,\"spent_micros\":20000000,"
                                   "\"estimated_cost_micros\":20000000,\"spent_after_micros\":40000000}",
                                   __LINE__));
  allowly_string_free(expect_spend(engine, auth, "\"decision\":\"deny\",\"reason\":\"budget_exceeded\"",
                                   "\"budget\":{\"limit_micros\":50000000,\"spent_micros\":40000000,"
                                   "\"estimated_cost_micros\":20000000,\"spent_after_micros\":null}",
                                   __LINE__));
  char *settled = NULL;
  CHECK_RC(allowly_engine_settle_budget(engine, spend_1_receipt ? spend_1_receipt : "rcp_missing", 5000000, &settled),
           ALLOWLY_RESULT_OK);
  CHECK(settled != NULL);
  allowly_string_free(settled);
  free(spend_1_receipt);
  allowly_string_free(expect_spend(engine, auth, "\"decision\":\"allow\",\"reason\":\"authorization_granted_action_active\"",
                                   "\"budget\":{\"limit_micros\":50000000,\"spent_micros\":25000000,"
                                   "\"estimated_cost_micros\":20000000,\"spent_after_micros\":45000000}",
                                   __LINE__));

  char *revoked = NULL;
  CHECK_RC(allowly_engine_revoke_authorization(engine, auth, "c_test", &revoked), ALLOWLY_RESULT_OK);
  CHECK(revoked != NULL);
  allowly_string_free(revoked);
  r = expect_action(engine, auth, "email.send", INTERNAL, ALLOWLY_DECISION_DENY, "authorization_revoked", __LINE__);
  allowly_action_result_free(&r);
  allowly_string_free(auth);
  return receipt;
}

/* Verification of `receipt` against `engine`'s key document: accepted as is, and each tampering
   rejected with its own code. */
static void run_verification(const allowly_engine *engine, const char *receipt) {
  char *doc = NULL, *ws = NULL;
  CHECK_RC(allowly_engine_key_document(engine, &doc), ALLOWLY_RESULT_OK);
  CHECK_RC(allowly_engine_workspace_id(engine, &ws), ALLOWLY_RESULT_OK);
  if (!doc || !ws || !receipt) {
    test_failures++;
    allowly_string_free(doc);
    allowly_string_free(ws);
    return;
  }
  char *fingerprint = json_string(doc, "public_key_fingerprint");
  CHECK(fingerprint != NULL && strncmp(fingerprint, "sha256:", 7) == 0);
  const char *trusted[1] = {fingerprint};
  size_t doc_len = strlen(doc);

#define VERIFY(receipt_text, workspace, fingerprints, n, out)                                                  \
  allowly_verify_receipt((const uint8_t *)(receipt_text), strlen(receipt_text), (const uint8_t *)doc, doc_len, \
                         (workspace), (fingerprints), (n), (out))

  /* Accept. */
  char *payload = NULL;
  CHECK_RC(VERIFY(receipt, ws, trusted, 1, &payload), ALLOWLY_RESULT_OK);
  CHECK_CONTAINS(payload, "\"decision\":\"allow\"");
  CHECK_CONTAINS(payload, ws);
  allowly_string_free(payload);

  /* A signature byte changed. */
  char *sig = json_string(receipt, "signature");
  char *sig2 = strdup(sig);
  sig2[10] = sig2[10] == 'A' ? 'B' : 'A';
  char *bad_sig = replace_first(receipt, sig, sig2);
  payload = (char *)1;
  CHECK_RC(VERIFY(bad_sig, ws, trusted, 1, &payload), ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH);
  CHECK(payload == NULL);
  CHECK_STR(allowly_last_error_code(), "signature_mismatch");

  /* A payload field changed (still a valid payload): the signature no longer matches. */
  char *bad_payload = tamper_segment(receipt, "payload", "\"reason\":\"authorization_granted_action_active\"",
                                     "\"reason\":\"authorization_granted_action_activf\"");
  CHECK(bad_payload && strcmp(bad_payload, receipt) != 0);
  CHECK_RC(VERIFY(bad_payload, ws, trusted, 1, NULL), ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH);

  /* An unknown kid. */
  char *kid = NULL;
  {
    char *protected_b64 = json_string(receipt, "protected");
    char *header = b64url_decode(protected_b64, strlen(protected_b64));
    kid = json_string(header, "kid");
    free(protected_b64);
    free(header);
  }
  char kid_field[256], other_kid_field[256];
  snprintf(kid_field, sizeof kid_field, "\"kid\":\"%s\"", kid);
  snprintf(other_kid_field, sizeof other_kid_field, "\"kid\":\"%s_unknown\"", kid);
  char *bad_kid = tamper_segment(receipt, "protected", kid_field, other_kid_field);
  CHECK_RC(VERIFY(bad_kid, ws, trusted, 1, NULL), ALLOWLY_RESULT_VERIFY_UNKNOWN_KEY);
  CHECK_STR(allowly_last_error_code(), "unknown_key");

  /* A receipt of another workspace (its payload's workspace_id changed). */
  char ws_field[256], other_ws_field[256];
  snprintf(ws_field, sizeof ws_field, "\"workspace_id\":\"%s\"", ws);
  snprintf(other_ws_field, sizeof other_ws_field, "\"workspace_id\":\"%s_other\"", ws);
  char *bad_ws = tamper_segment(receipt, "payload", ws_field, other_ws_field);
  CHECK_RC(VERIFY(bad_ws, ws, trusted, 1, NULL), ALLOWLY_RESULT_VERIFY_SCHEMA);
  CHECK_STR(allowly_last_error_code(), "schema_error");
  CHECK_CONTAINS(allowly_last_error_message(), "workspace_id mismatch");

  /* The key is not trusted by the caller. */
  const char *untrusted[1] = {"sha256:0000000000000000000000000000000000000000000000000000000000000000"};
  CHECK_RC(VERIFY(receipt, ws, untrusted, 1, NULL), ALLOWLY_RESULT_VERIFY_UNTRUSTED_KEY);
  CHECK_RC(VERIFY(receipt, ws, NULL, 0, NULL), ALLOWLY_RESULT_VERIFY_UNTRUSTED_KEY);
  CHECK_STR(allowly_last_error_code(), "untrusted_key");

  /* Not a receipt at all; a key document of another workspace; NULLs. */
  CHECK_RC(VERIFY("{\"protected\":", ws, trusted, 1, NULL), ALLOWLY_RESULT_VERIFY_SCHEMA);
  CHECK_RC(VERIFY(receipt, "ws_someone_else", trusted, 1, NULL), ALLOWLY_RESULT_INVALID_REQUEST);
  CHECK_RC(allowly_verify_receipt(NULL, 0, (const uint8_t *)doc, doc_len, ws, trusted, 1, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(VERIFY(receipt, ws, NULL, 1, NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_verify_receipt((const uint8_t *)receipt, strlen(receipt), (const uint8_t *)"nope", 4, ws, trusted,
                                  1, NULL),
           ALLOWLY_RESULT_INVALID_JSON);
#undef VERIFY

  free(sig);
  free(sig2);
  free(bad_sig);
  free(bad_payload);
  free(kid);
  free(bad_kid);
  free(bad_ws);
  free(fingerprint);
  allowly_string_free(doc);
  allowly_string_free(ws);
}

/* ------------------------------------------------------------------------------------------------
   allowly_engine_call: any operation by name, with the same arguments, answers and errors embedded
   and remote. */

/* allowly_engine_call with NUL-terminated args, asserting the result code; returns the answer
   (caller frees; NULL on failure). */
static char *call_op(const allowly_engine *engine, const char *op, const char *args, allowly_result expected,
                     int line) {
  char *answer = (char *)1;
  allowly_result rc = allowly_engine_call(engine, op, (const uint8_t *)args, strlen(args), &answer);
  if (rc != expected || (rc == ALLOWLY_RESULT_OK) != (answer != NULL)) {
    fprintf(stderr, "FAIL line %d: call %s %.200s → %s (answer %s), expected %s (last error: %s %u %s: %s)\n", line,
            op, args, allowly_result_name(rc), answer ? "set" : "NULL", allowly_result_name(expected),
            allowly_last_error_kind(), (unsigned)allowly_last_error_status(), allowly_last_error_code(),
            allowly_last_error_message());
    test_failures++;
  }
  return rc == ALLOWLY_RESULT_OK ? answer : NULL;
}

/* A call that fails with this result code, code, HTTP status and kind (the same in every SDK). */
static void expect_call_error(const allowly_engine *engine, const char *op, const char *args, allowly_result rc,
                              const char *code, unsigned status, const char *kind, int line) {
  char *answer = call_op(engine, op, args, rc, line);
  allowly_string_free(answer);
  if (strcmp(allowly_last_error_code(), code) != 0 || allowly_last_error_status() != status ||
      strcmp(allowly_last_error_kind(), kind) != 0) {
    fprintf(stderr, "FAIL line %d: call %s %.200s failed with %s %u %s, expected %s %u %s\n", line, op, args,
            allowly_last_error_code(), (unsigned)allowly_last_error_status(), allowly_last_error_kind(), code, status,
            kind);
    test_failures++;
  }
}

/* Every operation of allowly_catalog() reaches the engine through allowly_engine_call: none is an
   "unknown operation" (its answer to `{}` is an answer or a typed error). Returns how many. */
static int walk_catalog(const allowly_engine *engine) {
  char *catalog = NULL;
  CHECK_RC(allowly_catalog(&catalog), ALLOWLY_RESULT_OK);
  CHECK_CONTAINS(catalog, "{\"operation\":\"check\",\"method\":\"POST\",\"path\":\"/v1/check\",");
  CHECK_CONTAINS(catalog, "\"operation\":\"revoke_api_key\",\"method\":\"DELETE\"");
  /* The assertion below can fail: an operation the engine does not know says so. */
  char *answer = call_op(engine, "launch_rocket", "{}", ALLOWLY_RESULT_INVALID_REQUEST, __LINE__);
  CHECK_CONTAINS(allowly_last_error_message(), "unknown operation");
  allowly_string_free(answer);
  int n = 0;
  const char *key = "\"operation\":\"";
  for (const char *p = catalog ? strstr(catalog, key) : NULL; p; p = strstr(p, key)) {
    p += strlen(key);
    const char *end = strchr(p, '"');
    char op[64];
    if (!end || (size_t)(end - p) >= sizeof op) {
      test_failures++;
      break;
    }
    memcpy(op, p, (size_t)(end - p));
    op[end - p] = '\0';
    answer = (char *)1;
    allowly_result rc = allowly_engine_call(engine, op, (const uint8_t *)"{}", 2, &answer);
    if (rc == ALLOWLY_RESULT_OK) {
      CHECK(answer != NULL);
    } else if (answer != NULL || strstr(allowly_last_error_message(), "unknown operation") != NULL ||
               strlen(allowly_last_error_kind()) == 0) {
      fprintf(stderr, "FAIL %s: %s %s: %s\n", op, allowly_result_name(rc), allowly_last_error_kind(),
              allowly_last_error_message());
      test_failures++;
    }
    allowly_string_free(rc == ALLOWLY_RESULT_OK ? answer : NULL);
    n++;
  }
  allowly_string_free(catalog);
  return n;
}

/* A flow through allowly_engine_call only, and its errors. `admin` may call setup operations
   (a setup key when remote); `engine` runs the rest. */
static void run_call_flow(const allowly_engine *admin, const allowly_engine *engine, const char *policy_path) {
  char args[1024];
  char *ws = NULL;
  CHECK_RC(allowly_engine_workspace_id(engine, &ws), ALLOWLY_RESULT_OK);
  if (!ws) return;

  /* publish_policy: the same answer shape as allowly_engine_publish_policy. */
  size_t policy_len = 0;
  char *policy = read_file(policy_path, &policy_len);
  char *answer = NULL;
  CHECK_RC(allowly_engine_call(admin, "publish_policy", (const uint8_t *)policy, policy_len, &answer),
           ALLOWLY_RESULT_OK);
  CHECK_CONTAINS(answer, "\"policy_id\":\"support_agent\"");
  CHECK_CONTAINS(answer, "\"created_by\":\"");
  allowly_string_free(answer);
  free(policy);
  answer = call_op(admin, "get_policy", "{\"policy_id\":\"support_agent\"}", ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, "\"policy_id\":\"support_agent\"");
  allowly_string_free(answer);

  /* Authorize, check, read the receipt and the authorization, list, revoke (idempotently). */
  answer = call_op(engine, "create_authorization", "{\"user_id\":\"user_7\",\"policy_id\":\"support_agent\"}",
                   ALLOWLY_RESULT_OK, __LINE__);
  char *auth = json_string(answer, "authorization_id");
  allowly_string_free(answer);
  CHECK(auth != NULL && strncmp(auth, "auth_", 5) == 0);
  if (!auth) {
    allowly_string_free(ws);
    return;
  }
  snprintf(args, sizeof args,
           "{\"authorization_id\":\"%s\",\"actions\":[\"email.send\"],\"context\":" INTERNAL "}", auth);
  answer = call_op(engine, "check", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, "\"email.send\":{\"decision\":\"allow\",\"reason\":\"authorization_granted_action_active\"");
  char *receipt_id = json_string(answer, "receipt_id");
  allowly_string_free(answer);
  CHECK(receipt_id != NULL);
  snprintf(args, sizeof args, "{\"receipt_id\":\"%s\"}", receipt_id ? receipt_id : "rcp_missing");
  answer = call_op(engine, "get_receipt", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, "\"status\":\"signed\"");
  CHECK_CONTAINS(answer, "\"protected\":\"");
  allowly_string_free(answer);
  free(receipt_id);
  snprintf(args, sizeof args, "{\"authorization_id\":\"%s\"}", auth);
  answer = call_op(engine, "get_authorization", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, auth);
  allowly_string_free(answer);
  answer = call_op(engine, "list_authorizations", "{\"limit\":1}", ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, "\"items\":[{");
  CHECK_CONTAINS(answer, "\"has_more\":");
  allowly_string_free(answer);
  /* The list's filters: by user, agent and status as it stands now; an unknown status is refused. */
  answer = call_op(engine, "list_authorizations",
                   "{\"user_id\":\"user_7\",\"agent_id\":\"support_bot\",\"status\":\"active\"}", ALLOWLY_RESULT_OK,
                   __LINE__);
  CHECK_CONTAINS(answer, auth);
  allowly_string_free(answer);
  answer = call_op(engine, "list_authorizations", "{\"user_id\":\"user_7\",\"status\":\"revoked\"}", ALLOWLY_RESULT_OK,
                   __LINE__);
  CHECK(answer == NULL || strstr(answer, auth) == NULL);
  allowly_string_free(answer);
  expect_call_error(engine, "list_authorizations", "{\"status\":\"frozen\"}", ALLOWLY_RESULT_INVALID_REQUEST,
                    "invalid_request", 422, "invalid_request", __LINE__);
  snprintf(args, sizeof args,
           "{\"authorization_id\":\"%s\",\"revoked_by\":\"c_calls\",\"idempotency_key\":\"revoke-%s\"}", auth, auth);
  char *revoked = call_op(engine, "revoke_authorization", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(revoked, "\"revoked_at\":\"");
  /* The same idempotency key replays the first answer; without one a second revoke conflicts. */
  char *replayed = call_op(engine, "revoke_authorization", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK(revoked && replayed && strcmp(revoked, replayed) == 0);
  allowly_string_free(revoked);
  allowly_string_free(replayed);
  snprintf(args, sizeof args, "{\"authorization_id\":\"%s\"}", auth);
  expect_call_error(engine, "revoke_authorization", args, ALLOWLY_RESULT_CONFLICT, "authorization_revoked", 409,
                    "conflict", __LINE__);
  free(auth);

  /* The key document; an API key created and revoked (a 204 operation answers `null`). */
  snprintf(args, sizeof args, "{\"workspace_id\":\"%s\"}", ws);
  answer = call_op(engine, "get_key_document", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_CONTAINS(answer, ws);
  CHECK_CONTAINS(answer, "\"public_key_fingerprint\":\"sha256:");
  allowly_string_free(answer);
  answer = call_op(admin, "create_api_key", "{\"kind\":\"runtime\",\"label\":\"c_calls\"}", ALLOWLY_RESULT_OK,
                   __LINE__);
  char *key_id = json_string(answer, "key_id");
  CHECK_CONTAINS(answer, "\"kind\":\"runtime\"");
  allowly_string_free(answer);
  CHECK(key_id != NULL);
  snprintf(args, sizeof args, "{\"key_id\":\"%s\"}", key_id ? key_id : "key_missing");
  answer = call_op(admin, "revoke_api_key", args, ALLOWLY_RESULT_OK, __LINE__);
  CHECK_STR(answer, "null");
  allowly_string_free(answer);
  free(key_id);

  /* Errors: the same result code, code, status and kind embedded and remote. */
  expect_call_error(engine, "get_authorization", "{\"authorization_id\":\"auth_nope\"}", ALLOWLY_RESULT_NOT_FOUND,
                    "authorization_not_found", 404, "not_found", __LINE__);
  expect_call_error(engine, "check", "{\"authorization_id\":\"auth_x\",\"actions\":[]}",
                    ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", 422, "invalid_request", __LINE__);
  expect_call_error(engine, "get_authorization", "{\"authorization_id\":7}", ALLOWLY_RESULT_INVALID_REQUEST,
                    "invalid_request", 422, "invalid_request", __LINE__);
  CHECK_CONTAINS(allowly_last_error_message(), "authorization_id");
  expect_call_error(engine, "launch_rocket", "{}", ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", 422,
                    "invalid_request", __LINE__);
  CHECK_CONTAINS(allowly_last_error_message(), "unknown operation");
  expect_call_error(engine, "get_authorization", "{\"authorization_id\":", ALLOWLY_RESULT_INVALID_JSON,
                    "invalid_json", 400, "invalid_request", __LINE__);
  expect_call_error(engine, "get_authorization", "", ALLOWLY_RESULT_INVALID_JSON, "invalid_json", 400,
                    "invalid_request", __LINE__);

  /* The JSON needs no NUL: only `len` bytes are read. */
  const char *padded = "{\"authorization_id\":\"auth_nope\"}trailing bytes that are not JSON";
  answer = (char *)1;
  CHECK_RC(allowly_engine_call(engine, "get_authorization", (const uint8_t *)padded,
                               strlen("{\"authorization_id\":\"auth_nope\"}"), &answer),
           ALLOWLY_RESULT_NOT_FOUND);
  CHECK(answer == NULL);

  /* NULL arguments. */
  answer = (char *)1;
  CHECK_RC(allowly_engine_call(engine, NULL, (const uint8_t *)"{}", 2, &answer), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(answer == NULL);
  CHECK_STR(allowly_last_error_code(), "null_parameter");
  CHECK_STR(allowly_last_error_kind(), "invalid_request");
  CHECK(allowly_last_error_status() == 0);
  CHECK_RC(allowly_engine_call(engine, "list_authorizations", NULL, 0, &answer), ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_call(engine, "list_authorizations", (const uint8_t *)"{}", 2, NULL),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK_RC(allowly_engine_call(NULL, "list_authorizations", (const uint8_t *)"{}", 2, &answer),
           ALLOWLY_RESULT_NULL_PARAMETER);
  CHECK(answer == NULL);
  CHECK_RC(allowly_catalog(NULL), ALLOWLY_RESULT_NULL_PARAMETER);
  const char bad_op[] = {'c', 'h', (char)0xff, 0};
  CHECK_RC(allowly_engine_call(engine, bad_op, (const uint8_t *)"{}", 2, &answer), ALLOWLY_RESULT_INVALID_UTF8);

  allowly_string_free(ws);
}

#endif
