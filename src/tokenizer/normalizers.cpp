// The normalizers of tokenizer.json and the factory that reads them.
#include "tokenizer/normalizers.h"

#include <vector>

#include "core/error.h"

namespace rlhf {

namespace {

class Nfc : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    if (!is_nfc_quick(s.get())) s.transform(nfc_with_changes(s.get()));
  }
};

// Prepends a string (Llama 2's "▁") to every non-empty piece.
class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(NormalizedString& s) const override { s.prepend(prepend_); }

 private:
  std::string prepend_;
};

class Replace : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override { s.replace(pattern_, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& step : steps_) step->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  RLHF_CHECK(j.is_object(), where, ": expected an object or null, got ", json_type_name(j));
  std::string type = json_require<std::string>(j, "type", where);
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "Prepend") return std::make_unique<Prepend>(json_require<std::string>(j, "prepend", where));
  if (type == "Replace") {
    RLHF_CHECK(j.contains("pattern"), where, ": Replace needs a \"pattern\"");
    return std::make_unique<Replace>(Pattern::from_json(j["pattern"], where + ".pattern"),
                                     json_require<std::string>(j, "content", where));
  }
  if (type == "Sequence") {
    RLHF_CHECK(j.contains("normalizers") && j["normalizers"].is_array(), where,
               ": Sequence needs a \"normalizers\" array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < j["normalizers"].size(); ++i)
      if (auto n = make_normalizer(j["normalizers"][i], where + ".normalizers[" + std::to_string(i) + "]"))
        steps.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  RLHF_FAIL(where, ": normalizer type \"", type, "\" is not supported (supported: NFC, Prepend, Replace, Sequence)");
}

}  // namespace rlhf
