#include "core/error.h"

namespace rlhf::detail {

void fail(const char* file, int line, const std::string& msg) { throw Error(msg, file, line); }

}  // namespace rlhf::detail
