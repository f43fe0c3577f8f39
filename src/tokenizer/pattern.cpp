// Literal and regex patterns, their matched / unmatched runs, and the split behaviours.
#include "tokenizer/pattern.h"

#include "core/error.h"

namespace rlhf {

Pattern Pattern::from_json(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object() && j.size() == 1, where, ": expected {\"String\": ...} or {\"Regex\": ...}, got ", j.dump());
  if (j.contains("String")) return literal(json_require<std::string>(j, "String", where), where + ".String");
  if (j.contains("Regex")) return regex(json_require<std::string>(j, "Regex", where), where + ".Regex");
  RLHF_FAIL(where, ": unknown pattern kind ", j.begin().key(), "; expected String or Regex");
}

Pattern Pattern::literal(std::string text, const std::string& where) {
  RLHF_CHECK(!text.empty(), where, ": empty pattern; give at least one character");
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

Pattern Pattern::regex(std::string_view pattern, const std::string& where) {
  Pattern p;
  p.regex_ = std::make_shared<Regex>(pattern, where);
  return p;
}

std::vector<Segment> Pattern::find_matches(std::string_view text) const {
  std::vector<Segment> out;
  if (text.empty()) return {{0, 0, false}};
  size_t prev = 0;
  auto add = [&](size_t b, size_t e) {
    if (prev != b) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  };
  if (regex_) {
    regex_->for_each_match(text, add);
  } else {
    for (size_t at = text.find(literal_); at != std::string_view::npos; at = text.find(literal_, at + literal_.size()))
      add(at, at + literal_.size());
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
  return out;
}

SplitBehavior split_behavior_from_json(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_string(), where, ": expected a string (Removed, Isolated, MergedWithPrevious, MergedWithNext, "
                                   "Contiguous), got ", j.dump());
  std::string s = j.get<std::string>();
  for (auto b : {SplitBehavior::Removed, SplitBehavior::Isolated, SplitBehavior::MergedWithPrevious,
                 SplitBehavior::MergedWithNext, SplitBehavior::Contiguous})
    if (s == split_behavior_name(b)) return b;
  RLHF_FAIL(where, ": unknown split behavior \"", s, "\"; expected Removed, Isolated, MergedWithPrevious, "
                                                     "MergedWithNext or Contiguous");
}

const char* split_behavior_name(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::Removed: return "Removed";
    case SplitBehavior::Isolated: return "Isolated";
    case SplitBehavior::MergedWithPrevious: return "MergedWithPrevious";
    case SplitBehavior::MergedWithNext: return "MergedWithNext";
    case SplitBehavior::Contiguous: return "Contiguous";
  }
  return "?";
}

std::vector<std::pair<size_t, size_t>> split_ranges(std::vector<Segment> segments, SplitBehavior behavior,
                                                    bool invert) {
  if (invert)
    for (auto& s : segments) s.is_match = !s.is_match;
  // Each piece with whether it is to be removed; transcribed from NormalizedString::split.
  std::vector<Segment> pieces;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (auto s : segments) pieces.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::Removed:
      pieces = segments;
      break;
    case SplitBehavior::Contiguous:
      for (auto s : segments) {
        if (s.is_match == previous_match && !pieces.empty()) pieces.back().end = s.end;
        else pieces.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (auto s : segments) {
        if (s.is_match && !previous_match && !pieces.empty()) pieces.back().end = s.end;
        else pieces.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) pieces.back().begin = it->begin;
        else pieces.push_back({it->begin, it->end, false});
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
  }
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(pieces.size());
  for (auto& p : pieces)
    if (!p.is_match) out.emplace_back(p.begin, p.end);
  return out;
}

}  // namespace rlhf
