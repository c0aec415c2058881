// Index<KeyCodec, ValueCodec>: the typed front of the index. Keys and values
// are any fixed-size types with a codec (data/codec.h); FixedString<N>
// and OcamlFixedString<N> are ready-made.
//
//   using Idx =
//       kvindex::Index<kvindex::FixedString<32>, kvindex::FixedString<13>>;
//   kvindex::Options options;
//   options.log_size = 500000;
//   auto index = Idx::Open("/var/lib/myapp/store", options);  // StatusOr
//   if (!index.ok()) return index.status();
//   absl::Status s = (*index)->Replace(key, value);
//   auto found = (*index)->Find(key);  // StatusOr<std::optional<std::string>>
//
// Semantics, errors and thread safety are those of RawIndex
// (index/raw_index.h).
#ifndef KVINDEX_INDEX_INDEX_H_
#define KVINDEX_INDEX_INDEX_H_

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/codec.h"
#include "index/options.h"
#include "index/raw_index.h"
#include "index/stats.h"
#include "io/flush_options.h"

namespace kvindex {

template <typename KeyCodec, typename ValueCodec>
class Index {
 public:
  using Key = typename KeyCodec::Type;
  using Value = typename ValueCodec::Type;

  static absl::StatusOr<std::unique_ptr<Index>> Open(const std::string& root,
                                                     const Options& options) {
    auto raw = RawIndex::Open(root, SchemaOf<KeyCodec, ValueCodec>(), options);
    if (!raw.ok()) return raw.status();
    return std::unique_ptr<Index>(new Index(*std::move(raw)));
  }

  absl::StatusOr<std::optional<Value>> Find(const Key& key) const {
    KeyBytes k;
    absl::Status s = KeyCodec::Encode(key, k.data());
    if (!s.ok()) return s;
    ValueBytes v;
    absl::StatusOr<bool> found = raw_->Find(View(k), v.data());
    if (!found.ok()) return found.status();
    if (!*found) return std::optional<Value>();
    return std::optional<Value>(ValueCodec::Decode(View(v)));
  }

  absl::StatusOr<bool> Mem(const Key& key) const {
    KeyBytes k;
    absl::Status s = KeyCodec::Encode(key, k.data());
    if (!s.ok()) return s;
    return raw_->Mem(View(k));
  }

  absl::Status Replace(const Key& key, const Value& value,
                       bool overcommit = false) {
    KeyBytes k;
    ValueBytes v;
    absl::Status s = KeyCodec::Encode(key, k.data());
    if (s.ok()) s = ValueCodec::Encode(value, v.data());
    if (!s.ok()) return s;
    return raw_->Replace(View(k), View(v), overcommit);
  }

  absl::Status Filter(
      const std::function<bool(const Key&, const Value&)>& keep) {
    return raw_->Filter([&](absl::string_view k, absl::string_view v) {
      return keep(KeyCodec::Decode(k), ValueCodec::Decode(v));
    });
  }

  absl::Status Iter(
      const std::function<void(const Key&, const Value&)>& f) const {
    return raw_->Iter([&](absl::string_view k, absl::string_view v) {
      f(KeyCodec::Decode(k), ValueCodec::Decode(v));
    });
  }

  absl::Status Clear() { return raw_->Clear(); }
  absl::Status Flush(const FlushOptions& options = FlushOptions()) {
    return raw_->Flush(options);
  }
  absl::Status Merge() { return raw_->Merge(); }
  absl::Status TryMerge() { return raw_->TryMerge(); }
  absl::Status AwaitMerge() { return raw_->AwaitMerge(); }
  absl::StatusOr<bool> IsMerging() const { return raw_->IsMerging(); }
  absl::Status Sync() { return raw_->Sync(); }
  absl::Status Close(bool immediately = false) {
    return raw_->Close(immediately);
  }

  RawIndex& raw() { return *raw_; }
  const RawIndex& raw() const { return *raw_; }

 private:
  // One spare byte so that zero-size codecs still have a valid data().
  using KeyBytes = std::array<char, KeyCodec::kEncodedSize + 1>;
  using ValueBytes = std::array<char, ValueCodec::kEncodedSize + 1>;
  template <typename Bytes>
  static absl::string_view View(const Bytes& b) {
    return absl::string_view(b.data(), b.size() - 1);
  }

  explicit Index(std::unique_ptr<RawIndex> raw) : raw_(std::move(raw)) {}
  std::unique_ptr<RawIndex> raw_;
};

}  // namespace kvindex

#endif  // KVINDEX_INDEX_INDEX_H_
