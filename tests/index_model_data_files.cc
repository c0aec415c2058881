#include "tests/index_model_data_files.h"

#include <set>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "io/file_header.h"

namespace kvindex {
namespace index_model_test {
namespace {

// Problems listed per file before the rest are only counted.
constexpr int kMaxProblems = 10;

class Problems {
 public:
  void Add(const std::string& line) {
    if (count_++ < kMaxProblems) text_ += "  " + line + "\n";
  }
  std::string Text() const {
    if (count_ <= kMaxProblems) return text_;
    return text_ + "  ... " + std::to_string(count_ - kMaxProblems) + " more\n";
  }

 private:
  int count_ = 0;
  std::string text_;
};

// The slots a fan-out table of 2^k slots must hold for records with these
// hashes, in order, of `e` bytes each (docs/format.md §6.3).
std::vector<uint64_t> ExpectedSlots(const std::vector<uint64_t>& hashes,
                                    int hash_bits, int k, size_t e) {
  std::vector<uint64_t> slots(uint64_t{1} << k, 0);
  std::vector<bool> filled(slots.size(), false);
  for (size_t i = 0; i < hashes.size(); ++i) {
    const uint64_t bucket = k == 0 ? 0 : hashes[i] >> (hash_bits - k);
    slots[bucket] = i * e;
    filled[bucket] = true;
  }
  for (size_t b = 1; b < slots.size(); ++b) {
    if (!filled[b]) slots[b] = slots[b - 1];
  }
  return slots;
}

}  // namespace

bool IsDataFileName(absl::string_view name) {
  if (name == "data") return true;
  if (!absl::ConsumePrefix(&name, "run.") || name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string DataFileProblems(absl::string_view bytes, const Schema& schema,
                             DataFileShape* shape) {
  const absl::StatusOr<FileHeader> header = FileHeader::DecodeRaw(bytes, "");
  if (!header.ok()) return "  header: " + header.status().ToString() + "\n";
  const size_t e = schema.entry_size();
  const uint64_t fan_size = static_cast<uint64_t>(header->fan_size);
  const uint64_t nb_slots = fan_size / 8;
  int k = 0;
  while (k < schema.hash_bits && (uint64_t{1} << k) < nb_slots) ++k;
  if (header->fan_size < 8 || fan_size % 8 != 0 ||
      (uint64_t{1} << k) != nb_slots) {
    return absl::StrCat("  fan-out size ", header->fan_size,
                        " is not 8 * 2^k, k <= ", schema.hash_bits, "\n");
  }
  const uint64_t start = FileHeader::kSize + fan_size;
  if (header->offset < 0 || header->offset % e != 0 ||
      start + header->offset > bytes.size()) {
    return absl::StrCat("  offset ", header->offset, " in a file of ",
                        bytes.size(), " bytes\n");
  }
  const uint64_t records = static_cast<uint64_t>(header->offset) / e;
  if (shape != nullptr) *shape = DataFileShape{records, nb_slots};

  Problems problems;
  std::vector<uint64_t> hashes(records);
  std::set<absl::string_view> keys_of_hash;  // the keys of the current hash
  for (uint64_t i = 0; i < records; ++i) {
    const absl::string_view key = bytes.substr(start + i * e, schema.key_size);
    hashes[i] = schema.hash(key);
    if (i > 0 && hashes[i] < hashes[i - 1]) {
      problems.Add(absl::StrCat("record ", i, " hashes below record ", i - 1));
    }
    if (i > 0 && hashes[i] != hashes[i - 1]) keys_of_hash.clear();
    if (!keys_of_hash.insert(key).second) {
      problems.Add(absl::StrCat("record ", i, " repeats an earlier key"));
    }
  }
  const std::vector<uint64_t> expected =
      ExpectedSlots(hashes, schema.hash_bits, k, e);
  for (uint64_t b = 0; b < nb_slots; ++b) {
    const uint64_t slot = static_cast<uint64_t>(
        absl::big_endian::Load64(bytes.data() + FileHeader::kSize + 8 * b));
    if (slot != expected[b]) {
      problems.Add(absl::StrCat("fan-out slot ", b, " of ", nb_slots, " is ",
                                slot, ", its records call for ", expected[b]));
    }
  }
  return problems.Text();
}

}  // namespace index_model_test
}  // namespace kvindex
