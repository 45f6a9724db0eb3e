// Checkpoints: a run directory holds
//   model.safetensors   every parameter tensor by its layout name (e.g. "layers.0.attn.wq"), and
//                       metadata: format "scalevec", format_version, the model config as JSON, step
//   state.safetensors   what an exact resume needs besides the weights: every buffer of the
//                       optimizer's state() by its name ("adam.m", "adam.v", "muon.momentum",
//                       "sgd.momentum"; flat, in layout order), and metadata: step, the optimizer's
//                       name and step count, the data sampler's RNG state and the training config
// Both files are written atomically (temporary file, then rename). Loading checks everything and
// throws Error with the reason: missing or truncated file, corrupted header or data, another
// format or version, a config that differs from the requested model, missing or extra tensors, the
// state of another optimizer than the one asked to load it.
#pragma once

#include <cstdint>
#include <string>

#include "../model/transformer.h"
#include "config.h"
#include "optim.h"

namespace scalevec {

inline constexpr int kCheckpointVersion = 1;

std::string model_path(const std::string& dir);  // dir/model.safetensors
std::string state_path(const std::string& dir);  // dir/state.safetensors

// Returns the checksum of the saved weights (the state file records it to prove the pairing).
template <class T>
std::string save_model(const std::string& path, const Transformer<T>& model, int64_t step);
// The model config stored in a checkpoint (validated).
ModelConfig read_model_config(const std::string& path);
// Loads weights into a model built with the same config; returns the checkpoint's step and, if
// asked, the checksum of its weights.
template <class T>
int64_t load_model(const std::string& path, Transformer<T>& model, std::string* crc32 = nullptr);

struct TrainState {
  int64_t step = 0;        // optimizer steps completed
  uint64_t data_rng = 0;   // state of the training-batch sampler
  TrainConfig train;
  std::string model_crc32;  // checksum of the weights saved with this state (pairs the files)
  uint32_t corpus_crc32 = 0;  // checksum of the training text (a resume must use the same)
};

// The optimizer is not const: state() hands out its buffers (save_state only reads them).
template <class T>
void save_state(const std::string& path, Optimizer<T>& opt, const TrainState& s);
// Restores opt's buffers and step count; refuses a file written by another optimizer, naming both.
template <class T>
TrainState load_state(const std::string& path, Optimizer<T>& opt);
// The training config stored in a state file (validated).
TrainConfig read_train_config(const std::string& path);

// "d_model: checkpoint 128, requested 384; ..." or empty when equal.
std::string config_differences(const nlohmann::json& have, const nlohmann::json& want);

}  // namespace scalevec
