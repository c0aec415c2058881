#include "index/lru.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "index/stats.h"

namespace kvindex {
namespace {

constexpr size_t kKeySize = 8;
constexpr size_t kValueSize = 8;

// Keys and values have the fixed sizes the cache is built for.
std::string Key(uint32_t i) {
  const std::string digits = absl::StrCat(i);
  return std::string(kKeySize - digits.size(), 'k') + digits;
}
std::string Value(uint32_t v) {
  std::string out(kValueSize, '\0');
  std::memcpy(&out[0], &v, sizeof(v));
  out[4] = 'v';
  return out;
}

// The cached value of `key`, or "" on a miss.
std::string Get(const Lru& lru, absl::string_view key) {
  std::string out(kValueSize, '\0');
  return lru.Find(key, &out[0]) ? out : std::string();
}

TEST(Lru, CapacityZeroNeverHitsAndCountsNothing) {
  Lru lru(0, kKeySize, kValueSize);
  EXPECT_EQ(lru.capacity(), 0u);
  ResetStats();
  lru.Insert(Key(1), Value(1));
  EXPECT_EQ(lru.size(), 0u);
  EXPECT_EQ(Get(lru, Key(1)), "");
  EXPECT_FALSE(lru.Find(Key(1), nullptr));
  const Stats stats = GetStats();
  EXPECT_EQ(stats.lru_hits, 0u);
  EXPECT_EQ(stats.lru_misses, 0u);
}

TEST(Lru, CapacityOneEvictsOnSecondInsert) {
  Lru lru(1, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(1));
  EXPECT_EQ(Get(lru, Key(1)), Value(1));
  lru.Insert(Key(2), Value(2));
  EXPECT_EQ(lru.size(), 1u);
  EXPECT_EQ(Get(lru, Key(1)), "");
  EXPECT_EQ(Get(lru, Key(2)), Value(2));
}

TEST(Lru, LeastRecentlyInsertedIsEvictedFirst) {
  Lru lru(2, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(1));
  lru.Insert(Key(2), Value(2));
  lru.Insert(Key(3), Value(3));
  EXPECT_EQ(lru.size(), 2u);
  EXPECT_EQ(Get(lru, Key(1)), "");
  EXPECT_EQ(Get(lru, Key(2)), Value(2));
  EXPECT_EQ(Get(lru, Key(3)), Value(3));
}

TEST(Lru, HitPromotesTheEntry) {
  Lru lru(2, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(1));
  lru.Insert(Key(2), Value(2));
  EXPECT_EQ(Get(lru, Key(1)), Value(1));  // 1 becomes the most recent
  lru.Insert(Key(3), Value(3));           // so 2 goes
  EXPECT_EQ(Get(lru, Key(2)), "");
  EXPECT_EQ(Get(lru, Key(1)), Value(1));
  EXPECT_EQ(Get(lru, Key(3)), Value(3));
}

TEST(Lru, FindWithoutOutputStillPromotes) {
  Lru lru(2, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(1));
  lru.Insert(Key(2), Value(2));
  EXPECT_TRUE(lru.Find(Key(1), nullptr));
  lru.Insert(Key(3), Value(3));
  EXPECT_FALSE(lru.Find(Key(2), nullptr));
  EXPECT_TRUE(lru.Find(Key(1), nullptr));
}

TEST(Lru, UpdateInPlaceReplacesTheValueAndPromotes) {
  Lru lru(2, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(1));
  lru.Insert(Key(2), Value(2));
  lru.Insert(Key(1), Value(11));
  EXPECT_EQ(lru.size(), 2u);
  lru.Insert(Key(3), Value(3));  // 2 is now the least recent
  EXPECT_EQ(Get(lru, Key(2)), "");
  EXPECT_EQ(Get(lru, Key(1)), Value(11));
  EXPECT_EQ(Get(lru, Key(3)), Value(3));
}

TEST(Lru, FindCopiesExactlyTheValueBytes) {
  Lru lru(4, kKeySize, kValueSize);
  lru.Insert(Key(1), Value(0x01020304));
  std::string out(kValueSize + 4, '#');
  ASSERT_TRUE(lru.Find(Key(1), &out[0]));
  EXPECT_EQ(out.substr(0, kValueSize), Value(0x01020304));
  EXPECT_EQ(out.substr(kValueSize), "####");
  // A miss writes nothing.
  std::string untouched(kValueSize, '#');
  EXPECT_FALSE(lru.Find(Key(2), &untouched[0]));
  EXPECT_EQ(untouched, std::string(kValueSize, '#'));
}

TEST(Lru, EmptyValues) {
  Lru lru(2, kKeySize, 0);
  lru.Insert(Key(1), "");
  char sentinel = 'x';
  EXPECT_TRUE(lru.Find(Key(1), &sentinel));
  EXPECT_EQ(sentinel, 'x');
  EXPECT_FALSE(lru.Find(Key(2), &sentinel));
}

TEST(Lru, KeysAreComparedByAllTheirBytes) {
  Lru lru(4, 3, kValueSize);
  const std::string a("k\0a", 3);
  const std::string b("k\0b", 3);
  lru.Insert(a, Value(1));
  lru.Insert(b, Value(2));
  EXPECT_EQ(Get(lru, a), Value(1));
  EXPECT_EQ(Get(lru, b), Value(2));
  EXPECT_EQ(Get(lru, std::string("k\0c", 3)), "");
}

TEST(Lru, ClearEmptiesAndStaysUsable) {
  Lru lru(8, kKeySize, kValueSize);
  for (uint32_t i = 0; i < 8; ++i) lru.Insert(Key(i), Value(i));
  EXPECT_EQ(lru.size(), 8u);
  lru.Clear();
  EXPECT_EQ(lru.size(), 0u);
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(Get(lru, Key(i)), "") << i;
  lru.Insert(Key(3), Value(33));
  EXPECT_EQ(lru.size(), 1u);
  EXPECT_EQ(Get(lru, Key(3)), Value(33));
}

TEST(Lru, ClearThenRefillEvictsInOrder) {
  Lru lru(3, kKeySize, kValueSize);
  for (uint32_t i = 1; i <= 3; ++i) lru.Insert(Key(i), Value(i));
  lru.Clear();
  for (uint32_t i = 4; i <= 7; ++i) lru.Insert(Key(i), Value(i));
  EXPECT_EQ(lru.size(), 3u);
  EXPECT_EQ(Get(lru, Key(4)), "");
  for (uint32_t i = 1; i <= 3; ++i) EXPECT_EQ(Get(lru, Key(i)), "") << i;
  EXPECT_EQ(Get(lru, Key(5)), Value(5));  // 6 is now the least recent
  lru.Insert(Key(8), Value(8));
  EXPECT_EQ(Get(lru, Key(6)), "");
  EXPECT_EQ(Get(lru, Key(5)), Value(5));
  EXPECT_EQ(Get(lru, Key(7)), Value(7));
  EXPECT_EQ(Get(lru, Key(8)), Value(8));
}

// A reference LRU: most recent first.
class ModelLru {
 public:
  explicit ModelLru(size_t capacity) : capacity_(capacity) {}
  std::string Find(const std::string& key) {
    for (auto it = order_.begin(); it != order_.end(); ++it) {
      if (it->first == key) {
        order_.splice(order_.begin(), order_, it);
        return order_.front().second;
      }
    }
    return "";
  }
  void Insert(const std::string& key, const std::string& value) {
    for (auto it = order_.begin(); it != order_.end(); ++it) {
      if (it->first == key) {
        order_.erase(it);
        break;
      }
    }
    if (capacity_ == 0) return;
    order_.emplace_front(key, value);
    if (order_.size() > capacity_) order_.pop_back();
  }
  void Clear() { order_.clear(); }
  size_t size() const { return order_.size(); }

 private:
  size_t capacity_;
  std::list<std::pair<std::string, std::string>> order_;
};

// The cache as the header describes it: independent exact LRUs, one per set.
class ModelSets {
 public:
  explicit ModelSets(const Lru& lru) : lru_(lru) {
    for (size_t i = 0; i < lru.sets(); ++i) sets_.emplace_back(lru.WaysOf(i));
  }
  std::string Find(const std::string& key) {
    return sets_.empty() ? "" : sets_[lru_.SetOf(key)].Find(key);
  }
  void Insert(const std::string& key, const std::string& value) {
    if (!sets_.empty()) sets_[lru_.SetOf(key)].Insert(key, value);
  }
  void Clear() {
    for (ModelLru& s : sets_) s.Clear();
  }
  size_t size() const {
    size_t n = 0;
    for (const ModelLru& s : sets_) n += s.size();
    return n;
  }

 private:
  const Lru& lru_;
  std::vector<ModelLru> sets_;
};

TEST(Lru, RandomOperationsMatchIndependentExactLruSets) {
  for (size_t capacity : {size_t{0}, size_t{1}, size_t{2}, size_t{5}, size_t{8},
                          size_t{9}, size_t{17}, size_t{100}}) {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      SCOPED_TRACE(absl::StrCat("capacity ", capacity, " seed ", seed));
      Lru lru(capacity, kKeySize, kValueSize);
      ModelSets model(lru);
      uint32_t state = seed * 2654435761u;
      const uint32_t keys = static_cast<uint32_t>(capacity * 2 + 3);
      for (int step = 0; step < 2000; ++step) {
        state = state * 1103515245u + 12345u;
        const uint32_t op = (state >> 24) % 100;
        const std::string key = Key((state >> 8) % keys);
        if (op < 45) {
          const std::string value = Value(state);
          lru.Insert(key, value);
          model.Insert(key, value);
        } else if (op < 99) {
          ASSERT_EQ(Get(lru, key), model.Find(key)) << "step " << step;
        } else {
          lru.Clear();
          model.Clear();
        }
        ASSERT_EQ(lru.size(), model.size()) << "step " << step;
      }
    }
  }
}

TEST(Lru, UpToOneSetOfWaysIsOneExactLru) {
  for (size_t capacity = 1; capacity <= Lru::kWays; ++capacity) {
    SCOPED_TRACE(capacity);
    Lru lru(capacity, kKeySize, kValueSize);
    EXPECT_EQ(lru.sets(), 1u);
    EXPECT_EQ(lru.WaysOf(0), capacity);
    ModelLru model(capacity);
    for (uint32_t i = 0; i < 200; ++i) {
      const std::string key = Key((i * 7919) % (capacity + 3));
      if (i % 3 == 0) {
        ASSERT_EQ(Get(lru, key), model.Find(key)) << i;
      } else {
        lru.Insert(key, Value(i));
        model.Insert(key, Value(i));
      }
    }
  }
}

TEST(Lru, SetsShareTheCapacityExactly) {
  for (size_t capacity = 1; capacity <= 300; ++capacity) {
    SCOPED_TRACE(capacity);
    Lru lru(capacity, kKeySize, kValueSize);
    size_t total = 0, smallest = Lru::kWays, largest = 0;
    for (size_t i = 0; i < lru.sets(); ++i) {
      total += lru.WaysOf(i);
      smallest = std::min(smallest, lru.WaysOf(i));
      largest = std::max(largest, lru.WaysOf(i));
    }
    EXPECT_EQ(total, capacity);
    EXPECT_LE(largest, Lru::kWays);
    EXPECT_LE(largest - smallest, 1u);
  }
}

TEST(Lru, BigCacheFillsToItsCapacityAndKeepsRecentKeys) {
  for (size_t capacity : {size_t{1024}, size_t{1030}, size_t{5000}}) {
    SCOPED_TRACE(capacity);
    Lru lru(capacity, kKeySize, kValueSize);
    const uint32_t n = static_cast<uint32_t>(capacity * 10);
    for (uint32_t i = 0; i < n; ++i) {
      lru.Insert(Key(i), Value(i));
      if (i % 997 == 0) {
        ASSERT_LE(lru.size(), capacity);
      }
    }
    EXPECT_EQ(lru.size(), capacity);
    // The most recent keys are spread over the sets, far below each one's
    // number of ways.
    for (uint32_t i = n - 64; i < n; ++i) {
      EXPECT_EQ(Get(lru, Key(i)), Value(i)) << i;
    }
    // The oldest ones were evicted long ago.
    size_t old_hits = 0;
    for (uint32_t i = 0; i < 1000; ++i)
      old_hits += Get(lru, Key(i)).empty() ? 0 : 1;
    EXPECT_EQ(old_hits, 0u);
  }
}

TEST(Lru, StatsCountHitsAndMisses) {
  Lru lru(4, kKeySize, kValueSize);
  ResetStats();
  EXPECT_FALSE(lru.Find(Key(1), nullptr));
  lru.Insert(Key(1), Value(1));
  EXPECT_TRUE(lru.Find(Key(1), nullptr));
  EXPECT_EQ(Get(lru, Key(1)), Value(1));
  EXPECT_EQ(Get(lru, Key(2)), "");
  Stats stats = GetStats();
  EXPECT_EQ(stats.lru_hits, 2u);
  EXPECT_EQ(stats.lru_misses, 2u);
  // Inserts and Clear are not lookups.
  lru.Insert(Key(3), Value(3));
  lru.Clear();
  stats = GetStats();
  EXPECT_EQ(stats.lru_hits, 2u);
  EXPECT_EQ(stats.lru_misses, 2u);
  ResetStats();
  stats = GetStats();
  EXPECT_EQ(stats.lru_hits, 0u);
  EXPECT_EQ(stats.lru_misses, 0u);
}

// Values written by the concurrent test: key id, writer id, writer's sequence
// number.
struct Written {
  uint32_t key;
  uint32_t writer;
  uint32_t seq;
};
std::string Encode(const Written& w) {
  std::string out(12, '\0');
  std::memcpy(&out[0], &w.key, 4);
  std::memcpy(&out[4], &w.writer, 4);
  std::memcpy(&out[8], &w.seq, 4);
  return out;
}
Written Decode(const char* bytes) {
  Written w;
  std::memcpy(&w.key, bytes, 4);
  std::memcpy(&w.writer, bytes + 4, 4);
  std::memcpy(&w.seq, bytes + 8, 4);
  return w;
}

void RunConcurrently(size_t capacity) {
  SCOPED_TRACE(capacity);
  constexpr uint32_t kThreads = 4;
  constexpr uint32_t kKeys = 300;
  constexpr uint32_t kIterations = 20000;
  Lru lru(capacity, kKeySize, 12);
  ResetStats();
  std::atomic<uint64_t> finds{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint32_t state = 7919 * (t + 1);
      // Newest sequence number seen from each (key, writer): values of one
      // writer for one key are written in increasing order under the set
      // lock, so a reader can never see them go back.
      std::vector<uint32_t> newest(kKeys * kThreads, 0);
      uint64_t my_finds = 0;
      uint64_t my_hits = 0;
      for (uint32_t i = 1; i <= kIterations; ++i) {
        state = state * 1103515245u + 12345u;
        const uint32_t k = (state >> 8) % kKeys;
        const std::string key = Key(k);
        if ((state >> 4) % 3 == 0) {
          lru.Insert(key, Encode({k, t, i}));
          continue;
        }
        char out[12];
        ++my_finds;
        if (!lru.Find(key, out)) continue;
        ++my_hits;
        const Written w = Decode(out);
        if (w.key != k || w.writer >= kThreads || w.seq == 0 ||
            w.seq > kIterations) {
          errors.fetch_add(1);
          continue;
        }
        uint32_t& seen = newest[k * kThreads + w.writer];
        if (w.seq < seen) errors.fetch_add(1);
        seen = w.seq;
        if (w.writer == t && w.seq > i) errors.fetch_add(1);  // from the future
      }
      finds.fetch_add(my_finds);
      hits.fetch_add(my_hits);
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  EXPECT_LE(lru.size(), capacity);
  const Stats stats = GetStats();
  EXPECT_EQ(stats.lru_hits, hits.load());
  EXPECT_EQ(stats.lru_hits + stats.lru_misses, finds.load());
}

TEST(Lru, ConcurrentReadersSeeOnlyWrittenValuesSmallCache) {
  RunConcurrently(64);
}

TEST(Lru, ConcurrentReadersSeeOnlyWrittenValuesBigCache) {
  RunConcurrently(2048);
}

// Lookups that miss skip the set lock when no writer is in the set; one that
// runs while a writer updates the set must still find what is there. Writers
// here only update cached keys in place (no eviction), so every lookup of a
// cached key hits and every lookup of a key never inserted misses.
TEST(Lru, LookupsDuringUpdatesNeverMissACachedKey) {
  constexpr uint32_t kKeys = 48;
  Lru lru(64, kKeySize, kValueSize);  // 8 sets: writers and readers meet
  for (uint32_t k = 0; k < kKeys; ++k) lru.Insert(Key(k), Value(k));
  std::vector<uint32_t> cached;  // a set of more than 8 keys evicted some
  for (uint32_t k = 0; k < kKeys; ++k) {
    if (!Get(lru, Key(k)).empty()) cached.push_back(k);
  }
  ASSERT_GT(cached.size(), kKeys / 2);
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const bool writer = t < 2;
      for (uint32_t i = 0; i < 20000; ++i) {
        const uint32_t k = cached[(i * 7 + t) % cached.size()];
        if (writer) {
          lru.Insert(Key(k), Value(k + i));
        } else if (Get(lru, Key(k)).empty() ||
                   !Get(lru, Key(kKeys + i)).empty()) {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0u);
}

}  // namespace
}  // namespace kvindex
