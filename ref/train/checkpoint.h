// Checkpoints. A run directory holds
//   checkpoints/step-00000020/   one complete checkpoint per saved step (the newest N are kept)
//       model.safetensors        every parameter tensor by its layout name (e.g.
//                                "layers.0.attn.wq"), and metadata: format "scalevec",
//                                format_version, the model config as JSON, the conventions a
//                                stranger needs to rebuild the model, step
//       state.safetensors        what an exact resume needs besides the weights: every buffer of
//                                the optimizer's state() by its name ("adam.m", "adam.v",
//                                "muon.momentum", "sgd.momentum"; flat, in layout order), and
//                                metadata: step, the optimizer's name and step count, the data
//                                sampler's RNG state, the training config, the model file's
//                                checksum (the pair is bound) and the corpus checksum
//   model.safetensors, state.safetensors   symbolic links to the newest checkpoint's files
//   metrics.jsonl, sample.txt, lock
// A save is atomic as a whole: both files are written into checkpoints/.partial-step-N/, flushed
// to disk (fsync), and published by renaming that directory to step-N; only then are the links
// moved and the checkpoints beyond the newest N removed. After a kill at any instant, a full disk
// or a power cut, the newest step-N directory is complete. Loading checks everything and throws
// Error with the reason: missing or truncated file, a header or data that does not match its
// checksum, another format or version, a metadata value out of range, a config that differs
// from the requested model, missing or extra tensors, a dtype that is not a float, non-finite
// weights, the state of another optimizer than the one asked to load it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../model/transformer.h"
#include "config.h"
#include "optim.h"

namespace scalevec {

// 2: the checksum covers the header as well as the data, one directory per checkpoint.
inline constexpr int kCheckpointVersion = 2;

// The complete checkpoints of a run directory, oldest first (checkpoints/step-N).
std::vector<std::string> checkpoint_dirs(const std::string& run);
// The files of the newest complete checkpoint; a directory without checkpoints/ (a file written
// by another program, or a copy of one checkpoint) is read as dir/model.safetensors.
std::string model_path(const std::string& dir);
std::string state_path(const std::string& dir);
// Removes what an interrupted save left behind (checkpoints/.partial-*, .stale-*, *.tmp).
void clean_interrupted_saves(const std::string& run);

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
  int64_t step = 0;       // optimizer steps completed
  uint64_t data_rng = 0;  // state of the training-batch sampler
  TrainConfig train;
  std::string model_crc32;    // checksum of the weights saved with this state (pairs the files)
  uint32_t corpus_crc32 = 0;  // checksum of the training text (a resume must use the same)
};

// Saves model, optimizer and state as one checkpoint of `run` (see the top of this file), keeping
// the newest `keep` (>= 1). Refuses non-finite weights or optimizer state. On a write error (a
// full disk) nothing of the new checkpoint is left and the previous ones are intact.
template <class T>
void save_checkpoint(const std::string& run, const Transformer<T>& model, Optimizer<T>& opt,
                     TrainState s, int keep);

// One writer per run directory: an exclusive lock on run/lock (flock), held while this object
// lives and released by the kernel if the process dies. A second train or ablate on the same
// directory throws Error at once, naming the process that holds it.
class RunLock {
 public:
  explicit RunLock(const std::string& run);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
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
