// Precompiled header: libtorch and the standard library pieces every file uses.
// Keeps a 2-core build of this project in minutes instead of tens of minutes.
#pragma once
#include <torch/torch.h>
#include <ATen/autocast_mode.h>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>
