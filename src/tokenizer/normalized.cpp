// Alignment-keeping edits of a piece of text: transform (HF's transform_range), prepend, replace,
// slice and split.
#include "tokenizer/normalized.h"

#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

NormalizedString::NormalizedString(std::string_view text, size_t begin)
    : text_(text), begin_(begin), end_(begin + text.size()) {}

NormalizedString::Span NormalizedString::align_at(size_t i) const {
  if (!align_.empty()) return align_[i];
  size_t b = i;
  while (b > 0 && is_continuation(text_[b])) --b;
  size_t e = b + utf8::sequence_length(static_cast<unsigned char>(text_[b]));
  return {uint32_t(begin_ + b), uint32_t(begin_ + e)};
}

std::pair<size_t, size_t> NormalizedString::original_range(size_t b, size_t e) const {
  return {align_at(b).first, align_at(e - 1).second};
}

void NormalizedString::materialize() {
  if (!align_.empty() || text_.empty()) return;
  align_.resize(text_.size());
  for (size_t i = 0; i < text_.size();) {
    size_t n = utf8::sequence_length(static_cast<unsigned char>(text_[i]));
    for (size_t k = 0; k < n; ++k) align_[i + k] = {uint32_t(begin_ + i), uint32_t(begin_ + i + n)};
    i += n;
  }
}

NormalizedString NormalizedString::slice(size_t b, size_t e) const {
  NormalizedString s;
  s.text_ = text_.substr(b, e - b);
  if (b == e) {
    s.begin_ = s.end_ = b < text_.size() ? align_at(b).first : end_;
    return s;
  }
  std::tie(s.begin_, s.end_) = original_range(b, e);
  if (!align_.empty()) s.align_.assign(align_.begin() + b, align_.begin() + e);
  return s;
}

// A character of `dest` with change 0 or less replaces the next character of the old text and
// takes its alignment (a negative change also removes that many following characters); one with
// a positive change is inserted and takes the alignment of the byte before it.
void NormalizedString::transform(const std::vector<CharChange>& dest, size_t initial_removed) {
  materialize();
  size_t offset = 0;  // byte offset in the old text of the next character to replace
  auto skip_char = [&] {
    if (offset < text_.size()) offset += utf8::sequence_length(static_cast<unsigned char>(text_[offset]));
  };
  for (size_t k = 0; k < initial_removed; ++k) skip_char();
  std::string text;
  std::vector<Span> align;
  text.reserve(text_.size());
  align.reserve(text_.size());
  for (const CharChange& d : dest) {
    Span a;
    if (d.change > 0) {
      a = offset < 1 ? Span{uint32_t(begin_), uint32_t(begin_)} : align_[offset - 1];
    } else {
      a = offset < align_.size() ? align_[offset] : Span{uint32_t(end_), uint32_t(end_)};
      skip_char();
      for (int k = 0; k < -d.change; ++k) skip_char();
    }
    utf8::append(text, d.c);
    align.resize(text.size(), a);
  }
  text_ = std::move(text);
  align_ = std::move(align);
}

// Same alignments as NormalizedString::prepend: the new characters and the old first one all take
// the first character's alignment.
void NormalizedString::prepend(std::string_view s) {
  if (text_.empty()) return;
  materialize();
  Span first = align_[0];
  text_.insert(0, s);
  align_.insert(align_.begin(), s.size(), first);
}

// Same alignments as NormalizedString::replace: the replacement takes the alignment of the last
// byte the match covered (of the byte before an empty match).
void NormalizedString::replace(const Pattern& pattern, std::string_view content) {
  std::vector<Segment> segments = pattern.find_matches(text_);
  if (segments.size() == 1 && !segments[0].is_match) return;
  materialize();
  std::string text;
  std::vector<Span> align;
  for (const Segment& s : segments) {
    if (!s.is_match) {
      text.append(text_, s.begin, s.end - s.begin);
      align.insert(align.end(), align_.begin() + s.begin, align_.begin() + s.end);
      continue;
    }
    Span a = s.end > 0 ? align_[s.end - 1] : Span{uint32_t(begin_), uint32_t(begin_)};
    text.append(content);
    align.resize(text.size(), a);
  }
  text_ = std::move(text);
  align_ = std::move(align);
}

std::vector<NormalizedString> NormalizedString::split(const Pattern& pattern, SplitBehavior behavior,
                                                      bool invert) const {
  std::vector<NormalizedString> out;
  for (auto [b, e] : split_ranges(pattern.find_matches(text_), behavior, invert)) out.push_back(slice(b, e));
  return out;
}

}  // namespace rlhf
