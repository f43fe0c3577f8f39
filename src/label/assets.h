// The labelling web app's files (src/label/web/*.html, *.css, *.js), compiled into the binary by
// cmake/embed_assets.cmake, so that `rlhf label serve` needs nothing beside itself and works offline.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace rlhf::label {

struct Asset {
  const char* name;  // file name in src/label/web
  const char* data;
  size_t size;
  std::string_view bytes() const { return {data, size}; }
};

const std::vector<Asset>& assets();

}  // namespace rlhf::label
