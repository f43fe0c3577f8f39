// NFC: table lookups, Hangul arithmetic, and the decomposition / canonical ordering /
// recomposition steps of unicode_normalization_alignments with their alignment changes.
#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "tokenizer/utf8.h"

namespace rlhf {

namespace {

struct CccRange {
  char32_t first, last;
  uint8_t ccc;
};
struct DecompEntry {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct ComposeEntry {
  char32_t first, second, composite;
};
struct CpRange {
  char32_t first, last;
};

#include "tokenizer/unicode_tables.inc"

// Hangul syllables are composed and decomposed arithmetically (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

bool is_unsafe(char32_t c) {
  auto it = std::upper_bound(std::begin(kNfcUnsafe), std::end(kNfcUnsafe), c,
                             [](char32_t v, const CpRange& r) { return v < r.first; });
  return it != std::begin(kNfcUnsafe) && c <= std::prev(it)->last;
}

template <class F>
void decompose(char32_t c, F emit) {
  if (c >= kSBase && c < kSBase + kSCount) {
    char32_t s = c - kSBase;
    emit(kLBase + s / kNCount);
    emit(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) emit(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), c,
                             [](const DecompEntry& e, char32_t v) { return e.cp < v; });
  if (it == std::end(kDecomp) || it->cp != c) {
    emit(c);
    return;
  }
  for (int k = 0; k < it->length; ++k) emit(kDecompData[it->offset + k]);
}

std::optional<char32_t> compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompose), std::end(kCompose), std::pair{a, b},
                             [](const ComposeEntry& e, const std::pair<char32_t, char32_t>& v) {
                               return std::pair{e.first, e.second} < v;
                             });
  if (it != std::end(kCompose) && it->first == a && it->second == b) return it->composite;
  return std::nullopt;
}

// Canonical decomposition plus canonical ordering: every run of non-starters is stably sorted by
// combining class. The first character of each input character's decomposition replaces it
// (change 0), the others are inserted (change 1).
std::vector<CharChange> decompose_ordered(std::string_view s) {
  std::vector<CharChange> out;
  out.reserve(s.size());
  size_t run_begin = 0;  // first non-starter of the current run
  auto close_run = [&] {
    std::stable_sort(out.begin() + run_begin, out.end(), [](const CharChange& x, const CharChange& y) {
      return combining_class(x.c) < combining_class(y.c);
    });
  };
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::next(s, i);
    bool first = true;
    decompose(c, [&](char32_t d) {
      if (combining_class(d) == 0) {
        close_run();
        run_begin = out.size() + 1;
      }
      out.push_back({d, first ? 0 : 1});
      first = false;
    });
  }
  close_run();
  return out;
}

}  // namespace

int combining_class(char32_t c) {
  auto it = std::upper_bound(std::begin(kCccRanges), std::end(kCccRanges), c,
                             [](char32_t v, const CccRange& r) { return v < r.first; });
  if (it == std::begin(kCccRanges)) return 0;
  --it;
  return c <= it->last ? it->ccc : 0;
}

bool is_nfc_quick(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    if (is_unsafe(utf8::next(s, i))) return false;
  }
  return true;
}

// The recomposition step of unicode_normalization_alignments, transcribed: a starter waits as
// "composee" for the marks that follow; marks that compose with it fold their change into its
// (change_k + change_mark - 1); blocked marks wait in `blocked` and come out after it.
std::vector<CharChange> nfc_with_changes(std::string_view s) {
  std::vector<CharChange> out, blocked;
  out.reserve(s.size());
  std::optional<CharChange> composee;
  int last_ccc = -1;  // class of the last blocked mark, -1 when none
  for (const CharChange& ch : decompose_ordered(s)) {
    int cls = combining_class(ch.c);
    if (!composee) {
      if (cls != 0) out.push_back(ch);
      else composee = ch;
      continue;
    }
    CharChange k = *composee;
    if (last_ccc >= 0 && last_ccc >= cls) {  // `ch` is blocked from the composee
      if (cls == 0) {
        out.push_back(k);
        out.insert(out.end(), blocked.begin(), blocked.end());
        blocked.clear();
        composee = ch;
        last_ccc = -1;
      } else {
        blocked.push_back(ch);
        last_ccc = cls;
      }
      continue;
    }
    if (auto r = compose(k.c, ch.c)) {
      composee = CharChange{*r, k.change + ch.change - 1};
      continue;
    }
    if (last_ccc < 0 && cls == 0) {
      out.push_back(k);
      composee = ch;
      continue;
    }
    blocked.push_back(ch);
    last_ccc = cls;
  }
  if (composee) out.push_back(*composee);
  out.insert(out.end(), blocked.begin(), blocked.end());
  return out;
}

}  // namespace rlhf
