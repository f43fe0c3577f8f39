// What Split, Replace (normalizer and decoder) match on: {"String": "..."} (a literal) or
// {"Regex": "..."} in tokenizer.json, and the delimiter behaviours of a split.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.h"
#include "tokenizer/regex.h"

namespace rlhf {

// A run of text and whether the pattern matched it. find_matches() covers the whole text.
struct Segment {
  size_t begin, end;
  bool is_match;
};

class Pattern {
 public:
  // {"String": s} or {"Regex": r}; `where` names the field in errors.
  static Pattern from_json(const Json& j, const std::string& where);
  static Pattern literal(std::string text, const std::string& where);
  static Pattern regex(std::string_view pattern, const std::string& where);

  // Matched and unmatched runs covering `text` in order (one unmatched run for "").
  std::vector<Segment> find_matches(std::string_view text) const;

 private:
  std::string literal_;           // used when regex_ is null
  std::shared_ptr<Regex> regex_;  // shared: patterns are immutable and copied into splitters
};

// How a split treats the matched delimiters, for "the-final--countdown" split on '-':
//   Removed            the | final | countdown
//   Isolated           the | - | final | - | - | countdown
//   MergedWithPrevious the- | final- | - | countdown
//   MergedWithNext     the | -final | - | -countdown
//   Contiguous         the | - | final | -- | countdown
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior split_behavior_from_json(const Json& j, const std::string& where);
const char* split_behavior_name(SplitBehavior b);

// The pieces `segments` (from find_matches, `invert` flips is_match) make under `behavior`, as
// [begin, end) ranges; removed delimiters are left out.
std::vector<std::pair<size_t, size_t>> split_ranges(std::vector<Segment> segments, SplitBehavior behavior,
                                                    bool invert);

}  // namespace rlhf
