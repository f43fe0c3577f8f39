#include "data/sft_data.h"

#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "data/chat_data.h"
#include "io/jsonl.h"

namespace rlhf {

std::string SftDataStats::describe() const {
  std::ostringstream s;
  s << examples << " examples, " << tokens << " tokens (" << loss_tokens << " trained)";
  if (truncated) s << ", " << truncated << " truncated to max length";
  if (dropped_no_loss) s << ", " << dropped_no_loss << " dropped (nothing left to train after truncation)";
  if (undesirable) s << ", " << undesirable << " with \"label\": false skipped";
  if (bad_lines) s << ", " << bad_lines << " bad lines skipped";
  return s.str();
}

namespace {

// Text + the byte position where the trained part begins: tokens ending after it are trained.
TokenizedExample tokenize_split_text(const std::string& text, size_t train_from, const Tokenizer& tok,
                                     const SftDataOptions& opts) {
  Encoding enc = tok.encode_with_offsets(text, /*add_special_tokens=*/true);
  TokenizedExample ex;
  ex.ids = enc.ids;
  for (size_t i = 0; i < enc.ids.size(); ++i) {
    bool trained = opts.loss_on_all || (enc.offsets[i].second > int64_t(train_from) && !(enc.offsets[i].first == 0 && enc.offsets[i].second == 0));
    ex.loss_mask.push_back(trained ? 1 : 0);
  }
  if (opts.add_eos && tok.eos_id() >= 0 && (ex.ids.empty() || ex.ids.back() != tok.eos_id())) {
    ex.ids.push_back(tok.eos_id());
    ex.loss_mask.push_back(1);
  }
  return ex;
}

const std::string& require_string(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  RLHF_CHECK(it != j.end(), where, ": missing field \"", key, "\"");
  RLHF_CHECK(it->is_string(), where, ": field \"", key, "\" must be a string, got ", json_type_name(*it));
  return it->get_ref<const std::string&>();
}

}  // namespace

TokenizedExample tokenize_sft_record(const Json& j, const std::string& where, const Tokenizer& tok,
                                     const SftDataOptions& opts, LazyChatTemplate* chat) {
  LazyChatTemplate local(tok, opts.chat_template);
  if (!chat) chat = &local;
  TokenizedExample ex;
  if (j.contains("messages")) {
    ex = tokenize_chat_record(j, where, tok, chat->get(), opts.loss_on_all);
  } else if (j.contains("prompt") || j.contains("completion")) {
    auto p = j.find("prompt"), c = j.find("completion");
    RLHF_CHECK(p != j.end(), where, ": has \"completion\" but no \"prompt\"");
    RLHF_CHECK(c != j.end(), where, ": has \"prompt\" but no \"completion\"");
    if (p->is_array() || c->is_array()) {
      ex = tokenize_chat_record(j, where, tok, chat->get(), opts.loss_on_all);
    } else {
      const std::string& prompt = require_string(j, "prompt", where);
      const std::string& completion = require_string(j, "completion", where);
      RLHF_CHECK(!completion.empty() || opts.add_eos, where, ": \"completion\" is empty");
      ex = tokenize_split_text(prompt + completion, prompt.size(), tok, opts);
    }
  } else if (j.contains("text")) {
    const std::string& text = require_string(j, "text", where);
    RLHF_CHECK(!text.empty(), where, ": \"text\" is empty");
    SftDataOptions all = opts;
    all.loss_on_all = true;
    ex = tokenize_split_text(text, 0, tok, all);
  } else {
    RLHF_FAIL(where, ": no \"text\", \"prompt\"/\"completion\" or \"messages\" field; see `rlhf sft --help` for the formats");
  }
  if (!ex.loss_mask.empty()) ex.loss_mask[0] = 0;  // the first token has no context to be predicted from
  return ex;
}

std::vector<TokenizedExample> load_sft_data(const std::filesystem::path& path, const Tokenizer& tok,
                                            const SftDataOptions& opts, SftDataStats* stats) {
  RLHF_CHECK(opts.max_length >= 2, "max length must be at least 2 tokens");
  SftDataStats st;
  std::vector<TokenizedExample> out;
  JsonlReadOptions ro;
  ro.skip_bad_lines = opts.skip_bad_lines;
  LazyChatTemplate chat(tok, opts.chat_template);
  auto records = read_jsonl(path, ro, &st.bad_lines, [&](const JsonlRecord& r) {
    // KTO-style thumbs: SFT imitates what it is given, so an undesirable completion is not training data.
    if (auto l = r.value.find("label"); l != r.value.end()) {
      RLHF_CHECK(l->is_boolean(), r.where(), ": \"label\" must be true (desirable) or false");
      if (!l->get<bool>()) {
        ++st.undesirable;
        return;
      }
    }
    TokenizedExample ex = tokenize_sft_record(r.value, r.where(), tok, opts, &chat);
    ex.source_line = r.line;
    if (int64_t(ex.ids.size()) > opts.max_length) {
      ex.ids.resize(size_t(opts.max_length));
      ex.loss_mask.resize(size_t(opts.max_length));
      ++st.truncated;
    }
    if (ex.loss_tokens() == 0) {
      ++st.dropped_no_loss;
      return;
    }
    st.tokens += int64_t(ex.ids.size());
    st.loss_tokens += ex.loss_tokens();
    out.push_back(std::move(ex));
  });
  st.examples = int64_t(out.size());
  if (st.undesirable > 0)
    log_warn(path.string(), ": skipped ", st.undesirable, " record(s) with \"label\": false (undesirable completions are "
             "not SFT data; use them with `rlhf dpo --loss kto`)");
  RLHF_CHECK(!out.empty() || st.undesirable == 0, path.string(), ": every record has \"label\": false; SFT needs "
             "desirable completions (these are KTO data: `rlhf dpo --loss kto`)");
  RLHF_CHECK(!out.empty(), path.string(), ": no example has any token left to train on (",
             st.dropped_no_loss, " dropped after truncation to ", opts.max_length,
             " tokens); raise --max-length or check the completions");
  if (stats) *stats = st;
  return out;
}

}  // namespace rlhf
