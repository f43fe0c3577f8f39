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
    auto t = f.load(key);
    require_finite(t, f.path().string(), key, "the checkpoint is corrupt");
    item.value().copy_(t);
  }
}

void validate_optimizer_options(const AdamWConfig& a, const ScheduleConfig& s, double max_grad_norm) {
  auto finite = [](double v) { return std::isfinite(v); };
  RLHF_CHECK(finite(a.lr) && a.lr >= 0, "--lr ", a.lr, " is not a learning rate; give a finite number >= 0 (e.g. 2e-5)");
  RLHF_CHECK(finite(a.weight_decay) && a.weight_decay >= 0, "--weight-decay ", a.weight_decay, " must be a finite number >= 0");
  RLHF_CHECK(finite(a.beta1) && a.beta1 >= 0 && a.beta1 < 1, "--adam-beta1 ", a.beta1, " must be in [0, 1)");
  RLHF_CHECK(finite(a.beta2) && a.beta2 >= 0 && a.beta2 < 1, "--adam-beta2 ", a.beta2, " must be in [0, 1)");
  RLHF_CHECK(finite(a.eps) && a.eps > 0, "--adam-eps ", a.eps, " must be a finite number > 0");
  RLHF_CHECK(s.type == "cosine" || s.type == "linear" || s.type == "constant" || s.type == "constant_with_warmup",
             "--lr-schedule \"", s.type, "\" is not known; use cosine, linear or constant (constant_with_warmup)");
  RLHF_CHECK(s.warmup_steps >= 0, "--warmup-steps ", s.warmup_steps, " must be >= 0");
  RLHF_CHECK(finite(s.warmup_ratio) && s.warmup_ratio >= 0 && s.warmup_ratio <= 1, "--warmup-ratio ", s.warmup_ratio,
             " must be in [0, 1]");
  RLHF_CHECK(finite(s.min_lr_ratio) && s.min_lr_ratio >= 0 && s.min_lr_ratio <= 1, "--min-lr-ratio ", s.min_lr_ratio,
             " must be in [0, 1]");
  RLHF_CHECK(finite(max_grad_norm) && max_grad_norm >= 0, "--max-grad-norm ", max_grad_norm,
             " must be a finite number > 0, or 0 to turn clipping off");
}

void validate_train_config(const TrainConfig& c) {
  RLHF_CHECK(!c.out.empty(), "--out is required");
  RLHF_CHECK(c.max_steps >= 0, "--max-steps ", c.max_steps, " must be >= 0 (0 = as many as --epochs give)");
  RLHF_CHECK((std::isfinite(c.epochs) && c.epochs > 0) || c.max_steps > 0, "--epochs ", c.epochs,
             " must be a number > 0 (or give --max-steps)");
  RLHF_CHECK(c.report_to == "tensorboard" || c.report_to == "none", "--report-to \"", c.report_to,
             "\" is not available; use tensorboard or none (metrics.jsonl is always written)");
  RLHF_CHECK(c.batch_size >= 1, "--batch-size ", c.batch_size, " must be >= 1");
  RLHF_CHECK(c.micro_batch_size >= 0 && c.micro_batch_size <= c.batch_size, "--micro-batch-size ", c.micro_batch_size,
             " must be in [0, --batch-size ", c.batch_size, "] (0 = no accumulation)");
  validate_optimizer_options(c.adam, c.schedule, c.max_grad_norm);
  RLHF_CHECK(c.save_steps >= 0, "--save-steps ", c.save_steps, " must be >= 0 (0 = only at the end)");
  RLHF_CHECK(c.keep_last >= 0, "--keep-last ", c.keep_last, " must be >= 0 (0 = keep every checkpoint)");
  RLHF_CHECK(c.eval_steps >= 0, "--eval-steps ", c.eval_steps, " must be >= 0 (0 = only at the end)");
  RLHF_CHECK(c.logging_steps >= 1, "--logging-steps ", c.logging_steps, " must be >= 1");
  RLHF_CHECK(c.max_bad_steps >= 1, "--max-bad-steps ", c.max_bad_steps, " must be >= 1");
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
  validate_train_config(cfg);
  RLHF_CHECK(num_examples > 0, "no training examples");
  const int64_t micro = cfg.micro_batch_size > 0 ? cfg.micro_batch_size : cfg.batch_size;
  RLHF_CHECK(micro <= cfg.batch_size, "micro batch size ", micro, " exceeds the batch size ", cfg.batch_size);
  const int64_t per_epoch = (num_examples + cfg.batch_size - 1) / cfg.batch_size;
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps : int64_t(std::ceil(cfg.epochs * double(per_epoch) - 1e-9));
  RLHF_CHECK(total > 0, "nothing to do: 0 training steps (epochs ", cfg.epochs, ", max_steps ", cfg.max_steps, ")");

  model.set_gradient_checkpointing(cfg.gradient_checkpointing);
  auto trainable = trainable_parameters(model);
  std::vector<torch::Tensor> params;
  for (auto& [n, t] : trainable) params.push_back(t);
  AdamW opt(trainable, cfg.adam, cfg.decay_all);
  CheckpointManager ck(cfg.out, cfg.keep_last);
  TrainerState st;
  torch::manual_seed(cfg.seed);  // dropout; a resumed run restores the generator state below
  Activity act("training (" + name + ")");
  auto latest = cfg.resume ? checkpoint_to_resume(ck, name, resolved, cfg.resume_anyway) : ck.latest();
  if (latest && cfg.resume) {
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
  MetricsLog metrics(cfg.out, st.step > 0 ? st.step : -1, cfg.report_to == "tensorboard");
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
    // At the end only when asked (--save-steps or --save-final-state): optimizer state is twice a
    // full model's size, and a finished run rarely continues.
    if ((cfg.save_steps > 0 && (st.step % cfg.save_steps == 0 || last_step)) || (last_step && cfg.save_final_state) || stop)
      save_checkpoint(ck, model, lora, opt, st, name, resolved);
    if (stop && !last_step) {
      bar.finish(extra);
      RLHF_FAIL(name, ": interrupted at step ", st.step, " of ", total, "; checkpoint saved, continue with --resume");
    }
  }
  bar.finish();
  // A run whose last steps were skipped for NaN/Inf did not end well, even if the weights are finite.
  RLHF_CHECK(st.bad_streak == 0, name, ": the last ", st.bad_streak, " step(s) had NaN/Inf loss or gradients, so the "
             "model was not saved; lower the learning rate or check the data (checkpoint: ",
             ck.latest() ? ck.latest()->string() : std::string("none"), ")");
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  hooks.save_output(cfg.out);
  mark_training_finished(cfg.out, st.step);
  log_info(name, ": done in ", format_duration(el), " (", int64_t(double(tokens_since) / std::max(el, 1e-9)),
           " tokens/s); wrote ", cfg.out);
}

}  // namespace rlhf
