#include "index/lru.h"

#include <cstring>
#include <new>
#include <thread>
#include <type_traits>

#include "absl/hash/hash.h"
#include "data/mix.h"
#include "index/stats.h"

namespace kvindex {

// One set: its lock, its recency order and the tags of its entries, in one
// cache line. The entries themselves are in the slab.
//
// The lock is a sequence number, odd while held, so that a lookup that misses
// can run without taking it (see Lru::SurelyAbsent): it reads only the atomic
// fields and checks that the number did not move meanwhile. Writers change
// those fields only while holding the lock, with release stores.
struct alignas(64) Lru::Set {
  std::atomic<uint32_t> seq{0};
  uint8_t ways = 0;              // capacity of this set, fixed at construction
  std::atomic<uint8_t> used{0};  // ways 0..used-1 hold entries
  // Recency order: nibble i is the way at position i, 0 the most recent.
  // Only read and written under the lock.
  uint32_t order = 0;
  std::atomic<uint64_t> epoch{0};  // the cache's epoch when last valid
  std::atomic<uint32_t> tags[kWays] = {};
};

// Spins: a set is held for a few dozen nanoseconds. Also brings the set to
// the cache's current epoch (read under the lock, so that a Clear that
// happened before is never undone).
class Lru::SetLock {
 public:
  SetLock(Set& s, const std::atomic<uint64_t>& epoch) : s_(s) {
    int spins = 0;
    uint32_t seq = s_.seq.load(std::memory_order_relaxed);
    while ((seq & 1) != 0 || !s_.seq.compare_exchange_weak(
                                 seq, seq + 1, std::memory_order_acquire,
                                 std::memory_order_relaxed)) {
      if (++spins > 64) std::this_thread::yield();
      seq = s_.seq.load(std::memory_order_relaxed);
    }
    const uint64_t now = epoch.load(std::memory_order_acquire);
    if (s_.epoch.load(std::memory_order_relaxed) != now) {
      s_.epoch.store(now, std::memory_order_release);
      s_.used.store(0, std::memory_order_release);
      s_.order = 0;
    }
  }
  ~SetLock() {
    s_.seq.store(s_.seq.load(std::memory_order_relaxed) + 1,
                 std::memory_order_release);
  }
  SetLock(const SetLock&) = delete;
  SetLock& operator=(const SetLock&) = delete;

 private:
  Set& s_;
};

namespace {

// Moves the way at position `pos` of a recency order to the front.
uint32_t MoveToFront(uint32_t order, unsigned pos) {
  const uint64_t o = order;
  const uint64_t way = (o >> (4 * pos)) & 0xF;
  const uint64_t below = o & ((uint64_t{1} << (4 * pos)) - 1);
  const uint64_t above = o & ~((uint64_t{1} << (4 * pos + 4)) - 1);
  return static_cast<uint32_t>(above | (below << 4) | way);
}

unsigned PositionOf(uint32_t order, unsigned used, unsigned way) {
  for (unsigned pos = 0; pos < used; ++pos) {
    if (((order >> (4 * pos)) & 0xF) == way) return pos;
  }
  return used;  // unreachable for a way in use
}

}  // namespace

Lru::Lru(size_t capacity, size_t key_size, size_t value_size)
    : capacity_(capacity),
      key_size_(key_size),
      value_size_(value_size),
      sets_((capacity + kWays - 1) / kWays) {
  static_assert(kWays <= 8, "a recency order holds 8 ways of 4 bits");
  static_assert(sizeof(Set) == 64, "a set is one cache line");
  // The sets are built in storage_ and never destroyed.
  static_assert(std::is_trivially_destructible<Set>::value,
                "a set needs no destructor");
  if (sets_ == 0) return;
  // Room to align the sets to a cache line (calloc'd storage is not).
  const size_t sets_bytes = sets_ * sizeof(Set) + alignof(Set);
  storage_ = LargeArray<unsigned char>(
      sets_bytes + sets_ * kWays * (key_size_ + value_size_));
  const uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data());
  const uintptr_t aligned =
      (base + alignof(Set) - 1) / alignof(Set) * alignof(Set);
  set_table_ = reinterpret_cast<Set*>(aligned);
  for (size_t i = 0; i < sets_; ++i) {
    Set* s = new (&set_table_[i]) Set();
    s->ways = static_cast<uint8_t>(WaysOf(i));
  }
  slab_ = reinterpret_cast<char*>(storage_.data() + sets_bytes);
}

Lru::~Lru() = default;

size_t Lru::WaysOf(size_t set) const {
  return capacity_ / sets_ + (set < capacity_ % sets_ ? 1 : 0);
}

uint64_t Lru::DefaultHash(absl::string_view key) {
  return absl::Hash<absl::string_view>()(key);
}

Lru::Probe Lru::ProbeOf(uint64_t hash) const {
  const uint64_t m = Mix64(hash);
  // The high bits choose the set (multiply-shift, no division); the low bits
  // are the tag.
  const size_t set =
      static_cast<size_t>((static_cast<unsigned __int128>(m) * sets_) >> 64);
  return Probe{set, static_cast<uint32_t>(m)};
}

size_t Lru::SetOf(absl::string_view key) const {
  return sets_ == 0 ? 0 : ProbeOf(DefaultHash(key)).set;
}

bool Lru::SurelyAbsent(const Set& s, uint32_t tag) const {
  const uint32_t before = s.seq.load(std::memory_order_acquire);
  if ((before & 1) != 0) return false;
  // Acquire loads (plain loads on x86): the second read of the number below
  // cannot move before them, and a value stored by a writer (a release store
  // after it made the number odd) brings that odd number along. So if the
  // number did not move, no writer held the lock in between.
  constexpr auto kAcquire = std::memory_order_acquire;
  bool absent = true;
  if (s.epoch.load(kAcquire) == epoch_.load(std::memory_order_relaxed)) {
    const unsigned used = s.used.load(kAcquire);
    for (unsigned way = 0; way < used && way < kWays; ++way) {
      if (s.tags[way].load(kAcquire) == tag) absent = false;
    }
  }
  return absent && s.seq.load(std::memory_order_relaxed) == before;
}

int Lru::FindWay(const Set& s, size_t set, absl::string_view key,
                 uint32_t tag) const {
  const unsigned used = s.used.load(std::memory_order_relaxed);
  for (unsigned way = 0; way < used; ++way) {
    if (s.tags[way].load(std::memory_order_relaxed) == tag &&
        std::memcmp(Slot(set, way), key.data(), key_size_) == 0) {
      return static_cast<int>(way);
    }
  }
  return -1;
}

bool Lru::Find(absl::string_view key, char* value_out) const {
  return Find(key, DefaultHash(key), value_out);
}

void Lru::Insert(absl::string_view key, absl::string_view value) {
  Insert(key, DefaultHash(key), value);
}

bool Lru::Find(absl::string_view key, uint64_t hash, char* value_out) const {
  if (capacity_ == 0) return false;
  const Probe p = ProbeOf(hash);
  Set& s = set_table_[p.set];
  bool hit = false;
  // Most lookups of a big store miss: they need no lock (nor its atomic
  // read-modify-write, which would also wait for every memory access the find
  // has in flight).
  if (SurelyAbsent(s, p.tag)) {
    stats_internal::AddLru(false);
    return false;
  }
  {
    SetLock lock(s, epoch_);
    const int way = FindWay(s, p.set, key, p.tag);
    if (way >= 0) {
      s.order = MoveToFront(
          s.order,
          PositionOf(s.order, s.used.load(std::memory_order_relaxed), way));
      if (value_out != nullptr && value_size_ > 0) {
        std::memcpy(value_out, Slot(p.set, way) + key_size_, value_size_);
      }
      hit = true;
    }
  }
  stats_internal::AddLru(hit);
  return hit;
}

void Lru::Insert(absl::string_view key, uint64_t hash,
                 absl::string_view value) {
  if (capacity_ == 0) return;
  const Probe p = ProbeOf(hash);
  Set& s = set_table_[p.set];
  SetLock lock(s, epoch_);
  int found = FindWay(s, p.set, key, p.tag);
  const unsigned used = s.used.load(std::memory_order_relaxed);
  unsigned way;
  if (found >= 0) {
    way = static_cast<unsigned>(found);
    s.order = MoveToFront(s.order, PositionOf(s.order, used, way));
  } else if (used < s.ways) {
    way = used;
    s.used.store(static_cast<uint8_t>(used + 1), std::memory_order_release);
    s.order = (s.order << 4) | way;
  } else {
    const unsigned last = used - 1u;  // the least recent
    way = (s.order >> (4 * last)) & 0xF;
    s.order = MoveToFront(s.order, last);
  }
  s.tags[way].store(p.tag, std::memory_order_release);
  char* slot = Slot(p.set, way);
  if (found < 0) std::memcpy(slot, key.data(), key_size_);
  if (value_size_ > 0) std::memcpy(slot + key_size_, value.data(), value_size_);
}

void Lru::Prefetch(uint64_t hash) const {
  if (capacity_ == 0) return;
  __builtin_prefetch(&set_table_[ProbeOf(hash).set]);
}

void Lru::Clear() { epoch_.fetch_add(1, std::memory_order_acq_rel); }

size_t Lru::size() const {
  size_t n = 0;
  for (size_t i = 0; i < sets_; ++i) {
    SetLock lock(set_table_[i], epoch_);
    n += set_table_[i].used.load(std::memory_order_relaxed);
  }
  return n;
}

}  // namespace kvindex
