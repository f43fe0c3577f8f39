// The task store: schema, creation, tokens and the team, progress, agreement and the export.
// The raters' own operations (next, submit, skip, drafts) are in assign.cpp.
#include "label/task.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "io/jsonl.h"
#include "label/agreement.h"
#include "label/task_detail.h"
#include "label/token.h"

namespace rlhf::label {

using namespace detail;

namespace {

const char* kSchema = R"SQL(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items(id INTEGER PRIMARY KEY, prompt TEXT NOT NULL, responses TEXT NOT NULL, source TEXT NOT NULL,
                   priority REAL NOT NULL DEFAULT 0, labels INTEGER NOT NULL DEFAULT 0);
CREATE INDEX items_order ON items(priority DESC, id);
CREATE TABLE raters(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token_hash TEXT UNIQUE NOT NULL,
                    active INTEGER NOT NULL DEFAULT 1, created REAL NOT NULL);
CREATE TABLE assignments(item_id INTEGER NOT NULL REFERENCES items(id), rater_id INTEGER NOT NULL REFERENCES raters(id),
                         shown TEXT NOT NULL, state TEXT NOT NULL, leased_at REAL NOT NULL, draft TEXT,
                         PRIMARY KEY(item_id, rater_id));
CREATE INDEX assignments_rater ON assignments(rater_id, state);
CREATE TABLE labels(item_id INTEGER NOT NULL, rater_id INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
                    label TEXT NOT NULL, seconds REAL, created REAL NOT NULL, updated REAL NOT NULL,
                    PRIMARY KEY(item_id, rater_id));
CREATE TABLE submissions(submission_id TEXT PRIMARY KEY, rater_id INTEGER NOT NULL, item_id INTEGER NOT NULL,
                         body TEXT NOT NULL);
)SQL";

// raters.json holds the only copy of the tokens: written with mode 0600, temporary name then rename.
void write_secret_file(const fs::path& path, const std::string& data) {
  fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  RLHF_CHECK(fd >= 0, tmp.string(), ": cannot write: ", errno_text(errno));
  ::fchmod(fd, 0600);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      RLHF_FAIL(tmp.string(), ": write failed: ", errno_text(e));
    }
    off += size_t(n);
  }
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  RLHF_CHECK(ok && ::rename(tmp.c_str(), path.c_str()) == 0, path.string(), ": cannot write: ", errno_text(errno));
}

}  // namespace

namespace detail {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string meta_get(Db& db, const std::string& key) {
  auto s = db.prepare("SELECT value FROM meta WHERE key=?");
  s.bind(1, key);
  return s.step() ? s.col_text(0) : std::string();
}

void meta_set(Db& db, const std::string& key, const std::string& value) {
  db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, key).bind(2, value).run();
}

}  // namespace detail

Json TaskOptions::to_json() const {
  return {{"mode", mode}, {"overlap", overlap}, {"likert", likert}, {"flags", flags}, {"guidelines", guidelines},
          {"lease_seconds", lease_seconds}, {"min_overlap", min_overlap}, {"order", order}, {"seed", seed}};
}

TaskOptions TaskOptions::from_json(const Json& j) {
  TaskOptions o;
  o.mode = j.value("mode", o.mode);
  o.overlap = j.value("overlap", o.overlap);
  o.likert = j.value("likert", o.likert);
  o.flags = j.value("flags", o.flags);
  o.guidelines = j.value("guidelines", o.guidelines);
  o.lease_seconds = j.value("lease_seconds", o.lease_seconds);
  o.min_overlap = j.value("min_overlap", o.min_overlap);
  o.order = j.value("order", o.order);
  o.seed = j.value("seed", o.seed);
  return o;
}

std::vector<int> ranks_of(const Json& ranking, size_t k) {
  std::vector<std::vector<int>> groups;
  for (const Json& e : ranking) groups.push_back(e.is_array() ? e.get<std::vector<int>>() : std::vector<int>{e.get<int>()});
  return ranks_from_groups(groups, int(k));
}

Json ranking_of(const std::vector<int>& rank) {
  Json out = Json::array();
  for (auto& g : groups_from_ranks(rank))
    if (g.size() == 1) out.push_back(g[0]);
    else out.push_back(g);
  return out;
}

int64_t parse_item_id(const Json& v) {
  if (!v.is_string()) throw ApiError(400, "\"item_id\" must be a string (as /api/next gave it), got " + json_type_name(v));
  const std::string s = v.get<std::string>();
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw ApiError(400, "\"item_id\" \"" + s.substr(0, 40) + "\" is not an item id (digits, as /api/next gave it)");
  return std::stoll(s);
}

Json read_secrets(const fs::path& dir) {
  Json j = read_json_file(dir / "raters.json", "the task's tokens (raters.json)");
  RLHF_CHECK(j.is_object() && j.contains("admin") && j["admin"].is_string() && j.contains("raters") && j["raters"].is_array(),
             (dir / "raters.json").string(), ": not the tokens file `rlhf label new` wrote");
  return j;
}

std::vector<std::pair<std::string, std::string>> rater_urls(const fs::path& dir, const std::string& base) {
  Json j = read_secrets(dir);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& r : j["raters"]) out.push_back({r.value("name", ""), base + "/#token=" + r.value("token", "")});
  out.push_back({"admin", base + "/admin#token=" + j["admin"].get<std::string>()});
  return out;
}

bool TaskStore::exists(const fs::path& dir) { return fs::exists(dir / "task.db"); }

std::vector<RaterToken> TaskStore::create(const fs::path& dir, const std::vector<Item>& items, const TaskOptions& o,
                                          const std::vector<std::string>& raters, const Json& about) {
  RLHF_CHECK(!exists(dir), dir.string(), ": a task already exists here (task.db); serve it with `rlhf label serve --task ",
             dir.string(), "`, or choose another --out");
  RLHF_CHECK(o.mode == "rank" || o.mode == "pairs", "--mode ", o.mode, " is not known; use rank or pairs");
  RLHF_CHECK(o.overlap >= 1, "--overlap ", o.overlap, " must be at least 1");
  RLHF_CHECK(!raters.empty(), "--raters: name at least one rater (alice,bob,...)");
  RLHF_CHECK(int64_t(raters.size()) >= o.overlap, "--overlap ", o.overlap, " needs at least as many raters; --raters names ",
             raters.size(), " (add names, or lower --overlap)");
  RLHF_CHECK(!items.empty(), "no items to label");
  RLHF_CHECK(o.lease_seconds > 0, "--lease-seconds must be positive");
  std::set<std::string> seen;
  for (auto& r : raters) {
    check_rater_name(r);
    RLHF_CHECK(seen.insert(r).second, "--raters names ", r, " twice");
  }
  ensure_directory(dir);
  // Built under a temporary name and renamed: a task.db exists only complete.
  fs::path tmp = dir / ("task.db.tmp." + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  std::vector<RaterToken> tokens;
  {
    Db db(tmp.string(), true);
    db.exec("PRAGMA journal_mode=DELETE");  // one file until it is complete; WAL from the first open
    Transaction t(db);
    db.exec(kSchema);
    meta_set(db, "format", "rlhf-label-task/1");
    meta_set(db, "options", o.to_json().dump());
    meta_set(db, "about", about.dump());
    meta_set(db, "created", std::to_string(now_seconds()));
    std::string admin = random_token();
    meta_set(db, "admin_token_hash", sha256_hex(admin));
    tokens.push_back({"admin", admin});
    auto ins = db.prepare("INSERT INTO items(prompt, responses, source, priority) VALUES(?, ?, ?, ?)");
    for (auto& it : items) {
      RLHF_CHECK(it.responses.size() >= 2, "an item needs at least 2 responses");
      ins.reset();
      ins.bind(1, it.prompt.dump()).bind(2, Json(it.responses).dump()).bind(3, it.source.dump()).bind(4, it.priority);
      ins.run();
    }
    auto rs = db.prepare("INSERT INTO raters(name, token_hash, created) VALUES(?, ?, ?)");
    for (auto& r : raters) {
      std::string tok = random_token();
      rs.reset();
      rs.bind(1, r).bind(2, sha256_hex(tok)).bind(3, now_seconds());
      rs.run();
      tokens.push_back({r, tok});
    }
    t.commit();
  }
  Json secrets = {{"admin", tokens[0].token}, {"raters", Json::array()}};
  for (size_t i = 1; i < tokens.size(); ++i) secrets["raters"].push_back({{"name", tokens[i].name}, {"token", tokens[i].token}});
  write_secret_file(dir / "raters.json", secrets.dump(2) + "\n");
  fs::rename(tmp, dir / "task.db");
  return tokens;
}

TaskStore::TaskStore(const fs::path& dir) : dir_(dir), db_([&] {
  RLHF_CHECK(exists(dir), dir.string(), ": no labelling task here (no task.db); create one with `rlhf label new --samples ",
             "SAMPLES.jsonl --out ", dir.string(), "`");
  return (dir / "task.db").string();
}(), false) {
  std::string fmt = meta_get(db_, "format");
  RLHF_CHECK(fmt == "rlhf-label-task/1", (dir / "task.db").string(), ": not an rlhf labelling task (format \"", fmt, "\")");
  opts_ = TaskOptions::from_json(parse_json(meta_get(db_, "options"), (dir / "task.db").string() + ": options"));
  admin_hash_ = meta_get(db_, "admin_token_hash");  // fixed at creation: read once, not per request
}

Json TaskStore::about() {
  std::lock_guard<std::mutex> g(mu_);
  return parse_json(meta_get(db_, "about"), "task about");
}

std::vector<Item> TaskStore::items() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<Item> out;
  auto s = db_.prepare("SELECT prompt, responses, source, priority FROM items ORDER BY id");
  while (s.step())
    out.push_back({Json::parse(s.col_text(0)), Json::parse(s.col_text(1)).get<std::vector<std::string>>(),
                   Json::parse(s.col_text(2)), s.col_double(3)});
  return out;
}

std::optional<Who> TaskStore::authenticate(const std::string& token) {
  if (token.size() != 32) return std::nullopt;
  const std::string h = sha256_hex(token);
  std::lock_guard<std::mutex> g(mu_);
  if (equal_constant_time(h, admin_hash_)) return Who{-1, "admin", true};
  auto s = db_.prepare("SELECT id, name, token_hash FROM raters WHERE token_hash=? AND active=1");
  s.bind(1, h);
  if (!s.step() || !equal_constant_time(h, s.col_text(2))) return std::nullopt;
  return Who{s.col_int(0), s.col_text(1), false};
}

void check_rater_name(const std::string& name) {
  RLHF_CHECK(!name.empty() && name.size() <= 64 && name != "admin" &&
                 std::all_of(name.begin(), name.end(),
                             [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }),
             "rater name \"", name, "\" is not usable; use 1-64 letters, digits, '_', '-' or '.' (not \"admin\")");
}

std::string TaskStore::add_rater(const std::string& name) {
  check_rater_name(name);
  std::string tok = random_token();
  {
    std::lock_guard<std::mutex> g(mu_);
    Transaction t(db_);
    auto s = db_.prepare("SELECT active FROM raters WHERE name=?");
    s.bind(1, name);
    if (s.step()) {
      // A revoked rater comes back with a new token; an active one keeps theirs.
      RLHF_CHECK(s.col_int(0) == 0, "rater ", name, " is already on the team; `rlhf label raters revoke` first to give them a new token");
      db_.prepare("UPDATE raters SET token_hash=?, active=1 WHERE name=?").bind(1, sha256_hex(tok)).bind(2, name).run();
    } else {
      db_.prepare("INSERT INTO raters(name, token_hash, created) VALUES(?, ?, ?)")
          .bind(1, name).bind(2, sha256_hex(tok)).bind(3, now_seconds()).run();
    }
    t.commit();
  }
  Json secrets = read_json_file(dir_ / "raters.json", "raters file");
  Json list = Json::array();
  for (auto& r : secrets["raters"])
    if (r.value("name", "") != name) list.push_back(r);
  list.push_back({{"name", name}, {"token", tok}});
  secrets["raters"] = list;
  write_secret_file(dir_ / "raters.json", secrets.dump(2) + "\n");
  return tok;
}

void TaskStore::revoke_rater(const std::string& name) {
  {
    std::lock_guard<std::mutex> g(mu_);
    Transaction t(db_);
    auto s = db_.prepare("SELECT id FROM raters WHERE name=? AND active=1");
    s.bind(1, name);
    RLHF_CHECK(s.step(), "no active rater named ", name, " in ", dir_.string(), " (see `rlhf label raters list`)");
    int64_t id = s.col_int(0);
    db_.prepare("UPDATE raters SET active=0, token_hash=? WHERE id=?").bind(1, "revoked:" + random_token()).bind(2, id).run();
    db_.prepare("DELETE FROM assignments WHERE rater_id=? AND state='leased'").bind(1, id).run();
    t.commit();
  }
  Json secrets = read_json_file(dir_ / "raters.json", "raters file");
  Json list = Json::array();
  for (auto& r : secrets["raters"])
    if (r.value("name", "") != name) list.push_back(r);
  secrets["raters"] = list;
  write_secret_file(dir_ / "raters.json", secrets.dump(2) + "\n");
}

Json TaskStore::raters() {
  std::lock_guard<std::mutex> g(mu_);
  Json out = Json::array();
  auto s = db_.prepare("SELECT name, active FROM raters ORDER BY id");
  while (s.step()) out.push_back({{"name", s.col_text(0)}, {"active", s.col_int(1) != 0}});
  return out;
}

TaskCounts TaskStore::counts() {
  std::lock_guard<std::mutex> g(mu_);
  TaskCounts c;
  const double fresh = now_seconds() - opts_.lease_seconds;
  auto s = db_.prepare(
      "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM labels WHERE kind='label'), "
      "(SELECT count(*) FROM labels WHERE kind='skip'), "
      "(SELECT count(*) FROM assignments WHERE state='leased' AND leased_at>?), "
      "(SELECT coalesce(sum(max(0, ? - labels)), 0) FROM items)");
  s.bind(1, fresh).bind(2, opts_.overlap);
  s.step();
  c.items = s.col_int(0);
  c.labels = s.col_int(1);
  c.skips = s.col_int(2);
  c.leased = s.col_int(3);
  c.open_slots = s.col_int(4);
  // Slots an active rater could still fill: per item, min(open slots, active raters who never had it).
  auto a = db_.prepare(
      "SELECT coalesce(sum(min(max(0, ? - i.labels), "
      "  (SELECT count(*) FROM raters r WHERE r.active=1 AND NOT EXISTS "
      "     (SELECT 1 FROM assignments x WHERE x.item_id=i.id AND x.rater_id=r.id AND x.state!='leased')))), 0) "
      "FROM items i");
  a.bind(1, opts_.overlap);
  a.step();
  c.assignable = a.col_int(0);
  return c;
}

namespace {

struct LabelRow {
  int64_t item, rater;
  std::string rater_name;
  Json label;
  double seconds;
};

std::vector<LabelRow> all_labels(Db& db) {
  std::vector<LabelRow> rows;
  auto s = db.prepare(
      "SELECT l.item_id, l.rater_id, r.name, l.label, coalesce(l.seconds, -1) FROM labels l JOIN raters r ON r.id=l.rater_id "
      "WHERE l.kind='label' ORDER BY l.item_id, l.rater_id");
  while (s.step())
    rows.push_back({s.col_int(0), s.col_int(1), s.col_text(2), Json::parse(s.col_text(3)), s.col_double(4)});
  return rows;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Json num_or_null(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

}  // namespace

Json TaskStore::status() {
  TaskCounts c = counts();
  std::lock_guard<std::mutex> g(mu_);
  auto rows = all_labels(db_);
  // Agreement over the items labelled by two raters or more.
  std::map<int64_t, std::vector<const LabelRow*>> by_item;
  for (auto& r : rows) by_item[r.item].push_back(&r);
  Agreement ag;
  if (opts_.mode == "pairs") {
    std::vector<std::vector<RaterChoice>> items;
    for (auto& [id, v] : by_item) {
      std::vector<RaterChoice> x;
      for (auto* r : v) x.push_back({r->rater, r->label["choice"].get<int>()});
      items.push_back(std::move(x));
    }
    ag = choice_agreement(items);
  } else {
    std::vector<std::vector<RaterRanking>> items;
    for (auto& [id, v] : by_item) {
      std::vector<RaterRanking> x;
      for (auto* r : v) {
        x.push_back({r->rater, ranks_of(r->label["ranking"], r->label["shown_order"].size())});
      }
      items.push_back(std::move(x));
    }
    ag = rank_agreement(items);
  }
  std::map<int64_t, const PerRaterAgreement*> per;
  for (auto& p : ag.per_rater) per[p.rater] = &p;
  Json raters = Json::array();
  const double fresh = now_seconds() - opts_.lease_seconds;
  auto s = db_.prepare(
      "SELECT r.id, r.name, r.active, "
      "(SELECT count(*) FROM labels l WHERE l.rater_id=r.id AND l.kind='label'), "
      "(SELECT count(*) FROM labels l WHERE l.rater_id=r.id AND l.kind='skip'), "
      "(SELECT count(*) FROM assignments a WHERE a.rater_id=r.id AND a.state='leased' AND a.leased_at>?) "
      "FROM raters r ORDER BY r.id");
  s.bind(1, fresh);
  while (s.step()) {
    int64_t id = s.col_int(0);
    std::vector<double> secs;
    for (auto& r : rows)
      if (r.rater == id && r.seconds >= 0) secs.push_back(r.seconds);
    Json j = {{"name", s.col_text(1)}, {"active", s.col_int(2) != 0}, {"done", s.col_int(3)}, {"skipped", s.col_int(4)},
              {"leased", s.col_int(5)}, {"median_seconds", num_or_null(median(secs))}, {"agreement", nullptr},
              {"overlapping", 0}, {"agreement_pairs", 0}};
    if (per.count(id)) {
      const auto* p = per[id];
      j["overlapping"] = p->overlapping_items;
      j["agreement_pairs"] = p->pairs;
      // Below min_overlap shared items a rater's figure is noise: "not enough data" (null).
      if (p->overlapping_items >= opts_.min_overlap) j["agreement"] = num_or_null(p->agreement);
    }
    raters.push_back(j);
  }
  return {{"items", c.items}, {"overlap", opts_.overlap}, {"mode", opts_.mode}, {"labels", c.labels}, {"skips", c.skips},
          {"leased", c.leased}, {"open_slots", c.open_slots}, {"assignable", c.assignable},
          {"complete_items", [&] {
             auto q = db_.prepare("SELECT count(*) FROM items WHERE labels>=?");
             q.bind(1, opts_.overlap);
             q.step();
             return q.col_int(0);
           }()},
          {"raters", raters},
          {"agreement", {{"pairwise", num_or_null(ag.pairwise)}, {"pairs", ag.pairs}, {"kendall_tau", num_or_null(ag.kendall_tau)},
                         {"krippendorff_alpha", num_or_null(ag.krippendorff_alpha)}, {"kendall_w", num_or_null(ag.kendall_w)},
                         {"items_with_overlap", ag.items_with_overlap}}},
          {"min_overlap", opts_.min_overlap}};
}

namespace {

// Pairs mode: how much the five-point choice (-2 A much better .. 2 B much better) prefers A, as a
// soft label: much better 1.0, better 0.75, about the same 0.5.
double p_first(int choice) { return 0.5 - 0.25 * choice; }

// A preference record for A vs B with P(A better) = pa: the better one as "chosen".
Json pair_record(const Json& prompt, const std::vector<std::string>& resp, double pa) {
  bool a = pa >= 0.5;
  return {{"prompt", prompt}, {"chosen", resp[a ? 0 : 1]}, {"rejected", resp[a ? 1 : 0]}, {"p_chosen", a ? pa : 1.0 - pa}};
}

bool has_strict_pair(const std::vector<int>& rank) {
  for (size_t i = 0; i < rank.size(); ++i)
    for (size_t j = 0; j < rank.size(); ++j)
      if (rank[i] >= 0 && rank[j] >= 0 && rank[i] < rank[j]) return true;
  return false;
}

}  // namespace

Json TaskStore::export_labels(const fs::path& out, const std::string& aggregate) {
  RLHF_CHECK(aggregate == "none" || aggregate == "mean-rank" || aggregate == "ranked-pairs", "--aggregate ", aggregate,
             " is not known; use none, mean-rank or ranked-pairs");
  std::lock_guard<std::mutex> g(mu_);
  auto rows = all_labels(db_);
  std::map<int64_t, std::pair<Json, std::vector<std::string>>> items;
  std::map<int64_t, Json> sources;
  {
    auto s = db_.prepare("SELECT id, prompt, responses, source FROM items");
    while (s.step()) {
      items[s.col_int(0)] = {Json::parse(s.col_text(1)), Json::parse(s.col_text(2)).get<std::vector<std::string>>()};
      sources[s.col_int(0)] = Json::parse(s.col_text(3));
    }
  }
  remove_stale_temporaries_of(out);
  JsonlWriter w(out);
  int64_t written = 0, no_preference = 0, identical = 0;
  auto keep = [&](const Json& rec) {
    w.write(rec);
    ++written;
  };
  auto extra = [&](Json& rec, const LabelRow& r) {
    rec["item_id"] = std::to_string(r.item);
    rec["rater"] = r.rater_name;
    if (r.seconds >= 0) rec["seconds"] = r.seconds;
    for (const char* k : {"likert", "flags", "comment", "all_unacceptable", "partial", "shown_order"})
      if (r.label.contains(k) && !r.label[k].is_null()) rec[k] = r.label[k];
    rec["source"] = sources[r.item];
  };
  if (aggregate == "none") {
    for (auto& r : rows) {
      auto& [prompt, resp] = items[r.item];
      Json rec;
      if (opts_.mode == "pairs") {
        if (resp[0] == resp[1]) {
          ++identical;
          continue;
        }
        rec = pair_record(prompt, resp, p_first(r.label["choice"].get<int>()));
        rec["choice"] = r.label["choice"];
      } else {
        auto rank = ranks_of(r.label["ranking"], resp.size());
        if (!has_strict_pair(rank)) {
          ++no_preference;
          continue;
        }
        rec = {{"prompt", prompt}, {"responses", resp}, {"ranking", r.label["ranking"]}};
      }
      extra(rec, r);
      keep(rec);
    }
  } else {
    std::map<int64_t, std::vector<const LabelRow*>> by_item;
    for (auto& r : rows) by_item[r.item].push_back(&r);
    for (auto& [id, v] : by_item) {
      auto& [prompt, resp] = items[id];
      Json rec, raw = Json::array(), names = Json::array();
      for (auto* r : v) {
        names.push_back(r->rater_name);
        raw.push_back(opts_.mode == "pairs" ? r->label["choice"] : r->label["ranking"]);
      }
      if (opts_.mode == "pairs") {
        if (resp[0] == resp[1]) {
          ++identical;
          continue;
        }
        // The raters' mean preference for A as the soft label.
        double pa = 0;
        for (auto* r : v) pa += p_first(r->label["choice"].get<int>());
        rec = pair_record(prompt, resp, pa / double(v.size()));
        rec["choices"] = raw;
      } else {
        std::vector<std::vector<int>> ranks;
        for (auto* r : v) ranks.push_back(ranks_of(r->label["ranking"], resp.size()));
        auto cons = aggregate == "mean-rank" ? consensus_mean_rank(ranks) : consensus_ranked_pairs(ranks);
        if (!has_strict_pair(cons)) {
          ++no_preference;
          continue;
        }
        rec = {{"prompt", prompt}, {"responses", resp}, {"ranking", ranking_of(cons)}, {"rankings", raw}};
      }
      rec["item_id"] = std::to_string(id);
      rec["raters"] = names;
      rec["aggregate"] = aggregate;
      rec["source"] = sources[id];
      keep(rec);
    }
  }
  RLHF_CHECK(written > 0, dir_.string(), ": no labels to export yet (", rows.size(), " labels",
             no_preference ? ", every one of them all tied" : "", "); label some first (`rlhf label serve`)");
  w.commit();
  return {{"records", written}, {"labels", int64_t(rows.size())}, {"dropped_all_tied", no_preference},
          {"dropped_identical_pair", identical}, {"aggregate", aggregate}};
}

}  // namespace rlhf::label
