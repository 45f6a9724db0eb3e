#include "safetensors.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
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

// The checksum of a file: CRC-32 of its canonical header (the header JSON without the "crc32"
// entry, as nlohmann::json dumps it: compact, keys sorted) followed by its data section. So it
// covers every name, dtype, shape, offset and metadata entry as well as every byte of data.
static uint32_t checksum(const json& header_without_crc,
                         const std::vector<std::pair<std::string, StTensor>>& tensors) {
  const std::string h = header_without_crc.dump();
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(h.data()), (uInt)h.size());
  for (const auto& [name, t] : tensors)
    if (!t.bytes.empty()) crc = crc32(crc, t.bytes.data(), (uInt)t.bytes.size());
  return (uint32_t)crc;
}

static json header_of(const StFile& f) {
  json header = json::object();
  json meta = json::object();
  for (const auto& [k, v] : f.metadata) meta[k] = v;
  header["__metadata__"] = meta;
  size_t offset = 0;
  for (const auto& [name, t] : f.tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  return header;
}

void write_fully(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    require(w > 0, "cannot write '{}': {}", path, std::strerror(errno));
    p += w, n -= (size_t)w;
  }
}

// write_fully, closing fd when it fails (the file is then abandoned).
static void write_all(int fd, const void* data, size_t n, const std::string& path) {
  try {
    write_fully(fd, data, n, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  require(fd >= 0, "cannot open directory '{}': {}", dir, std::strerror(errno));
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  require(rc == 0, "cannot flush directory '{}' to disk: {}", dir, std::strerror(err));
}

std::string write_safetensors_file(const std::string& path, const StFile& f) {
  json header = header_of(f);
  const std::string crc = std::to_string(checksum(header, f.tensors));
  header["__metadata__"]["crc32"] = crc;
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // the format pads the header to 8-byte alignment with spaces
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  require(fd >= 0, "cannot write '{}': {}", path, std::strerror(errno));
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h.size() >> (8 * i));
  write_all(fd, len, 8, path);
  write_all(fd, h.data(), h.size(), path);
  for (const auto& [name, t] : f.tensors) write_all(fd, t.bytes.data(), t.bytes.size(), path);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(fmt::format("cannot flush '{}' to disk: {}", path, std::strerror(err)));
  }
  require(::close(fd) == 0, "cannot write '{}': {}", path, std::strerror(errno));
  return crc;
}

std::string write_safetensors(const std::string& path, const StFile& f) {
  const std::string tmp = path + ".tmp";
  std::string crc;
  try {
    crc = write_safetensors_file(tmp, f);
  } catch (const Error&) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);  // a full disk stays usable
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  require(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  const std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_directory(dir.empty() ? "." : dir);
  return crc;
}

StFile read_safetensors(const std::string& path) {
  std::error_code ec;
  require(std::filesystem::is_regular_file(path, ec), "checkpoint file '{}' does not exist", path);
  const uint64_t size = std::filesystem::file_size(path, ec);
  require(!ec, "cannot read '{}': {}", path, ec.message());
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open '{}'", path);
  require(size >= 8, "'{}' is truncated: {} bytes, not even a header length", path, size);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(len[i]) << (8 * i);
  require(n >= 2 && n <= size - 8 && n < (100u << 20),
          "'{}' is not a valid safetensors file (header length {} for a {}-byte file)", path, n,
          size);
  std::string h(n, '\0');
  in.read(h.data(), (std::streamsize)n);
  require(in.good(), "'{}' could not be read completely", path);
  json header;
  try {
    header = json::parse(h);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has a corrupted header: {}", path, e.what()));
  }
  require(header.is_object(), "'{}' has a corrupted header (not a JSON object)", path);
  const uint64_t data_size = size - 8 - n;  // bounded by the file: nothing larger is allocated
  StFile f;
  std::string crc;
  // Tensors sorted by (begin, end, name): an empty tensor [x, x] must come before the tensor
  // that starts at x.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> order;
  try {
    for (const auto& [name, v] : header.items()) {
      if (name == "__metadata__") {
        require(v.is_object(), "'{}': __metadata__ is not an object", path);
        for (const auto& [k, mv] : v.items()) {
          require(mv.is_string(), "'{}': metadata entry '{}' is not a string", path, k);
          if (k == "crc32")
            crc = mv.get<std::string>();
          else
            f.metadata[k] = mv.get<std::string>();
        }
        continue;
      }
      require(v.is_object() && v.contains("data_offsets") && v.at("data_offsets").is_array() &&
                  v.at("data_offsets").size() == 2 &&
                  v.at("data_offsets")[0].is_number_unsigned() &&
                  v.at("data_offsets")[1].is_number_unsigned(),
              "'{}': tensor '{}' has no valid data_offsets", path, name);
      order.push_back({v.at("data_offsets").at(0).get<uint64_t>(),
                       v.at("data_offsets").at(1).get<uint64_t>(), name});
    }
    std::sort(order.begin(), order.end());
    // Every size is checked against the file before the data is read.
    uint64_t expect = 0;
    for (const auto& [begin, end, name] : order) {
      const json& v = header.at(name);
      require(v.contains("dtype") && v.at("dtype").is_string(), "'{}': tensor '{}' has no dtype",
              path, name);
      require(v.contains("shape") && v.at("shape").is_array(), "'{}': tensor '{}' has no shape",
              path, name);
      const uint64_t esize = dtype_size(v.at("dtype").get<std::string>());
      uint64_t bytes = esize;
      for (const auto& d : v.at("shape")) {
        require(d.is_number_unsigned(), "'{}': tensor '{}' has a dimension that is not a size",
                path, name);
        require(!__builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes),
                "'{}': tensor '{}' has a shape whose size overflows", path, name);
      }
      require(begin == expect && end >= begin && end - begin == bytes,
              "'{}': tensor '{}' has inconsistent data offsets [{}, {}]", path, name, begin, end);
      require(end <= data_size, "'{}' is truncated: tensor '{}' ends at byte {} of {}", path, name,
              end, data_size);
      expect = end;
    }
    require(expect == data_size, "'{}' has {} unexpected trailing bytes", path, data_size - expect);
    std::vector<uint8_t> data(data_size);
    in.read(reinterpret_cast<char*>(data.data()), (std::streamsize)data_size);
    require(in.good() || data_size == 0, "'{}' could not be read completely", path);
    for (const auto& [begin, end, name] : order) {
      const json& v = header.at(name);
      StTensor t;
      t.dtype = v.at("dtype").get<std::string>();
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      t.bytes.assign(data.begin() + (ptrdiff_t)begin, data.begin() + (ptrdiff_t)end);
      f.tensors.push_back({name, std::move(t)});
    }
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' has a corrupted header: {}", path, e.what()));
  }
  require(!crc.empty(),
          "'{}' has no checksum (metadata entry \"crc32\"): scalevec reads only files whose header "
          "and data are covered by one (docs/checkpoints.md says how a foreign file gets one)",
          path);
  if (header.contains("__metadata__")) header["__metadata__"].erase("crc32");
  require(crc == std::to_string(checksum(header, f.tensors)),
          "'{}' is corrupted: its header or data does not match the checksum in its header", path);
  f.crc32 = crc;
  return f;
}

template <class T>
StTensor make_tensor(const T* data, std::vector<int64_t> shape) {
  StTensor t;
  if constexpr (std::is_same_v<T, float>)
    t.dtype = "F32";
  else if constexpr (std::is_same_v<T, double>)
    t.dtype = "F64";
  else
    t.dtype = "I32";
  size_t n = 1;
  for (auto s : shape) n *= (size_t)s;
  t.shape = std::move(shape);
  t.bytes.resize(n * sizeof(T));
  if (n > 0) std::memcpy(t.bytes.data(), data, n * sizeof(T));  // data may be null when n = 0
  return t;
}

template <class T>
void tensor_to(const StTensor& t, T* out, size_t n, const std::string& what) {
  size_t numel = 1;
  for (auto s : t.shape) numel *= (size_t)s;
  require(numel == n, "{}: expected {} values, found {}", what, n, numel);
  // Floating-point values from F32 or F64 only, token ids from I32 only: bytes of another dtype
  // would be reinterpreted, not converted.
  if constexpr (std::is_floating_point_v<T>) {
    require(t.dtype == "F32" || t.dtype == "F64", "{}: dtype {} where F32 or F64 belongs", what,
            t.dtype);
  } else {
    require(t.dtype == "I32", "{}: dtype {} where I32 belongs", what, t.dtype);
  }
  if (t.dtype == "F32") {
    const float* p = reinterpret_cast<const float*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  } else if (t.dtype == "F64") {
    const double* p = reinterpret_cast<const double*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  } else {
    const int32_t* p = reinterpret_cast<const int32_t*>(t.bytes.data());
    for (size_t i = 0; i < n; i++) out[i] = T(p[i]);
  }
}

template StTensor make_tensor<float>(const float*, std::vector<int64_t>);
template StTensor make_tensor<double>(const double*, std::vector<int64_t>);
template StTensor make_tensor<int32_t>(const int32_t*, std::vector<int64_t>);
template void tensor_to<float>(const StTensor&, float*, size_t, const std::string&);
template void tensor_to<double>(const StTensor&, double*, size_t, const std::string&);
template void tensor_to<int32_t>(const StTensor&, int32_t*, size_t, const std::string&);

}  // namespace scalevec
