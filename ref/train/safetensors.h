// The safetensors file format (Hugging Face), read and written with nlohmann-json:
//     8 bytes   little-endian u64 N, the header length
//     N bytes   JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                      "__metadata__": {"key": "string value", ...}}
//     rest      the tensors' bytes; offsets are relative to the start of this section
// Readers in PyTorch and Hugging Face tools open these files directly. We add one metadata key,
// "crc32": the CRC-32 of the canonical header (the header without that entry, dumped compact with
// sorted keys) followed by the data section, so that an edit or corruption of any name, dtype,
// shape, offset, metadata entry or data byte is detected, not silently loaded. A file without it
// is refused (docs/checkpoints.md: how a foreign writer computes it).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace scalevec {

struct StTensor {
  std::string dtype;  // "F32", "F64" or "I32"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian, row-major
};

struct StFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, StTensor>> tensors;  // in file order
  std::string crc32;  // read_safetensors: the file's verified checksum (not in metadata)
  const StTensor* find(const std::string& name) const;
};

size_t dtype_size(const std::string& dtype);  // throws Error for unsupported dtypes

// Writes all n bytes of data to fd, retrying short writes and EINTR, or throws naming `path` and
// the system's reason (ENOSPC: "No space left on device"). fd stays open either way.
void write_fully(int fd, const void* data, size_t n, const std::string& path);

// Writes path (created or truncated) and flushes it to disk (fsync); returns the checksum it
// stored as "crc32". A write error (a full disk) throws Error with the system's reason.
std::string write_safetensors_file(const std::string& path, const StFile& f);
// The same, atomically: to path + ".tmp" (removed if the write fails), then renamed over path,
// and the directory flushed.
std::string write_safetensors(const std::string& path, const StFile& f);
// fsync of a directory: makes the renames and creations inside it durable.
void fsync_directory(const std::string& dir);
// Reads and validates the whole file; every problem (missing, truncated, bad header, offsets or
// shapes inconsistent with the file size, a missing checksum or a mismatch) throws Error naming
// the file and what is wrong. Sizes are checked against the file before the data is read.
StFile read_safetensors(const std::string& path);

// Helpers to move numbers in and out of StTensor.
template <class T>
StTensor make_tensor(const T* data, std::vector<int64_t> shape);
template <class T>
void tensor_to(const StTensor& t, T* out, size_t n, const std::string& what);  // F32/F64 -> float

}  // namespace scalevec
