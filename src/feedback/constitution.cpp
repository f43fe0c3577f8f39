#include "feedback/constitution.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "generate/sampler.h"

namespace rlhf {

namespace {

std::string req_string(const Json& j, const char* key, const std::string& where, bool allow_empty = false) {
  RLHF_CHECK(j.contains(key), where, ": missing \"", key, "\"; add it (a string)");
  RLHF_CHECK(j[key].is_string(), where, ": \"", key, "\" must be a string, got ", j[key].type_name());
  std::string s = j[key].get<std::string>();
  RLHF_CHECK(allow_empty || !s.empty(), where, ": \"", key, "\" is empty; write the text");
  return s;
}

std::string opt_string(const Json& j, const char* key, const std::string& where, const std::string& def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  RLHF_CHECK(j[key].is_string(), where, ": \"", key, "\" must be a string, got ", j[key].type_name());
  return j[key].get<std::string>();
}

std::vector<std::string> opt_strings(const Json& j, const char* key, const std::string& where,
                                     const std::vector<std::string>& def, size_t min_size) {
  if (!j.contains(key) || j[key].is_null()) return def;
  RLHF_CHECK(j[key].is_array(), where, ": \"", key, "\" must be a list of strings");
  std::vector<std::string> out;
  for (auto& e : j[key]) {
    RLHF_CHECK(e.is_string() && !e.get<std::string>().empty(), where, ": \"", key, "\" must hold non-empty strings");
    out.push_back(e.get<std::string>());
  }
  RLHF_CHECK(out.size() >= min_size, where, ": \"", key, "\" needs at least ", min_size, " entries");
  std::set<std::string> uniq(out.begin(), out.end());
  RLHF_CHECK(uniq.size() == out.size(), where, ": \"", key, "\" has the same text twice");
  return out;
}

void check_keys(const Json& j, const std::set<std::string>& known, const std::string& where) {
  for (auto& [k, v] : j.items()) {
    if (k.rfind('_', 0) == 0) continue;
    if (known.count(k)) continue;
    std::string list;
    for (auto& s : known) list += (list.empty() ? "" : ", ") + s;
    RLHF_FAIL(where, ": unknown field \"", k, "\" (known: ", list, "; fields starting with _ are comments)");
  }
}

}  // namespace

std::string fill_template(const std::string& tpl, const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  out.reserve(tpl.size() + 256);
  for (size_t i = 0; i < tpl.size();) {
    bool done = false;
    if (tpl[i] == '{') {
      for (auto& [k, v] : vars) {
        if (tpl.compare(i + 1, k.size(), k) == 0 && i + 1 + k.size() < tpl.size() && tpl[i + 1 + k.size()] == '}') {
          out += v;
          i += k.size() + 2;
          done = true;
          break;
        }
      }
    }
    if (!done) out += tpl[i++];
  }
  return out;
}

size_t Constitution::find(const std::string& name) const {
  std::string names;
  for (size_t i = 0; i < principles.size(); ++i) {
    if (principles[i].name == name) return i;
    names += (i ? ", " : "") + principles[i].name;
  }
  RLHF_FAIL(source, ": no principle named \"", name, "\" (it has: ", names, ")");
}

std::vector<size_t> Constitution::with_tag(const std::string& tag) const {
  std::vector<size_t> out;
  std::set<std::string> tags;
  for (size_t i = 0; i < principles.size(); ++i) {
    auto& p = principles[i];
    if (p.name == tag || std::find(p.tags.begin(), p.tags.end(), tag) != p.tags.end()) out.push_back(i);
    tags.insert(p.tags.begin(), p.tags.end());
  }
  std::string list;
  for (auto& t : tags) list += (list.empty() ? "" : ", ") + t;
  RLHF_CHECK(!out.empty(), source, ": no principle has the tag or name \"", tag, "\" (tags: ", list.empty() ? "none" : list, ")");
  return out;
}

Json Constitution::to_json() const {
  Json ps = Json::array();
  for (auto& p : principles)
    ps.push_back({{"name", p.name}, {"tags", p.tags}, {"critique_request", p.critique_request},
                  {"revision_request", p.revision_request}, {"comparison", p.comparison}, {"weight", p.weight}});
  Json ce = Json::array(), me = Json::array();
  for (auto& e : critique_examples)
    ce.push_back({{"prompt", e.prompt}, {"response", e.response}, {"critique_request", e.critique_request},
                  {"critique", e.critique}, {"revision_request", e.revision_request}, {"revision", e.revision}});
  for (auto& e : comparison_examples)
    me.push_back({{"prompt", e.prompt}, {"response_a", e.response_a}, {"response_b", e.response_b},
                  {"question", e.question}, {"answer", e.answer == 0 ? "A" : "B"}});
  const JudgeFormat& f = judge;
  Json jf = {{"system", f.system},
             {"comparison_template", f.comparison_template},
             {"answer_prefix", f.answer_prefix},
             {"options", f.options},
             {"score_template", f.score_template},
             {"score_question", f.score_question},
             {"score_answer_prefix", f.score_answer_prefix},
             {"score_options", f.score_options},
             {"cot_prefix", f.cot_prefix},
             {"cot_answer", f.cot_answer}};
  return {{"name", name}, {"principles", ps}, {"critique_examples", ce}, {"comparison_examples", me}, {"judge", jf}};
}

Constitution parse_constitution(const Json& j, const std::string& where) {
  RLHF_CHECK(j.is_object(), where, ": a constitution must be a JSON object with \"principles\"");
  check_keys(j, {"name", "about", "principles", "critique_examples", "comparison_examples", "judge"}, where);
  Constitution c;
  c.source = where;
  c.name = opt_string(j, "name", where, "constitution");
  RLHF_CHECK(j.contains("principles") && j["principles"].is_array() && !j["principles"].empty(), where,
             ": \"principles\" must be a non-empty list of {\"name\", \"critique_request\", \"revision_request\", \"comparison\"}");
  std::set<std::string> names;
  for (size_t i = 0; i < j["principles"].size(); ++i) {
    const Json& p = j["principles"][i];
    std::string w = where + ": principles[" + std::to_string(i) + "]";
    RLHF_CHECK(p.is_object(), w, " must be an object");
    check_keys(p, {"name", "critique_request", "revision_request", "comparison", "tags", "weight"}, w);
    Principle pr;
    pr.name = req_string(p, "name", w);
    w += " (" + pr.name + ")";
    RLHF_CHECK(names.insert(pr.name).second, w, ": the name is used twice; principle names must be unique");
    pr.critique_request = req_string(p, "critique_request", w);
    pr.revision_request = req_string(p, "revision_request", w);
    pr.comparison = req_string(p, "comparison", w);
    pr.tags = opt_strings(p, "tags", w, {}, 0);
    if (p.contains("weight")) {
      RLHF_CHECK(p["weight"].is_number() && p["weight"].get<double>() > 0, w, ": \"weight\" must be a number > 0");
      pr.weight = p["weight"].get<double>();
    }
    c.principles.push_back(std::move(pr));
  }
  if (j.contains("critique_examples")) {
    RLHF_CHECK(j["critique_examples"].is_array(), where, ": \"critique_examples\" must be a list");
    for (size_t i = 0; i < j["critique_examples"].size(); ++i) {
      const Json& e = j["critique_examples"][i];
      std::string w = where + ": critique_examples[" + std::to_string(i) + "]";
      RLHF_CHECK(e.is_object(), w, " must be an object");
      check_keys(e, {"prompt", "response", "critique_request", "critique", "revision_request", "revision"}, w);
      CritiqueExample x;
      x.prompt = req_string(e, "prompt", w);
      x.response = req_string(e, "response", w);
      x.critique_request = opt_string(e, "critique_request", w, c.principles[0].critique_request);
      x.critique = req_string(e, "critique", w);
      x.revision_request = opt_string(e, "revision_request", w, c.principles[0].revision_request);
      x.revision = req_string(e, "revision", w);
      c.critique_examples.push_back(std::move(x));
    }
  }
  if (j.contains("comparison_examples")) {
    RLHF_CHECK(j["comparison_examples"].is_array(), where, ": \"comparison_examples\" must be a list");
    for (size_t i = 0; i < j["comparison_examples"].size(); ++i) {
      const Json& e = j["comparison_examples"][i];
      std::string w = where + ": comparison_examples[" + std::to_string(i) + "]";
      RLHF_CHECK(e.is_object(), w, " must be an object");
      check_keys(e, {"prompt", "response_a", "response_b", "question", "answer"}, w);
      ComparisonExample x;
      x.prompt = req_string(e, "prompt", w);
      x.response_a = req_string(e, "response_a", w);
      x.response_b = req_string(e, "response_b", w);
      x.question = opt_string(e, "question", w, c.principles[0].comparison);
      std::string a = req_string(e, "answer", w);
      RLHF_CHECK(a == "A" || a == "B", w, ": \"answer\" must be \"A\" or \"B\", got \"", a, "\"");
      x.answer = a == "A" ? 0 : 1;
      c.comparison_examples.push_back(std::move(x));
    }
  }
  if (j.contains("judge")) {
    const Json& f = j["judge"];
    std::string w = where + ": judge";
    RLHF_CHECK(f.is_object(), w, " must be an object");
    check_keys(f, {"system", "comparison_template", "answer_prefix", "options", "score_template", "score_question",
                   "score_answer_prefix", "score_options", "cot_prefix", "cot_answer"}, w);
    JudgeFormat& d = c.judge;
    d.system = opt_string(f, "system", w, d.system);
    d.comparison_template = opt_string(f, "comparison_template", w, d.comparison_template);
    d.answer_prefix = opt_string(f, "answer_prefix", w, d.answer_prefix);
    d.options = opt_strings(f, "options", w, d.options, 2);
    RLHF_CHECK(d.options.size() == 2, w, ": \"options\" must be the two answers (for response A and response B)");
    d.score_template = opt_string(f, "score_template", w, d.score_template);
    d.score_question = opt_string(f, "score_question", w, d.score_question);
    d.score_answer_prefix = opt_string(f, "score_answer_prefix", w, d.score_answer_prefix);
    d.score_options = opt_strings(f, "score_options", w, d.score_options, 2);
    d.cot_prefix = opt_string(f, "cot_prefix", w, d.cot_prefix);
    d.cot_answer = opt_string(f, "cot_answer", w, d.cot_answer);
  }
  const JudgeFormat& d = c.judge;
  for (const char* key : {"{response_a}", "{response_b}", "{question}"})
    RLHF_CHECK(d.comparison_template.find(key) != std::string::npos, where, ": judge.comparison_template has no ", key,
               "; the judge must see both responses and the principle's question");
  RLHF_CHECK(d.score_template.find("{response}") != std::string::npos, where,
             ": judge.score_template has no {response}; the judge must see the response it scores");
  return c;
}

Constitution load_constitution(const std::filesystem::path& path) {
  Json j = read_json_file(path, "constitution");
  return parse_constitution(j, path.string());
}

std::vector<size_t> draw_principles(const Constitution& c, const std::vector<size_t>& pool, size_t count, uint64_t seed,
                                    uint64_t stream) {
  std::vector<size_t> left = pool, out;
  count = std::min(count, left.size());
  for (size_t k = 0; k < count; ++k) {
    double total = 0;
    for (auto i : left) total += c.principles[i].weight;
    double u = counter_uniform(derive_seed(seed, stream), k) * total;
    size_t pick = left.size() - 1;
    for (size_t q = 0; q < left.size(); ++q) {
      u -= c.principles[left[q]].weight;
      if (u < 0) {
        pick = q;
        break;
      }
    }
    out.push_back(left[pick]);
    left.erase(left.begin() + long(pick));
  }
  return out;
}

}  // namespace rlhf
