// The raters' side of the task store: handing out items (overlap, leases, a shuffled response order
// per rater), checking and storing labels, skips and drafts (idempotent by submission_id), and each
// rater's progress and history. Every method runs as one SQLite transaction.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "core/error.h"
#include "label/task.h"
#include "label/task_detail.h"

namespace rlhf::label {

using namespace detail;

namespace {

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// shown[p] = the original index of the response this rater sees at position p.
std::vector<int> shuffled_order(size_t k, uint64_t seed, int64_t rater, int64_t item) {
  std::vector<int> v(k);
  std::iota(v.begin(), v.end(), 0);
  uint64_t s = seed * 0x100000001B3ull ^ uint64_t(rater) * 0x9E3779B97F4A7C15ull ^ uint64_t(item) * 0xC2B2AE3D27D4EB4Full;
  for (size_t i = k; i > 1; --i) std::swap(v[i - 1], v[size_t(splitmix(s) % i)]);
  return v;
}

void require_rater(const Who& w) {
  if (w.admin) throw ApiError(403, "the admin token cannot label; open the app with a rater's token");
}

// Keys a request may carry; anything else is most likely a typo and is refused.
void check_keys(const Json& body, const std::set<std::string>& allowed, const char* what) {
  if (!body.is_object()) throw ApiError(400, std::string(what) + ": the body must be a JSON object");
  for (auto& [k, v] : body.items())
    if (!allowed.count(k)) throw ApiError(400, std::string(what) + ": unknown field \"" + k.substr(0, 40) + "\"");
}

std::string submission_id(const Json& body) {
  if (!body.contains("submission_id")) throw ApiError(400, "\"submission_id\" is missing (a random string per submission; a retry sends the same one)");
  const Json& v = body["submission_id"];
  if (!v.is_string()) throw ApiError(400, "\"submission_id\" must be a string, got " + json_type_name(v));
  std::string s = v.get<std::string>();
  if (s.empty() || s.size() > 128 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c > 32 && c < 127; }))
    throw ApiError(400, "\"submission_id\" must be 1-128 printable ASCII characters without spaces");
  return s;
}

// A ranking of k responses, best first, ties nested; every index exactly once. Returns the ranks
// per response (position as served).
std::vector<int> check_ranking(const Json& r, size_t k) {
  if (!r.is_array() || r.empty()) throw ApiError(400, "\"ranking\" must be a non-empty list of response indices, best first");
  std::vector<int> rank(k, -1);
  int level = 0;
  for (const Json& e : r) {
    std::vector<Json> group = e.is_array() ? std::vector<Json>(e.begin(), e.end()) : std::vector<Json>{e};
    if (group.empty()) throw ApiError(400, "\"ranking\" has an empty tie group");
    for (const Json& x : group) {
      if (!x.is_number_integer())
        throw ApiError(400, "\"ranking\" entries must be response indices (integers) or lists of them, got " + json_type_name(x));
      int64_t i = x.get<int64_t>();
      if (i < 0 || i >= int64_t(k))
        throw ApiError(400, "\"ranking\" names response " + std::to_string(i) + " but there are " + std::to_string(k) +
                                " (indices 0.." + std::to_string(k - 1) + ")");
      if (rank[size_t(i)] >= 0) throw ApiError(400, "\"ranking\" names response " + std::to_string(i) + " twice");
      rank[size_t(i)] = level;
    }
    ++level;
  }
  for (size_t i = 0; i < k; ++i)
    if (rank[i] < 0) throw ApiError(400, "\"ranking\" leaves out response " + std::to_string(i) + "; rank every response (ties as nested lists)");
  return rank;
}

// The optional fields of a label, checked; returned in the original response order.
void check_extras(const Json& body, size_t k, const TaskOptions& o, const std::vector<int>& shown, Json& label) {
  if (body.contains("likert") && !body["likert"].is_null()) {
    const Json& l = body["likert"];
    if (!l.is_array() || l.size() != k) throw ApiError(400, "\"likert\" must be a list of " + std::to_string(k) + " scores (1-7 or null), one per response");
    Json orig = Json::array();
    for (size_t i = 0; i < k; ++i) orig.push_back(nullptr);
    for (size_t p = 0; p < k; ++p) {
      const Json& v = l[p];
      if (!v.is_null() && (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 7))
        throw ApiError(400, "\"likert\" scores must be integers from 1 to 7 (or null)");
      orig[size_t(shown[p])] = v;
    }
    label["likert"] = orig;
  }
  if (body.contains("flags") && !body["flags"].is_null()) {
    const Json& f = body["flags"];
    if (!f.is_array() || f.size() != k) throw ApiError(400, "\"flags\" must be a list of " + std::to_string(k) + " lists of flags, one per response");
    Json orig = Json::array();
    for (size_t i = 0; i < k; ++i) orig.push_back(Json::array());
    for (size_t p = 0; p < k; ++p) {
      if (!f[p].is_array()) throw ApiError(400, "\"flags\" entries must be lists of flag names");
      for (const Json& x : f[p]) {
        if (!x.is_string() || std::find(o.flags.begin(), o.flags.end(), x.get<std::string>()) == o.flags.end())
          throw ApiError(400, "\"flags\" may only hold this task's flags (see /api/task)");
        orig[size_t(shown[p])].push_back(x);
      }
    }
    label["flags"] = orig;
  }
  if (body.contains("comment") && !body["comment"].is_null()) {
    if (!body["comment"].is_string()) throw ApiError(400, "\"comment\" must be a string");
    if (body["comment"].get<std::string>().size() > 16000) throw ApiError(400, "\"comment\" is too long (at most 4000 characters)");
    label["comment"] = body["comment"];
  }
  for (const char* b : {"all_unacceptable", "partial"})
    if (body.contains(b) && !body[b].is_null()) {
      if (!body[b].is_boolean()) throw ApiError(400, std::string("\"") + b + "\" must be true or false");
      label[b] = body[b];
    }
}

double check_seconds(const Json& body) {
  if (!body.contains("seconds") || body["seconds"].is_null()) return -1;
  const Json& s = body["seconds"];
  if (!s.is_number() || !std::isfinite(s.get<double>()) || s.get<double>() < 0 || s.get<double>() > 7 * 86400.0)
    throw ApiError(400, "\"seconds\" must be a number of seconds from 0 to a week");
  return s.get<double>();
}

// The last user turn (or the prompt text), cut to about 80 characters on a UTF-8 boundary.
std::string preview(const Json& prompt) {
  std::string text;
  if (prompt.is_string()) text = prompt.get<std::string>();
  else if (prompt.is_array())
    for (auto& m : prompt)
      if (m.is_object() && m.value("role", "") == "user" && m.contains("content") && m["content"].is_string())
        text = m["content"].get<std::string>();
  if (text.size() <= 80) return text;
  size_t n = 80;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n) + "...";
}

}  // namespace

std::vector<int> TaskStore::shown_order(int64_t item, const Who& w) {
  auto s = db_.prepare("SELECT shown FROM assignments WHERE item_id=? AND rater_id=?");
  s.bind(1, item).bind(2, w.rater);
  if (!s.step()) throw ApiError(404, "item " + std::to_string(item) + " is not assigned to you");
  return Json::parse(s.col_text(0)).get<std::vector<int>>();
}

void TaskStore::check_item_access(int64_t item, const Who& w) {
  auto s = db_.prepare("SELECT 1 FROM assignments WHERE item_id=? AND rater_id=?");
  s.bind(1, item).bind(2, w.rater);
  if (s.step()) return;
  auto e = db_.prepare("SELECT 1 FROM items WHERE id=?");
  e.bind(1, item);
  throw ApiError(404, e.step() ? "item " + std::to_string(item) + " is not assigned to you"
                               : "no item " + std::to_string(item) + " in this task");
}

Json TaskStore::item_json(int64_t item, const Who& w, bool with_label) {
  auto s = db_.prepare(
      "SELECT i.prompt, i.responses, a.shown, a.draft FROM items i JOIN assignments a ON a.item_id=i.id "
      "WHERE i.id=? AND a.rater_id=?");
  s.bind(1, item).bind(2, w.rater);
  if (!s.step()) throw ApiError(404, "item " + std::to_string(item) + " is not assigned to you");
  auto resp = Json::parse(s.col_text(1));
  auto shown = Json::parse(s.col_text(2)).get<std::vector<int>>();
  Json served = Json::array();
  for (int i : shown) served.push_back(resp[size_t(i)]);
  Json out = {{"item_id", std::to_string(item)}, {"prompt", Json::parse(s.col_text(0))}, {"responses", served},
              {"draft", s.col_null(3) ? Json(nullptr) : Json::parse(s.col_text(3))}, {"label", nullptr}, {"skipped", nullptr}};
  if (with_label) {
    auto l = db_.prepare("SELECT kind, body, label FROM labels WHERE item_id=? AND rater_id=?");
    l.bind(1, item).bind(2, w.rater);
    if (l.step()) {
      if (l.col_text(0) == "label") out["label"] = Json::parse(l.col_text(1));
      else out["skipped"] = {{"reason", Json::parse(l.col_text(2)).value("reason", "")}};
    }
  }
  return out;
}

Json TaskStore::task_info(const Who& w) {
  require_rater(w);
  return {{"rater", w.name}, {"mode", opts_.mode}, {"likert", opts_.likert}, {"flags", opts_.flags},
          {"guidelines", opts_.guidelines}, {"lease_seconds", opts_.lease_seconds}};
}

std::optional<Json> TaskStore::next(const Who& w) {
  require_rater(w);
  std::lock_guard<std::mutex> g(mu_);
  Transaction t(db_, /*durable=*/false);  // a lease lost in a power cut only returns the item to the queue
  const double now = now_seconds(), fresh = now - opts_.lease_seconds;
  // Room left on an item for this rater: overlap minus the labels and the others' live leases.
  auto room = [&](int64_t item) {
    auto s = db_.prepare(
        "SELECT i.labels + (SELECT count(*) FROM assignments a WHERE a.item_id=i.id AND a.rater_id!=? AND a.state='leased' "
        "AND a.leased_at>?) FROM items i WHERE i.id=?");
    s.bind(1, w.rater).bind(2, fresh).bind(3, item);
    s.step();
    return opts_.overlap - s.col_int(0);
  };
  // 1. the item this rater already holds (a reload, or back after a break) while it still has room
  std::vector<int64_t> held;
  {
    auto s = db_.prepare("SELECT item_id FROM assignments WHERE rater_id=? AND state='leased' ORDER BY leased_at, item_id");
    s.bind(1, w.rater);
    while (s.step()) held.push_back(s.col_int(0));
  }
  for (int64_t item : held) {
    if (room(item) > 0) {
      db_.prepare("UPDATE assignments SET leased_at=? WHERE item_id=? AND rater_id=?").bind(1, now).bind(2, item).bind(3, w.rater).run();
      Json j = item_json(item, w, false);
      t.commit();
      return j;
    }
    // Others filled it while this lease had lapsed: it is no longer this rater's.
    db_.prepare("DELETE FROM assignments WHERE item_id=? AND rater_id=?").bind(1, item).bind(2, w.rater).run();
  }
  // 2. a new item: highest priority first, then the ones closest to complete (agreement needs overlap)
  auto s = db_.prepare(
      "SELECT i.id, i.responses FROM items i WHERE i.labels < ?1 "
      "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id=i.id AND a.rater_id=?2) "
      "AND i.labels + (SELECT count(*) FROM assignments a WHERE a.item_id=i.id AND a.state='leased' AND a.leased_at>?3) < ?1 "
      "ORDER BY i.priority DESC, i.labels DESC, i.id LIMIT 1");
  s.bind(1, opts_.overlap).bind(2, w.rater).bind(3, fresh);
  if (!s.step()) {
    t.commit();
    return std::nullopt;
  }
  int64_t item = s.col_int(0);
  size_t k = Json::parse(s.col_text(1)).size();
  auto shown = shuffled_order(k, opts_.seed, w.rater, item);
  db_.prepare("INSERT INTO assignments(item_id, rater_id, shown, state, leased_at) VALUES(?, ?, ?, 'leased', ?)")
      .bind(1, item).bind(2, w.rater).bind(3, Json(shown).dump()).bind(4, now).run();
  Json j = item_json(item, w, false);
  t.commit();
  return j;
}

Json TaskStore::item(const Who& w, const std::string& item_id) {
  require_rater(w);
  int64_t item = parse_item_id(Json(item_id));
  std::lock_guard<std::mutex> g(mu_);
  check_item_access(item, w);
  return item_json(item, w, true);
}

namespace {

// The (kind, state) a rater's stored answer for an item moves to, with the item's label count kept.
void store_answer(Db& db, int64_t item, int64_t rater, const char* kind, const std::string& body, const Json& label,
                  double seconds, const std::string& sid) {
  const double now = now_seconds();
  std::string before;
  {
    auto s = db.prepare("SELECT kind FROM labels WHERE item_id=? AND rater_id=?");
    s.bind(1, item).bind(2, rater);
    if (s.step()) before = s.col_text(0);
  }
  auto up = db.prepare(
      "INSERT INTO labels(item_id, rater_id, kind, body, label, seconds, created, updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
      "ON CONFLICT(item_id, rater_id) DO UPDATE SET kind=?3, body=?4, label=?5, seconds=?6, updated=?7");
  up.bind(1, item).bind(2, rater).bind(3, kind).bind(4, body).bind(5, label.dump()).bind(7, now);
  if (seconds >= 0) up.bind(6, seconds);
  else up.bind_null(6);
  up.run();
  int delta = (std::string(kind) == "label") - (before == "label");
  if (delta) db.prepare("UPDATE items SET labels=labels+? WHERE id=?").bind(1, delta).bind(2, item).run();
  db.prepare("UPDATE assignments SET state=?, draft=NULL WHERE item_id=? AND rater_id=?")
      .bind(1, std::string(kind) == "label" ? "labelled" : "skipped").bind(2, item).bind(3, rater).run();
  db.prepare("INSERT INTO submissions(submission_id, rater_id, item_id, body) VALUES(?, ?, ?, ?)")
      .bind(1, sid).bind(2, rater).bind(3, item).bind(4, body).run();
}

}  // namespace

// A submission_id seen before: the same body from the same rater is the retry of an acknowledged
// request (answered again, stored once); anything else reusing it is refused.
static std::optional<Json> replayed(Db& db, const std::string& sid, const Who& w, const std::string& body) {
  auto s = db.prepare("SELECT rater_id, body FROM submissions WHERE submission_id=?");
  s.bind(1, sid);
  if (!s.step()) return std::nullopt;
  if (s.col_int(0) == w.rater && s.col_text(1) == body) return Json{{"ok", true}, {"duplicate", true}};
  throw ApiError(409, "\"submission_id\" " + sid.substr(0, 40) + " was already used for a different submission; send a new one");
}

Json TaskStore::submit(const Who& w, const Json& body) {
  require_rater(w);
  const bool pairs = opts_.mode == "pairs";
  check_keys(body,
             pairs ? std::set<std::string>{"item_id", "choice", "submission_id", "likert", "flags", "comment", "seconds",
                                           "all_unacceptable"}
                   : std::set<std::string>{"item_id", "ranking", "submission_id", "likert", "flags", "comment", "seconds",
                                           "all_unacceptable", "partial"},
             "POST /api/labels");
  if (!body.contains("item_id")) throw ApiError(400, "\"item_id\" is missing");
  int64_t item = parse_item_id(body["item_id"]);
  std::string sid = submission_id(body);
  const std::string canon = body.dump();
  std::lock_guard<std::mutex> g(mu_);
  Transaction t(db_);
  if (auto r = replayed(db_, sid, w, canon)) return *r;
  check_item_access(item, w);
  auto shown = shown_order(item, w);
  const size_t k = shown.size();
  Json label = Json::object();
  if (pairs) {
    if (!body.contains("choice")) throw ApiError(400, "\"choice\" is missing (-2 A much better .. 2 B much better)");
    const Json& c = body["choice"];
    if (!c.is_number_integer() || c.get<int64_t>() < -2 || c.get<int64_t>() > 2)
      throw ApiError(400, "\"choice\" must be an integer from -2 (A much better) to 2 (B much better)");
    int choice = int(c.get<int64_t>());
    label["choice"] = shown[0] == 0 ? choice : -choice;  // stored for the original A and B
  } else {
    if (!body.contains("ranking")) throw ApiError(400, "\"ranking\" is missing (response indices, best first)");
    std::vector<int> rank(k, -1), served = check_ranking(body["ranking"], k);
    for (size_t p = 0; p < k; ++p) rank[size_t(shown[p])] = served[p];
    label["ranking"] = ranking_of(rank);
  }
  check_extras(body, k, opts_, shown, label);
  label["shown_order"] = shown;
  store_answer(db_, item, w.rater, "label", canon, label, check_seconds(body), sid);
  t.commit();
  return {{"ok", true}, {"duplicate", false}};
}

Json TaskStore::skip(const Who& w, const Json& body) {
  require_rater(w);
  check_keys(body, {"item_id", "reason", "submission_id", "seconds"}, "POST /api/skip");
  if (!body.contains("item_id")) throw ApiError(400, "\"item_id\" is missing");
  int64_t item = parse_item_id(body["item_id"]);
  std::string sid = submission_id(body);
  std::string reason;
  if (body.contains("reason") && !body["reason"].is_null()) {
    if (!body["reason"].is_string()) throw ApiError(400, "\"reason\" must be a string");
    reason = body["reason"].get<std::string>();
    if (reason.size() > 4000) throw ApiError(400, "\"reason\" is too long (at most 1000 characters)");
  }
  const std::string canon = body.dump();
  std::lock_guard<std::mutex> g(mu_);
  Transaction t(db_);
  if (auto r = replayed(db_, sid, w, canon)) return *r;
  check_item_access(item, w);
  store_answer(db_, item, w.rater, "skip", canon, {{"reason", reason}}, check_seconds(body), sid);
  t.commit();
  return {{"ok", true}, {"duplicate", false}};
}

Json TaskStore::save_draft(const Who& w, const Json& body) {
  require_rater(w);
  check_keys(body, {"item_id", "draft"}, "POST /api/draft");
  if (!body.contains("item_id")) throw ApiError(400, "\"item_id\" is missing");
  int64_t item = parse_item_id(body["item_id"]);
  if (!body.contains("draft") || !body["draft"].is_object()) throw ApiError(400, "\"draft\" must be a JSON object");
  std::string d = body["draft"].dump();
  if (d.size() > 65536) throw ApiError(413, "\"draft\" is over 64 KiB");
  std::lock_guard<std::mutex> g(mu_);
  Transaction t(db_, /*durable=*/false);  // drafts: made durable by the next label
  check_item_access(item, w);
  // Working on an item keeps its lease alive.
  db_.prepare("UPDATE assignments SET draft=?, leased_at=CASE WHEN state='leased' THEN ? ELSE leased_at END "
              "WHERE item_id=? AND rater_id=?")
      .bind(1, d).bind(2, now_seconds()).bind(3, item).bind(4, w.rater).run();
  t.commit();
  return {{"ok", true}};
}

Json TaskStore::progress(const Who& w) {
  require_rater(w);
  std::lock_guard<std::mutex> g(mu_);
  const double fresh = now_seconds() - opts_.lease_seconds;
  auto s = db_.prepare(
      "SELECT (SELECT count(*) FROM labels WHERE rater_id=?1 AND kind='label'), "
      "(SELECT count(*) FROM labels WHERE rater_id=?1 AND kind='skip'), "
      "(SELECT count(*) FROM assignments WHERE rater_id=?1 AND state='leased'), "
      "(SELECT count(*) FROM items i WHERE i.labels < ?2 "
      " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id=i.id AND a.rater_id=?1) "
      " AND i.labels + (SELECT count(*) FROM assignments a WHERE a.item_id=i.id AND a.state='leased' AND a.leased_at>?3) < ?2)");
  s.bind(1, w.rater).bind(2, opts_.overlap).bind(3, fresh);
  s.step();
  int64_t done = s.col_int(0), skipped = s.col_int(1), open = s.col_int(2) + s.col_int(3);
  return {{"done", done}, {"skipped", skipped}, {"total", done + skipped + open}};
}

Json TaskStore::history(const Who& w) {
  require_rater(w);
  std::lock_guard<std::mutex> g(mu_);
  auto s = db_.prepare(
      "SELECT l.item_id, l.kind, l.updated, i.prompt FROM labels l JOIN items i ON i.id=l.item_id WHERE l.rater_id=? "
      "ORDER BY l.updated DESC, l.item_id DESC LIMIT 1000");
  s.bind(1, w.rater);
  Json items = Json::array();
  while (s.step())
    items.push_back({{"item_id", std::to_string(s.col_int(0))}, {"status", s.col_text(1) == "label" ? "labelled" : "skipped"},
                     {"updated", s.col_double(2)}, {"preview", preview(Json::parse(s.col_text(3)))}});
  return {{"items", items}};
}

}  // namespace rlhf::label
