// `rlhf label` (issue 17): the task store's assignment rules (overlap, leases, skips, no item twice),
// labels mapped from each rater's shuffled order, idempotent submissions and edits, tokens, the
// export for rlhf rm / dpo; the HTTP server under hostile requests; 50 concurrent raters with a
// kill -9 of the server in the middle (every acknowledged label survives, none is stored twice).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <sstream>
#include <set>
#include <thread>

#include "io/jsonl.h"
#include "label/client.h"
#include "label/items.h"
#include "label/server.h"
#include "label/task.h"
#include "label/token.h"
#include "lm_fixture.h"
#include "test_util.h"

namespace rlhf {
namespace {

using label::ApiError;
using label::TaskStore;
using test::TempDir;

// n items with k responses each; response j of item i is "item i response j".
std::vector<label::Item> make_items(int n, int k) {
  std::vector<label::Item> v;
  for (int i = 0; i < n; ++i) {
    label::Item it;
    it.prompt = Json::array({{{"role", "user"}, {"content", "question " + std::to_string(i)}}});
    for (int j = 0; j < k; ++j) it.responses.push_back("item " + std::to_string(i) + " response " + std::to_string(j));
    it.source = {{"line", i + 1}, {"model", "secret-model-name"}};
    v.push_back(it);
  }
  return v;
}

struct Task {
  TempDir d;
  std::vector<label::RaterToken> tokens;
  std::unique_ptr<TaskStore> store;
  Task(int n, int k, label::TaskOptions o, std::vector<std::string> raters) {
    tokens = TaskStore::create(d / "task", make_items(n, k), o, raters, {{"samples", "test"}});
    store = std::make_unique<TaskStore>(d / "task");
  }
  label::Who who(size_t i) { return *store->authenticate(tokens[i].token); }  // 0 = admin
};

// The original index of the response shown at position p.
int original(const Json& item, size_t p) {
  std::string s = item["responses"][p].get<std::string>();
  return std::stoi(s.substr(s.rfind(' ') + 1));
}

Json rank_body(const Json& item, const Json& ranking, const std::string& sid) {
  return {{"item_id", item["item_id"]}, {"ranking", ranking}, {"submission_id", sid}};
}

int api_status(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.status;
  }
  return 200;
}

TEST(LabelTask, TokensAreRandomHashedAndSecretFileIsPrivate) {
  label::TaskOptions o;
  Task t(3, 2, o, {"alice", "bob"});
  ASSERT_EQ(t.tokens.size(), 3u);
  std::set<std::string> seen;
  for (auto& tk : t.tokens) {
    EXPECT_EQ(tk.token.size(), 32u);
    EXPECT_TRUE(seen.insert(tk.token).second);
  }
  // The database holds no token in clear.
  std::string db = test::read_bytes(t.d / "task/task.db");
  for (auto& tk : t.tokens) EXPECT_EQ(db.find(tk.token), std::string::npos);
  EXPECT_NE(db.find(label::sha256_hex(t.tokens[1].token)), std::string::npos);
  EXPECT_EQ(fs::status(t.d / "task/raters.json").permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(t.who(0).admin);
  EXPECT_EQ(t.who(1).name, "alice");
  EXPECT_FALSE(t.store->authenticate(std::string(32, 'a')));
  EXPECT_FALSE(t.store->authenticate(""));
  EXPECT_EQ(label::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  test::expect_error([&] { TaskStore::create(t.d / "task", make_items(1, 2), o, {"x"}, {}); }, {"already exists"});
  label::TaskOptions two;
  two.overlap = 3;
  test::expect_error([&] { TaskStore::create(t.d / "t2", make_items(1, 2), two, {"a", "b"}, {}); }, {"--overlap 3", "raters"});
  test::expect_error([&] { TaskStore::create(t.d / "t3", make_items(1, 2), o, {"a b"}, {}); }, {"rater name"});
}

TEST(LabelTask, OverlapGivesEachItemToDistinctRatersAndNobodyTwice) {
  label::TaskOptions o;
  o.overlap = 2;
  Task t(5, 3, o, {"a", "b", "c"});
  std::map<std::string, std::set<int64_t>> got;  // item -> raters
  int sid = 0;
  for (int round = 0; round < 10; ++round)
    for (size_t r = 1; r <= 3; ++r) {
      auto w = t.who(r);
      auto item = t.store->next(w);
      if (!item) continue;
      EXPECT_TRUE(got[(*item)["item_id"]].insert(w.rater).second) << "a rater got an item twice";
      EXPECT_FALSE(item->dump().find("secret-model-name") != std::string::npos) << "the source is never served";
      t.store->submit(w, rank_body(*item, {0, 1, 2}, "s" + std::to_string(sid++)));
    }
  EXPECT_EQ(got.size(), 5u);
  for (auto& [id, raters] : got) EXPECT_EQ(raters.size(), 2u) << id;
  for (size_t r = 1; r <= 3; ++r) EXPECT_FALSE(t.store->next(t.who(r)));
  auto c = t.store->counts();
  EXPECT_EQ(c.labels, 10);
  EXPECT_EQ(c.open_slots, 0);
  EXPECT_EQ(c.assignable, 0);
}

TEST(LabelTask, NextRepeatsTheHeldItemAndAnExpiredLeaseGoesBackToTheQueue) {
  label::TaskOptions o;
  o.lease_seconds = 0.3;
  Task t(1, 2, o, {"a", "b"});
  auto a = t.store->next(t.who(1));
  ASSERT_TRUE(a);
  EXPECT_EQ((*t.store->next(t.who(1)))["item_id"], (*a)["item_id"]);  // a reload: the same item
  EXPECT_FALSE(t.store->next(t.who(2)));                               // held by a
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto b = t.store->next(t.who(2));
  ASSERT_TRUE(b);  // a's lease lapsed: b gets it
  t.store->submit(t.who(2), rank_body(*b, {1, 0}, "b1"));
  // a comes back: the item is full, so a's lapsed lease is gone and nothing is left.
  EXPECT_FALSE(t.store->next(t.who(1)));
  EXPECT_EQ(api_status([&] { t.store->submit(t.who(1), rank_body(*a, {0, 1}, "a1")); }), 404);
}

TEST(LabelTask, ASkippedItemGoesToAnotherRater) {
  label::TaskOptions o;
  Task t(1, 2, o, {"a", "b"});
  auto a = t.store->next(t.who(1));
  ASSERT_TRUE(a);
  t.store->skip(t.who(1), {{"item_id", (*a)["item_id"]}, {"reason", "not my language"}, {"submission_id", "k1"}});
  EXPECT_FALSE(t.store->next(t.who(1)));  // never the same item again
  auto b = t.store->next(t.who(2));
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)["item_id"], (*a)["item_id"]);
  Json back = t.store->item(t.who(1), (*a)["item_id"]);
  EXPECT_EQ(back["skipped"]["reason"], "not my language");
  EXPECT_EQ(t.store->progress(t.who(1))["skipped"], 1);
}

TEST(LabelTask, RankingIsStoredInTheOriginalOrderAndEditsOverwrite) {
  label::TaskOptions o;
  o.likert = true;
  o.flags = {"harmful", "made-up facts"};
  Task t(1, 4, o, {"a"});
  auto w = t.who(1);
  auto item = *t.store->next(w);
  // Served positions 0..3 hold originals original(item, p). Rank: position 2 best, 0 and 3 tied, 1 last.
  Json body = rank_body(item, {2, {0, 3}, 1}, "first");
  body["likert"] = {7, 1, 5, nullptr};
  body["flags"] = {Json::array(), {"harmful"}, Json::array(), Json::array()};
  body["comment"] = "ok";
  body["seconds"] = 12.5;
  EXPECT_EQ(t.store->submit(w, body)["duplicate"], false);
  EXPECT_EQ(t.store->submit(w, body)["duplicate"], true);  // a retry: stored once
  Json other = body;
  other["ranking"] = {0, 1, 2, 3};
  EXPECT_EQ(api_status([&] { t.store->submit(w, other); }), 409);  // same submission_id, other content
  t.store->export_labels(t.d / "out.jsonl", "none");
  auto recs = read_jsonl(t.d / "out.jsonl");
  ASSERT_EQ(recs.size(), 1u);
  const Json& r = recs[0].value;
  std::vector<int> rank(4);
  rank[size_t(original(item, 2))] = 0;
  rank[size_t(original(item, 0))] = 1;
  rank[size_t(original(item, 3))] = 1;
  rank[size_t(original(item, 1))] = 2;
  std::vector<int> got(4, -1);
  int level = 0;
  for (auto& g : r["ranking"]) {
    for (auto& x : g.is_array() ? g : Json::array({g})) got[size_t(x.get<int>())] = level;
    ++level;
  }
  EXPECT_EQ(got, rank) << r.dump();
  EXPECT_EQ(r["likert"][size_t(original(item, 0))], 7);
  EXPECT_EQ(r["flags"][size_t(original(item, 1))], Json::array({"harmful"}));
  EXPECT_EQ(r["rater"], "a");
  EXPECT_EQ(r["seconds"], 12.5);
  EXPECT_EQ(r["source"]["model"], "secret-model-name");  // kept for the export
  EXPECT_EQ(r["responses"][0], "item 0 response 0");     // the original order
  // An edit (new submission_id) overwrites: still one label.
  Json edit = rank_body(item, {0, 1, 2, 3}, "second");
  t.store->submit(w, edit);
  EXPECT_EQ(t.store->counts().labels, 1);
  EXPECT_EQ(t.store->item(w, item["item_id"])["label"]["ranking"], Json({0, 1, 2, 3}));
  EXPECT_EQ(t.store->history(w)["items"].size(), 1u);
}

TEST(LabelTask, MalformedLabelsAreRefusedWithTheReason) {
  label::TaskOptions o;
  o.flags = {"harmful"};
  Task t(2, 3, o, {"a", "b"});
  auto w = t.who(1);
  auto item = *t.store->next(w);
  auto status = [&](Json b) { return api_status([&] { t.store->submit(w, b); }); };
  EXPECT_EQ(status(rank_body(item, {0, 0, 1}, "x")), 400);        // repeated
  EXPECT_EQ(status(rank_body(item, {0, 1}, "x")), 400);           // missing
  EXPECT_EQ(status(rank_body(item, {0, 1, 3}, "x")), 400);        // out of range
  EXPECT_EQ(status(rank_body(item, {0, 1, -1}, "x")), 400);       // negative
  EXPECT_EQ(status(rank_body(item, {0, {1, {2}}}, "x")), 400);    // nested twice
  EXPECT_EQ(status(rank_body(item, {0, Json::array(), 1, 2}, "x")), 400);  // empty tie group
  EXPECT_EQ(status(rank_body(item, {"0", 1, 2}, "x")), 400);      // wrong type
  EXPECT_EQ(status(rank_body(item, {0.5, 1, 2}, "x")), 400);
  EXPECT_EQ(status(rank_body(item, Json::object(), "x")), 400);
  Json b = rank_body(item, {0, 1, 2}, "x");
  b["likert"] = {8, 1, 1};
  EXPECT_EQ(status(b), 400);
  b.erase("likert");
  b["flags"] = {{"not a flag"}, Json::array(), Json::array()};
  EXPECT_EQ(status(b), 400);
  b.erase("flags");
  b["seconds"] = -1;
  EXPECT_EQ(status(b), 400);
  b.erase("seconds");
  b["typo"] = 1;
  EXPECT_EQ(status(b), 400);
  b.erase("typo");
  b["item_id"] = 1;  // a number, not the string /api/next gave
  EXPECT_EQ(status(b), 400);
  b["item_id"] = "999";
  EXPECT_EQ(status(b), 404);
  b["item_id"] = "../1";
  EXPECT_EQ(status(b), 400);
  // b's item, not assigned to a.
  auto other = *t.store->next(t.who(2));
  EXPECT_EQ(status(rank_body(other, {0, 1, 2}, "y")), 404);
  EXPECT_EQ(status({{"item_id", item["item_id"]}, {"ranking", {0, 1, 2}}}), 400);  // no submission_id
  EXPECT_EQ(api_status([&] { t.store->next(t.who(0)); }), 403);  // the admin does not label
  EXPECT_EQ(t.store->counts().labels, 0);
}

TEST(LabelTask, RevokedRaterIsRefusedAndAddedRaterCanLabel) {
  label::TaskOptions o;
  Task t(2, 2, o, {"a"});
  auto held = t.store->next(t.who(1));
  ASSERT_TRUE(held);
  std::string tok = t.tokens[1].token;
  t.store->revoke_rater("a");
  EXPECT_FALSE(t.store->authenticate(tok));
  std::string nt = t.store->add_rater("z");
  auto z = t.store->authenticate(nt);
  ASSERT_TRUE(z);
  EXPECT_EQ((*t.store->next(*z))["item_id"], (*held)["item_id"]);  // a's lease was freed
  Json sec = label::read_secrets(t.d / "task");
  ASSERT_EQ(sec["raters"].size(), 1u);
  EXPECT_EQ(sec["raters"][0]["name"], "z");
  std::string again = t.store->add_rater("a");  // back with a new token
  EXPECT_NE(again, tok);
  EXPECT_TRUE(t.store->authenticate(again));
  test::expect_error([&] { t.store->add_rater("z"); }, {"already on the team"});
}

TEST(LabelTask, PairsModeExportsChosenRejectedWithTheStrength) {
  label::TaskOptions o;
  o.mode = "pairs";
  o.overlap = 2;
  Task t(1, 2, o, {"a", "b"});
  auto a = *t.store->next(t.who(1));
  auto b = *t.store->next(t.who(2));
  // a: the response shown first much better; b: the second shown slightly better.
  t.store->submit(t.who(1), {{"item_id", a["item_id"]}, {"choice", -2}, {"submission_id", "p1"}});
  t.store->submit(t.who(2), {{"item_id", b["item_id"]}, {"choice", 1}, {"submission_id", "p2"}});
  EXPECT_EQ(api_status([&] { t.store->submit(t.who(1), {{"item_id", a["item_id"]}, {"choice", 3}, {"submission_id", "p3"}}); }), 400);
  t.store->export_labels(t.d / "pairs.jsonl", "none");
  auto recs = read_jsonl(t.d / "pairs.jsonl");
  ASSERT_EQ(recs.size(), 2u);
  for (auto& r : recs) {
    const bool is_a = r.value["rater"] == "a";
    std::string chosen = is_a ? a["responses"][0].get<std::string>() : b["responses"][1].get<std::string>();
    EXPECT_EQ(r.value["chosen"], chosen) << r.value.dump();
    EXPECT_DOUBLE_EQ(r.value["p_chosen"].get<double>(), is_a ? 1.0 : 0.75);
  }
  t.store->export_labels(t.d / "mean.jsonl", "mean-rank");
  auto m = read_jsonl(t.d / "mean.jsonl");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].value["raters"].size(), 2u);
}

TEST(LabelTask, ExportAggregatesKeepTheRawRankings) {
  label::TaskOptions o;
  o.overlap = 3;
  Task t(1, 3, o, {"a", "b", "c"});
  // In original indices: a and b put 0 first, c puts 2 first; everyone puts 1 last.
  std::vector<std::vector<int>> want = {{0, 2, 1}, {0, 2, 1}, {2, 0, 1}};
  for (size_t r = 1; r <= 3; ++r) {
    auto it = *t.store->next(t.who(r));
    Json ranking = Json::array();
    for (int orig : want[r - 1])
      for (size_t p = 0; p < 3; ++p)
        if (original(it, p) == orig) ranking.push_back(p);
    t.store->submit(t.who(r), rank_body(it, ranking, "r" + std::to_string(r)));
  }
  for (const char* agg : {"mean-rank", "ranked-pairs"}) {
    t.store->export_labels(t.d / "agg.jsonl", agg);
    auto recs = read_jsonl(t.d / "agg.jsonl");
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].value["ranking"], Json({0, 2, 1})) << agg;
    EXPECT_EQ(recs[0].value["rankings"].size(), 3u);
  }
  test::expect_error([&] { t.store->export_labels(t.d / "x.jsonl", "median"); }, {"--aggregate median"});
  Json s = t.store->status();
  EXPECT_EQ(s["agreement"]["items_with_overlap"], 1);
  // Pairs (0,1), (0,2), (2,1) over 3 rater pairs: a-b agree on all 3; a-c and b-c on 2 of 3.
  EXPECT_NEAR(s["agreement"]["pairwise"].get<double>(), 7.0 / 9.0, 1e-12);
  for (auto& r : s["raters"]) EXPECT_TRUE(r["agreement"].is_null()) << "below min_overlap: not enough data";
}

// ---- the HTTP server ---------------------------------------------------------------------------------

struct Served {
  Task task;
  label::LabelServer srv;
  std::thread th;
  int port = 0;
  explicit Served(label::TaskOptions o = {}) : task(4, 3, o, {"alice", "bob"}), srv(*task.store, [] {
    label::ServerOptions so;
    so.port = 0;
    so.threads = 8;
    return so;
  }()) {
    port = srv.bind();
    th = std::thread([this] { srv.serve(); });
  }
  ~Served() {
    srv.stop();
    th.join();
  }
  httplib::Client client(const std::string& token = "") {
    httplib::Client c("127.0.0.1", port);
    if (!token.empty()) c.set_default_headers({{"Authorization", "Bearer " + token}});
    c.set_read_timeout(20, 0);
    return c;
  }
};

// Sends raw bytes and returns the status code of the answer (0 = none).
int raw_request(int port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return 0;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!::write(fd, bytes.data(), bytes.size());
  char buf[64] = {0};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n < 12 || std::string(buf, 5) != "HTTP/") return 0;
  return std::atoi(buf + 9);
}

TEST(LabelServer, HostileAndMalformedRequestsGet4xxAndTheServerKeepsServing) {
  Served s;
  const std::string alice = s.task.tokens[1].token, bob = s.task.tokens[2].token, admin = s.task.tokens[0].token;
  auto ca = s.client(alice), cb = s.client(bob), none = s.client(), cadm = s.client(admin);
  auto item = Json::parse(ca.Get("/api/next")->body);
  auto bitem = Json::parse(cb.Get("/api/next")->body);
  const std::string id = item["item_id"];
  auto post = [&](httplib::Client& c, const std::string& path, const std::string& body) {
    auto r = c.Post(path.c_str(), body, "application/json");
    return r ? r->status : 0;
  };
  auto label_body = [&](const Json& ranking, const std::string& sid) {
    return Json{{"item_id", id}, {"ranking", ranking}, {"submission_id", sid}}.dump();
  };
  struct Case {
    std::string what;
    int status;
  };
  std::vector<Case> got;
  auto check = [&](const std::string& what, int status, int lo = 400, int hi = 499) {
    got.push_back({what, status});
    EXPECT_TRUE(status >= lo && status <= hi) << what << ": " << status;
  };
  check("no token", none.Get("/api/next")->status, 401, 401);
  check("no token, submit", post(none, "/api/labels", label_body({0, 1, 2}, "a")), 401, 401);
  check("bad token", s.client(std::string(32, 'f')).Get("/api/next")->status, 401, 401);
  check("short token", s.client("abc").Get("/api/progress")->status, 401, 401);
  {
    httplib::Client c("127.0.0.1", s.port);
    c.set_default_headers({{"Authorization", "Basic " + alice}});
    check("not Bearer", c.Get("/api/next")->status, 401, 401);
    c.set_default_headers({{"Cookie", "token=" + alice}});
    check("cookie only", c.Get("/api/next")->status, 401, 401);
  }
  check("rater on admin endpoint", ca.Get("/api/admin/status")->status, 403, 403);
  check("admin labels", post(cadm, "/api/labels", label_body({0, 1, 2}, "adm")), 403, 403);
  check("bad JSON", post(ca, "/api/labels", "{\"item_id\": "), 400, 400);
  check("not an object", post(ca, "/api/labels", "[1,2,3]"), 400, 400);
  check("empty body", post(ca, "/api/labels", ""), 400, 400);
  check("deep nesting", post(ca, "/api/labels", std::string(5000, '[') + std::string(5000, ']')), 400, 400);
  check("repeated index", post(ca, "/api/labels", label_body({0, 0, 1}, "r1")), 400, 400);
  check("missing index", post(ca, "/api/labels", label_body({0, 1}, "r2")), 400, 400);
  check("out of range", post(ca, "/api/labels", label_body({0, 1, 7}, "r3")), 400, 400);
  check("huge index", post(ca, "/api/labels", label_body({0, 1, 9223372036854775807LL}, "r3b")), 400, 400);
  check("string index", post(ca, "/api/labels", label_body({"0", 1, 2}, "r4")), 400, 400);
  check("null ranking", post(ca, "/api/labels", Json{{"item_id", id}, {"ranking", nullptr}, {"submission_id", "r5"}}.dump()), 400, 400);
  check("numeric item id", post(ca, "/api/labels", Json{{"item_id", 1}, {"ranking", {0, 1, 2}}, {"submission_id", "r6"}}.dump()), 400, 400);
  check("unknown item", post(ca, "/api/labels", Json{{"item_id", "424242"}, {"ranking", {0, 1, 2}}, {"submission_id", "r7"}}.dump()), 404, 404);
  check("other rater's item",
        post(ca, "/api/labels", Json{{"item_id", bitem["item_id"]}, {"ranking", {0, 1, 2}}, {"submission_id", "r8"}}.dump()), 404, 404);
  check("other rater's item, read", ca.Get(("/api/items/" + bitem["item_id"].get<std::string>()).c_str())->status, 404, 404);
  check("item path trick", ca.Get("/api/items/..%2f..%2fetc%2fpasswd")->status);
  check("item path dots", ca.Get("/api/items/../admin/status")->status);
  check("static path trick", none.Get("/../../etc/passwd")->status);
  check("static encoded trick", none.Get("/%2e%2e/%2e%2e/etc/passwd")->status);
  check("unknown page", none.Get("/secret.db")->status, 404, 404);
  check("unknown endpoint", ca.Get("/api/nothing")->status, 404, 404);
  check("wrong method", post(ca, "/api/next", "{}"), 400, 405);
  check("draft not object", post(ca, "/api/draft", Json{{"item_id", id}, {"draft", "text"}}.dump()), 400, 400);
  check("draft too big", post(ca, "/api/draft", Json{{"item_id", id}, {"draft", {{"x", std::string(70000, 'a')}}}}.dump()), 413, 413);
  check("skip wrong type", post(ca, "/api/skip", Json{{"item_id", id}, {"reason", 5}, {"submission_id", "k"}}.dump()), 400, 400);
  check("100 MB body", post(ca, "/api/labels", std::string(100 << 20, ' ')), 413, 413);
  check("raw, no token", raw_request(s.port, "POST /api/labels HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"), 401, 401);
  check("garbage request line", raw_request(s.port, "\x01\x02\x03 garbage\r\n\r\n"));
  check("header too long", raw_request(s.port, "GET /api/next HTTP/1.1\r\nHost: x\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"));
  EXPECT_GE(got.size(), 30u);
  // The same submission_id with another body: 409; the original stored once.
  EXPECT_EQ(post(ca, "/api/labels", label_body({0, 1, 2}, "once")), 200);
  EXPECT_EQ(post(ca, "/api/labels", label_body({0, 1, 2}, "once")), 200);
  EXPECT_EQ(post(ca, "/api/labels", label_body({2, 1, 0}, "once")), 409);
  EXPECT_EQ(s.task.store->counts().labels, 1);
  // Still serving, and the answers carry the security headers.
  auto ok = ca.Get("/api/progress");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Json::parse(ok->body)["done"], 1);
  EXPECT_NE(ok->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(ok->get_header_value("X-Content-Type-Options"), "nosniff");
  auto page = none.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto st = cadm.Get("/api/admin/status");
  ASSERT_TRUE(st);
  EXPECT_EQ(Json::parse(st->body)["labels"], 1);
  // Every error body is one JSON object with "error".
  auto e = none.Get("/api/next");
  EXPECT_TRUE(Json::parse(e->body).contains("error"));
}

// 50 raters at once against `rlhf label serve` (a child process) with overlap 2; the server is
// killed with SIGKILL after some labels and started again; the raters retry and finish. Every label
// answered 200 is in the export, exactly once per (item, rater), with the ranking that was sent.
TEST(LabelServer, FiftyRatersAndKillNineLoseNothing) {
  TempDir d;
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("r" + std::to_string(i));
  label::TaskOptions o;
  o.overlap = 2;
  TaskStore::create(d / "task", make_items(150, 4), o, names, {});
  Json sec = label::read_secrets(d / "task");
  int port = label::free_loopback_port();
  auto start = [&] {
    pid_t pid = fork();
    if (pid == 0) {
      std::string bin = test::rlhf_bin(), p = std::to_string(port), t = (d / "task").string();
      ::freopen("/dev/null", "w", stderr);
      ::freopen("/dev/null", "w", stdout);
      execl(bin.c_str(), bin.c_str(), "label", "serve", "--task", t.c_str(), "--port", p.c_str(), (char*)nullptr);
      _exit(127);
    }
    return pid;
  };
  pid_t server = start();
  label::ClientOptions co;
  co.port = port;
  co.give_up_seconds = 30;
  for (auto& r : sec["raters"]) co.tokens.push_back(r["token"]);
  std::atomic<int64_t> sent{0};
  // Each rater ranks by the served text, reversed order of the original index: checkable after.
  label::RaterPolicy policy = [&](const Json& item, size_t) {
    ++sent;
    Json ranking = Json::array();
    for (int want = 3; want >= 0; --want)
      for (size_t p = 0; p < 4; ++p)
        if (original(item, p) == want) ranking.push_back(p);
    return Json{{"ranking", ranking}, {"seconds", 1.0}};
  };
  std::thread killer([&] {
    while (sent < 80) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::kill(server, SIGKILL);
    ::waitpid(server, nullptr, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server = start();
  });
  auto st = label::run_rater_clients(co, policy);
  killer.join();
  EXPECT_TRUE(st.error.empty()) << st.error;
  EXPECT_EQ(st.labels, 300);  // 150 items x overlap 2
  EXPECT_GT(st.retries, 0) << "the kill -9 should have interrupted some requests";
  ::kill(server, SIGTERM);
  int status = 0;
  ::waitpid(server, &status, 0);
  TaskStore store(d / "task");
  store.export_labels(d / "out.jsonl", "none");
  auto recs = read_jsonl(d / "out.jsonl");
  EXPECT_EQ(int64_t(recs.size()), st.labels);
  std::set<std::pair<std::string, std::string>> seen, acked;
  for (auto& r : recs) {
    EXPECT_TRUE(seen.insert({r.value["item_id"].get<std::string>(), r.value["rater"].get<std::string>()}).second) << "a duplicate label";
    EXPECT_EQ(r.value["ranking"], Json({3, 2, 1, 0}));
  }
  // Exactly the (item, rater) pairs that were answered 200, each with the ranking that rater sent.
  for (auto& a : st.acknowledged) acked.insert({a.item_id, sec["raters"][a.rater]["name"].get<std::string>()});
  EXPECT_EQ(acked.size(), 300u);
  EXPECT_TRUE(seen == acked);
  EXPECT_EQ(store.counts().open_slots, 0);
}

// The CLI end to end: new prints one URL per rater; export refuses an empty task with one line.
TEST(LabelCli, NewStatusExportAndRaters) {
  TempDir d;
  {
    std::string s;
    for (int i = 0; i < 3; ++i)
      s += Json{{"prompt", "q" + std::to_string(i)}, {"responses", {" a" + std::to_string(i), "b\n"}}, {"model", "m"}}.dump() + "\n";
    test::write_bytes(d / "s.jsonl", s);
  }
  const std::string bin = test::rlhf_bin() + " label ";
  auto r = test::run_command(bin + "new --samples " + (d / "s.jsonl").string() + " --out " + (d / "t").string() +
                             " --raters alice,bob --overlap 2 --chat");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("alice        http://127.0.0.1:8080/#token="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("admin        http://127.0.0.1:8080/admin#token="), std::string::npos) << r.out;
  test::expect_cli_error(test::run_command(bin + "export --task " + (d / "t").string() + " --out " + (d / "o.jsonl").string()),
                         {"no labels to export yet"}, "empty export");
  test::expect_cli_error(test::run_command(bin + "new --samples " + (d / "s.jsonl").string() + " --out " + (d / "t").string()),
                         {"already exists"}, "second new");
  test::write_bytes(d / "one.jsonl", "{\"prompt\": \"q\", \"responses\": [\"only\"]}\n");
  test::expect_cli_error(test::run_command(bin + "new --samples " + (d / "one.jsonl").string() + " --out " + (d / "t1").string()),
                         {"one.jsonl:1", "at least 2 responses"}, "one response");
  test::expect_cli_error(test::run_command(bin + "serve --task " + (d / "nothing").string()), {"no labelling task here"}, "serve nothing");
  test::expect_cli_error(test::run_command(bin + "new --samples " + (d / "s.jsonl").string() + " --out " + (d / "t2").string() +
                                           " --order uncertain"),
                         {"--order uncertain needs --reward"}, "uncertain without reward");
  auto st = test::run_command(bin + "status --task " + (d / "t").string());
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("3 items (rank mode), overlap 2"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("not enough data"), std::string::npos) << st.out;
  auto add = test::run_command(bin + "raters add --task " + (d / "t").string() + " carol");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_NE(add.out.find("carol"), std::string::npos);
  ASSERT_EQ(test::run_command(bin + "raters revoke --task " + (d / "t").string() + " alice").exit_code, 0);
  auto ls = test::run_command(bin + "raters list --task " + (d / "t").string());
  EXPECT_NE(ls.out.find("alice (revoked)"), std::string::npos) << ls.out;
  TaskStore s(d / "t");
  auto items = s.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].prompt, Json::parse(R"([{"role":"user","content":"q0"}])"));  // --chat
  EXPECT_EQ(items[0].responses[0], "a0");                                          // trimmed as rlhf world rank does
  EXPECT_EQ(items[0].source["model"], "m");
}

// `rlhf label simulate`: the demo world's raters label a served task through the HTTP API, one client
// per rater token, until the server has nothing left.
TEST(LabelCli, SimulateLabelsAServedTaskThroughTheApi) {
  TempDir d;
  const std::string bin = test::rlhf_bin();
  ASSERT_EQ(test::run_command(bin + " world generate --out " + (d / "w").string() +
                              " --pretrain-docs 10 --sft-examples 2 --train-prompts 6 --eval-prompts 2").exit_code, 0);
  {
    std::string s;
    for (auto& r : read_jsonl(d / "w/prompts.jsonl"))
      s += Json{{"prompt", r.value["prompt"]}, {"responses", {"I do not know.", "Yes.", "No."}}}.dump() + "\n";
    test::write_bytes(d / "s.jsonl", s);
  }
  ASSERT_EQ(test::run_command(bin + " label new --chat --raters a,b --overlap 2 --samples " + (d / "s.jsonl").string() +
                              " --out " + (d / "t").string()).exit_code, 0);
  const int port = label::free_loopback_port();
  pid_t srv = fork();
  if (srv == 0) {
    std::string p = std::to_string(port), t = (d / "t").string();
    if (!std::freopen("/dev/null", "w", stdout) || !std::freopen("/dev/null", "w", stderr)) _exit(126);
    execl(bin.c_str(), bin.c_str(), "label", "serve", "--task", t.c_str(), "--port", p.c_str(), (char*)nullptr);
    _exit(127);
  }
  auto r = test::run_command(bin + " label simulate --task " + (d / "t").string() + " --world " + (d / "w/world.json").string() +
                             " --port " + std::to_string(port));
  ::kill(srv, SIGTERM);
  ::waitpid(srv, nullptr, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json st = Json::parse(r.out);
  EXPECT_EQ(st["labels"], 12);  // 6 items x overlap 2
  EXPECT_EQ(st["duplicates"], 0);
  TaskStore store(d / "t");
  EXPECT_EQ(store.counts().labels, 12);
  EXPECT_EQ(store.counts().open_slots, 0);
}

// --order uncertain --reward RM: items are served by the reward model's doubt, mean p(1 - p) over
// response pairs with p = sigmoid(r_i - r_j), computed here from `rlhf score`'s rewards of the same
// samples; identical responses (the model cannot tell them apart) come first with doubt 1/4.
TEST(LabelCli, OrderUncertainServesWhatTheRewardModelSeparatesLeast) {
  TempDir d;
  test::make_tiny_lm(d / "rm");
  {
    std::string s;
    const std::vector<std::vector<std::string>> resp = {{"The answer is 4.", "The quick brown fox."},
                                                        {"same words", "same words", "same words"},
                                                        {"Hello world, the lazy dog.", "7", "The answer is 12."},
                                                        {"Yes.", "No, certainly not, never."}};
    for (size_t i = 0; i < resp.size(); ++i)
      s += Json{{"prompt", "What is " + std::to_string(i) + " plus 2?"}, {"responses", resp[i]}}.dump() + "\n";
    test::write_bytes(d / "s.jsonl", s);
  }
  auto r = test::run_command(test::rlhf_bin() + " label new --samples " + (d / "s.jsonl").string() + " --out " +
                             (d / "t").string() + " --order uncertain --reward " + (d / "rm").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto sc = test::run_command(test::rlhf_bin() + " score --reward " + (d / "rm").string() + " --data " + (d / "s.jsonl").string());
  ASSERT_EQ(sc.exit_code, 0) << sc.err;
  std::vector<double> doubt;
  std::istringstream lines(sc.out);
  for (std::string line; std::getline(lines, line);) {
    auto rw = Json::parse(line)["rewards"].get<std::vector<double>>();
    double sum = 0;
    int n = 0;
    for (size_t a = 0; a < rw.size(); ++a)
      for (size_t b = a + 1; b < rw.size(); ++b, ++n) {
        double p = 1 / (1 + std::exp(-(rw[a] - rw[b])));
        sum += p * (1 - p);
      }
    doubt.push_back(sum / n);
  }
  ASSERT_EQ(doubt.size(), 4u);
  EXPECT_DOUBLE_EQ(doubt[1], 0.25);
  TaskStore store(d / "t");
  auto items = store.items();
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(items[i].priority, doubt[i], 1e-6) << i;
  auto w = *store.authenticate(label::read_secrets(d / "t")["raters"][0]["token"].get<std::string>());
  std::vector<double> served;
  int sid = 0;
  while (auto it = store.next(w)) {
    served.push_back(doubt[size_t(std::stoi((*it)["item_id"].get<std::string>()) - 1)]);
    Json ranking = Json::array();
    for (size_t p = 0; p < (*it)["responses"].size(); ++p) ranking.push_back(p);
    store.submit(w, {{"item_id", (*it)["item_id"]}, {"ranking", ranking}, {"submission_id", "u" + std::to_string(sid++)}});
  }
  ASSERT_EQ(served.size(), 4u);
  EXPECT_TRUE(std::is_sorted(served.rbegin(), served.rend())) << "most uncertain first";
  EXPECT_DOUBLE_EQ(served[0], 0.25);
}

}  // namespace
}  // namespace rlhf
