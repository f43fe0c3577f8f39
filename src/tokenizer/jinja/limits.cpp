// The per-render budget behind detail::charge (see limits.h).
#include "tokenizer/jinja/limits.h"

#include <string>

#include "tokenizer/jinja/value.h"

namespace rlhf::jinja::detail {
namespace {
thread_local BudgetScope* g_current = nullptr;
}

BudgetScope::BudgetScope(const Limits& limits) : saved_(g_current), limits_(limits) { g_current = this; }

BudgetScope::~BudgetScope() { g_current = saved_; }

void charge(size_t bytes) {
  BudgetScope* b = g_current;
  if (!b) return;
  if (bytes > b->limits_.max_value_bytes) {
    throw OpError("the template built a value of " + std::to_string(bytes) + " bytes, more than the limit of " +
                  std::to_string(b->limits_.max_value_bytes));
  }
  b->used_ += bytes;
  if (b->used_ > b->limits_.max_work_bytes) {
    throw OpError("the template created more than " + std::to_string(b->limits_.max_work_bytes) +
                  " bytes of strings and lists (work limit)");
  }
}

}  // namespace rlhf::jinja::detail
