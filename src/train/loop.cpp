#include "train/loop.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "data/example.h"
#include "train/checkpoint.h"
#include "train/metrics.h"

namespace rlhf {

namespace fs = std::filesystem;

void StepMetrics::add(const std::string& name, double sum, double weight) {
  auto& e = v_[name];
  e.first += sum;
  e.second += weight;
}

double StepMetrics::sum(const std::string& name) const {
  auto it = v_.find(name);
  return it == v_.end() ? 0.0 : it->second.first;
}

Json StepMetrics::mean() const {
  Json j = Json::object();
  for (auto& [k, v] : v_) j[k] = v.second > 0 ? v.first / v.second : 0.0;
  return j;
}

void load_trainable_weights(TransformerImpl& model, bool lora, const fs::path& ckpt) {
  torch::NoGradGuard ng;
  if (!lora) {
    SafetensorsReader st(ckpt);
    load_weights(model, st);
    return;
  }
  SafetensorsFile f(ckpt / "adapter_model.safetensors");
  for (auto& item : model.named_parameters(true)) {
    if (!item.value().requires_grad()) continue;
    std::string key = "base_model.model." + item.key();
    RLHF_CHECK(f.find(key), ckpt.string(), ": checkpoint lacks \"", key, "\"; it was written with other LoRA settings");
    item.value().copy_(f.load(key));
  }
}

namespace {

struct TrainerState {
  int64_t step = 0;
  int64_t num_tokens = 0;
  int64_t bad_streak = 0;
  Json to_json() const { return {{"step", step}, {"num_tokens", num_tokens}, {"bad_streak", bad_streak}}; }
};

void save_checkpoint(CheckpointManager& ck, TransformerImpl& model, const std::optional<LoraConfig>& lora,
                     const AdamW& opt, const TrainerState& st, const std::string& name, const Json& resolved) {
  ck.save(st.step, [&](const fs::path& dir) {
    if (lora) {
      save_lora(model, *lora, dir);
    } else {
      save_model(model, dir, torch::kFloat);
    }
    opt.save(dir / "optimizer.safetensors");
    save_safetensors(dir / "rng.safetensors", rng_states());
    write_json_atomic(dir / (name + "_config.json"), resolved);
    write_json_atomic(dir / "trainer_state.json", st.to_json());  // last: marks the checkpoint complete
  });
}

}  // namespace

void run_training(const TrainConfig& cfg, TransformerImpl& model, const std::optional<LoraConfig>& lora,
                  int64_t num_examples, const TrainHooks& hooks, const std::string& name, const Json& resolved) {
  RLHF_CHECK(!cfg.out.empty(), "--out is required");
  RLHF_CHECK(num_examples > 0, "no training examples");
  RLHF_CHECK(cfg.batch_size > 0, "batch size must be positive");
  const int64_t micro = cfg.micro_batch_size > 0 ? cfg.micro_batch_size : cfg.batch_size;
  RLHF_CHECK(micro <= cfg.batch_size, "micro batch size ", micro, " exceeds the batch size ", cfg.batch_size);
  const int64_t per_epoch = (num_examples + cfg.batch_size - 1) / cfg.batch_size;
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps : cfg.epochs * per_epoch;
  RLHF_CHECK(total > 0, "nothing to do: 0 training steps (epochs ", cfg.epochs, ", max_steps ", cfg.max_steps, ")");

  model.set_gradient_checkpointing(cfg.gradient_checkpointing);
  auto trainable = trainable_parameters(model);
  std::vector<torch::Tensor> params;
  for (auto& [n, t] : trainable) params.push_back(t);
  AdamW opt(trainable, cfg.adam, cfg.decay_all);
  CheckpointManager ck(cfg.out, cfg.keep_last);
  TrainerState st;
  torch::manual_seed(cfg.seed);  // dropout; a resumed run restores the generator state below
  if (auto latest = ck.latest(); latest && cfg.resume) {
    load_trainable_weights(model, lora.has_value(), *latest);
    opt.load(*latest / "optimizer.safetensors");
    restore_rng_states(*latest / "rng.safetensors");
    Json s = read_json_file(*latest / "trainer_state.json", "trainer state");
    st.step = s.at("step").get<int64_t>();
    st.num_tokens = s.value("num_tokens", int64_t(0));
    st.bad_streak = s.value("bad_streak", int64_t(0));
    log_info("resuming from ", latest->string(), " (step ", st.step, " of ", total, ")");
  } else if (latest) {
    RLHF_FAIL(cfg.out, ": holds checkpoints of an earlier run (", latest->string(),
              "); pass --resume to continue it, or choose another --out");
  } else if (cfg.resume) {
    log_info("--resume: no checkpoint in ", ck.root().string(), "; starting from the beginning");
  }
  ensure_directory(cfg.out);
  write_json_atomic(fs::path(cfg.out) / (name + "_config.json"), resolved);
  MetricsLog metrics(cfg.out, st.step > 0 ? st.step : -1);
  install_stop_handlers();
  log_info(name, ": ", num_examples, " examples, ", total, " steps (", per_epoch, " per epoch) of ", cfg.batch_size,
           " examples", micro < cfg.batch_size ? " in micro-batches of " + std::to_string(micro) : std::string(),
           ", ", trainable.size(), " trainable tensors");

  model.train();
  Progress bar(name, total, "steps");
  bar.update(st.step);
  auto t_start = std::chrono::steady_clock::now();
  int64_t tokens_since = 0;
  double last_eval_loss = NAN;
  for (; st.step < total;) {
    const int64_t step = st.step;
    const double lr = scheduled_lr(cfg.schedule, cfg.adam.lr, step, total);
    const int64_t epoch = step / per_epoch, b = step % per_epoch;
    auto order = epoch_order(num_examples, cfg.seed, epoch, cfg.shuffle);
    std::vector<int64_t> idx(order.begin() + b * cfg.batch_size,
                             order.begin() + std::min(num_examples, (b + 1) * cfg.batch_size));
    double denom = 0;
    for (auto i : idx) denom += hooks.weight(i);
    if (denom <= 0) denom = 1;  // a batch with nothing to learn: loss 0, grads 0

    // 1. forward/backward over micro-batches (gradients accumulate)
    auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    StepMetrics m;
    for (size_t i = 0; i < idx.size(); i += size_t(micro)) {
      std::vector<int64_t> part(idx.begin() + long(i), idx.begin() + long(std::min(idx.size(), i + size_t(micro))));
      hooks.micro_step(part, denom, m);
    }
    // 2. clip, guard against NaN/Inf, update
    double loss = m.mean().value("loss", 0.0);
    double gnorm = grad_norm(params);
    bool ok = std::isfinite(loss) && std::isfinite(gnorm);
    if (ok) {
      opt.step(lr, clip_scale(gnorm, cfg.max_grad_norm));
      st.bad_streak = 0;
    } else {
      opt.zero_grad();
      ++st.bad_streak;
      log_warn("step ", step + 1, ": ", std::isfinite(loss) ? "gradient norm" : "loss", " is ",
               std::isfinite(loss) ? gnorm : loss, "; update skipped (", st.bad_streak, " in a row)");
      if (st.bad_streak >= cfg.max_bad_steps) {
        auto last = ck.latest();
        RLHF_FAIL(name, ": stopped after ", st.bad_streak, " consecutive steps with NaN/Inf loss or gradients; ",
                  last ? "last good checkpoint: " + last->string() : std::string("no checkpoint was written"),
                  "; lower the learning rate or check the data");
      }
    }
    st.step = step + 1;
    int64_t step_tokens = int64_t(m.sum("num_tokens"));
    st.num_tokens += step_tokens;
    tokens_since += step_tokens;
    synchronize_device();  // the optimizer's kernels may still run on a GPU
    double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // 3. metrics, evaluation, checkpoints
    Json row = m.mean();
    row.erase("num_tokens");
    row["loss"] = loss;
    row["grad_norm"] = gnorm;
    row["learning_rate"] = lr;
    row["epoch"] = double(step + 1) / double(per_epoch);
    row["num_tokens"] = st.num_tokens;
    row["tokens_per_second"] = step_s > 0 ? double(step_tokens) / step_s : 0.0;
    row["step_time"] = step_s;
    bool last_step = st.step == total;
    if (hooks.evaluate && ((cfg.eval_steps > 0 && st.step % cfg.eval_steps == 0) || last_step)) {
      torch::NoGradGuard ng;
      model.eval();
      Json ev = hooks.evaluate();
      model.train();
      for (auto it = ev.begin(); it != ev.end(); ++it) row["eval_" + it.key()] = it.value();
      last_eval_loss = ev.value("loss", NAN);
    }
    if (st.step % std::max<int64_t>(1, cfg.logging_steps) == 0 || last_step || row.contains("eval_loss"))
      metrics.log(st.step, row);
    char extra[128];
    std::snprintf(extra, sizeof extra, "loss %.4f%s", loss,
                  std::isnan(last_eval_loss) ? "" : (" eval " + std::to_string(last_eval_loss).substr(0, 6)).c_str());
    bar.update(st.step, extra);
    bool stop = stop_requested();
    if ((cfg.save_steps > 0 && st.step % cfg.save_steps == 0) || last_step || stop)
      save_checkpoint(ck, model, lora, opt, st, name, resolved);
    if (stop && !last_step) {
      bar.finish(extra);
      RLHF_FAIL(name, ": interrupted at step ", st.step, " of ", total, "; checkpoint saved, continue with --resume");
    }
  }
  bar.finish();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  hooks.save_output(cfg.out);
  log_info(name, ": done in ", format_duration(el), " (", int64_t(double(tokens_since) / std::max(el, 1e-9)),
           " tokens/s); wrote ", cfg.out);
}

}  // namespace rlhf
