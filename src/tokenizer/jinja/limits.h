// Bounds on what one render may do, so that a hostile template can neither hang nor exhaust the
// process: loop iterations, call and nesting depth, the size of any string or list it builds, and
// the total bytes of strings and lists it creates (the work that string concatenation in a loop
// costs). Exceeding one is an error naming the limit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rlhf::jinja {

struct Limits {
  int64_t max_loop_iterations = 1'000'000;  // all for loops of one render together
  int max_call_depth = 200;                 // macro calls (and caller()) in progress
  int max_eval_depth = 1000;                // nested expressions and statements being evaluated
  size_t max_value_bytes = 64u << 20;       // one string (or list, counted in elements x 16)
  size_t max_work_bytes = 1u << 30;         // bytes of all strings and lists one render creates
};

namespace detail {

// The limits of the render running on this thread; a BudgetScope makes them current.
class BudgetScope {
 public:
  explicit BudgetScope(const Limits& limits);
  ~BudgetScope();
  BudgetScope(const BudgetScope&) = delete;
  BudgetScope& operator=(const BudgetScope&) = delete;

 private:
  BudgetScope* saved_;
  friend void charge(size_t bytes);
  const Limits& limits_;
  size_t used_ = 0;
};

// Accounts for a new string or list of `bytes` bytes; an OpError when it is larger than
// max_value_bytes or the render's work exceeds max_work_bytes. No-op outside a render.
void charge(size_t bytes);

}  // namespace detail
}  // namespace rlhf::jinja
