// A labelling task: the items people rank (a prompt and its K responses), the raters and their
// secret tokens, who was handed which item, and every label, in one SQLite database (WAL) in the
// task directory. `rlhf label new` creates it; the server (label/server.h) and the commands
// (`status`, `export`, `raters`) open it, also at the same time (SQLite serialises the writers).
//
// Assignment: each item goes to `overlap` different raters; a rater never gets an item twice; an
// item handed out (leased) and not labelled within `lease_seconds` counts as free again; a skipped
// item goes to someone else. A rater sees the responses in an order shuffled for them (recorded),
// and every index in their requests refers to that order; labels are stored in both orders.
// Every label is committed (synchronous=FULL) before the request that sent it is answered.
#pragma once
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/json.h"
#include "label/sqlite.h"

namespace rlhf::label {

namespace fs = std::filesystem;

// What a rater's or admin's request got wrong: the HTTP status (4xx) and one line.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& msg) : std::runtime_error(msg), status(status) {}
  int status;
};

struct TaskOptions {
  std::string mode = "rank";          // rank: order K responses | pairs: A vs B on a five-point scale
  int64_t overlap = 1;                // raters per item
  bool likert = false;                // ask for a 1-7 score per response
  std::vector<std::string> flags;     // per-response checkboxes (InstructGPT-style)
  std::string guidelines;             // shown one click away (text)
  double lease_seconds = 1800;        // an unlabelled item handed out this long ago is free again
  int64_t min_overlap = 20;           // a rater's agreement is shown from this many shared items on
  std::string order = "given";        // given | uncertain (items' priority: the reward model's doubt)
  uint64_t seed = 1;                  // the raters' response orders
  Json to_json() const;
  static TaskOptions from_json(const Json& j);
};

// One item to label. `source` is kept for the export and never shown to raters (the model that wrote
// a response, the samples' line).
struct Item {
  Json prompt;                        // a string or chat turns
  std::vector<std::string> responses;
  Json source = Json::object();
  double priority = 0;                // higher first
};

struct RaterToken {
  std::string name, token;
};

struct Who {
  int64_t rater = -1;  // -1 for the admin
  std::string name;
  bool admin = false;
};

// Progress of the whole task, for the pipeline's quota and `status`.
struct TaskCounts {
  int64_t items = 0, labels = 0, skips = 0, leased = 0;
  int64_t open_slots = 0;  // (item, slot) pairs still missing a label: items x overlap - labels, per item >= 0
  int64_t assignable = 0;  // of those, how many some active rater could still be handed
};

class TaskStore {
 public:
  // Writes TASK_DIR/task.db (refused if it exists) and TASK_DIR/raters.json (mode 0600) with the
  // tokens; the database keeps only their SHA-256.
  static std::vector<RaterToken> create(const fs::path& dir, const std::vector<Item>& items, const TaskOptions& opts,
                                        const std::vector<std::string>& raters, const Json& about);
  static bool exists(const fs::path& dir);
  explicit TaskStore(const fs::path& dir);

  const TaskOptions& options() const { return opts_; }
  const fs::path& dir() const { return dir_; }
  Json about();  // what the task was made from (samples file and its fingerprint, ...)
  std::vector<Item> items();  // every item, in id order (responses in their original order)

  // nullopt for a token that is unknown or revoked.
  std::optional<Who> authenticate(const std::string& token);

  // The rater API (server.h maps each to its endpoint; see the README).
  Json task_info(const Who& w);
  std::optional<Json> next(const Who& w);
  Json item(const Who& w, const std::string& item_id);
  Json submit(const Who& w, const Json& body);
  Json skip(const Who& w, const Json& body);
  Json save_draft(const Who& w, const Json& body);
  Json progress(const Who& w);
  Json history(const Who& w);

  // Admin: per-rater figures and agreement (also `rlhf label status`).
  Json status();
  TaskCounts counts();

  // The team: add returns the new token (also added to raters.json); revoke frees the rater's leases
  // and refuses their token from then on (their labels stay).
  std::string add_rater(const std::string& name);
  void revoke_rater(const std::string& name);
  Json raters();

  // The labels in the format rlhf rm / rlhf dpo read. aggregate: none (one record per label) |
  // mean-rank | ranked-pairs (one record per item, the raters' own rankings kept). Returns counts.
  Json export_labels(const fs::path& out, const std::string& aggregate);

 private:
  void check_item_access(int64_t item, const Who& w);
  Json item_json(int64_t item, const Who& w, bool with_label);
  std::vector<int> shown_order(int64_t item, const Who& w);
  void write_raters_file();

  fs::path dir_;
  Db db_;
  TaskOptions opts_;
  std::string admin_hash_;
  std::mutex mu_;
};

// TASK_DIR/raters.json: {"admin": TOKEN, "raters": [{"name", "token"}]} (errors name the file).
Json read_secrets(const fs::path& dir);
// The URLs that open the app as each rater and as the admin, for a server at `base` (http://host:port).
std::vector<std::pair<std::string, std::string>> rater_urls(const fs::path& dir, const std::string& base);

// A ranking as the API and the export write it ([2, [0, 3], 1]: best first, ties nested) as ranks
// per response (0 = best, equal = tie; label/agreement.h's rank vectors), and back.
std::vector<int> ranks_of(const Json& ranking, size_t k);
Json ranking_of(const std::vector<int>& rank);

// "17" -> 17; anything else (not a string of digits) -> ApiError 400 naming the field.
int64_t parse_item_id(const Json& v);

}  // namespace rlhf::label
