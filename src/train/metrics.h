// Training metrics: one JSON object per step in metrics.jsonl (TRL's names: loss, grad_norm,
// learning_rate, mean_token_accuracy, num_tokens, eval_loss, ...), mirrored as scalars into a
// TensorBoard event file in the same directory so `tensorboard --logdir` shows the curves.
#pragma once
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "io/json.h"

namespace rlhf {

// Minimal TensorBoard writer: scalar summaries in the tfevents record format.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  void scalar(const std::string& tag, double value, int64_t step);
  void flush();  // errors (disk full, file-size limit) are rlhf::Error

 private:
  void write_event(const std::string& event);
  std::FILE* f_ = nullptr;
};

class MetricsLog {
 public:
  // Fresh run (resume_step < 0): starts metrics.jsonl anew. Resumed run: keeps the lines up to and
  // including resume_step and drops later ones (they are recomputed identically). Without
  // `tensorboard` (--report-to none) no event file is written.
  MetricsLog(const std::filesystem::path& dir, int64_t resume_step = -1, bool tensorboard = true);
  // Appends {"step": step, ...values}. Numbers also go to TensorBoard under the tags Hugging Face's
  // TensorBoardCallback gives them, so existing dashboards match: "eval_loss" -> "eval/loss", every
  // other name -> "train/<name>" ("train/loss", "train/objective/kl").
  void log(int64_t step, const Json& values);

 private:
  std::filesystem::path path_;
  std::unique_ptr<TensorBoardWriter> tb_;
};

// The TensorBoard tag of a metric name (see MetricsLog::log).
std::string tensorboard_tag(const std::string& name);

// CRC32C (Castagnoli), as TensorBoard's record format uses.
uint32_t crc32c(const void* data, size_t n);

}  // namespace rlhf
