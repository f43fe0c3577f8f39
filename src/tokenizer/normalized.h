// A piece of the input text as the pipeline transforms it (normalizers, Metaspace, ByteLevel),
// with, for every byte of the transformed text, the byte range of the input it came from — the
// equivalent of Hugging Face's NormalizedString, with the same alignment rules so that token
// offsets agree. Untransformed pieces (the common case) carry no alignment table at all.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/pattern.h"
#include "tokenizer/unicode_nfc.h"

namespace rlhf {

class NormalizedString {
 public:
  // The input bytes [begin, begin + text.size()), untransformed.
  NormalizedString(std::string_view text, size_t begin);

  const std::string& get() const { return text_; }
  bool empty() const { return text_.empty(); }
  // The input range this piece covers.
  size_t original_begin() const { return begin_; }
  size_t original_end() const { return end_; }

  // Input range [begin, end) of the transformed bytes [b, e), b < e: from the start of the
  // character byte b belongs to, to the end of the one byte e - 1 belongs to.
  std::pair<size_t, size_t> original_range(size_t b, size_t e) const;

  // The transformed bytes [b, e) (on character boundaries) as a piece of their own.
  NormalizedString slice(size_t b, size_t e) const;

  // Replaces the whole text by `dest`; `initial_removed` characters at the start are dropped.
  // Transcribes NormalizedString::transform_range, alignments included.
  void transform(const std::vector<CharChange>& dest, size_t initial_removed = 0);
  void prepend(std::string_view s);                            // no-op on an empty piece
  void replace(const Pattern& pattern, std::string_view content);  // every match becomes content
  std::vector<NormalizedString> split(const Pattern& pattern, SplitBehavior behavior, bool invert = false) const;

 private:
  NormalizedString() = default;
  using Span = std::pair<uint32_t, uint32_t>;
  Span align_at(size_t i) const;  // input range of transformed byte i
  void materialize();             // builds align_ for an untransformed piece

  std::string text_;
  std::vector<Span> align_;  // per byte of text_; empty while text_ is the input itself
  size_t begin_ = 0, end_ = 0;
};

}  // namespace rlhf
