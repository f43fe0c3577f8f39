// What a labelling task is made of: items from a samples file (`rlhf generate --n K`'s output, or
// {"prompt", "responses": [...]} lines), and `--order uncertain`: the items whose responses the
// current reward model separates least are served first.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "label/task.h"
#include "train/reward.h"

namespace rlhf::label {

// rank mode: one item per record (K >= 2 responses). pairs mode: the responses in disjoint pairs
// (0, 1), (2, 3), ... (an odd last one left out, counted in *unpaired). `chat`: a text prompt was
// sampled as one user turn (rlhf generate --chat) and is kept as that turn.
std::vector<Item> items_from_samples(const std::filesystem::path& samples, const std::string& mode, bool chat,
                                     int64_t* unpaired = nullptr);

// Sets each item's priority to the reward model's doubt about its order: the mean over response
// pairs of p (1 - p), p = sigmoid(r_i - r_j) (1/4 when it cannot tell two responses apart).
void prioritise_uncertain(std::vector<Item>& items, RewardModel& rm, const Tokenizer& tok, const std::string& chat_template);

// What `about` records of the samples (path and content fingerprint), to refuse reusing a task
// for other samples.
Json samples_about(const std::filesystem::path& samples);

}  // namespace rlhf::label
