#include "data/preference_data.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "data/chat_data.h"
#include "io/jsonl.h"

namespace rlhf {

std::string PreferenceDataStats::describe() const {
  std::ostringstream s;
  s << records << " prompts, " << responses << " responses, " << pairs << " pairs";
  if (unpaired) s << ", " << unpaired << " unpaired";
  if (identical_pairs) s << ", " << identical_pairs << " pairs of identical responses dropped (ties)";
  if (all_identical) s << ", " << all_identical << " records with every response the same text (no preference)";
  if (truncated) s << ", " << truncated << " sequences truncated";
  if (dropped_empty) s << ", " << dropped_empty << " records dropped (a response cut to nothing)";
  if (bad_lines) s << ", " << bad_lines << " bad lines skipped";
  return s.str();
}

std::vector<int64_t> response_offsets(const std::vector<PreferenceExample>& data) {
  std::vector<int64_t> off;
  int64_t n = 0;
  for (auto& e : data) {
    off.push_back(n);
    n += int64_t(e.responses.size());
  }
  off.push_back(n);
  return off;
}

FlatResponses flatten_responses(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& offsets,
                                const std::vector<int64_t>& idx) {
  FlatResponses f;
  for (auto i : idx) {
    f.first.push_back(int64_t(f.seqs.size()));
    for (size_t k = 0; k < data[size_t(i)].responses.size(); ++k) {
      f.seqs.push_back(&data[size_t(i)].responses[k]);
      f.ids.push_back(offsets[size_t(i)] + int64_t(k));
    }
  }
  return f;
}

FlatPairs flatten_pairs(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                        const FlatResponses& f) {
  FlatPairs p;
  for (size_t k = 0; k < idx.size(); ++k)
    for (auto& pr : data[size_t(idx[k])].pairs) {
      p.better.push_back(f.first[k] + pr.better);
      p.worse.push_back(f.first[k] + pr.worse);
      p.owner.push_back(int64_t(k));
      p.margin.push_back(pr.margin);
      p.p_better.push_back(pr.p_better);
    }
  return p;
}

torch::Tensor pair_normalizers(const std::vector<PreferenceExample>& data, const std::vector<int64_t>& idx,
                               torch::Device device) {
  std::vector<float> n;
  for (auto i : idx) n.push_back(float(data[size_t(i)].pair_normalizer()));
  return torch::tensor(n).to(device);
}

std::vector<PreferencePair> pairs_from_ranks(const std::vector<int>& ranks) {
  std::vector<PreferencePair> out;
  for (size_t i = 0; i < ranks.size(); ++i)
    for (size_t j = 0; j < ranks.size(); ++j)
      if (ranks[i] < ranks[j]) out.push_back({int(i), int(j)});
  return out;
}

// Named (not anonymous): PreferenceParser::Impl below holds a Builder, and a class with external
// linkage may not have a member of an internal-linkage type (GCC -Wsubobject-linkage).
namespace preference_detail {

// A prompt: text, or a conversation.
struct Prompt {
  bool chat = false;
  std::string text;
  std::vector<ChatMessage> messages;
};

Prompt parse_prompt(const Json& v, const std::string& where) {
  Prompt p;
  if (v.is_string()) {
    p.text = v.get<std::string>();
  } else {
    RLHF_CHECK(v.is_array(), where, ": \"prompt\" must be a string or a list of messages");
    p.chat = true;
    p.messages = parse_chat_messages(v, where + ": prompt");
  }
  return p;
}

// A response: text, or messages (a bare string with a chat prompt is one assistant message).
std::vector<ChatMessage> response_messages(const Json& v, const std::string& where) {
  if (v.is_string()) return {ChatMessage{ChatRole::assistant, v.get<std::string>()}};
  return parse_chat_messages(v, where);
}

std::string response_key_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Longest common prefix of two strings, backed off to a UTF-8 character boundary.
size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < a.size() && (static_cast<unsigned char>(a[n]) & 0xC0) == 0x80) --n;
  return n;
}

class Builder {
 public:
  Builder(const Tokenizer& tok, const PreferenceDataOptions& o, PreferenceDataStats& st)
      : tok_(tok), o_(o), st_(st), chat_(tok, o.chat_template) {}

  TokenizedExample response(const Prompt& p, const Json& r, const std::string& where) {
    TokenizedExample ex;
    if (p.chat || r.is_array()) {
      RLHF_CHECK(p.chat, where, ": a message-list response needs a message-list prompt");
      ex = tokenize_chat_completion(p.messages, response_messages(r, where), where, tok_, chat_.get());
    } else {
      RLHF_CHECK(r.is_string(), where, " must be a string or a list of messages");
      const std::string& text = r.get_ref<const std::string&>();
      RLHF_CHECK(!text.empty(), where, " is empty");
      std::string full = p.text + text;
      Encoding enc = tok_.encode_with_offsets(full, /*add_special_tokens=*/true);
      ex.ids = enc.ids;
      for (auto& off : enc.offsets) ex.loss_mask.push_back(off.second > int64_t(p.text.size()) ? 1 : 0);
      if (o_.add_eos && tok_.eos_id() >= 0 && ex.ids.back() != tok_.eos_id()) {
        ex.ids.push_back(tok_.eos_id());
        ex.loss_mask.push_back(1);
      }
    }
    if (!ex.loss_mask.empty()) ex.loss_mask[0] = 0;
    truncate(ex);
    ++st_.responses;
    return ex;
  }
  void count_identical_pair() { ++st_.identical_pairs; }

 private:
  // Keeps prompt tokens up to max_prompt_length (its start or end) and the response's start.
  void truncate(TokenizedExample& ex) {
    if (int64_t(ex.ids.size()) <= o_.max_length) return;
    ++st_.truncated;
    size_t split = 0;
    while (split < ex.loss_mask.size() && !ex.loss_mask[split]) ++split;
    std::vector<int64_t> prompt(ex.ids.begin(), ex.ids.begin() + long(split));
    std::vector<int64_t> resp(ex.ids.begin() + long(split), ex.ids.end());
    int64_t keep_prompt = std::min<int64_t>(int64_t(prompt.size()), o_.max_prompt_length);
    keep_prompt = std::min<int64_t>(keep_prompt, o_.max_length);
    if (o_.prompt_truncation == "keep_end") prompt.erase(prompt.begin(), prompt.end() - keep_prompt);
    else prompt.resize(size_t(keep_prompt));
    int64_t room = o_.max_length - int64_t(prompt.size());
    if (int64_t(resp.size()) > room) resp.resize(size_t(std::max<int64_t>(0, room)));
    ex.ids = prompt;
    ex.ids.insert(ex.ids.end(), resp.begin(), resp.end());
    ex.loss_mask.assign(prompt.size(), 0);
    ex.loss_mask.insert(ex.loss_mask.end(), resp.size(), 1);
    if (!ex.loss_mask.empty()) ex.loss_mask[0] = 0;
  }

  const Tokenizer& tok_;
  const PreferenceDataOptions& o_;
  PreferenceDataStats& st_;
  LazyChatTemplate chat_;
};

}  // namespace preference_detail

std::vector<int> record_ranks(const Json& j, size_t k, const std::string& where) {
  std::vector<int> ranks(k, -1);
  if (j.contains("ranks")) {
    auto r = j["ranks"];
    RLHF_CHECK(r.is_array() && r.size() == k, where, ": \"ranks\" must list one rank per response (", k, ")");
    for (size_t i = 0; i < k; ++i) {
      RLHF_CHECK(r[i].is_number_integer(), where, ": \"ranks\" must hold integers (smaller = better)");
      ranks[i] = r[i].get<int>();
    }
    return ranks;
  }
  RLHF_CHECK(j.contains("ranking"), where, ": \"responses\" need a \"ranking\" (indices, best first) or \"ranks\"");
  const Json& r = j["ranking"];
  RLHF_CHECK(r.is_array(), where, ": \"ranking\" must be a list of response indices, best first");
  int level = 0;
  for (const Json& entry : r) {
    std::vector<Json> tied = entry.is_array() ? std::vector<Json>(entry.begin(), entry.end()) : std::vector<Json>{entry};
    RLHF_CHECK(!tied.empty(), where, ": \"ranking\" has an empty tie group");
    for (const Json& e : tied) {
      RLHF_CHECK(e.is_number_integer(), where, ": \"ranking\" entries must be response indices or lists of them");
      int64_t idx = e.get<int64_t>();
      RLHF_CHECK(idx >= 0 && idx < int64_t(k), where, ": \"ranking\" names response ", idx, " but there are only ", k,
                 " responses (indices 0..", k - 1, ")");
      RLHF_CHECK(ranks[size_t(idx)] < 0, where, ": \"ranking\" names response ", idx, " twice");
      ranks[size_t(idx)] = level;
    }
    ++level;
  }
  for (size_t i = 0; i < k; ++i) RLHF_CHECK(ranks[i] >= 0, where, ": response ", i, " is not in \"ranking\"");
  return ranks;
}

namespace preference_detail {

PreferenceExample parse_record(const Json& j, const std::string& where, Builder& b, const PreferenceDataOptions& o) {
  PreferenceExample ex;
  if (j.contains("chosen") || j.contains("rejected")) {
    RLHF_CHECK(j.contains("chosen") && j.contains("rejected"), where, ": needs both \"chosen\" and \"rejected\"");
    const Json &c = j["chosen"], &r = j["rejected"];
    RLHF_CHECK(response_key_text(c) != response_key_text(r), where,
               ": \"chosen\" and \"rejected\" are identical; such a pair teaches nothing");
    Prompt p;
    Json cj = c, rj = r;
    if (j.contains("prompt")) {
      p = parse_prompt(j["prompt"], where);
    } else if (c.is_string() && r.is_string()) {  // implicit prompt: the shared prefix
      size_t n = common_prefix(c.get<std::string>(), r.get<std::string>());
      p.text = c.get<std::string>().substr(0, n);
      cj = c.get<std::string>().substr(n);
      rj = r.get<std::string>().substr(n);
    } else {  // conversations: the shared leading messages
      RLHF_CHECK(c.is_array() && r.is_array(), where, ": \"chosen\"/\"rejected\" must both be strings or message lists");
      size_t n = 0;
      while (n + 1 < c.size() && n + 1 < r.size() && c[n] == r[n]) ++n;
      p.chat = true;
      p.messages = parse_chat_messages(Json(std::vector<Json>(c.begin(), c.begin() + long(n))), where + ": prompt");
      cj = Json(std::vector<Json>(c.begin() + long(n), c.end()));
      rj = Json(std::vector<Json>(r.begin() + long(n), r.end()));
    }
    ex.responses.push_back(b.response(p, cj, where + ": \"chosen\""));
    ex.responses.push_back(b.response(p, rj, where + ": \"rejected\""));
    PreferencePair pair{0, 1};
    if (j.contains("margin")) {
      RLHF_CHECK(j["margin"].is_number(), where, ": \"margin\" must be a number");
      pair.margin = j["margin"].get<float>();
      RLHF_CHECK(std::isfinite(pair.margin), where, ": \"margin\" must be finite");
    }
    if (j.contains("p_chosen") && !j["p_chosen"].is_null()) {
      RLHF_CHECK(j["p_chosen"].is_number(), where, ": \"p_chosen\" must be a number in [0, 1]");
      pair.p_better = j["p_chosen"].get<float>();
      RLHF_CHECK(pair.p_better >= 0 && pair.p_better <= 1, where, ": \"p_chosen\" is ", pair.p_better,
                 "; it must be a probability in [0, 1]");
    }
    ex.pairs.push_back(pair);
  } else if (j.contains("responses")) {
    RLHF_CHECK(j.contains("prompt"), where, ": ranked \"responses\" need a \"prompt\"");
    Prompt p = parse_prompt(j["prompt"], where);
    const Json& rs = j["responses"];
    RLHF_CHECK(rs.is_array() && rs.size() >= (o.allow_unranked ? 1u : 2u), where,
               ": \"responses\" must be a list of at least two responses");
    for (size_t i = 0; i < rs.size(); ++i)
      ex.responses.push_back(b.response(p, rs[i], where + ": response " + std::to_string(i)));
    if (o.allow_unranked && !j.contains("ranking") && !j.contains("ranks") && !j.contains("comparisons")) return ex;
    // Samples of one prompt repeat themselves, and a rater has to put the copies somewhere: a pair of
    // identical texts is a tie (as chosen == rejected teaches nothing), dropped and counted.
    // "comparisons": [[i, j, P(i better than j)], ...] (rlhf judge): soft-labelled pairs, which take the
    // place of the ranking beside them.
    std::vector<PreferencePair> all;
    if (j.contains("comparisons")) {
      const Json& cs = j["comparisons"];
      RLHF_CHECK(cs.is_array(), where, ": \"comparisons\" must be a list of [i, j, p] (p = P(response i better than j))");
      for (auto& c : cs) {
        RLHF_CHECK(c.is_array() && c.size() >= 3 && c[0].is_number_integer() && c[1].is_number_integer() && c[2].is_number(),
                   where, ": a comparison must be [i, j, p] with response indices i, j and p in [0, 1]");
        int64_t x = c[0].get<int64_t>(), y = c[1].get<int64_t>();
        double pr = c[2].get<double>();
        RLHF_CHECK(x >= 0 && y >= 0 && x < int64_t(rs.size()) && y < int64_t(rs.size()) && x != y, where,
                   ": comparison [", x, ", ", y, "] names responses outside 0..", rs.size() - 1);
        RLHF_CHECK(pr >= 0 && pr <= 1, where, ": comparison probability ", pr, " is not in [0, 1]");
        PreferencePair q;
        q.better = int(pr >= 0.5 ? x : y);
        q.worse = int(pr >= 0.5 ? y : x);
        q.p_better = float(std::max(pr, 1 - pr));
        all.push_back(q);
      }
      RLHF_CHECK(!all.empty(), where, ": \"comparisons\" is empty; the record implies no preference");
    } else {
      all = pairs_from_ranks(record_ranks(j, rs.size(), where));
    }
    ex.ranked_pairs = int64_t(all.size());
    for (const auto& pr : all) {
      if (response_key_text(rs[size_t(pr.better)]) == response_key_text(rs[size_t(pr.worse)])) b.count_identical_pair();
      else ex.pairs.push_back(pr);
    }
    // All of them copies of one text (a confident policy): no pair is left; load_preference_data
    // counts such a record.
    RLHF_CHECK(!all.empty(), where, ": every response is tied; the ranking implies no preference");
  } else if (j.contains("completion") && j.contains("label")) {
    RLHF_CHECK(o.allow_unpaired, where, ": unpaired {\"completion\", \"label\"} records are for KTO (rlhf dpo --loss kto)");
    RLHF_CHECK(j["label"].is_boolean(), where, ": \"label\" must be true (desirable) or false");
    RLHF_CHECK(j.contains("prompt"), where, ": needs a \"prompt\"");
    Prompt p = parse_prompt(j["prompt"], where);
    ex.responses.push_back(b.response(p, j["completion"], where + ": \"completion\""));
    ex.label = j["label"].get<bool>() ? 1 : 0;
  } else {
    RLHF_FAIL(where, ": not a preference record: expected \"chosen\"/\"rejected\", \"responses\"/\"ranking\", or "
                     "\"completion\"/\"label\"");
  }
  return ex;
}

}  // namespace preference_detail
using namespace preference_detail;

struct PreferenceParser::Impl {
  Impl(const Tokenizer& tok, const PreferenceDataOptions& o) : opts(o), builder(tok, opts, stats) {}
  PreferenceDataOptions opts;
  PreferenceDataStats stats;
  Builder builder;
};

PreferenceParser::PreferenceParser(const Tokenizer& tok, const PreferenceDataOptions& opts)
    : impl_(std::make_unique<Impl>(tok, opts)) {}
PreferenceParser::~PreferenceParser() = default;
PreferenceExample PreferenceParser::parse(const Json& record, const std::string& where) {
  return parse_record(record, where, impl_->builder, impl_->opts);
}
const PreferenceDataStats& PreferenceParser::stats() const { return impl_->stats; }

void validate_preference_options(const PreferenceDataOptions& opts) {
  RLHF_CHECK(opts.max_length >= 4, "--max-length ", opts.max_length, " must be at least 4 tokens");
  RLHF_CHECK(opts.max_prompt_length >= 0, "--max-prompt-length ", opts.max_prompt_length, " must be >= 0");
  RLHF_CHECK(opts.prompt_truncation == "keep_start" || opts.prompt_truncation == "keep_end",
             "--prompt-truncation \"", opts.prompt_truncation, "\" is not known; use keep_start or keep_end");
}

std::vector<PreferenceExample> load_preference_data(const std::filesystem::path& path, const Tokenizer& tok,
                                                    const PreferenceDataOptions& opts, PreferenceDataStats* stats) {
  validate_preference_options(opts);
  PreferenceParser parser(tok, opts);
  PreferenceDataStats st;
  std::vector<PreferenceExample> out;
  std::vector<int64_t> dropped_lines;
  JsonlReadOptions ro;
  ro.skip_bad_lines = opts.skip_bad_lines;
  read_jsonl(path, ro, &st.bad_lines, [&](const JsonlRecord& r) {
    PreferenceExample ex = parser.parse(r.value, r.where());
    ex.source_line = r.line;
    // Every response one text: no preference, so no gradient; kept (and counted) so that the other
    // records, and the order a seed gives them, stay what they were.
    if (ex.label < 0 && ex.pairs.empty() && !opts.allow_unranked) ++st.all_identical;
    for (auto& resp : ex.responses)
      if (resp.loss_tokens() == 0) {
        ++st.dropped_empty;
        dropped_lines.push_back(r.line);
        return;
      }
    st.pairs += int64_t(ex.pairs.size());
    st.unpaired += ex.label >= 0;
    out.push_back(std::move(ex));
  });
  if (!dropped_lines.empty()) {
    std::string lines;
    for (size_t i = 0; i < dropped_lines.size() && i < 5; ++i) lines += (i ? ", " : "") + std::to_string(dropped_lines[i]);
    log_warn(path.string(), ": ", dropped_lines.size(), " record(s) dropped because a response had no tokens left after "
             "truncation to ", opts.max_length, " tokens (lines ", lines, dropped_lines.size() > 5 ? ", ..." : "",
             "); raise --max-length or lower --max-prompt-length");
  }
  int64_t bad = st.bad_lines, dropped = st.dropped_empty, pairs = st.pairs, unpaired = st.unpaired;
  int64_t same = st.all_identical;
  st = parser.stats();
  st.bad_lines = bad;
  st.dropped_empty = dropped;
  st.all_identical = same;
  st.pairs = pairs;
  st.unpaired = unpaired;
  st.records = int64_t(out.size());
  RLHF_CHECK(!out.empty(), path.string(), ": no usable preference records");
  RLHF_CHECK(st.pairs > 0 || st.unpaired > 0, path.string(), ": no record implies a preference (every ranking ranks "
             "copies of one response); sample more diverse responses");
  if (stats) *stats = st;
  return out;
}

}  // namespace rlhf
