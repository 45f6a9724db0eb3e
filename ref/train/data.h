// Byte-level data: the tokenizer is the identity on bytes (vocabulary 256), so any file is a
// corpus. The default corpus is the English fortune-cookie text of Debian's `fortunes` package.
//
// Validation split [choice]: the text is cut into chunks of 4 KiB and every 10th chunk is held out,
// so validation covers the whole corpus (all fortune files) rather than its last file; texts
// shorter than 10 chunks hold out their last 10% instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../rng.h"

namespace scalevec {

// Directories searched for the default corpus, in order.
std::vector<std::string> default_corpus_dirs();
// Reads the default corpus (all English fortune files, sorted by name, concatenated); throws
// Error naming the directories searched and the package to install when none is found.
std::string read_default_corpus(std::string* source = nullptr);
// Reads a whole file; throws Error if it is missing, unreadable or empty.
std::string read_text_file(const std::string& path);

struct TextData {
  std::string source;               // where the text came from
  std::vector<uint8_t> train, val;  // the two splits, as tokens (bytes)
  uint32_t crc32 = 0;               // of the whole text: a resumed run checks it is unchanged
};

// Splits `text` (see the header comment). Both splits must hold at least one context plus one
// byte; otherwise throws Error saying how long the text is and how long it needs to be.
TextData split_text(const std::string& text, int context, const std::string& source);
// Default corpus when path is empty, else the file at path.
TextData load_data(const std::string& path, int context);

// A batch of B sequences of length T: inputs (B, T) and the next-byte targets (B, T).
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> inputs, targets;
};

// Random windows of the training split, drawn with rng (whose state is the data position).
void sample_batch(Batch& batch, const std::vector<uint8_t>& data, int B, int T, Rng& rng);
// Number of non-overlapping windows of length T (plus the next-byte target) in data.
size_t window_count(const std::vector<uint8_t>& data, int T);
// Fixed windows first .. first+count-1 as a batch of `count` rows (deterministic; validation).
void window_batch(Batch& batch, const std::vector<uint8_t>& data, int T, size_t first, int count);

}  // namespace scalevec
