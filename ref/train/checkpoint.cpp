#include "checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "../common.h"
#include "../json.h"
#include "safetensors.h"

namespace scalevec {

using json = nlohmann::json;

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The run directory

static bool is_step_name(const std::string& n) {
  if (n.size() < 6 || n.compare(0, 5, "step-") != 0) return false;
  return std::all_of(n.begin() + 5, n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> checkpoint_dirs(const std::string& run) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory(ec) && is_step_name(n) && n.size() <= 5 + 18)
      found.push_back({std::stoll(n.substr(5)), e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
}

static std::string newest_or(const std::string& dir, const char* file) {
  const auto dirs = checkpoint_dirs(dir);
  return (dirs.empty() ? dir : dirs.back()) + "/" + file;
}
std::string model_path(const std::string& dir) { return newest_or(dir, "model.safetensors"); }
std::string state_path(const std::string& dir) { return newest_or(dir, "state.safetensors"); }

void clean_interrupted_saves(const std::string& run) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(".partial-", 0) == 0 || n.rfind(".stale-", 0) == 0) fs::remove_all(e.path(), ec);
  }
  for (const auto& e : fs::directory_iterator(run, ec))
    if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
}

RunLock::RunLock(const std::string& run) {
  const std::string path = run + "/lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  require(fd_ >= 0, "cannot create '{}': {}", path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    std::ifstream(path) >> holder;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw Error(fmt::format(
          "'{}' is in use by another scalevec (pid {}): one writer per run directory; wait for it "
          "or choose another --out",
          run, holder.empty() ? "unknown" : holder));
    throw Error(fmt::format("cannot lock '{}': {}", path, std::strerror(err)));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::write(fd_, pid.data(), pid.size()) != (ssize_t)pid.size())
    fmt::print(stderr, "warning: cannot write the pid into '{}'\n", path);
}
RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

// A symbolic link `link` -> `target`, replacing whatever is there in one rename.
static void point_link(const std::string& link, const std::string& target) {
  const std::string tmp = link + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  require(!ec, "cannot create the link '{}': {}", tmp, ec.message());
  fs::rename(tmp, link, ec);
  require(!ec, "cannot move the link '{}': {}", link, ec.message());
}

template <class T>
static void require_finite(const T* x, size_t n, const std::string& what) {
  for (size_t i = 0; i < n; i++)
    require(std::isfinite(x[i]), "{} is not finite ({} at element {})", what, double(x[i]), i);
}

template <class T>
void save_checkpoint(const std::string& run, const Transformer<T>& model, Optimizer<T>& opt,
                     TrainState s, int keep) {
  require(keep >= 1, "keep = {}: at least one checkpoint is kept", keep);
  const std::string name = fmt::format("step-{:08d}", s.step);
  for (const auto& p : model.layout().params())
    require_finite(model.params.data() + p.offset, p.numel,
                   fmt::format("checkpoint at step {} not saved: weight '{}'", s.step, p.name));
  for (auto& [n, buf] : opt.state())
    require_finite(buf->data(), buf->size(),
                   fmt::format("checkpoint at step {} not saved: optimizer state '{}'", s.step, n));
  const std::string dir = run + "/checkpoints", partial = dir + "/.partial-" + name;
  const std::string final_dir = dir + "/" + name, stale = dir + "/.stale-" + name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, "cannot create '{}': {}", dir, ec.message());
  fs::remove_all(partial, ec);
  try {
    fs::create_directory(partial, ec);
    require(!ec, "cannot create '{}': {}", partial, ec.message());
    s.model_crc32 = save_model(partial + "/model.safetensors", model, s.step);
    save_state(partial + "/state.safetensors", opt, s);
    fsync_directory(partial);
  } catch (const Error& e) {
    fs::remove_all(partial, ec);  // nothing of it is left: a full disk stays usable
    const auto prev = checkpoint_dirs(run);
    throw Error(fmt::format("checkpoint at step {} not saved: {}{}", s.step, e.what(),
                            prev.empty() ? std::string()
                                         : fmt::format(" (the previous checkpoint, {}, is intact)",
                                                       fs::path(prev.back()).filename().string())));
  }
  // Publish: one rename. A checkpoint of the same step saved before (a resumed run saved again)
  // steps aside first; it is not complete under its .stale- name, so a kill here leaves the
  // previous steps as the newest complete ones.
  if (fs::exists(final_dir, ec)) fs::rename(final_dir, stale, ec);
  fs::rename(partial, final_dir, ec);
  require(!ec, "cannot publish checkpoint '{}': {}", final_dir, ec.message());
  fsync_directory(dir);
  fs::remove_all(stale, ec);
  // For people and other tools: run/model.safetensors and run/state.safetensors name the newest.
  for (const char* f : {"model.safetensors", "state.safetensors"})
    point_link(run + "/" + f, "checkpoints/" + name + "/" + f);
  fsync_directory(run);
  const auto all = checkpoint_dirs(run);
  for (size_t i = 0; i + (size_t)keep < all.size(); i++) fs::remove_all(all[i], ec);
}

std::string config_differences(const json& have, const json& want) {
  std::string out;
  for (const auto& [k, v] : want.items()) {
    const std::string h = have.contains(k) ? have.at(k).dump() : "(missing)";
    if (h != v.dump())
      out +=
          fmt::format("{}{}: checkpoint {}, requested {}", out.empty() ? "" : "; ", k, h, v.dump());
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

// What a stranger needs to rebuild the model from the names and the config alone
// (docs/checkpoints.md explains each entry).
static json model_conventions(const ModelConfig& c) {
  return {
      {"tokenizer", "bytes: token id = byte value (vocab_size 256), no special tokens"},
      {"matrix_layout",
       "[out, in]: y = x W^T for every 2-D weight (wq, wk, wv, wo, w_gate, w_up, "
       "w_down, head); tok_emb is [vocab, d_model]; head is not tied to tok_emb"},
      {"block",
       "pre-norm: x + attn(N(x)), then x + mlp(N(x)); no biases; mlp = w_down(silu(w_gate a) "
       "* (w_up a)); scale vectors as the config's scale_param, hg, dp, dnp, qk_norm, "
       "post_norm say (docs/SCALE_VECTORS.md)"},
      {"norm", fmt::format("RMSNorm without mean: x / sqrt(mean(x^2) + eps), eps = norm_eps = {} "
                           "inside the square root, then the scale vector",
                           c.norm_eps)},
      {"qk_norm", "per head: each head's hs channels are normalized on their own"},
      {"rope", fmt::format("rotate-half (GPT-NeoX / Hugging Face Llama): channel i pairs with "
                           "i + hs/2 within each head; angle t * base^(-2i/hs), base = rope_base = "
                           "{}; applied to q and k after their projections and any output-side "
                           "scales or norms, before attention",
                           c.rope_base)},
      {"attention", "causal softmax(q k^T / sqrt(hs)) v per head, hs = d_model / n_head"},
      {"context", fmt::format("{} positions; sample slides a window of the last {} tokens",
                              c.context, c.context)},
      {"final", "logits = head(gamma_final * N(x_L))"}};
}

template <class T>
std::string save_model(const std::string& path, const Transformer<T>& model, int64_t step) {
  StFile f;
  f.metadata = {{"format", "scalevec"},
                {"kind", "model"},
                {"format_version", std::to_string(kCheckpointVersion)},
                {"config", model.config().to_json().dump()},
                {"conventions", model_conventions(model.config()).dump()},
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
  ModelConfig c;
  try {
    c = ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", path, e.what()));
  }
  // Before anything is allocated for this config: its matrices alone (embedding, head, and per
  // layer q k v o and gate up down) must be in the file, and one sequence's attention
  // probabilities (n_layer · n_head · context² floats) must be a size a computer has.
  const double C = c.d_model, V = c.vocab_size, F = c.d_ff, T = c.context;
  const double matrices = 2 * V * C + c.n_layer * (4 * C * C + 3 * C * F);
  double stored = 0;
  for (const auto& [name, t] : f.tensors) {
    double n = 1;
    for (auto d : t.shape) n *= double(d);
    stored += n;
  }
  require(matrices <= stored,
          "'{}': its config describes at least {:.0f} parameters, but the file holds {:.0f} values",
          path, matrices, stored);
  const double att_bytes = double(c.n_layer) * c.n_head * T * T * 4;
  require(att_bytes <= 64.0 * (1ull << 30),
          "'{}': its config needs {:.0f} GiB of attention activations per sequence (n_layer {} x "
          "n_head {} x context {}^2 floats); refusing",
          path, att_bytes / (1ull << 30), c.n_layer, c.n_head, c.context);
  return c;
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
  if (crc32) *crc32 = f.crc32;
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
  for (const auto& p : model.layout().params())
    require_finite(model.params.data() + p.offset, p.numel,
                   fmt::format("checkpoint '{}': weight '{}'", path, p.name));
  return parse_int_strict(meta(f, path, "step"), fmt::format("'{}': step", path), 0,
                          std::numeric_limits<int>::max());
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

static std::string optimizer_of(const StFile& f, const std::string& path) {
  return meta(f, path, "optimizer");
}

// Step, optimizer step count, data RNG and training config from a state file's metadata.
static TrainState state_of(const StFile& f, const std::string& path, int64_t* opt_t) {
  TrainState s;
  const int64_t big = std::numeric_limits<int>::max();
  auto what = [&](const char* k) { return fmt::format("'{}': metadata '{}'", path, k); };
  s.step = parse_int_strict(meta(f, path, "step"), what("step"), 0, big);
  *opt_t = parse_int_strict(meta(f, path, "optimizer_t"), what("optimizer_t"), 0, big);
  s.data_rng = parse_uint64_strict(meta(f, path, "data_rng"), what("data_rng"));
  s.model_crc32 = meta(f, path, "model_crc32");
  s.corpus_crc32 = (uint32_t)parse_int_strict(meta(f, path, "corpus_crc32"), what("corpus_crc32"),
                                              0, 0xffffffffll);
  try {
    s.train = TrainConfig::from_json(json::parse(meta(f, path, "train_config")));
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has corrupted metadata: {}", path, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", path, e.what()));
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
  const std::string saved = optimizer_of(f, path);
  require(saved == opt.name(),
          "'{}' holds the state of optimizer '{}', not of '{}': resume with --optimizer {} (or "
          "start a new run)",
          path, saved, opt.name(), saved);
  int64_t t = 0;
  TrainState s = state_of(f, path, &t);
  const auto buffers = opt.state();
  for (auto& [name, dst] : buffers) {
    const StTensor* st = f.find(name);
    require(st != nullptr, "'{}' lacks tensor '{}' of optimizer '{}'", path, name, opt.name());
    tensor_to(*st, dst->data(), dst->size(), fmt::format("'{}': {}", path, name));
    require_finite(dst->data(), dst->size(), fmt::format("'{}': optimizer state '{}'", path, name));
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
template void save_checkpoint<float>(const std::string&, const Transformer<float>&,
                                     Optimizer<float>&, TrainState, int);
template void save_checkpoint<double>(const std::string&, const Transformer<double>&,
                                      Optimizer<double>&, TrainState, int);
template void save_state<float>(const std::string&, Optimizer<float>&, const TrainState&);
template void save_state<double>(const std::string&, Optimizer<double>&, const TrainState&);
template TrainState load_state<float>(const std::string&, Optimizer<float>&);
template TrainState load_state<double>(const std::string&, Optimizer<double>&);

}  // namespace scalevec
