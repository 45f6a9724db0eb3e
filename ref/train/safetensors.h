// The safetensors file format (Hugging Face), read and written with nlohmann-json:
//     8 bytes   little-endian u64 N, the header length
//     N bytes   JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                      "__metadata__": {"key": "string value", ...}}
//     rest      the tensors' bytes; offsets are relative to the start of this section
// Readers in PyTorch and Hugging Face tools open these files directly. We add one metadata key,
// "data_crc32", so that a corrupted data section is detected, not silently loaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace scalevec {

struct StTensor {
  std::string dtype;            // "F32", "F64" or "I32"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;   // little-endian, row-major
};

struct StFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, StTensor>> tensors;  // in file order
  const StTensor* find(const std::string& name) const;
};

size_t dtype_size(const std::string& dtype);  // throws Error for unsupported dtypes

// Writes atomically: to path + ".tmp", flushed, then renamed over path. Returns the data
// checksum it stored as "data_crc32".
std::string write_safetensors(const std::string& path, const StFile& f);
// Reads and validates the whole file; every problem (missing, truncated, bad header, offsets out
// of range, checksum mismatch) throws Error naming the file and what is wrong.
StFile read_safetensors(const std::string& path);

// Helpers to move numbers in and out of StTensor.
template <class T>
StTensor make_tensor(const T* data, std::vector<int64_t> shape);
template <class T>
void tensor_to(const StTensor& t, T* out, size_t n, const std::string& what);  // converts F32/F64

}  // namespace scalevec
