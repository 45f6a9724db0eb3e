#include "data.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common.h"

namespace fs = std::filesystem;

namespace scalevec {

std::vector<std::string> default_corpus_dirs() {
  return {"/usr/share/games/fortunes", "/usr/share/fortunes", "/usr/share/fortune"};
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  require(fs::exists(path, ec), "data file '{}' does not exist", path);
  require(fs::is_regular_file(path, ec), "data path '{}' is not a regular file", path);
  std::ifstream f(path, std::ios::binary);
  require(f.good(), "cannot open data file '{}'", path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  require(!s.empty(), "data file '{}' is empty", path);
  return s;
}

std::string read_default_corpus(std::string* source) {
  for (const auto& dir : default_corpus_dirs()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    // Fortune files have no extension; .dat (index) and .u8 (UTF-8 link) files sit beside them.
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
    if (files.empty()) continue;
    std::sort(files.begin(), files.end());
    std::string text;
    for (const auto& p : files) text += read_text_file(p.string());
    if (source) *source = fmt::format("{} ({} fortune files)", dir, files.size());
    return text;
  }
  throw Error(fmt::format(
      "default corpus not found: no fortune files in {} (install Debian's 'fortunes' package, or "
      "pass --data FILE)",
      fmt::join(default_corpus_dirs(), ", ")));
}

TextData split_text(const std::string& text, int context, const std::string& source) {
  const size_t chunk = 4096, every = 10, need = (size_t)context + 1;
  TextData d;
  d.source = source;
  d.crc32 = (uint32_t)crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()),
                            (uInt)text.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  if (text.size() >= chunk * every) {
    for (size_t i = 0, c = 0; i < text.size(); i += chunk, c++) {
      const size_t end = std::min(text.size(), i + chunk);
      auto& dst = (c % every == every - 1) ? d.val : d.train;
      dst.insert(dst.end(), bytes + i, bytes + end);
    }
  } else {
    const size_t cut = text.size() - text.size() / every;
    d.train.assign(bytes, bytes + cut);
    d.val.assign(bytes + cut, bytes + text.size());
  }
  require(d.train.size() >= need && d.val.size() >= need,
          "data from {} is too short: {} bytes give {} training and {} validation bytes, but each "
          "split needs at least context + 1 = {} (use a longer text or a shorter --context)",
          source, text.size(), d.train.size(), d.val.size(), need);
  return d;
}

TextData load_data(const std::string& path, int context) {
  if (path.empty()) {
    std::string source;
    std::string text = read_default_corpus(&source);
    return split_text(text, context, source);
  }
  return split_text(read_text_file(path), context, path);
}

static void fill_window(Batch& b, const std::vector<uint8_t>& data, int row, size_t start) {
  for (int t = 0; t < b.T; t++) {
    b.inputs[(size_t)row * b.T + t] = data[start + t];
    b.targets[(size_t)row * b.T + t] = data[start + t + 1];
  }
}

void sample_batch(Batch& batch, const std::vector<uint8_t>& data, int B, int T, Rng& rng) {
  require(data.size() > (size_t)T, "cannot sample windows of {} + 1 bytes from {} bytes", T,
          data.size());
  batch.B = B, batch.T = T;
  batch.inputs.resize((size_t)B * T), batch.targets.resize((size_t)B * T);
  const size_t starts = data.size() - (size_t)T;  // valid starts: 0 .. size - T - 1
  for (int b = 0; b < B; b++) fill_window(batch, data, b, rng.below(starts));
}

size_t window_count(const std::vector<uint8_t>& data, int T) { return (data.size() - 1) / T; }

void window_batch(Batch& batch, const std::vector<uint8_t>& data, int T, size_t first, int count) {
  require(first + count <= window_count(data, T), "window {} is past the end of the split",
          first + count);
  batch.B = count, batch.T = T;
  batch.inputs.resize((size_t)count * T), batch.targets.resize((size_t)count * T);
  for (int b = 0; b < count; b++) fill_window(batch, data, b, (first + b) * T);
}

}  // namespace scalevec
