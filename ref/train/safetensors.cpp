#include "safetensors.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "../common.h"

namespace scalevec {

using json = nlohmann::json;

const StTensor* StFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64") return 8;
  throw Error(fmt::format("unsupported safetensors dtype '{}'", dtype));
}

static uint32_t crc_of(const std::vector<std::pair<std::string, StTensor>>& tensors) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& [name, t] : tensors)
    if (!t.bytes.empty()) crc = crc32(crc, t.bytes.data(), (uInt)t.bytes.size());
  return (uint32_t)crc;
}

std::string write_safetensors(const std::string& path, const StFile& f) {
  json header = json::object();
  json meta = json::object();
  for (const auto& [k, v] : f.metadata) meta[k] = v;
  const std::string crc = std::to_string(crc_of(f.tensors));
  meta["data_crc32"] = crc;
  header["__metadata__"] = meta;
  size_t offset = 0;
  for (const auto& [name, t] : f.tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // the format pads the header to 8-byte alignment with spaces
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    require(out.good(), "cannot write '{}'", tmp);
    uint64_t n = h.size();
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(h.data(), (std::streamsize)h.size());
    for (const auto& [name, t] : f.tensors)
      out.write(reinterpret_cast<const char*>(t.bytes.data()), (std::streamsize)t.bytes.size());
    out.flush();
    require(out.good(), "error while writing '{}' (disk full?)", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  require(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  return crc;
}

StFile read_safetensors(const std::string& path) {
  std::error_code ec;
  require(std::filesystem::is_regular_file(path, ec), "checkpoint file '{}' does not exist", path);
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open '{}'", path);
  require(size >= 8, "'{}' is truncated: {} bytes, not even a header length", path, size);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(len[i]) << (8 * i);
  require(n >= 2 && n <= size - 8 && n < (100u << 20),
          "'{}' is not a valid safetensors file (header length {} for a {}-byte file)", path, n, size);
  std::string h(n, '\0');
  in.read(h.data(), (std::streamsize)n);
  json header;
  try {
    header = json::parse(h);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has a corrupted header: {}", path, e.what()));
  }
  require(header.is_object(), "'{}' has a corrupted header (not a JSON object)", path);
  const uint64_t data_size = size - 8 - n;
  StFile f;
  // Tensors sorted by (begin, end, name): an empty tensor [x, x] must come before the tensor
  // that starts at x.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> order;
  try {
    for (const auto& [name, v] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, mv] : v.items()) f.metadata[k] = mv.get<std::string>();
        continue;
      }
      order.push_back({v.at("data_offsets").at(0).get<uint64_t>(),
                       v.at("data_offsets").at(1).get<uint64_t>(), name});
    }
    std::sort(order.begin(), order.end());
    std::vector<uint8_t> data(data_size);
    in.read(reinterpret_cast<char*>(data.data()), (std::streamsize)data_size);
    require(in.good() || data_size == 0, "'{}' could not be read completely", path);
    uint64_t expect = 0;
    for (const auto& [begin, end, name] : order) {
      const json& v = header.at(name);
      StTensor t;
      t.dtype = v.at("dtype").get<std::string>();
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      uint64_t numel = 1;
      for (int64_t s : t.shape) {
        require(s >= 0, "'{}': tensor '{}' has a negative dimension", path, name);
        numel *= (uint64_t)s;
      }
      require(begin == expect && end >= begin && end - begin == numel * dtype_size(t.dtype),
              "'{}': tensor '{}' has inconsistent data offsets [{}, {}]", path, name, begin, end);
      require(end <= data_size, "'{}' is truncated: tensor '{}' ends at byte {} of {}", path, name,
              end, data_size);
      t.bytes.assign(data.begin() + begin, data.begin() + end);
      f.tensors.push_back({name, std::move(t)});
      expect = end;
    }
    require(expect == data_size, "'{}' has {} unexpected trailing bytes", path, data_size - expect);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has a corrupted header: {}", path, e.what()));
  }
  auto crc = f.metadata.find("data_crc32");
  if (crc != f.metadata.end())
    require(crc->second == std::to_string(crc_of(f.tensors)),
            "'{}' is corrupted: its data does not match the checksum in its header", path);
  return f;
}

template <class T>
StTensor make_tensor(const T* data, std::vector<int64_t> shape) {
  StTensor t;
  if constexpr (std::is_same_v<T, float>) t.dtype = "F32";
  else if constexpr (std::is_same_v<T, double>) t.dtype = "F64";
  else t.dtype = "I32";
  size_t n = 1;
  for (auto s : shape) n *= (size_t)s;
  t.shape = std::move(shape);
  t.bytes.resize(n * sizeof(T));
  std::memcpy(t.bytes.data(), data, n * sizeof(T));
  return t;
}

template <class T>
void tensor_to(const StTensor& t, T* out, size_t n, const std::string& what) {
  size_t numel = 1;
  for (auto s : t.shape) numel *= (size_t)s;
  require(numel == n, "{}: expected {} values, found {}", what, n, numel);
  if (t.dtype == "F32") {
    const float* p = reinterpret_cast<const float*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  } else if (t.dtype == "F64") {
    const double* p = reinterpret_cast<const double*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  } else if (t.dtype == "I32") {
    const int32_t* p = reinterpret_cast<const int32_t*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  } else {
    throw Error(fmt::format("{}: unsupported dtype {}", what, t.dtype));
  }
}

template StTensor make_tensor<float>(const float*, std::vector<int64_t>);
template StTensor make_tensor<double>(const double*, std::vector<int64_t>);
template StTensor make_tensor<int32_t>(const int32_t*, std::vector<int64_t>);
template void tensor_to<float>(const StTensor&, float*, size_t, const std::string&);
template void tensor_to<double>(const StTensor&, double*, size_t, const std::string&);
template void tensor_to<int32_t>(const StTensor&, int32_t*, size_t, const std::string&);

}  // namespace scalevec
