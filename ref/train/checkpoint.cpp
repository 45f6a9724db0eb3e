#include "checkpoint.h"

#include "../common.h"
#include "safetensors.h"

namespace scalevec {

using json = nlohmann::json;

std::string model_path(const std::string& dir) { return dir + "/model.safetensors"; }
std::string state_path(const std::string& dir) { return dir + "/state.safetensors"; }

std::string config_differences(const json& have, const json& want) {
  std::string out;
  for (const auto& [k, v] : want.items()) {
    const std::string h = have.contains(k) ? have.at(k).dump() : "(missing)";
    if (h != v.dump()) out += fmt::format("{}{}: checkpoint {}, requested {}", out.empty() ? "" : "; ", k, h, v.dump());
  }
  return out;
}

// Format and version checks shared by both files.
static void check_format(const StFile& f, const std::string& path, const std::string& kind) {
  auto get = [&](const char* k) {
    auto it = f.metadata.find(k);
    return it == f.metadata.end() ? std::string() : it->second;
  };
  require(get("format") == "scalevec" && get("kind") == kind,
          "'{}' is not a scalevec {} checkpoint (format '{}', kind '{}')", path, kind,
          get("format"), get("kind"));
  require(get("format_version") == std::to_string(kCheckpointVersion),
          "'{}' has checkpoint format version '{}', but this build reads version {}", path,
          get("format_version"), kCheckpointVersion);
}

static const std::string& meta(const StFile& f, const std::string& path, const std::string& key) {
  auto it = f.metadata.find(key);
  require(it != f.metadata.end(), "'{}' lacks the metadata entry '{}'", path, key);
  return it->second;
}

template <class T>
std::string save_model(const std::string& path, const Transformer<T>& model, int64_t step) {
  StFile f;
  f.metadata = {{"format", "scalevec"},
                {"kind", "model"},
                {"format_version", std::to_string(kCheckpointVersion)},
                {"config", model.config().to_json().dump()},
                {"step", std::to_string(step)}};
  for (const auto& p : model.layout().params())
    f.tensors.push_back(
        {p.name, make_tensor(model.params.data() + p.offset,
                             std::vector<int64_t>(p.shape.begin(), p.shape.end()))});
  return write_safetensors(path, f);
}

static ModelConfig config_of(const StFile& f, const std::string& path) {
  json j;
  try {
    j = json::parse(meta(f, path, "config"));
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has a corrupted config: {}", path, e.what()));
  }
  try {
    return ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", path, e.what()));
  }
}

ModelConfig read_model_config(const std::string& path) {
  StFile f = read_safetensors(path);
  check_format(f, path, "model");
  return config_of(f, path);
}

template <class T>
int64_t load_model(const std::string& path, Transformer<T>& model, std::string* crc32) {
  StFile f = read_safetensors(path);
  check_format(f, path, "model");
  if (crc32) *crc32 = meta(f, path, "data_crc32");
  const ModelConfig have = config_of(f, path);
  const std::string diff = config_differences(have.to_json(), model.config().to_json());
  require(diff.empty(), "checkpoint '{}' does not match the requested model: {}", path, diff);
  for (const auto& p : model.layout().params()) {
    const StTensor* t = f.find(p.name);
    require(t != nullptr, "checkpoint '{}' lacks tensor '{}'", path, p.name);
    require(t->shape == std::vector<int64_t>(p.shape.begin(), p.shape.end()),
            "checkpoint '{}': tensor '{}' has the wrong shape", path, p.name);
    tensor_to(*t, model.params.data() + p.offset, p.numel, fmt::format("'{}': {}", path, p.name));
  }
  require(f.tensors.size() == model.layout().params().size(),
          "checkpoint '{}' has {} tensors, the model {}", path, f.tensors.size(),
          model.layout().params().size());
  try {
    return std::stoll(meta(f, path, "step"));
  } catch (const std::logic_error&) {
    throw Error(fmt::format("'{}' has a bad step entry", path));
  }
}

template <class T>
void save_state(const std::string& path, Optimizer<T>& opt, const TrainState& s) {
  StFile f;
  f.metadata = {{"format", "scalevec"},
                {"kind", "state"},
                {"format_version", std::to_string(kCheckpointVersion)},
                {"step", std::to_string(s.step)},
                {"optimizer", opt.name()},
                {"optimizer_t", std::to_string(opt.t)},
                {"data_rng", std::to_string(s.data_rng)},
                {"model_crc32", s.model_crc32},
                {"corpus_crc32", std::to_string(s.corpus_crc32)},
                {"train_config", s.train.to_json().dump()}};
  for (auto& [name, buf] : opt.state())
    f.tensors.push_back({name, make_tensor(buf->data(), {(int64_t)buf->size()})});
  write_safetensors(path, f);
}

// State files written before the optimizer became selectable hold AdamW's state, with its step
// count under "adam_t" and no "optimizer" entry.
static std::string optimizer_of(const StFile& f) {
  auto it = f.metadata.find("optimizer");
  return it == f.metadata.end() ? "adamw" : it->second;
}

// Step, optimizer step count, data RNG and training config from a state file's metadata.
static TrainState state_of(const StFile& f, const std::string& path, int64_t* opt_t) {
  TrainState s;
  try {
    s.step = std::stoll(meta(f, path, "step"));
    *opt_t = std::stoll(meta(f, path, f.metadata.count("optimizer_t") ? "optimizer_t" : "adam_t"));
    s.data_rng = std::stoull(meta(f, path, "data_rng"));
    s.model_crc32 = meta(f, path, "model_crc32");
    s.corpus_crc32 = (uint32_t)std::stoull(meta(f, path, "corpus_crc32"));
    s.train = TrainConfig::from_json(json::parse(meta(f, path, "train_config")));
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has corrupted metadata: {}", path, e.what()));
  } catch (const std::logic_error& e) {  // std::stoll and friends
    throw Error(fmt::format("'{}' has corrupted metadata: {}", path, e.what()));
  }
  return s;
}

TrainConfig read_train_config(const std::string& path) {
  StFile f = read_safetensors(path);
  check_format(f, path, "state");
  int64_t opt_t = 0;
  return state_of(f, path, &opt_t).train;
}

template <class T>
TrainState load_state(const std::string& path, Optimizer<T>& opt) {
  StFile f = read_safetensors(path);
  check_format(f, path, "state");
  const std::string saved = optimizer_of(f);
  require(saved == opt.name(),
          "'{}' holds the state of optimizer '{}', not of '{}': resume with --optimizer {} (or "
          "start a new run)", path, saved, opt.name(), saved);
  int64_t t = 0;
  TrainState s = state_of(f, path, &t);
  const auto buffers = opt.state();
  for (auto& [name, dst] : buffers) {
    const StTensor* st = f.find(name);
    require(st != nullptr, "'{}' lacks tensor '{}' of optimizer '{}'", path, name, opt.name());
    tensor_to(*st, dst->data(), dst->size(), fmt::format("'{}': {}", path, name));
  }
  require(f.tensors.size() == buffers.size(), "'{}' has {} tensors, optimizer '{}' keeps {}", path,
          f.tensors.size(), opt.name(), buffers.size());
  opt.t = t;
  return s;
}

template std::string save_model<float>(const std::string&, const Transformer<float>&, int64_t);
template std::string save_model<double>(const std::string&, const Transformer<double>&, int64_t);
template int64_t load_model<float>(const std::string&, Transformer<float>&, std::string*);
template int64_t load_model<double>(const std::string&, Transformer<double>&, std::string*);
template void save_state<float>(const std::string&, Optimizer<float>&, const TrainState&);
template void save_state<double>(const std::string&, Optimizer<double>&, const TrainState&);
template TrainState load_state<float>(const std::string&, Optimizer<float>&);
template TrainState load_state<double>(const std::string&, Optimizer<double>&);

}  // namespace scalevec
