/* The product page's `sendEmail` flow in C: before the agent sends an email, ask Allowly, then
   branch on allow / confirm / escalate / deny.
   Usage: send_email <home dir> <examples/policies/support-agent.json>
   Build: cc -std=c11 send_email.c $(pkg-config --cflags --libs allowly) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowly.h"

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
    buf[n] = '\0';
    *len = (size_t)n;
  } else {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

static void fail(const char *what) {
  fprintf(stderr, "%s: %s (%s)\n", what, allowly_last_error_message(), allowly_last_error_code());
  exit(1);
}

/* What the agent's tool does once allowed. */
static void deliver(const char *to) { printf("  -> email sent to %s\n", to); }

/* sendEmail: returns 1 if the email went out. */
static int send_email(const allowly_engine *allowly, const char *authorization_id, const char *to,
                      const char *domain) {
  char context[256];
  snprintf(context, sizeof context, "{\"recipient_domain\":\"%s\"}", domain);
  allowly_decision decision;
  allowly_action_result *result = NULL;
  allowly_result rc = allowly_engine_check_action(allowly, authorization_id, "email.send", (const uint8_t *)context,
                                                  strlen(context), &decision, &result);
  if (rc != ALLOWLY_RESULT_OK) {
    /* Fail closed: decision is ALLOWLY_DECISION_DENY on every error. */
    printf("sendEmail(%s): error %s, not sent\n", to, allowly_result_name(rc));
    return 0;
  }
  int sent = 0;
  switch (decision) {
  case ALLOWLY_DECISION_ALLOW:
    printf("sendEmail(%s): allow (%s)\n", to, allowly_action_result_reason(result));
    deliver(to);
    sent = 1;
    break;
  case ALLOWLY_DECISION_CONFIRM: {
    /* Show the user a prompt; here the user says yes, then the agent checks again. */
    printf("sendEmail(%s): confirm (%s), asking the user\n", to, allowly_action_result_reason(result));
    if (allowly_engine_resolve_confirmation(allowly, allowly_action_result_confirm_nonce(result), true, 300, NULL) !=
        ALLOWLY_RESULT_OK)
      fail("resolve confirmation");
    printf("  user approved; checking again\n");
    sent = send_email(allowly, authorization_id, to, domain);
    break;
  }
  case ALLOWLY_DECISION_ESCALATE:
    printf("sendEmail(%s): escalate to an approver (%s)\n", to, allowly_action_result_escalation_id(result));
    break;
  case ALLOWLY_DECISION_DENY:
  default:
    printf("sendEmail(%s): deny (%s), not sent\n", to, allowly_action_result_reason(result));
    break;
  }
  allowly_action_result_free(&result);
  return sent;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <home dir> <support-agent policy.json>\n", argv[0]);
    return 2;
  }
  printf("liballowly %s\n", allowly_version());
  allowly_engine *allowly = NULL;
  if (allowly_engine_open_embedded(argv[1], &allowly) != ALLOWLY_RESULT_OK) fail("open");

  size_t len = 0;
  char *policy = read_file(argv[2], &len);
  if (!policy) return 2;
  if (allowly_engine_publish_policy(allowly, (const uint8_t *)policy, len, NULL) != ALLOWLY_RESULT_OK)
    fail("publish policy");
  free(policy);

  const char *grant = "{\"user_id\":\"user_42\",\"policy_id\":\"support_agent\"}";
  char *authorization_id = NULL;
  if (allowly_engine_create_authorization(allowly, (const uint8_t *)grant, strlen(grant), &authorization_id, NULL) !=
      ALLOWLY_RESULT_OK)
    fail("create authorization");
  printf("authorization %s\n", authorization_id);

  send_email(allowly, authorization_id, "ana@example.com", "example.com");
  send_email(allowly, authorization_id, "bo@partner.org", "partner.org");

  allowly_engine_revoke_authorization(allowly, authorization_id, "example", NULL);
  send_email(allowly, authorization_id, "ana@example.com", "example.com");

  allowly_string_free(authorization_id);
  allowly_engine_free(&allowly);
  return 0;
}
