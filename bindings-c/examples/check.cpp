// allowly.h from C++: RAII ownership of the handle and the outputs, one check, the decision.
// Usage: check_cpp <home dir>
#include <cstdio>
#include <memory>
#include <string>

#include "allowly.h"

namespace {

struct EngineDeleter {
  void operator()(allowly_engine *engine) const { allowly_engine_free(&engine); }
};
struct ResultDeleter {
  void operator()(allowly_action_result *result) const { allowly_action_result_free(&result); }
};
using Engine = std::unique_ptr<allowly_engine, EngineDeleter>;
using Result = std::unique_ptr<allowly_action_result, ResultDeleter>;

const char *name(allowly_decision decision) {
  switch (decision) {
  case ALLOWLY_DECISION_ALLOW: return "allow";
  case ALLOWLY_DECISION_CONFIRM: return "confirm";
  case ALLOWLY_DECISION_ESCALATE: return "escalate";
  case ALLOWLY_DECISION_DENY: return "deny";
  }
  return "deny";
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <home dir>\n", argv[0]);
    return 2;
  }
  allowly_engine *raw = nullptr;
  if (allowly_engine_open_embedded(argv[1], &raw) != ALLOWLY_RESULT_OK) {
    std::fprintf(stderr, "open: %s\n", allowly_last_error_message());
    return 1;
  }
  Engine engine(raw);

  const std::string context = R"({"recipient_domain":"example.com"})";
  allowly_decision decision = ALLOWLY_DECISION_DENY;
  allowly_action_result *out = nullptr;
  allowly_result rc = allowly_engine_check_action(engine.get(), "auth_unknown", "email.send",
                                                  reinterpret_cast<const uint8_t *>(context.data()), context.size(),
                                                  &decision, &out);
  Result result(out);
  if (rc != ALLOWLY_RESULT_OK) {
    std::printf("error %s: %s\n", allowly_result_name(rc), allowly_last_error_message());
    return 1;
  }
  std::printf("c++: %s (%s), receipt %s\n", name(decision), allowly_action_result_reason(result.get()),
              allowly_action_result_receipt_id(result.get()));
  return 0;
}
