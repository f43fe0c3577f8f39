// Helpers shared by the task store's two halves (task.cpp, assign.cpp); not part of its interface.
#pragma once
#include <string>
#include <vector>

#include "io/json.h"
#include "label/sqlite.h"

namespace rlhf::label {

// Names a rater can have (they appear in URLs, files and the export); throws naming the fix.
void check_rater_name(const std::string& name);

namespace detail {

double now_seconds();  // wall clock (leases outlive a restart of the server)
std::string meta_get(Db& db, const std::string& key);
void meta_set(Db& db, const std::string& key, const std::string& value);
}  // namespace detail
}  // namespace rlhf::label
